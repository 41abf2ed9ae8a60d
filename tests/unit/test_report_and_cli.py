"""Report shape, exit codes, the check registry and the CLI's exit code 2."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from harness.checks.registry import CheckFailed, Partial, Registry, check
from harness.cli import main
from harness.grading import run_check
from harness.report import CheckResult, Report


def _res(i, ok, pts=2):
    return CheckResult(i, ok, pts if ok else 0, pts, "msg | with pipe", "fix the thing",
                       "https://kubernetes.io/docs/")


def test_report_score_and_exit_codes(tmp_path):
    r = Report("01-docker", "docker", "labs/01-docker", [_res("a", True), _res("b", False, 3)])
    assert (r.score, r.max_score, r.passed, r.exit_code) == (2, 5, False, 1)
    assert r.failed_ids() == ["b"]
    ok = Report("01-docker", "docker", "x", [_res("a", True)])
    assert ok.exit_code == 0 and ok.passed
    assert Report("01-docker", "docker", "x").exit_code == 1   # no checks is not a pass


def test_report_files(tmp_path):
    r = Report("01-docker", "docker", "labs/01-docker", [_res("a", True), _res("b", False)])
    paths = r.write_all(tmp_path / "out" / "r.json")
    data = json.loads(paths[0].read_text())
    assert set(data) >= {"lab", "backend", "submission", "score", "max_score", "passed", "duration_s", "checks"}
    assert set(data["checks"][0]) >= {"id", "passed", "points", "max_points", "message", "hint", "doc"}
    suite = ET.fromstring(paths[1].read_text())
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase[@name='b']/failure") is not None
    md = paths[2].read_text()
    assert "2/4" in md and "msg \\| with pipe" in md


def test_registry_rejects_incomplete_checks():
    reg = Registry()
    with pytest.raises(ValueError):
        check("x", lab="l", points=1, hint="", doc="https://x", registry=reg)(lambda c: "ok")
    with pytest.raises(ValueError):
        check("x", lab="l", points=0, hint="h", doc="https://x", registry=reg)(lambda c: "ok")
    with pytest.raises(ValueError):
        check("x", lab="l", points=1, hint="h", doc="http://insecure", registry=reg)(lambda c: "ok")
    with pytest.raises(ValueError):
        check("y", lab="l", points=1, hint="h", doc="https://x", requires=("nope",), registry=reg)(lambda c: "ok")


def test_run_check_outcomes():
    reg = Registry()

    @check("a", lab="l", points=2, hint="h", doc="https://d", registry=reg)
    def a(ctx):
        raise CheckFailed("broken", details="log line")

    @check("b", lab="l", points=2, hint="h", doc="https://d", requires=("a",), registry=reg)
    def b(ctx):
        return "fine"

    @check("c", lab="l", points=3, hint="h", doc="https://d", registry=reg)
    def c(ctx):
        return Partial(1, "spec.replicas is set")

    @check("d", lab="l", points=1, hint="h", doc="https://d", registry=reg)
    def d(ctx):
        raise KeyError("bug")

    results = {}
    ra, rb, rc, rd = (run_check(reg.get(i), None, results) for i in "abcd")
    assert (ra.passed, ra.points, ra.details) == (False, 0, "log line")
    assert not rb.passed and rb.message.startswith("not run: a")
    assert (rc.passed, rc.points, rc.max_points) == (False, 1, 3)
    assert not rd.passed and rd.message.startswith("grader error: KeyError")


def test_cli_exit_2_for_missing_submission(tmp_path, capsys):
    assert main(["grade", "--lab", "1", "--submission", str(tmp_path / "nope")]) == 2
    assert "submission folder not found" in " ".join(capsys.readouterr().out.split())


def test_cli_exit_2_for_unavailable_lab(capsys, monkeypatch):
    import dataclasses

    from harness import labs

    monkeypatch.delenv("HARNESS_PREVIEW_LABS", raising=False)
    monkeypatch.setitem(labs.LABS, 4, dataclasses.replace(labs.LABS[4], available=False))
    assert main(["grade", "--lab", "4"]) == 2
    assert "not available yet" in " ".join(capsys.readouterr().out.split())


def test_submission_symlinks_are_refused(tmp_path):
    from harness.errors import GradingError
    from harness.labs import lab
    from harness.submission import stage

    src = tmp_path / "sub"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (src / "secret").symlink_to("/etc/passwd")
    with pytest.raises(GradingError) as exc:
        stage(lab(1), src, tmp_path / "staged")
    assert "symlinks" in str(exc.value) and "secret" in exc.value.where


def test_a_grader_bug_is_exit_2_with_one_line_and_a_log_file(tmp_path, monkeypatch, capsys):
    """Before: any exception other than the backend ones was re-raised, so the learner
    saw a Python traceback (issue: four Lab 02 gradings ended that way)."""
    from harness import cli

    monkeypatch.setenv("HARNESS_LOG_DIR", str(tmp_path))

    def boom(args):
        raise RuntimeError("cannot schedule new futures after shutdown")

    assert cli.run_guarded(boom, None) == 2
    out = capsys.readouterr().out
    assert "Traceback" not in out
    assert "grader error: RuntimeError: cannot schedule new futures after shutdown" in out
    logs = list(tmp_path.glob("grader-error-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and str(logs[0]) in out.replace("\n", "")


def test_a_check_that_crashes_is_a_failed_check_named_grader_error(tmp_path, monkeypatch):
    from harness.checks.registry import Check
    from harness.grading import run_check

    monkeypatch.setenv("HARNESS_LOG_DIR", str(tmp_path))

    def crash(ctx):
        raise KeyError("status")

    c = Check(id="x.crash", lab="00", points=2, hint="h", doc="https://example.org", fn=crash, title="t")
    res = run_check(c, object(), {})
    assert not res.passed and res.message.startswith("grader error: KeyError")
    assert "Traceback" not in res.details and "the traceback is in" in res.details


def test_grade_script_exit_2_when_ungradable(tmp_path):
    import subprocess

    from harness.labs import REPO_ROOT

    proc = subprocess.run([str(REPO_ROOT / "grade"), "1", "--submission", str(tmp_path / "nowhere")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "submission folder not found" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_report_json_carries_the_exit_code():
    from harness.report import CheckResult, Report

    r = Report(lab="01-docker", backend="docker", submission="x")
    r.checks.append(CheckResult("a", False, 0, 2, "no", "h", "https://d", "t"))
    assert r.to_dict()["exit_code"] == 1
