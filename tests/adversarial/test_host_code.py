"""Issue 16 item 1 (and the cases that held): nothing in a submission runs on the host.

Both front doors are graded: ``make pytest-grade`` (harness/pytest_front.py)
and ``make lab-N`` (``python -m harness grade``). The matrix uses a stubbed
Lab 01 context (tests/adversarial/stub_lab.py: real staging, no Docker), so it
is cheap; the ``docker`` tests grade one case holding every trap for real,
through each make recipe.

Blind spot before: no test put pytest configuration in a submission. The old
recipe ran ``pytest --pyargs harness.pytest_grading --submission DIR`` from
the repository; pytest took DIR as a path for its rootdir and ini search, read
DIR/pytest.ini (or tox.ini, setup.cfg, pyproject.toml, pytest.toml) and
imported ``-p evilmark`` from DIR, on the host.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import grading
from harness.cli import main as harness_main
from harness.labs import REPO_ROOT

from .cases import ALL_TRAPS, CASES, HOST_CODE, SAME_GRADE, Case, write_case
from .stub_lab import STUB_MESSAGE, stub_lab_session

MAKE = ["make", "-s", "-C", str(REPO_ROOT), "-o", "prereqs"]   # the recipes, without the set-up steps
# Lab 01 cases graded the same as the solution, cheap enough for the stubbed context
STUBBED = [c for c in CASES if c.lab == 1 and c.expect == SAME_GRADE and not c.docker]


def junit_outcomes(path: Path) -> dict[str, str]:
    suite = ET.parse(path).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    out = {}
    for tc in suite.iter("testcase"):
        state = next((c.tag for c in tc if c.tag in ("failure", "error", "skipped")), "passed")
        out[tc.get("name")] = state
    return out


def pytest_grade_stubbed(folder: Path, junit: Path) -> subprocess.CompletedProcess:
    """``make pytest-grade`` for Lab 01, with the stubbed lab context loaded as a plugin."""
    env = dict(os.environ, PYTEST_PLUGINS="tests.adversarial.stub_lab", PYTHONPATH=str(REPO_ROOT),
               JUNIT=str(junit))
    return subprocess.run([*MAKE, "pytest-grade", "LAB=1", f"SUBMISSION={folder}"], env=env,
                          capture_output=True, text=True, timeout=120)


def lab_grade_stubbed(folder: Path, report: Path, monkeypatch) -> dict:
    """``python -m harness grade --lab 1`` in-process, with the stubbed lab context."""
    monkeypatch.setattr(grading, "lab_session", stub_lab_session)
    harness_main(["grade", "--lab", "1", "--submission", str(folder), "--report", str(report)])
    data = json.loads(report.read_text())
    return {c["id"]: (c["passed"], c["points"], c["message"]) for c in data["checks"]}


@pytest.fixture(scope="module")
def clean_pytest_grade(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    folder = write_case(Case("clean", 1, lambda f, m: None, SAME_GRADE), tmp / "sub", tmp / "markers")
    proc = pytest_grade_stubbed(folder, tmp / "junit.xml")
    outcomes = junit_outcomes(tmp / "junit.xml")
    assert "9 failed, 1 passed" in proc.stdout and STUB_MESSAGE in proc.stdout, proc.stdout + proc.stderr
    assert outcomes["test_check[docker.dockerignore]"] == "passed"
    assert outcomes["test_check[image.builds]"] == "failure"
    return outcomes


@pytest.mark.parametrize("case", STUBBED, ids=[c.name for c in STUBBED])
def test_pytest_grade_runs_nothing_from_the_submission(case, make_case, tmp_path, clean_pytest_grade):
    folder, markers = make_case(case)
    proc = pytest_grade_stubbed(folder, tmp_path / "junit.xml")
    assert sorted(os.listdir(markers)) == [], f"ran on the host: {os.listdir(markers)}\n{proc.stdout}"
    assert junit_outcomes(tmp_path / "junit.xml") == clean_pytest_grade, proc.stdout + proc.stderr


@pytest.mark.parametrize("case", STUBBED, ids=[c.name for c in STUBBED])
def test_harness_grade_runs_nothing_from_the_submission(case, make_case, tmp_path, monkeypatch):
    clean_case = Case("clean", 1, lambda f, m: None, SAME_GRADE)
    clean = lab_grade_stubbed(write_case(clean_case, tmp_path / "clean", tmp_path / "clean-markers"),
                              tmp_path / "clean.json", monkeypatch)
    folder, markers = make_case(case)
    assert lab_grade_stubbed(folder, tmp_path / "case.json", monkeypatch) == clean
    assert sorted(os.listdir(markers)) == []


def test_plain_pytest_with_a_submission_config_refuses_to_grade(make_case, tmp_path):
    """Outside the front door the plugin cannot stop pytest reading the
    submission's ini file, but it refuses to produce a grade from it."""
    folder, _ = make_case(HOST_CODE[0])   # pytest.ini
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--noconftest",
                           "--pyargs", "harness.pytest_grading", "--lab", "1", "--submission", str(folder)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 4, proc.stdout + proc.stderr   # pytest's usage error
    assert "inside the submission" in proc.stderr and "harness.pytest_front" in proc.stderr


