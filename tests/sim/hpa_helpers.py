"""Builders for the HPA and metrics tests: a roomy fake-clock cluster, 2-container pods
(as upstream's replica_calculator_test.go uses), HPA manifests."""
from __future__ import annotations

from typing import Any

import pytest

from harness.cluster.sim import FakeApp, FakeClock, FakeRuntime, SimCluster, kind_like

IMAGE = "app:v1"
PROBE = {"httpGet": {"path": "/", "port": 8000}, "periodSeconds": 1}


def make_sim(**kw: Any) -> SimCluster:
    clock = FakeClock()
    rt = FakeRuntime(clock, images=(IMAGE, "python:3.11-slim"))
    sim = SimCluster(runtime=rt, clock=clock, nodes=kind_like(cpu="256", memory="256Gi"), **kw)
    sim.start()
    return sim


@pytest.fixture
def hsim():
    sim = make_sim()
    yield sim
    sim.stop()


def two_containers(request: str | None = "1", probe: bool = False) -> list[dict]:
    out = []
    for n in ("c1", "c2"):
        c: dict[str, Any] = {"name": n, "image": IMAGE}
        if request is not None:
            c["resources"] = {"requests": {"cpu": request}}
        if probe:
            c["readinessProbe"] = PROBE
        out.append(c)
    return out


def deployment(name: str = "web", replicas: int = 3, *, request: str | None = "1", probe: bool = False) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": two_containers(request, probe)}}}}


def hpa(name: str = "web", *, min_r: int | None = 1, max_r: int = 10, target: int | None = 50,
        behavior: dict | None = None, metrics: list | None = None, kind: str = "Deployment") -> dict:
    spec: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": kind, "name": name},
                            "maxReplicas": max_r}
    if min_r is not None:
        spec["minReplicas"] = min_r
    if metrics is not None:
        spec["metrics"] = metrics
    elif target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": target}}}]
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": spec}


def per_pod_apps(sim: SimCluster, apps: list[FakeApp | None]) -> list[str]:
    """Give the i-th pod to start ``apps[i]``; returns the pod names in start order (filled as they start)."""
    order: list[str] = []

    def app_for(spec):
        if spec.pod not in order:
            order.append(spec.pod)
        i = order.index(spec.pod)
        return apps[i] if i < len(apps) else None
    sim.runtime.app_for = app_for
    return order


def start_order(sim: SimCluster, prefix: str = "web-") -> list[str]:
    out: list[str] = []
    for c in sim.runtime.containers.values():
        if c.spec.pod.startswith(prefix) and c.spec.pod not in out:
            out.append(c.spec.pod)
    return out


def set_levels(sim: SimCluster, pods: list[str], levels: list[float]) -> None:
    """Per-container CPU levels (millicores), as the upstream tables give them."""
    for p, lvl in zip(pods, levels):
        sim.runtime.set_cpu(p, lvl)


def status(sim: SimCluster, name: str = "web") -> dict:
    return sim.get("HorizontalPodAutoscaler", name)["status"]


def cond(sim: SimCluster, type_: str, name: str = "web") -> tuple[str, str, str]:
    c = next(c for c in status(sim, name).get("conditions") or [] if c["type"] == type_)
    return c["status"], c["reason"], c["message"]


def replicas(sim: SimCluster, name: str = "web") -> int:
    return sim.get("Deployment", name)["spec"]["replicas"]


def hpa_events(sim: SimCluster, name: str = "web") -> list[tuple[str, str, str]]:
    return [(e["type"], e["reason"], e["message"]) for e in
            sim.events(involved_kind="HorizontalPodAutoscaler", involved_name=name)]
