"""Helpers for the class-grading tests: a class of fake submissions and a fake grader."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.classroom.runner import Runner

FAKE_GRADE = Path(__file__).with_name("fake_grade.py")


def make_submission(root: Path, name: str, behaviour: str, extra: str = "") -> Path:
    """A Lab 02-shaped folder (manifests/) whose ``behaviour`` file drives fake_grade.py."""
    folder = root / name
    (folder / "manifests").mkdir(parents=True, exist_ok=True)
    (folder / "manifests" / "deployment.yaml").write_text(f"kind: Deployment\n# {extra}\n")
    (folder / "behaviour").write_text(behaviour)
    return folder


def fake_runner(timeout_s: float = 20, jobs: int = 2, grace_s: float = 1.0) -> Runner:
    return Runner(timeout_s=timeout_s, jobs=jobs, grace_s=grace_s,
                  argv_for=lambda job: [sys.executable, str(FAKE_GRADE), str(job.lab), "--submission",
                                        str(job.student.path), "--backend", job.backend, "--report", str(job.report)])


@pytest.fixture
def calls(tmp_path, monkeypatch) -> Path:
    """The file fake_grade.py appends one line to per grading it starts."""
    path = tmp_path / "calls.txt"
    monkeypatch.setenv("FAKE_GRADE_CALLS", str(path))
    return path
