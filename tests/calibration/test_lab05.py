"""Calibration of Lab 05's chart checks (Helm's engine, no cluster, about 0.1 s a grading).
The live checks (the chart installed on sim) are calibrated in test_lab05_live.py.

* the reference chart scores max_score;
* the starter fails exactly the checks its TODOs leave open;
* every check has a mutant that fails it, and each mutant fails exactly its checks
  (a chart that does not render fails every check that requires it).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.grading import checks_for, grade
from harness.labs import lab

from .mutants import LAB05, LAB05_ALL, LAB05_LIVE

LAB = lab(5)
STARTER_FAILS = {"values.dev-prod", "hpa.custom-metric", "bluegreen.selector"}


def _grade(path: Path):
    """The chart's checks only, from the staged files (no cluster)."""
    return grade(LAB, path, backend="sim", log=lambda line: None, only=sorted(LAB05_ALL), context="files")


def _failed(report) -> set[str]:
    return {c.id for c in report.checks if not c.passed}


def test_solution_scores_max():
    report = _grade(LAB.solution)
    assert report.score == report.max_score, report.to_markdown()


def test_starter_fails_the_open_tasks():
    assert _failed(_grade(LAB.starter)) == STARTER_FAILS


def test_every_check_has_a_mutant():
    covered = set().union(*(m.fails for m in LAB05 + LAB05_LIVE))
    assert {c.id for c in checks_for(LAB)} <= covered


@pytest.mark.parametrize("mutant", LAB05, ids=lambda m: m.name)
def test_mutant_fails_its_checks(mutant, tmp_path):
    dst = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dst)
    mutant.patch(dst)
    report = _grade(dst)
    assert _failed(report) == set(mutant.fails), report.to_markdown()
    for c in report.checks:
        if not c.passed:
            assert c.hint and c.doc.startswith("https://") and c.message
