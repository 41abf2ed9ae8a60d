"""Calibration of Lab 02 on the sim backend (real containers, real traffic).

* the reference solution scores max_score (every check, every scenario);
* the starter scores less, failing exactly the expected checks;
* every check has a mutant that fails it; each mutant runs only the checks it
  targets (plus what they require), to keep the suite fast.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import docker
import pytest

from harness.grading import checks_for, grade
from harness.labs import lab
from harness.waiting import Timeouts

from .mutants import LAB02, LAB02_VARIANTS, PROBE_CHECKS

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAB = lab(2)
FAST = Timeouts(pod_start=30, service_endpoints=8)
STARTER_FAILS = {"deployment.replicas-selector", "deployment.resources", "config.configmap-secret",
                 "probes.readiness-gates-traffic", "probes.startup", "probes.liveness-heals"}


def _grade(path: Path, only=None):
    return grade(LAB, path, backend="sim", timeouts=FAST, log=lambda line: None, only=list(only) if only else None)


def _sim_containers() -> int:
    return len(docker.from_env().containers.list(all=True, filters={"label": "io.mlops-labs.sim"}))


def test_solution_scores_max():
    report = _grade(LAB.solution)
    assert report.score == report.max_score, report.to_markdown()
    assert report.backend == "sim"
    assert _sim_containers() == 0, "containers left behind after grading"


def test_starter_fails_the_expected_checks():
    report = _grade(LAB.starter)
    assert set(report.failed_ids()) == STARTER_FAILS, report.to_markdown()
    assert report.exit_code == 1


def test_every_check_has_a_mutant():
    ids = {c.id for c in checks_for(LAB)}
    targeted = set().union(*(m.fails for m in LAB02 if len(m.fails) <= 2))
    targeted |= {"manifests.valid", "service.routes"}   # their mutants cascade (documented sets)
    assert ids <= targeted, f"checks without a mutant: {sorted(ids - targeted)}"


@pytest.mark.parametrize("mutant", LAB02, ids=[m.name for m in LAB02])
def test_mutant_is_caught(mutant, tmp_path):
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest)
    mutant.patch(dest)
    report = _grade(dest, only=mutant.only)
    ran = {r.id for r in report.checks}
    assert set(report.failed_ids()) == set(mutant.fails) & ran, report.to_markdown()
    assert report.failed_ids(), "the mutant was not caught"
    if mutant.says:
        messages = [c.message for c in report.checks if not c.passed]
        assert any(mutant.says in m for m in messages), messages


@pytest.mark.parametrize("variant", LAB02_VARIANTS, ids=[v.name for v in LAB02_VARIANTS])
def test_probe_variant_passes(variant, tmp_path):
    """Other correct probe timings score full marks on the probe checks.
    Blind spot before: only the solution's own startupProbe (2 × 60) was
    graded, and the hang began a fixed 5 s after process start, so 2 × 45 and
    the docs' 10 × 30 failed probes.liveness-heals or probes.startup."""
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest)
    variant.patch(dest)
    report = _grade(dest, only=PROBE_CHECKS)
    assert not report.failed_ids(), report.to_markdown()


def test_refused_pods_fail_fast(tmp_path):
    """A Deployment whose pods Pod Security refuses fails pods.ready at once,
    quoting the ReplicaSet's FailedCreate event. Blind spot before: it waited
    the whole pod_start timeout (120 s by default) and said only "timed out"."""
    mutant = next(m for m in LAB02 if m.name == "privileged-pod")
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest)
    mutant.patch(dest)
    report = _grade(dest, only=("pods.ready",))
    res = next(c for c in report.checks if c.id == "pods.ready")
    assert not res.passed
    assert "FailedCreate" in res.message and "privileged" in res.message, res.message
    assert res.duration_s < 10, f"pods.ready took {res.duration_s:.1f}s to fail (FAST pod_start is 30s)"
