"""The ReplicaSet controller (k/k ``pkg/controller/replicaset/replica_set.go``).

Why: the Deployment controller only sets ``spec.replicas`` on ReplicaSets; it
is this controller that creates pods from the template (through admission, so
a PodSecurity refusal becomes a ``FailedCreate`` event and a ``ReplicaFailure``
condition, as on a real cluster), deletes the lowest-ranked pods when scaling
down, and reports ``replicas/readyReplicas/availableReplicas``.

Differences: no orphan adoption or release (pods are matched by controller
ownerReference only), no slow-start batching (all missing pods are created in
one sync; the first failure stops the sync), no expectations cache (the sim
loop re-syncs until the store is quiet instead).
"""
from __future__ import annotations

import copy

from harness.cluster.base import ApiError, Obj

from . import podutil
from .clock import rfc3339
from .labels import selector_matcher

COMPONENT = "replicaset-controller"


class ReplicaSetController:
    def __init__(self, store, events, clock, timers, create_pod):
        self.store, self.events, self.clock, self.timers = store, events, clock, timers
        self._create_pod = create_pod   # defaulting + admission + store.create
        # Failed creates are retried with the workqueue's backoff (5 ms doubling, 1000 s cap).
        self._backoff: dict[str, tuple[int, float]] = {}

    def sync(self) -> None:
        pods = self.store.list("Pod", record=False)
        for rs in self.store.list("ReplicaSet", record=False):
            if not rs["metadata"].get("deletionTimestamp"):
                self.sync_one(rs, pods)

    def owned_pods(self, rs: Obj, pods: list[Obj]) -> list[Obj]:
        uid = rs["metadata"]["uid"]
        return [p for p in pods if podutil.controller_uid(p) == uid]

    def sync_one(self, rs: Obj, pods: list[Obj]) -> None:
        now = self.clock.now()
        owned = self.owned_pods(rs, pods)
        active = [p for p in owned if podutil.is_active(p)]
        diff = len(active) - rs["spec"].get("replicas", 0)
        err: tuple[str, str] | None = None
        uid = rs["metadata"]["uid"]
        failures, retry_at = self._backoff.get(uid, (0, 0.0))
        if diff < 0 and now < retry_at:
            old = [c for c in (rs.get("status") or {}).get("conditions") or [] if c["type"] == "ReplicaFailure"]
            err = (old[0]["reason"], old[0]["message"]) if old else None
        elif diff < 0:
            self._backoff.pop(uid, None)
            for _ in range(-diff):
                try:
                    pod = self._create_pod(self.pod_from_template(rs))
                except ApiError as exc:
                    msg = f"Error creating: {exc.message}"
                    self.events.record(rs, "Warning", "FailedCreate", msg, COMPONENT)
                    err = ("FailedCreate", exc.message)
                    delay = min(0.005 * 2 ** failures, 1000.0)
                    self._backoff[uid] = (failures + 1, now + delay)
                    self.timers.at(now + delay)
                    break
                self.events.record(rs, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}",
                                   COMPONENT)
        elif diff > 0:
            related = [p for p in pods if podutil.controller_uid(p) in self._sibling_uids(rs) and podutil.is_active(p)]
            on_node: dict[str, int] = {}
            for p in related:
                n = p["spec"].get("nodeName", "")
                on_node[n] = on_node.get(n, 0) + 1
            victims = sorted(active, key=lambda p: podutil.deletion_rank_key(p, on_node.get(p["spec"].get("nodeName", ""), 0)))
            for p in victims[:diff]:
                podutil.graceful_delete(self.store, p, now)
                self.events.record(rs, "Normal", "SuccessfulDelete", f"Deleted pod: {p['metadata']['name']}", COMPONENT)
        self._update_status(rs, active, err, now)

    def _sibling_uids(self, rs: Obj) -> set[str]:
        owner = podutil.controller_uid(rs)
        if owner is None:
            return {rs["metadata"]["uid"]}
        return {r["metadata"]["uid"] for r in self.store.list("ReplicaSet", rs["metadata"]["namespace"], record=False)
                if podutil.controller_uid(r) == owner}

    def pod_from_template(self, rs: Obj) -> Obj:
        tmpl = copy.deepcopy(rs["spec"]["template"])
        meta = tmpl.get("metadata") or {}
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"generateName": rs["metadata"]["name"] + "-", "namespace": rs["metadata"]["namespace"],
                             "labels": meta.get("labels") or {},
                             **({"annotations": meta["annotations"]} if meta.get("annotations") else {}),
                             "ownerReferences": [podutil.controller_ref(rs)]},
                "spec": tmpl.get("spec") or {}}

    def _update_status(self, rs: Obj, active: list[Obj], err: tuple[str, str] | None, now: float) -> None:
        min_ready = rs["spec"].get("minReadySeconds", 0)
        labels_match = selector_matcher(rs["spec"].get("template", {}).get("metadata", {}).get("labels") and
                                        {"matchLabels": rs["spec"]["template"]["metadata"]["labels"]})
        status = {"replicas": len(active),
                  "fullyLabeledReplicas": sum(1 for p in active if labels_match(p["metadata"].get("labels") or {})),
                  "readyReplicas": sum(1 for p in active if podutil.is_ready(p)),
                  "availableReplicas": sum(1 for p in active if podutil.is_available(p, min_ready, now)),
                  "observedGeneration": rs["metadata"]["generation"]}
        for p in active:
            t = podutil.available_at(p, min_ready)
            if t is not None and t > now:
                self.timers.at(t)
        conds = [c for c in (rs.get("status") or {}).get("conditions") or [] if c["type"] == "ReplicaFailure"]
        if err is not None and not conds:
            conds = [{"type": "ReplicaFailure", "status": "True", "lastTransitionTime": rfc3339(now),
                      "reason": err[0], "message": err[1]}]
        elif err is None and conds:
            conds = []
        status = {k: v for k, v in status.items() if v or k == "replicas"}   # omitempty, except replicas
        if conds:
            status["conditions"] = conds
        if status != rs.get("status"):
            rs["status"] = status
            self.store.update(rs, subresource="status")
