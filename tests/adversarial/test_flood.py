"""``replicas: 500`` with 1m/1Mi requests, on real containers.

Before: Lab 02 on sim created 187 containers, ran 72 at once, took 633 s, ended
with a traceback and left 67 containers behind. Now the grading namespace's
quota caps the pods at 16, and teardown leaves no container.
"""
from __future__ import annotations

import time

import pytest

from harness import images
from harness.labs.cluster_lab import namespace_budget

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_a_flood_runs_at_most_16_containers_and_leaves_none():
    from harness.cluster.sim.cluster import SimCluster
    from harness.cluster.sim.docker_runtime import LABEL

    images.ensure_base_image()
    client = images.client()
    cluster = SimCluster(namespace="grade-flood")
    start = time.monotonic()
    cluster.start()
    label = f"{LABEL}.cluster={cluster.runtime.cluster_id}"
    most = 0
    try:
        cluster.apply(namespace_budget())
        cluster.apply([{
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "flood"},
            "spec": {"replicas": 500, "selector": {"matchLabels": {"app": "flood"}},
                     "template": {"metadata": {"labels": {"app": "flood"}},
                                  "spec": {"containers": [{
                                      "name": "c", "image": images.BASE_IMAGE, "imagePullPolicy": "IfNotPresent",
                                      "command": ["sleep", "3600"],
                                      "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}}}])
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            running = client.containers.list(filters={"label": label})
            most = max(most, len(running))
            time.sleep(0.5)
        events = [e["message"] for e in cluster.list("Event") if e["reason"] == "FailedCreate"]
    finally:
        cluster.stop()
    left = client.containers.list(all=True, filters={"label": label})
    assert 0 < most <= 16, most
    assert any("exceeded quota: grading-quota" in m for m in events), events[-3:]
    assert left == [], [c.name for c in left]
    assert time.monotonic() - start < 180
