"""Small predicates over Pod objects shared by several controllers.

Why: "ready", "available", "active" and "which pod to delete first" must mean
exactly the same thing to the ReplicaSet, Deployment and endpoints
controllers (k/k ``pkg/api/v1/pod/util.go``, ``controller_utils.go``).
"""
from __future__ import annotations

from typing import Any

from harness.cluster.base import Obj

from .clock import parse_rfc3339, rfc3339
from .quantity import milli


def condition(pod: Obj, type_: str) -> dict[str, Any] | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == type_), None)


def is_ready(pod: Obj) -> bool:
    c = condition(pod, "Ready")
    return c is not None and c["status"] == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: float) -> bool:
    """Ready, and Ready for longer than minReadySeconds (strictly)."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    t = parse_rfc3339(condition(pod, "Ready").get("lastTransitionTime"))
    return t is not None and t + min_ready_seconds < now


def available_at(pod: Obj, min_ready_seconds: int) -> float | None:
    """When a ready pod turns available (for the controllers' wake-ups)."""
    c = condition(pod, "Ready")
    if c is None or c["status"] != "True" or not min_ready_seconds:
        return None
    return parse_rfc3339(c["lastTransitionTime"]) + min_ready_seconds + 0.001


def is_terminating(pod: Obj) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """``controller.IsPodActive``: not terminal and not being deleted."""
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not is_terminating(pod)


def controller_uid(obj: Obj) -> str | None:
    return next((r["uid"] for r in obj["metadata"].get("ownerReferences") or [] if r.get("controller")), None)


def controller_ref(owner: Obj) -> dict[str, Any]:
    return {"apiVersion": owner.get("apiVersion", "apps/v1"), "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def restarts(pod: Obj) -> int:
    return max([c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or []] or [0])


def deletion_rank_key(pod: Obj, related_on_node: int) -> tuple:
    """``ActivePodsWithRanks``: the smallest key is deleted first."""
    st = pod.get("status") or {}
    ready_t = parse_rfc3339((condition(pod, "Ready") or {}).get("lastTransitionTime")) or 0.0
    try:
        cost = int((pod["metadata"].get("annotations") or {}).get("controller.kubernetes.io/pod-deletion-cost", 0))
    except ValueError:
        cost = 0
    return (1 if pod["spec"].get("nodeName") else 0,
            {"Pending": 0, "Unknown": 1, "Running": 2}.get(st.get("phase", "Pending"), 0),
            1 if is_ready(pod) else 0,
            cost,
            -related_on_node,
            -ready_t if is_ready(pod) else 0.0,
            -restarts(pod),
            tuple(-ord(ch) for ch in pod["metadata"].get("creationTimestamp", "")),
            pod["metadata"]["name"])


def pod_requests(spec: dict[str, Any]) -> dict[str, int]:
    """Effective requests in milli-units: max(sum of containers, any init container) + overhead."""
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] = total.get(k, 0) + milli(v)
    for c in spec.get("initContainers") or []:
        for k, v in ((c.get("resources") or {}).get("requests") or {}).items():
            total[k] = max(total.get(k, 0), milli(v))
    for k, v in (spec.get("overhead") or {}).items():
        total[k] = total.get(k, 0) + milli(v)
    return total


def graceful_delete(store, pod: Obj, now: float, grace: int | None = None) -> Obj | None:
    """``DELETE pods/x``: set deletionTimestamp = now + grace; unbound or terminal pods go at once."""
    if is_terminating(pod):
        return pod
    phase = (pod.get("status") or {}).get("phase")
    if grace is None:
        grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
    if not pod["spec"].get("nodeName") or phase in ("Succeeded", "Failed") or grace == 0:
        store.delete("Pod", pod["metadata"].get("namespace"), pod["metadata"]["name"])
        return None
    pod["metadata"]["deletionTimestamp"] = rfc3339(now + grace)
    pod["metadata"]["deletionGracePeriodSeconds"] = grace
    return store.update(pod)

