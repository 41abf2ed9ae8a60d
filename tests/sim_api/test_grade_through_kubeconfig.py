"""Lab 02's reference solution graded through ``BACKEND=kubeconfig`` against the sim cluster's API (Docker).

That is the real-cluster code path end to end: real kubectl (``apply``, ``rollout``, ``proxy``) and
the kubernetes client, over the daemon's cluster (:func:`daemon.start_cluster`, run in-process here).
Blind spot before: the kubeconfig backend had only met hand-written fake API servers, and a grading
through it stopped at ``namespaces "grade-..." not found`` (then, with port-forward pinning one pod,
scored 9/21 and 18/21).
"""
from __future__ import annotations

import docker
import pytest

from harness.cluster.sim import daemon
from harness.grading import grade
from harness.labs import lab

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_lab02_solution_scores_max_through_the_kubeconfig_backend(tmp_path, monkeypatch):
    sim, server, nodeports = daemon.start_cluster()
    try:
        kc = tmp_path / "kubeconfig"
        daemon.write_context(server.url, kc)
        monkeypatch.setenv("KUBECONFIG", str(kc))
        monkeypatch.setenv("CONTEXT", daemon.CONTEXT)
        monkeypatch.delenv("NAMESPACE", raising=False)
        monkeypatch.delenv("IMAGE_REGISTRY", raising=False)
        lab2 = lab(2)
        report = grade(lab2, lab2.solution, backend="kubeconfig",
                       log=lambda line: None)
        assert report.backend == "kubeconfig"
        assert report.score == report.max_score, report.to_markdown()
        left = [n["metadata"]["name"] for n in sim.store.list("Namespace", None, record=False)]
        assert not [n for n in left if n.startswith("grade-")], left   # the run's namespace was deleted
    finally:
        daemon.stop_cluster(sim, server, nodeports)
    left = docker.from_env().containers.list(all=True, filters={"label": "io.mlops-labs.sim"})
    assert not [c.name for c in left if c.labels.get("io.mlops-labs.sim.pid") == str(__import__("os").getpid())]
