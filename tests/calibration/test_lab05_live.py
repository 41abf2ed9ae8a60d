"""Calibration of Lab 05's live checks: the chart installed on sim, with real containers, a real
Prometheus and real hey load.

* the reference chart scores max_score, and its report carries the replicas plot (a PNG the
  Markdown report links);
* the contrast is measured: Lab 03's CPU HPA stays at its minimum while the chart's HPA
  scales out, and p99 at the peak is at most 0.8 x p99 at the minimum;
* each live mutant fails its check, with what the cluster showed in the message
  (a misspelt metric: the HPA's FailedGetPodsMetric condition).
"""
from __future__ import annotations

import shutil

import pytest

from harness.grading import grade
from harness.labs import lab

from .mutants import LAB05_LIVE

pytestmark = [pytest.mark.docker, pytest.mark.slow]
LAB = lab(5)


def _grade(path, only=None):
    return grade(LAB, path, backend="sim", log=lambda line: None, only=list(only) if only else None)


def test_solution_scores_max_and_draws_the_contrast(tmp_path):
    report = _grade(LAB.solution)
    assert report.score == report.max_score, report.to_markdown()
    msg = {c.id: c.message for c in report.checks}
    assert "CPU HPA stayed at 2" in msg["hpa.scales-on-load"] and "scaled 2 -> " in msg["hpa.scales-on-load"]
    assert "0 failed" in msg["bluegreen.switch"]
    assert "replicas" in report.plots
    paths = report.write_all(tmp_path / "lab05.json")
    png = tmp_path / "lab05.replicas.png"
    assert png in paths and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert "![replicas](lab05.replicas.png)" in (tmp_path / "lab05.md").read_text()
    print("\n" + report.to_markdown())


@pytest.mark.parametrize("mutant", LAB05_LIVE, ids=[m.name for m in LAB05_LIVE])
def test_live_mutant_is_caught(mutant, tmp_path):
    dest = tmp_path / LAB.slug
    shutil.copytree(LAB.solution, dest)
    mutant.patch(dest)
    report = _grade(dest, only=mutant.only)
    assert set(report.failed_ids()) == set(mutant.fails) & {r.id for r in report.checks}, report.to_markdown()
    failed = [c for c in report.checks if not c.passed]
    assert any(mutant.says in c.message for c in failed), report.to_markdown()
