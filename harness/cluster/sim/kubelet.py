"""The kubelet of every sim node: pod workers, pod status and pod termination.

Why: pod status is what graders read (phase, conditions, containerStatuses,
restartCount). This module turns the per-container workers of
:mod:`.container` into the Pod's ``status`` as upstream computes it
(``getPhase``, ``generateAPIPodStatus``), and finishes graceful deletion:
every container gets the kill sequence with the pod's
``deletionGracePeriodSeconds``; once all have stopped the pod object is
removed.

Not modelled: init containers (ignored, reported in FIDELITY.md), sidecars,
ephemeral containers, pod-level resize, eviction, node-pressure, static pods.
"""
from __future__ import annotations

from typing import Any

from harness.cluster.base import ApiError, Obj

from .clock import rfc3339
from .container import ContainerWorker
from .labels import equality_matcher
from .probes import resolve_port

COMPONENT = "kubelet"


class PodWorker:
    def __init__(self, kubelet: "Kubelet", pod: Obj):
        self.k = kubelet
        self.uid = pod["metadata"]["uid"]
        self.node = pod["spec"]["nodeName"]
        self.pod_ip = kubelet.allocate_ip(self.node)
        self.start_time = kubelet.clock.now()
        self.containers = [ContainerWorker(self, c) for c in pod["spec"].get("containers") or []]

    def service_ports(self, pod: Obj, container: dict[str, Any]) -> list[int]:
        """Numeric targetPorts of Services selecting this pod, so the runtime can publish them."""
        out = []
        labels = pod["metadata"].get("labels") or {}
        for svc in self.k.store.list("Service", pod["metadata"]["namespace"], record=False):
            sel = svc["spec"].get("selector")
            if sel and equality_matcher(sel)(labels):
                first = (pod["spec"].get("containers") or [{}])[0].get("name") == container["name"]
                for p in svc["spec"].get("ports") or []:
                    target = p.get("targetPort", p.get("port"))
                    port = resolve_port(target, container)
                    declared = any(cp.get("containerPort") == port for cp in container.get("ports") or [])
                    if port and (declared or (first and isinstance(target, int))):
                        out.append(port)
        return out

    def sync(self, pod: Obj, now: float) -> None:
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        if terminating:
            grace = pod["metadata"].get("deletionGracePeriodSeconds", 30)
            for cw in self.containers:
                cw.begin_kill(pod, now, grace, f"Stopping container {cw.name}", unready=False)
        for cw in self.containers:
            cw.sync(pod, now, terminating)
        if terminating and not any(cw.running for cw in self.containers):
            self.k.store.delete("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"])
            return
        status = self.build_status(pod, now)
        if status != pod.get("status"):
            pod["status"] = status
            self.k.store.update(pod, subresource="status")

    def cleanup(self) -> None:
        for cw in self.containers:
            for cid in cw.old_cids + ([cw.cid] if cw.cid else []):
                try:
                    self.k.runtime.remove(cid)
                except Exception:  # noqa: BLE001 - best effort, the sweep catches leftovers
                    pass

    def _phase(self, pod: Obj) -> str:
        waiting = running = stopped = succeeded = 0
        for cw in self.containers:
            if cw.running:
                running += 1
            elif cw.done and cw.term is not None:
                stopped += 1
                succeeded += cw.term["exitCode"] == 0
            elif cw.term is not None:      # waiting to restart after a previous run
                stopped += 1
                succeeded += cw.term["exitCode"] == 0
            else:
                waiting += 1
        if waiting:
            return "Pending"
        if running:
            return "Running"
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Always":
            return "Running"
        if policy == "OnFailure":
            return "Succeeded" if stopped == succeeded and all(cw.done for cw in self.containers) else "Running"
        return "Failed" if stopped != succeeded else "Succeeded"

    def build_status(self, pod: Obj, now: float) -> dict[str, Any]:
        old = pod.get("status") or {}
        old_conds = {c["type"]: c for c in old.get("conditions") or []}
        unready = [cw.name for cw in self.containers if not cw.ready]
        gates_ok = all((old_conds.get(g["conditionType"]) or {}).get("status") == "True"
                       for g in pod["spec"].get("readinessGates") or [])

        def cond(type_: str, ok: bool, reason: str | None = None, message: str | None = None) -> dict[str, Any]:
            prev = old_conds.get(type_)
            status = "True" if ok else "False"
            c = {"type": type_, "status": status, "lastProbeTime": None,
                 "lastTransitionTime": prev["lastTransitionTime"] if prev and prev["status"] == status else rfc3339(now)}
            if not ok and reason:
                c["reason"], c["message"] = reason, message
            return c

        msg = f"containers with unready status: [{' '.join(unready)}]"
        conds = [cond("PodReadyToStartContainers", True), cond("Initialized", True),
                 cond("Ready", not unready and gates_ok, "ContainersNotReady" if unready else "ReadinessGatesNotReady",
                      msg if unready else "corresponding condition of pod readiness gate is not true"),
                 cond("ContainersReady", not unready, "ContainersNotReady", msg)]
        conds += [c for c in old.get("conditions") or [] if c["type"] not in
                  ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")]
        host_ip = self.k.node_ip(self.node)
        return {"phase": self._phase(pod), "conditions": conds, "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
                "podIP": self.pod_ip, "podIPs": [{"ip": self.pod_ip}], "startTime": rfc3339(self.start_time),
                "qosClass": old.get("qosClass", "BestEffort"),
                "containerStatuses": [cw.status() for cw in self.containers]}


class Kubelet:
    def __init__(self, store, events, clock, timers, runtime, executor=None):
        self.store, self.events, self.clock, self.timers = store, events, clock, timers
        self.runtime, self.executor = runtime, executor
        self.workers: dict[str, PodWorker] = {}
        self._ips: dict[str, int] = {}

    def node_ip(self, node: str) -> str:
        n = self.store.try_get("Node", None, node)
        for a in ((n or {}).get("status") or {}).get("addresses") or []:
            if a["type"] == "InternalIP":
                return a["address"]
        return "172.18.0.2"

    def allocate_ip(self, node: str) -> str:
        nodes = [n["metadata"]["name"] for n in self.store.list("Node", record=False)]
        idx = nodes.index(node) if node in nodes else 0
        n = self._ips[node] = self._ips.get(node, 1) + 1
        return f"10.244.{idx}.{(n - 2) % 253 + 2}"

    def record(self, pod: Obj, type_: str, reason: str, message: str, *, field_path: str = "") -> None:
        self.events.record(pod, type_, reason, message, COMPONENT, field_path=field_path,
                           host=pod["spec"].get("nodeName", ""))

    def worker(self, uid: str) -> PodWorker | None:
        return self.workers.get(uid)

    def sync(self) -> None:
        now = self.clock.now()
        live = set()
        for pod in self.store.list("Pod", record=False):
            if not pod["spec"].get("nodeName"):
                continue
            uid = pod["metadata"]["uid"]
            live.add(uid)
            w = self.workers.get(uid)
            if w is None:
                w = self.workers[uid] = PodWorker(self, pod)
            try:
                w.sync(pod, now)
            except ApiError:
                pass  # a concurrent write; the next pass retries
        for uid in set(self.workers) - live:
            self.workers.pop(uid).cleanup()

    def shutdown(self) -> None:
        for uid in list(self.workers):
            self.workers.pop(uid).cleanup()
