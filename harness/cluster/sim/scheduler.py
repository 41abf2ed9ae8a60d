"""The default scheduler's filters and its FailedScheduling message.

Why: "my GPU pod is Pending" is a lab, and learners read the scheduler's
message to fix it. Filters run per node in upstream order and stop at the
first failing plugin (NodeUnschedulable -> TaintToleration -> NodeAffinity ->
NodeResourcesFit); reasons are counted over nodes and formatted exactly as
``FitError.Error()`` plus the default preemption plugin's PostFilter message
(k/k ``pkg/scheduler/framework/types.go``, ``plugins/defaultpreemption``).

Scoring is simplified: fewest pods of the same owner, then least requested
cpu+memory, then node name (upstream: LeastAllocated, BalancedAllocation,
PodTopologySpread ... with equal-score ties broken at random). An
unschedulable pod is retried when a pod is deleted or a node changes, or
after 5 minutes (the unschedulable queue's flush interval). No preemption
ever evicts a pod (every sim pod has priority 0).
"""
from __future__ import annotations

from typing import Any

from harness.cluster.base import ApiError, Obj

from . import podutil
from .quantity import milli

COMPONENT = "default-scheduler"
UNRESOLVABLE_MSG = "Preemption is not helpful for scheduling"
NO_VICTIMS_MSG = "No preemption victims found for incoming pod"
RETRY_AFTER = 300.0


def tolerates(tolerations: list[dict[str, Any]], taint: dict[str, Any]) -> bool:
    """``Toleration.ToleratesTaint`` for any of the tolerations."""
    for t in tolerations or []:
        if t.get("effect") and t["effect"] != taint.get("effect"):
            continue
        op = t.get("operator") or "Equal"
        if not t.get("key"):
            if op == "Exists":
                return True
            continue
        if t["key"] != taint.get("key"):
            continue
        if op == "Exists" or (op == "Equal" and (t.get("value") or "") == (taint.get("value") or "")):
            return True
    return False


