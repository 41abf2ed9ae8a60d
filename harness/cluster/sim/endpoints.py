"""The endpoints controllers and kube-proxy's view of them, with a propagation delay.

Why: "only ready pods get traffic" and "a pod that is terminating still gets
traffic for a moment" are both lessons. This module keeps the API objects
(``Endpoints`` and ``EndpointSlice``, shaped as upstream: ready/serving/
terminating conditions, ``notReadyAddresses``) and, separately, the backends
each Service port is *programmed* with. A change reaches the programmed table
``propagation_delay`` seconds after the controller sees it (both additions
and removals, as kube-proxy lags on both), so a missing ``preStop`` sleep can
really drop requests.

Routing follows kube-proxy: ready endpoints; when none is ready, fall back to
serving-and-terminating ones (ProxyTerminatingEndpoints). Not modelled:
``publishNotReadyAddresses`` in the proxy table, topology hints, session
affinity, dual-stack, slices over 100 endpoints.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.cluster.base import ApiError, Obj

from . import podutil
from .labels import equality_matcher
from .probes import resolve_port
from .propagation import DelayedTables

SERVICE_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


@dataclass(frozen=True)
class Backend:
    pod: str            # namespace/name
    ip: str
    port: int
    container_id: str   # runtime id of the container serving that port ("" if none yet)


def _pod_port(pod: Obj, svc_port: dict[str, Any]) -> tuple[int, str] | None:
    """``FindPort`` plus the container that serves it (numeric ports go to the first container)."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    containers = pod["spec"].get("containers") or []
    statuses = {c["name"]: c.get("containerID", "") for c in (pod.get("status") or {}).get("containerStatuses") or []}
    for c in containers:
        for cp in c.get("ports") or []:
            if (isinstance(target, str) and cp.get("name") == target and cp.get("protocol", "TCP") ==
                    svc_port.get("protocol", "TCP")) or cp.get("containerPort") == target:
                return cp["containerPort"], statuses.get(c["name"], "").split("://")[-1]
    if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
        first = containers[0]["name"] if containers else ""
        return resolve_port(target, {}), statuses.get(first, "").split("://")[-1]
    return None


