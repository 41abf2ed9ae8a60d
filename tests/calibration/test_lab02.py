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

from .mutants import LAB02

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
