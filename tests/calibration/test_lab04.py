"""Calibration of Lab 04 on the sim backend: real vision containers, the GPU
node with fake nvidia.com/gpu capacity, the weighted Gateway router."""
from __future__ import annotations

import shutil

import pytest

from harness.grading import checks_for, grade
from harness.labs import lab
from harness.waiting import Timeouts

from .mutants import LAB04, istio_route

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAB = lab(4)
FAST = Timeouts(pod_start=40)


def _grade(path, only=None):
    return grade(LAB, path, backend="sim", timeouts=FAST, log=lambda line: None, only=list(only) if only else None)


def test_solution_scores_max():
    report = _grade(LAB.solution)
    assert report.score == report.max_score, report.to_markdown()


def test_starter_scores_below_max():
    report = _grade(LAB.starter, only=["gpu.limits", "gpu.placement", "deploy.stable-canary-ready", "route.split"])
    assert set(report.failed_ids()) == {"gpu.limits", "gpu.placement", "deploy.stable-canary-ready",
                                        "route.split"}, report.to_markdown()


def test_every_check_has_a_mutant():
    ids = {c.id for c in checks_for(LAB)}
    targeted = set().union(*(m.fails for m in LAB04))
    assert ids <= targeted, f"checks without a mutant: {sorted(ids - targeted)}"


@pytest.mark.parametrize("mutant", LAB04, ids=[m.name for m in LAB04])
def test_mutant_is_caught(mutant, tmp_path):
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest, ignore=shutil.ignore_patterns("model", "__pycache__"))
    mutant.patch(dest)
    report = _grade(dest, only=mutant.only)
    assert set(report.failed_ids()) == set(mutant.fails) & {r.id for r in report.checks}, report.to_markdown()


def test_an_istio_virtualservice_route_is_graded_like_an_httproute(tmp_path):
    """Istio weights are the accepted alternative: the same split, model versions and progressive
    rollout (the grader patches the VirtualService's destination weights)."""
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest, ignore=shutil.ignore_patterns("model", "__pycache__"))
    (dest / "manifests" / "route.yaml").write_text(istio_route(90, 10))
    checks = ["manifests.valid", "route.split", "route.model-version", "route.progressive"]
    report = _grade(dest, only=checks)
    assert report.failed_ids() == [] and {r.id for r in report.checks} >= set(checks), report.to_markdown()
    split = next(r for r in report.checks if r.id == "route.split")
    assert "%" in split.message, split.message   # the observed percentage is reported
