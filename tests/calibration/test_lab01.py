"""Calibration of Lab 01 on a real Docker engine.

* the reference solution scores max_score;
* the starter scores less, failing exactly the expected checks;
* every check has a mutant that fails it (and nothing unexpected);
* the BentoML reference scores max_score too, and its naive single-stage
  build fails image.size (its own budget);
* a crashing container fails fast with its log lines, never hangs.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from harness.checks.registry import default_registry
from harness.errors import GradingError
from harness.grading import checks_for, grade
from harness.labs import lab
from harness.waiting import Timeouts

from .mutants import LAB01, LAB01_BENTOML, both, edit, sub

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAB = lab(1)
BENTOML_SOLUTION = LAB.solution.parent / "01-docker-bentoml"
FAST = Timeouts(container_healthy=40, container_ready=25, stop_grace=6)
STARTER_FAILS = {"docker.dockerignore", "image.layer-order", "image.size", "container.healthy", "container.ready",
                 "predict.labels", "container.non-root", "container.graceful-stop"}


def _grade(path: Path):
    return grade(LAB, path, timeouts=FAST, log=lambda line: None)


def _mutant_copy(tmp_path: Path, patch, solution: Path = LAB.solution) -> Path:
    dest = tmp_path / solution.name
    shutil.copytree(solution, dest, ignore=shutil.ignore_patterns("model", "__pycache__", "bentoml_home"))
    patch(dest)
    return dest


def test_solution_scores_max():
    report = _grade(LAB.solution)
    assert report.score == report.max_score, report.to_markdown()
    assert report.exit_code == 0


def test_starter_fails_the_expected_checks():
    """Also fast: the doomed rebuild of image.layer-order is stopped as soon as its
    pip install starts, and container.ready stops when /readyz contradicts /predict
    (both used to wait out their full time: 60 s for /readyz alone)."""
    import json
    import subprocess

    from harness.labs import REPO_ROOT

    start = time.monotonic()
    out = Path(tempfile.mkdtemp()) / "starter.json"
    proc = subprocess.run([str(REPO_ROOT / "grade"), "1", "--report", str(out)], capture_output=True, text=True,
                          cwd=tempfile.gettempdir())
    took = time.monotonic() - start
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]    # ./grade keeps 0/1/2
    assert "Traceback" not in proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["exit_code"] == 1 and data["score"] < data["max_score"]
    failed = {c["id"] for c in data["checks"] if not c["passed"]}
    assert failed == STARTER_FAILS, proc.stdout[-3000:]
    by_id = {c["id"]: type("R", (), c) for c in data["checks"]}
    assert "503 while POST /predict already answers 200" in by_id["container.ready"].message
    assert "re-ran the dependency install" in by_id["image.layer-order"].message
    assert "biggest layers" in by_id["image.size"].message
    assert took < 90, f"the starter took {took:.0f}s to grade"


def test_every_check_has_a_mutant():
    ids = {c.id for c in checks_for(LAB)}
    targeted = set().union(*(m.fails for m in LAB01 if len(m.fails) <= 2))
    targeted.add("image.builds")
    assert ids <= targeted, f"checks without a mutant: {sorted(ids - targeted)}"


@pytest.mark.parametrize("mutant", LAB01, ids=[m.name for m in LAB01])
def test_mutant_is_caught(mutant, tmp_path):
    report = _grade(_mutant_copy(tmp_path, mutant.patch))
    assert set(report.failed_ids()) == set(mutant.fails), report.to_markdown()
    assert report.score < report.max_score
    for r in report.checks:
        if not r.passed:
            assert r.hint and r.doc.startswith("https://")


def test_bentoml_solution_scores_max():
    report = _grade(BENTOML_SOLUTION)
    assert report.score == report.max_score, report.to_markdown()


@pytest.mark.parametrize("mutant", LAB01_BENTOML, ids=[m.name for m in LAB01_BENTOML])
def test_bentoml_mutant_is_caught(mutant, tmp_path):
    report = _grade(_mutant_copy(tmp_path, mutant.patch, BENTOML_SOLUTION))
    assert set(report.failed_ids()) == set(mutant.fails), report.to_markdown()
    by_id = {r.id: r for r in report.checks}
    if "image.size" in mutant.fails:
        assert "budget for a bentoml server" in by_id["image.size"].message


def test_crashing_container_fails_fast_with_logs(tmp_path):
    crash = sub("Dockerfile", r'"app\.server:app"\]', '"app.nosuchmodule:app"]')
    start = time.monotonic()
    report = _grade(_mutant_copy(tmp_path, crash))
    took = time.monotonic() - start
    by_id = {r.id: r for r in report.checks}
    assert not by_id["container.ready"].passed
    assert "exited" in by_id["container.ready"].message
    assert "nosuchmodule" in by_id["container.ready"].details
    assert took < 60, f"a crashing container took {took:.0f}s to grade"


def test_missing_dockerfile_is_ungradable(tmp_path):
    sub_dir = _mutant_copy(tmp_path, lambda root: (root / "Dockerfile").unlink())
    with pytest.raises(GradingError) as exc:
        _grade(sub_dir)
    assert "Dockerfile" in str(exc.value)
