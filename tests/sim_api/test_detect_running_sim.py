"""``BACKEND=auto``: kind, then a running sim cluster (through the kubeconfig backend), then the in-process sim.

Also: the ``namespace`` the grader passes the kubeconfig backend names the run's own namespace.
Blind spot before: the kubeconfig backend's tests passed ``namespace=`` to mean "an existing
namespace", while the grader (``grading.make_cluster``) passes every backend ``namespace=grade-...``
to mean "yours": every grading through ``BACKEND=kubeconfig`` stopped at ``namespaces "grade-..." not
found``.
"""
from __future__ import annotations

import json
import os

import pytest

from harness.cluster import detect
from harness.cluster.kind import KindCluster
from harness.cluster.kubeconfig import KubeconfigCluster
from harness.cluster.sim import daemon
from harness.cluster.sim.cluster import SimCluster


@pytest.fixture
def no_kind(monkeypatch):
    monkeypatch.setattr(KindCluster, "available", staticmethod(lambda *a, **k: (False, "kind is not installed")))


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setattr(daemon, "STATE", tmp_path / "sim-cluster.json")
    monkeypatch.setattr(daemon, "OWN_KUBECONFIG", tmp_path / "sim-cluster.kubeconfig")
    monkeypatch.delenv("CONTEXT", raising=False)
    monkeypatch.delenv("NAMESPACE", raising=False)
    return tmp_path


def _pretend_running(tmp_path, pid: int) -> None:
    daemon.write_context("http://127.0.0.1:1", daemon.OWN_KUBECONFIG)
    daemon.STATE.write_text(json.dumps({"pid": pid, "url": "http://127.0.0.1:1", "started": 0,
                                        "kubeconfig": str(daemon.OWN_KUBECONFIG)}))


def test_auto_picks_a_running_sim_cluster_and_says_so(no_kind, state):
    _pretend_running(state, os.getpid())
    shown: list[str] = []
    choice = detect.choose_backend("auto", console_notice=shown.append)
    assert choice.name == "kubeconfig" and shown == [choice.notice]
    assert "grading on the running sim cluster (context mlops-labs-sim, API http://127.0.0.1:1)" in choice.notice
    c = choice.factory(namespace="grade-02-x")
    assert isinstance(c, KubeconfigCluster)
    assert (c.kubectl.context, c.api_kubeconfig) == ("mlops-labs-sim", str(daemon.OWN_KUBECONFIG))
    assert (c.namespace, c._own_namespace) == ("grade-02-x", True)   # created and deleted by the run


def test_auto_skips_a_dead_sim_cluster_and_falls_back_to_in_process_sim(no_kind, state):
    _pretend_running(state, 2 ** 22 + 12345)     # no such pid: a killed daemon's stale state file
    choice = detect.choose_backend("auto", console_notice=lambda _m: None)
    assert (choice.name, choice.factory) == ("sim", SimCluster)
    assert "grading on the offline simulator (sim) instead" in choice.notice


def test_auto_prefers_kind_over_a_running_sim_cluster(state, monkeypatch):
    monkeypatch.setattr(KindCluster, "available", staticmethod(lambda *a, **k: (True, "kind")))
    _pretend_running(state, os.getpid())
    assert detect.choose_backend("auto")[:3] == ("kind", KindCluster, None)


def test_existing_namespace_only_when_asked(state, monkeypatch):
    assert KubeconfigCluster(namespace="grade-a")._own_namespace is True
    assert KubeconfigCluster(namespace="grade-a", existing_namespace="team")._own_namespace is False
    monkeypatch.setenv("NAMESPACE", "team")
    c = KubeconfigCluster(namespace="grade-a")
    assert (c.namespace, c._own_namespace) == ("team", False)