def _expr_matches(e: dict[str, Any], labels: dict[str, str]) -> bool:
    k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
    if op == "In":
        return k in labels and labels[k] in vals
    if op == "NotIn":
        return k not in labels or labels[k] not in vals
    if op == "Exists":
        return k in labels
    if op == "DoesNotExist":
        return k not in labels
    if op in ("Gt", "Lt") and k in labels and len(vals) == 1:
        try:
            a, b = int(labels[k]), int(vals[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def matches_affinity(pod_spec: dict[str, Any], node: Obj) -> bool:
    labels = node["metadata"].get("labels") or {}
    for k, v in (pod_spec.get("nodeSelector") or {}).items():
        if labels.get(k) != v:
            return False
    req = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
           .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if req is None:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in req.get("nodeSelectorTerms") or []:
        exprs, mf = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not mf:
            continue  # an empty term matches nothing
        if all(_expr_matches(e, labels) for e in exprs) and all(_expr_matches(e, fields) for e in mf):
            return True
    return False


def filter_node(pod: Obj, node: Obj, node_pods: list[Obj]) -> tuple[list[str], bool]:
    """Reasons the node cannot take the pod (empty: it fits) and whether they are resolvable by preemption."""
    spec, tolerations = pod["spec"], pod["spec"].get("tolerations") or []
    if node["spec"].get("unschedulable") and not tolerates(
            tolerations, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
        return ["node(s) were unschedulable"], False
    for taint in node["spec"].get("taints") or []:
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(tolerations, taint):
            return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"], False
    if not matches_affinity(spec, node):
        return ["node(s) didn't match Pod's node affinity/selector"], False
    alloc = (node.get("status") or {}).get("allocatable") or {}
    reasons = []
    if len(node_pods) + 1 > int(alloc.get("pods", 110)):
        reasons.append("Too many pods")
    want = podutil.pod_requests(spec)
    used: dict[str, int] = {}
    for p in node_pods:
        for k, v in podutil.pod_requests(p["spec"]).items():
            used[k] = used.get(k, 0) + v
    native = [r for r in ("cpu", "memory", "ephemeral-storage") if r in want]
    for r in native + sorted(r for r in want if r not in ("cpu", "memory", "ephemeral-storage")):
        if want[r] > 0 and want[r] > milli(alloc.get(r, 0)) - used.get(r, 0):
            reasons.append(f"Insufficient {r}")
    return reasons, True


def fit_error(n_nodes: int, per_node: dict[str, tuple[list[str], bool]]) -> str:
    """``FitError.Error()`` followed by the default preemption plugin's message."""
    hist: dict[str, int] = {}
    pre: dict[str, int] = {}
    for reasons, resolvable in per_node.values():
        for r in reasons:
            hist[r] = hist.get(r, 0) + 1
        m = NO_VICTIMS_MSG if resolvable else UNRESOLVABLE_MSG
        pre[m] = pre.get(m, 0) + 1
    msg = f"0/{n_nodes} nodes are available:"
    if hist:
        msg += " " + ", ".join(sorted(f"{c} {r}" for r, c in hist.items())) + "."
    post = f"preemption: 0/{n_nodes} nodes are available: " + ", ".join(sorted(f"{c} {r}" for r, c in pre.items())) + "."
    return msg + " " + post + "."


class Scheduler:
    def __init__(self, store, events, clock, timers):
        self.store, self.events, self.clock, self.timers = store, events, clock, timers
        self._last_failure: dict[str, tuple[tuple, float]] = {}

    def sync(self) -> None:
        now = self.clock.now()
        nodes = self.store.list("Node", record=False)
        pods = self.store.list("Pod", record=False)
        bound = [p for p in pods if p["spec"].get("nodeName")]
        pending = [p for p in pods if not p["spec"].get("nodeName") and not podutil.is_terminating(p)
                   and p["spec"].get("schedulerName", COMPONENT) == COMPONENT]
        pending.sort(key=lambda p: (-(p["spec"].get("priority") or 0), p["metadata"]["creationTimestamp"],
                                    p["metadata"]["name"]))
        for pod in pending:
            sig = (tuple((n["metadata"]["name"], n["metadata"]["resourceVersion"]) for n in nodes),
                   tuple(sorted(p["metadata"]["uid"] for p in bound)))
            last = self._last_failure.get(pod["metadata"]["uid"])
            if last is not None and last[0] == sig and now < last[1] + RETRY_AFTER:
                continue
            try:
                node = self._schedule_one(pod, nodes, bound, now, sig)
            except ApiError:
                continue  # a concurrent write; retried on the next pass
            if node is not None:
                bound.append(node)

    def _schedule_one(self, pod: Obj, nodes: list[Obj], bound: list[Obj], now: float, sig: tuple) -> Obj | None:
        per_node, feasible = {}, []
        for node in nodes:
            name = node["metadata"]["name"]
            on_node = [p for p in bound if p["spec"]["nodeName"] == name]
            reasons, resolvable = filter_node(pod, node, on_node)
            if reasons:
                per_node[name] = (reasons, resolvable)
            else:
                feasible.append((self._score(pod, node, on_node), name, node))
        if not feasible:
            msg = fit_error(len(nodes), per_node)
            self._last_failure[pod["metadata"]["uid"]] = (sig, now)
            self.timers.at(now + RETRY_AFTER)
            self._set_scheduled(pod, "False", "Unschedulable", msg, now)
            self.events.record(pod, "Warning", "FailedScheduling", msg, COMPONENT)
            return None
        feasible.sort(key=lambda x: (x[0], x[1]))
        node_name = feasible[0][1]
        pod["spec"]["nodeName"] = node_name
        pod = self.store.update(pod)   # the binding subresource, in effect
        self._set_scheduled(pod, "True", None, None, now)
        self._last_failure.pop(pod["metadata"]["uid"], None)
        self.events.record(pod, "Normal", "Scheduled",
                           f'Successfully assigned {pod["metadata"]["namespace"]}/{pod["metadata"]["name"]} '
                           f"to {node_name}", COMPONENT)
        return pod

    @staticmethod
    def _score(pod: Obj, node: Obj, on_node: list[Obj]) -> tuple:
        owner = podutil.controller_uid(pod)
        same = sum(1 for p in on_node if owner and podutil.controller_uid(p) == owner)
        alloc = (node.get("status") or {}).get("allocatable") or {}
        frac = 0.0
        for r in ("cpu", "memory"):
            cap = milli(alloc.get(r, 0)) or 1
            frac += sum(podutil.pod_requests(p["spec"]).get(r, 0) for p in on_node) / cap
        return (same, round(frac, 6))

    def _set_scheduled(self, pod: Obj, status: str, reason: str | None, message: str | None, now: float) -> None:
        from .clock import rfc3339
        st = pod.setdefault("status", {})
        conds = [c for c in st.get("conditions") or [] if c["type"] != "PodScheduled"]
        old = next((c for c in st.get("conditions") or [] if c["type"] == "PodScheduled"), None)
        cond = {"type": "PodScheduled", "status": status, "lastProbeTime": None,
                "lastTransitionTime": old["lastTransitionTime"] if old and old["status"] == status else rfc3339(now)}
        if reason:
            cond["reason"], cond["message"] = reason, message
        st["conditions"] = conds + [cond]
        st.setdefault("phase", "Pending")
        if st != (self.store.try_get("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"]) or {}).get("status"):
            self.store.update(pod, subresource="status")
