"""Metrics and the HPA with a real container burning CPU (DockerRuntime, real clock).

Marked ``docker`` (skipped without Docker / the python:3.11-slim image unless
REQUIRE_DOCKER=1). No network traffic at all; containers carry the sim's labels
so ``stop()`` removes them. Runs in about 15 s.
"""
from __future__ import annotations

import os

import pytest

from harness.cluster.sim.quantity import milli
from harness.waiting import wait_for

from .helpers import IMAGE
from .test_docker import LABEL, _docker_client

pytestmark = pytest.mark.docker


def test_top_pods_and_hpa_scale_up_with_real_cpu():
    client = _docker_client()
    from harness.cluster.sim import SimCluster
    sim = SimCluster(namespace="lab3", metrics_resolution=2, hpa_sync_period=3)
    sim.start()
    try:
        burn = {"name": "burn", "image": IMAGE, "command": ["python", "-c", "while True: pass"],
                "resources": {"requests": {"cpu": "20m"}, "limits": {"cpu": "500m", "memory": "64Mi"}}}
        d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "burn"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "burn"}},
                      "template": {"metadata": {"labels": {"app": "burn"}},
                                   "spec": {"containers": [burn], "terminationGracePeriodSeconds": 1}}}}
        h = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "burn"},
             "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "burn"},
                      "minReplicas": 1, "maxReplicas": 2, "metrics": [{"type": "Resource", "resource": {
                          "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]}}
        sim.apply([d])
        top = wait_for(lambda: sim.top_pods(), "PodMetrics for the burning pod", 20, poll=0.2)
        assert top[0]["window"].endswith("s") and top[0]["containers"][0]["name"] == "burn"
        cpu, load = top[0]["containers"][0]["usage"]["cpu"], os.getloadavg()[0]
        # The 500m limit (CFS quota) caps the busy loop. On a busy 2-core machine the container gets
        # less (its cpu_shares come from the 20m request), so the lower bound only holds when idle.
        assert 0 < milli(cpu) <= 600, cpu
        if load < 1.0:
            assert milli(cpu) >= 300, (cpu, load)
        assert top[0]["containers"][0]["usage"]["memory"]
        sim.apply([h])
        wait_for(lambda: sim.get("Deployment", "burn")["spec"]["replicas"] == 2, "HPA scaled burn to 2", 25,
                 poll=0.2)
        ev = [e["message"] for e in sim.events(involved_kind="HorizontalPodAutoscaler")
              if e["reason"] == "SuccessfulRescale"]
        assert ev == ["New size: 2; reason: cpu resource utilization (percentage of request) above target"]
        st = sim.get("HorizontalPodAutoscaler", "burn")["status"]
        assert st["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 55
        stats = sim.metrics.stats()
        print(f"\nscraper: {stats}")
        assert stats["scrapes"] >= 3
    finally:
        sim.stop()
    assert client.containers.list(all=True, filters={"label": f"{LABEL}.cluster={sim.runtime.cluster_id}"}) == []