def test_front_door_command_is_rooted_in_the_harness(tmp_path):
    from harness import pytest_front

    argv = pytest_front.pytest_command(1, str(tmp_path), "sim", "out.xml")
    assert argv[argv.index("-c") + 1] == str(pytest_front.INI) and pytest_front.INI.is_file()
    assert argv[argv.index("--rootdir") + 1] == str(pytest_front.ROOTDIR)
    assert {"-P", "--noconftest", "no:cacheprovider"} <= set(argv)
    assert f"--submission={tmp_path.resolve()}" in argv and str(tmp_path) not in argv   # an option value, not a path
    assert "pythonpath" not in pytest_front.INI.read_text().replace("no pythonpath", "")


# --- real gradings: one case with every trap, through each make recipe -------
@pytest.mark.docker
@pytest.mark.slow
def test_all_traps_through_make_lab_1(make_case, tmp_path):
    folder, markers = make_case(ALL_TRAPS)
    report = tmp_path / "report.json"
    proc = subprocess.run([*MAKE, "lab-1", f"SUBMISSION={folder}", f"REPORT={report}"],
                          capture_output=True, text=True, timeout=900)
    data = json.loads(report.read_text())
    assert sorted(os.listdir(markers)) == []
    assert (data["score"], data["passed"]) == (data["max_score"], True), proc.stdout
    assert data["score"] != 99 and len(data["checks"]) == 10   # the forged JSON line changed nothing


@pytest.mark.docker
@pytest.mark.slow
def test_all_traps_through_make_pytest_grade(make_case, tmp_path):
    folder, markers = make_case(ALL_TRAPS)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run([*MAKE, "pytest-grade", "LAB=1", f"SUBMISSION={folder}"],
                          env=dict(os.environ, JUNIT=str(junit)), capture_output=True, text=True, timeout=900)
    outcomes = junit_outcomes(junit)
    assert sorted(os.listdir(markers)) == []
    assert len(outcomes) == 10 and set(outcomes.values()) == {"passed"}, proc.stdout
    assert proc.returncode == 0


def test_front_door_grades_a_fork_root_holding_the_harness(tmp_path):
    """A learner's fork holds the harness itself: SUBMISSION=<fork root> must not trip the
    plugin's guard, which only refuses configuration that is not the harness's own."""
    from harness import pytest_front
    from harness.plugin import refuse_submission_config

    class Config:
        inipath, rootpath = pytest_front.INI, pytest_front.ROOTDIR

        def getoption(self, name):
            return str(REPO_ROOT)

    refuse_submission_config(Config())   # no UsageError
    Config.inipath = REPO_ROOT / "pyproject.toml"
    with pytest.raises(pytest.UsageError):
        refuse_submission_config(Config())
