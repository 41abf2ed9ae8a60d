from __future__ import annotations

import pytest

from . import servers


def pytest_generate_tests(metafunc):
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", [
            pytest.param(v, marks=[pytest.mark.docker] if v.endswith("container") else [], id=v)
            for v in servers.VARIANTS])


@pytest.fixture
def launch(variant):
    """launch(**env) -> a started server of this variant; stopped after the test."""
    started = []

    def _launch(**env):
        s = servers.start(variant, env)
        started.append(s)
        return s

    yield _launch
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def shared_server(request):
    """One default server per variant for the tests that only read or send bad
    input (starting a server costs seconds; these tests cannot change it)."""
    started = {}

    def _get(variant):
        if variant not in started:
            started[variant] = servers.start(variant, {})
            started[variant].wait_ready()
        return started[variant]

    yield _get
    for s in started.values():
        s.stop()


@pytest.fixture(scope="session", autouse=True)
def _remove_contract_images():
    yield
    try:
        servers.remove_images()
    except Exception:  # noqa: BLE001 - no daemon: nothing to remove
        pass
