"""Reading Kubernetes objects (plain API-shaped dicts) the same way on every
backend: pod readiness, restarts and state, a workload's containers, quantities.
Used by scenarios and checks alike."""
from __future__ import annotations

from kubernetes.utils.quantity import parse_quantity


def quantity(value) -> float:
    return float(parse_quantity(str(value)))


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def restarts(pod: dict) -> int:
    return sum(cs.get("restartCount", 0) for cs in (pod.get("status") or {}).get("containerStatuses") or [])


def pod_state(pod: dict) -> str:
    """``name: Running, ready`` / ``name: Waiting (ImagePullBackOff: ...)``."""
    name = pod["metadata"]["name"]
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    if not statuses:
        conds = {c["type"]: c for c in (pod.get("status") or {}).get("conditions") or []}
        sched = conds.get("PodScheduled")
        if sched and sched.get("status") == "False":
            return f"{name}: Pending ({sched.get('reason')}: {sched.get('message')})"
        return f"{name}: {(pod.get('status') or {}).get('phase', 'Pending')}"
    parts = []
    for cs in statuses:
        state = cs.get("state") or {}
        if "waiting" in state:
            w = state["waiting"]
            parts.append(f"Waiting ({w.get('reason')}: {(w.get('message') or '')[:160]})")
        elif "terminated" in state:
            parts.append(f"Terminated ({state['terminated'].get('reason')})")
        else:
            parts.append("Running" + (", ready" if cs.get("ready") else ", not ready"))
        if cs.get("restartCount"):
            parts[-1] += f", {cs['restartCount']} restarts"
    return f"{name}: " + "; ".join(parts)


def containers(deployment: dict) -> list[dict]:
    return (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
