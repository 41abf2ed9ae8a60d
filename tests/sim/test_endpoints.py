"""Endpoints / EndpointSlices list ready pods; the proxy table lags by the propagation delay."""
from __future__ import annotations

from harness.cluster.sim import FakeApp

from .helpers import IMAGE, deployment, pod, service

PROBE = {"httpGet": {"path": "/", "port": 8000}, "initialDelaySeconds": 3, "periodSeconds": 1}


def test_only_ready_pods_become_addresses(sim):
    sim.apply([deployment(replicas=2, probe=PROBE), service()])
    sim.step(1)
    ep = sim.get("Endpoints", "web")
    assert "addresses" not in ep["subsets"][0] and len(ep["subsets"][0]["notReadyAddresses"]) == 2
    assert ep["subsets"][0]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    sim.step(2)
    ep = sim.get("Endpoints", "web")
    assert len(ep["subsets"][0]["addresses"]) == 2
    assert sim.service_backends("web", 80) == []      # not yet propagated
    sim.step(1)
    assert len(sim.service_backends("web", 80)) == 2
    sl = sim.list("EndpointSlice")[0]
    assert sl["metadata"]["labels"]["kubernetes.io/service-name"] == "web"
    assert all(e["conditions"] == {"ready": True, "serving": True, "terminating": False} for e in sl["endpoints"])


def test_selector_typo_gives_no_endpoints(sim):
    sim.apply([deployment(replicas=1), service(selector={"app": "wbe"})])
    sim.step(2)
    assert "subsets" not in sim.get("Endpoints", "web")


def test_named_target_port(sim):
    sim.apply([deployment(replicas=1), service(target="http")])
    sim.step(2)
    assert sim.get("Endpoints", "web")["subsets"][0]["ports"][0]["port"] == 8000


def _two_pods(sim, **container):
    pods = [pod(n, **container) for n in ("a", "b")]
    for p in pods:
        p["metadata"]["labels"] = {"app": "x"}
    sim.apply(pods + [service("svc", target=8000, selector={"app": "x"})])
    sim.step(2)
    assert sim.service_backends("svc", 80) == ["a", "b"]


def test_propagation_delay_without_prestop_leaves_a_window_of_dropped_traffic(sim):
    sim.runtime.set_app(IMAGE, FakeApp(term_delay=0.2))
    _two_pods(sim)
    sim.delete("Pod", "a")
    sim.step(0.5)
    # the container has exited, but the proxy still sends new connections to it for 1 s
    assert [p["metadata"]["name"] for p in sim.list("Pod")] == ["b"]
    assert sim.service_backends("svc", 80) == ["a", "b"]
    sim.step(0.5)
    assert sim.service_backends("svc", 80) == ["b"]


def test_prestop_sleep_covers_the_propagation_delay(sim):
    _two_pods(sim, lifecycle={"preStop": {"sleep": {"seconds": 5}}})
    sim.delete("Pod", "a")
    sim.step(0)
    sl = sim.list("EndpointSlice")[0]
    conds = {e["targetRef"]["name"]: e["conditions"] for e in sl["endpoints"]}
    assert conds["a"] == {"ready": False, "serving": True, "terminating": True}
    assert [a["targetRef"]["name"] for a in sim.get("Endpoints", "svc")["subsets"][0]["addresses"]] == ["b"]
    sim.step(1)
    assert sim.service_backends("svc", 80) == ["b"]
    a = next(c for c in sim.runtime.containers.values() if c.spec.pod == "a")
    assert a.finished_at is None                          # still up, finishing in-flight requests


def test_terminating_endpoints_are_used_when_nothing_else_is_ready(sim):
    sim.apply([pod("a", lifecycle={"preStop": {"sleep": {"seconds": 5}}}),
               service("svc", target=8000, selector={"app": "a"})])
    sim.step(2)
    sim.delete("Pod", "a")
    sim.step(2)
    assert sim.service_backends("svc", 80) == ["a"]      # kube-proxy's fallback to serving+terminating
