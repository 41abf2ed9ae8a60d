"""pytest plugin (entry point ``pytest11: harness``): grade a lab with pytest.

    python -m harness.pytest_front --lab 1 --submission path/to/lab --junitxml out.xml
    (make pytest-grade LAB=1 SUBMISSION=path/to/lab)

Run it through that front door (harness/pytest_front.py): it gives pytest the
harness's own ini file and rootdir, so no pytest configuration inside the
submission is read. A plain ``pytest --pyargs harness.pytest_grading
--submission DIR`` lets pytest pick up DIR's pytest.ini/tox.ini/setup.cfg/
pyproject.toml; this plugin then refuses to grade (see ``pytest_configure``).

Each check becomes one test item (``test_check[<check id>]``), so JUnit XML,
-k selection and CI dashboards work as usual. The plugin only adds options,
fixtures and a summary; grading itself lives in harness.grading. Nothing from
the submission is collected: it is passed as an option value, never as a path.
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("harness", "lab grading (harness)")
    group.addoption("--lab", type=int, default=None, help="lab number to grade (1-4)")
    group.addoption("--submission", default=None, help="lab folder or fork root (default: the starter)")
    group.addoption("--backend", default="auto", help="auto, sim, kind or kubeconfig")
    group.addoption("--grade-report", default=None, help="also write the JSON/JUnit/Markdown report here")


class GradingSession:
    """Holds the open lab context and the results, for the items of one run."""

    def __init__(self, config):
        from .labs import lab

        self.config = config
        self.lab = lab(config.getoption("--lab"))
        self.results = {}
        self.report = None


@pytest.fixture(scope="session")
def grading_session(request):
    from .grading import lab_session
    from .report import Report

    gs = request.config._harness_grading
    backend = "docker" if not gs.lab.needs_cluster else request.config.getoption("--backend")
    with lab_session(gs.lab, request.config.getoption("--submission"), backend=backend,
                     log=lambda line: None) as (ctx, where):
        gs.report = Report(lab=gs.lab.slug, backend=backend, submission=where)
        yield gs, ctx
    path = request.config.getoption("--grade-report")
    if path:
        gs.report.write_all(Path(path))


def _inside(path: Path | None, folder: Path) -> bool:
    return path is not None and Path(path).resolve().is_relative_to(folder)


def refuse_submission_config(config) -> None:
    """A grade configured by the submission's own pytest files is no grade:
    say so and point at the front door (harness/pytest_front.py)."""
    from .pytest_front import INI

    submission = config.getoption("--submission")
    if not submission or (config.inipath is not None and Path(config.inipath).resolve() == INI.resolve()):
        return   # the front door's own configuration (inside the submission only when it is this repo)
    folder = Path(submission).expanduser().resolve()
    for what, path in (("ini file", config.inipath), ("rootdir", config.rootpath)):
        if _inside(path, folder):
            raise pytest.UsageError(
                f"pytest's {what} {path} is inside the submission {folder}: its settings (addopts, "
                "pythonpath, plugins) would configure the grading. Grade through the front door: "
                "python -m harness.pytest_front --lab N --submission DIR (make pytest-grade)")


def pytest_configure(config):
    if config.getoption("--lab", default=None) is not None:
        refuse_submission_config(config)
        config._harness_grading = GradingSession(config)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    gs = getattr(config, "_harness_grading", None)
    if gs is None or gs.report is None:
        return
    r = gs.report
    terminalreporter.write_sep("=", f"lab {r.lab}: {r.score}/{r.max_score} points on {r.backend}")
    for c in r.checks:
        if not c.passed:
            terminalreporter.write_line(f"✖ {c.id}: {c.message}\n    hint: {c.hint}\n    doc: {c.doc}")


# Fixtures for instructors' own checks (kind_cluster): harness/instructor_fixtures.py
pytest_plugins = ["harness.instructor_fixtures"]
