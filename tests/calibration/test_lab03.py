"""Calibration of Lab 03 on the sim backend: real containers, real load from
hey, the HPA controller on scraped container CPU, rollouts under traffic.

On sim the metrics resolution and HPA sync period are shortened (reported in
the report's notices) so that a full cycle fits in grading time.
"""
from __future__ import annotations

import shutil

import pytest

from harness.grading import checks_for, grade
from harness.labs import lab

from .mutants import LAB03

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAB = lab(3)


def _grade(path, only=None):
    return grade(LAB, path, backend="sim", log=lambda line: None, only=list(only) if only else None)


def test_solution_scores_max():
    report = _grade(LAB.solution)
    assert report.score == report.max_score, report.to_markdown()


def test_starter_scores_below_max():
    report = _grade(LAB.starter, only=["hpa.spec", "rollout.strategy", "rollout.rollback"])
    assert set(report.failed_ids()) == {"hpa.spec", "rollout.strategy", "rollout.rollback"}, report.to_markdown()


def test_every_check_has_a_mutant():
    ids = {c.id for c in checks_for(LAB)}
    targeted = set().union(*(m.fails for m in LAB03))
    targeted.add("hpa.respects-bounds")   # see test_bounds_mutant
    assert ids <= targeted, f"checks without a mutant: {sorted(ids - targeted)}"


@pytest.mark.parametrize("mutant", LAB03, ids=[m.name for m in LAB03])
def test_mutant_is_caught(mutant, tmp_path):
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest)
    mutant.patch(dest)
    report = _grade(dest, only=mutant.only)
    assert set(report.failed_ids()) == set(mutant.fails) & {r.id for r in report.checks}, report.to_markdown()
    assert report.score < report.max_score


def test_bounds_check_catches_out_of_range_series():
    """hpa.respects-bounds reads the sampled series; feed it one that leaves [min, max]."""
    from harness.checks.lab03 import hpa_bounds
    from harness.checks.registry import CheckFailed
    from harness.scenarios_hpa import HpaCycle

    class Ctx:
        observations = {"hpa_cycle": HpaCycle(2, 5, 5.0, None, 30, 10, 6, None, None, 0,
                                              series=[(0, 2), (10, 3), (20, 6)])}

    with pytest.raises(CheckFailed, match="6 replicas at 20s"):
        hpa_bounds(Ctx())
