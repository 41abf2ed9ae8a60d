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
    assert ids <= targeted, f"checks without a mutant: {sorted(ids - targeted)}"


@pytest.mark.parametrize("mutant", LAB03, ids=[m.name for m in LAB03])
def test_mutant_is_caught(mutant, tmp_path):
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest)
    mutant.patch(dest)
    report = _grade(dest, only=mutant.only)
    assert set(report.failed_ids()) == set(mutant.fails) & {r.id for r in report.checks}, report.to_markdown()
    assert report.score < report.max_score
