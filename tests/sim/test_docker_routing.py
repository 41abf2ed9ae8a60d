"""Real containers behind the sim's Gateway router (marked ``docker``; traffic only to 127.0.0.1)."""
from __future__ import annotations

import pytest

from harness.waiting import wait_for

from .routing_helpers import GW, gateway, send, tally
from .test_docker import _docker_client, server_pod

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def real():
    _docker_client()
    from harness.cluster.sim import SimCluster
    sim = SimCluster(namespace="lab", propagation_delay=0.5, router_seed=1)
    sim.start()
    yield sim
    sim.stop()


def test_gateway_splits_requests_between_real_pods(real):
    objs = []
    for name in ("stable", "canary"):
        objs += [{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                  "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": server_pod(name)}},
                 {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                  "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": "http"}]}}]
    objs += [gateway(), {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": "split"},
                         "spec": {"parentRefs": [{"name": "gw"}],
                                  "rules": [{"backendRefs": [{"name": "stable", "port": 80, "weight": 3},
                                                             {"name": "canary", "port": 80, "weight": 1}]}]}}]
    real.apply(objs)
    wait_for(lambda: all(len(real.service_backends(n, 80)) == 1 for n in ("stable", "canary")),
             "both Services programmed", 60)
    wait_for(lambda: (real.get("HTTPRoute", "split").get("status") or {}).get("parents"), "route status", 10)
    url = real.gateway_url("gw")
    t = tally(send(url, 60))
    assert set(t) == {(200, "stable"), (200, "canary")}, t
    # weight patch: everything to canary once programmed
    real.patch("HTTPRoute", "split", {"spec": {"rules": [{"backendRefs": [
        {"name": "stable", "port": 80, "weight": 0}, {"name": "canary", "port": 80, "weight": 1}]}]}})
    wait_for(lambda: tally(send(url, 5)) == {(200, "canary"): 5}, "weight patch programmed", 10)
    for name in ("stable", "canary"):
        real.delete("Deployment", name)
