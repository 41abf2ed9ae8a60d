"""Labs 02-04's reference solutions graded through ``BACKEND=kubeconfig`` against the sim cluster's API (Docker).

That is the real-cluster code path end to end: real kubectl (``apply``, ``rollout``, ``proxy``) and
the kubernetes client, over the daemon's cluster (:func:`daemon.start_cluster`, run in-process here,
one cluster for the three labs, as a learner's ``make cluster-up BACKEND=sim`` serves them in turn).
Blind spot before: the kubeconfig backend had only met hand-written fake API servers, and a grading
through it stopped at ``namespaces "grade-..." not found`` (then, with port-forward pinning one pod,
scored 9/21 and 18/21). Measured side by side with the in-process sim: benchmarks/grade_paths.py.
"""
from __future__ import annotations

import os

import docker
import pytest

from harness.cluster.sim import daemon
from harness.grading import grade
from harness.labs import lab

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def sim_daemon(tmp_path_factory):
    sim, server, nodeports = daemon.start_cluster()
    kc = tmp_path_factory.mktemp("kubeconfig") / "kubeconfig"
    daemon.write_context(server.url, kc)
    try:
        yield sim, kc
    finally:
        daemon.stop_cluster(sim, server, nodeports)
        left = docker.from_env().containers.list(all=True, filters={"label": "io.mlops-labs.sim"})
        assert not [c.name for c in left if c.labels.get("io.mlops-labs.sim.pid") == str(os.getpid())]


@pytest.mark.parametrize("number", [2, 3, 4])
def test_solution_scores_max_through_the_kubeconfig_backend(number, sim_daemon, monkeypatch):
    sim, kc = sim_daemon
    monkeypatch.setenv("KUBECONFIG", str(kc))
    monkeypatch.setenv("CONTEXT", daemon.CONTEXT)
    monkeypatch.delenv("NAMESPACE", raising=False)
    monkeypatch.delenv("IMAGE_REGISTRY", raising=False)
    the_lab = lab(number)
    report = grade(the_lab, the_lab.solution, backend="kubeconfig", log=lambda line: None)
    assert report.backend == "kubeconfig"
    assert report.score == report.max_score, report.to_markdown()
    left = [n["metadata"]["name"] for n in sim.store.list("Namespace", None, record=False)]
    assert not [n for n in left if n.startswith("grade-")], left   # the run's namespace was deleted