class EndpointsController:
    def __init__(self, store, clock, timers, propagation_delay: float = 1.0):
        self.store, self.clock, self.timers = store, clock, timers
        # (namespace, service, port) -> the ready backends kube-proxy is programmed with
        self._tables = DelayedTables(timers, propagation_delay)

    # ---- kube-proxy side ------------------------------------------------------------
    def backends(self, namespace: str, service: str, port: int) -> list[Backend]:
        return list(self._tables.get((namespace, service, port)) or [])

    # ---- controllers -----------------------------------------------------------------------
    def sync(self) -> None:
        now = self.clock.now()
        pods = self.store.list("Pod", record=False)
        seen = set()
        for svc in self.store.list("Service", record=False):
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            sel = svc["spec"].get("selector")
            if not sel:
                continue
            match = equality_matcher(sel)
            members = [p for p in pods if p["metadata"].get("namespace") == ns
                       and match(p["metadata"].get("labels") or {})
                       and (p.get("status") or {}).get("phase") not in ("Failed", "Succeeded")
                       and (p.get("status") or {}).get("podIP")]
            try:
                self._sync_endpoints(svc, members)
                self._sync_slices(svc, members)
            except ApiError:
                pass
            for sp in svc["spec"].get("ports") or []:
                key = (ns, name, sp["port"])
                seen.add(key)
                ready, fallback = [], []
                for p in members:
                    resolved = _pod_port(p, sp)
                    if resolved is None:
                        continue
                    b = Backend(f"{ns}/{p['metadata']['name']}", p["status"]["podIP"], resolved[0], resolved[1])
                    if podutil.is_ready(p) and not podutil.is_terminating(p):
                        ready.append(b)
                    elif podutil.is_ready(p):
                        fallback.append(b)
                self._tables.want(key, ready or fallback, now)
        for key in self._tables.wanted() - seen:
            self._tables.want(key, None, now)
        self._tables.program(now)

    def _sync_endpoints(self, svc: Obj, members: list[Obj]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        publish = svc["spec"].get("publishNotReadyAddresses", False)
        subsets: dict[tuple, dict[str, list]] = {}
        for p in members:
            if podutil.is_terminating(p) and not publish:
                continue
            ports = []
            for sp in svc["spec"].get("ports") or []:
                r = _pod_port(p, sp)
                if r is not None:
                    ports.append((sp.get("name", ""), r[0], sp.get("protocol", "TCP")))
            if not ports:
                continue
            addr = {"ip": p["status"]["podIP"], "nodeName": p["spec"].get("nodeName"),
                    "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                                  "uid": p["metadata"]["uid"]}}
            group = subsets.setdefault(tuple(ports), {"addresses": [], "notReadyAddresses": []})
            group["addresses" if publish or podutil.is_ready(p) else "notReadyAddresses"].append(addr)
        out = []
        for ports, g in sorted(subsets.items()):
            s: dict[str, Any] = {k: sorted(v, key=lambda a: a["ip"]) for k, v in g.items() if v}
            s["ports"] = [{**({"name": n} if n else {}), "port": port, "protocol": proto} for n, port, proto in ports]
            out.append(s)
        ep = {"apiVersion": "v1", "kind": "Endpoints",
              "metadata": {"name": name, "namespace": ns, "labels": dict(svc["metadata"].get("labels") or {})}}
        if out:
            ep["subsets"] = out
        cur = self.store.try_get("Endpoints", ns, name)
        if cur is None:
            self.store.create(ep)
        elif cur.get("subsets") != ep.get("subsets"):
            cur["subsets"] = ep.get("subsets")
            if not out:
                cur.pop("subsets")
            self.store.update(cur)

    def _sync_slices(self, svc: Obj, members: list[Obj]) -> None:
        ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
        groups: dict[tuple, list] = {}
        for p in members:
            ports = []
            for sp in svc["spec"].get("ports") or []:
                r = _pod_port(p, sp)
                if r is not None:
                    ports.append((sp.get("name", ""), r[0], sp.get("protocol", "TCP")))
            serving, term = podutil.is_ready(p), podutil.is_terminating(p)
            groups.setdefault(tuple(ports), []).append({
                "addresses": [p["status"]["podIP"]],
                "conditions": {"ready": svc["spec"].get("publishNotReadyAddresses", False) or (serving and not term),
                               "serving": serving, "terminating": term},
                "nodeName": p["spec"].get("nodeName"),
                "targetRef": {"kind": "Pod", "name": p["metadata"]["name"], "namespace": ns,
                              "uid": p["metadata"]["uid"]}})
        if not groups:
            groups[()] = []
        existing = [s for s in self.store.list("EndpointSlice", ns, f"{SERVICE_LABEL}={name}", record=False)]
        for i, (ports, eps) in enumerate(sorted(groups.items())):
            body = {"endpoints": sorted(eps, key=lambda e: e["addresses"][0]),
                    "ports": [{"name": n, "port": port, "protocol": proto} for n, port, proto in ports]}
            if i < len(existing):
                cur = existing[i]
                if {"endpoints": cur.get("endpoints"), "ports": cur.get("ports")} != body:
                    cur.update(body)
                    self.store.update(cur)
            else:
                self.store.create({
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                    "metadata": {"generateName": f"{name}-", "namespace": ns,
                                 "labels": {SERVICE_LABEL: name, MANAGED_BY: "endpointslice-controller.k8s.io"},
                                 "ownerReferences": [{**podutil.controller_ref(svc), "apiVersion": "v1"}]},
                    **body})
        for extra in existing[len(groups):]:
            self.store.delete("EndpointSlice", ns, extra["metadata"]["name"])
