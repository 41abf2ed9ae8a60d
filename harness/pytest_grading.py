"""The test module the pytest plugin runs: one item per check of ``--lab``.

Run it through ``python -m harness.pytest_front --lab N ...`` (``make pytest-grade``),
which gives pytest the harness's own configuration (see harness/pytest_front.py).
"""
from __future__ import annotations

import pytest


def pytest_generate_tests(metafunc):
    from .grading import checks_for
    from .labs import lab

    number = metafunc.config.getoption("--lab")
    if number is None:
        raise pytest.UsageError("harness.pytest_grading needs --lab N")
    ids = [c.id for c in checks_for(lab(number))]
    metafunc.parametrize("check_id", ids, ids=ids)


def test_check(check_id, grading_session, record_property):
    from .checks.registry import default_registry
    from .grading import run_check

    gs, ctx = grading_session
    c = default_registry().get(check_id, gs.lab.slug)
    res = run_check(c, ctx, gs.results)
    gs.report.checks.append(res)
    record_property("points", f"{res.points}/{res.max_points}")
    assert res.passed, f"{res.message}\nhint: {res.hint}\ndoc: {res.doc}\n{res.details}".rstrip()
