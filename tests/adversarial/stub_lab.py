"""A Lab 01 context without Docker, for cheap gradings of the adversarial table.

The submission is located and staged for real (so staging sees every file of
the case); checks that read the staged files run for real; every check that
needs the engine fails with the same message on every run. Comparing two
stubbed gradings therefore shows whether anything in a submission changed the
grading itself (its options, its plugins, its results).

Use it in-process (``monkeypatch.setattr(harness.grading, "lab_session",
stub_lab_session)``) or in a pytest grading run as a plugin:
``PYTEST_PLUGINS=tests.adversarial.stub_lab`` (with the repository on PYTHONPATH).
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from harness.checks.registry import CheckFailed
from harness.submission import locate, stage

STUB_MESSAGE = "stubbed lab context: no Docker engine in this test"


class StubDockerLab:
    notices: list = []
    cluster = None

    def __init__(self, submission):
        self.submission = submission

    @property
    def context(self) -> Path:
        return self.submission.staged

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)

        def needs_docker(*args, **kwargs):
            raise CheckFailed(f"{STUB_MESSAGE} ({name})")
        return needs_docker


@contextlib.contextmanager
def stub_lab_session(lab, submission, *, backend="docker", timeouts=None, log=print, context=None):
    source = locate(lab, submission)
    with tempfile.TemporaryDirectory(prefix=f"stub-{lab.slug}-") as tmp:
        yield StubDockerLab(stage(lab, source, Path(tmp) / "context")), str(source)


def pytest_configure(config):
    import harness.grading

    harness.grading.lab_session = stub_lab_session
