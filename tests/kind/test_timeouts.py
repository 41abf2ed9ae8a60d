"""HARNESS_TIMEOUT_SCALE reaches the real-cluster backends (issue 9, item 8).

Blind spot of the old tests: ``test_lab_04_on_kind_gets_the_gateway_addon_and_no_fallback``
checked the options ``make_cluster`` passes and never ``timeouts``; nothing checked what
``python -m harness.cluster.kind up`` builds. Both built ``KindCluster`` with the default
timeouts, so the kind-e2e workflow's ``HARNESS_TIMEOUT_SCALE: "2"`` changed nothing there.
"""
from __future__ import annotations

import types

import pytest

from harness import grading
from harness.cluster.detect import BackendChoice
from harness.labs import lab
from harness.waiting import DEFAULT_TIMEOUTS


@pytest.mark.parametrize("backend", ["kind", "kubeconfig"])
def test_make_cluster_passes_the_timeouts_to_real_backends(monkeypatch, backend):
    made = {}
    monkeypatch.setattr("harness.cluster.detect.choose_backend",
                        lambda asked: BackendChoice(backend, lambda **kw: made.update(kw) or "cluster", None))
    scaled = DEFAULT_TIMEOUTS.scaled(3)
    grading.make_cluster(backend, lab(4), scaled)
    assert made["timeouts"] is scaled and made["timeouts"].rollout == 3 * DEFAULT_TIMEOUTS.rollout


def test_the_sim_keeps_its_own_clock(monkeypatch):
    made = {}
    monkeypatch.setattr("harness.cluster.detect.choose_backend",
                        lambda asked: BackendChoice("sim", lambda **kw: made.update(kw) or "cluster", None))
    grading.make_cluster("sim", lab(3), DEFAULT_TIMEOUTS.scaled(3))
    assert "timeouts" not in made


def test_lab_session_hands_its_timeouts_to_make_cluster(monkeypatch):
    seen = []

    class Stop(Exception):
        pass

    def fake(backend, lab_, timeouts=None):
        seen.append(timeouts)
        raise Stop

    monkeypatch.setattr(grading, "make_cluster", fake)
    scaled = DEFAULT_TIMEOUTS.scaled(2)
    with pytest.raises(Stop):
        with grading.lab_session(lab(2), lab(2).solution, backend="kind", timeouts=scaled, log=lambda s: None):
            pass
    assert seen == [scaled]


def test_cluster_up_scales_the_timeouts(monkeypatch, capsys):
    from harness.cluster.kind import __main__ as up

    made = {}

    class FakeKind:
        def __init__(self, **kw):
            made.update(kw)
            self.cluster_name = "mlops-labs"
            self.lifecycle = types.SimpleNamespace(exists=lambda: False)

    monkeypatch.setattr(up, "KindCluster", FakeKind)
    monkeypatch.setenv("HARNESS_TIMEOUT_SCALE", "2")
    assert up.main(["status"]) == 0
    assert made["timeouts"] == DEFAULT_TIMEOUTS.scaled(2)
