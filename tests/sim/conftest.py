"""Fixtures for the sim backend's tests: a fake-clock cluster and manifest builders.

Unit tests use :class:`FakeRuntime` and a fake clock, so they never sleep;
the Docker tests are marked ``docker`` and skip without Docker (or fail when
``REQUIRE_DOCKER=1``).
"""
from __future__ import annotations

import pytest

from harness.cluster.sim import FakeClock, FakeRuntime, SimCluster

from .helpers import IMAGE


def pytest_configure(config):
    config.addinivalue_line("markers", "docker: needs a local Docker engine and the python:3.11-slim image "
                                       "(skipped without Docker unless REQUIRE_DOCKER=1, which makes them fail)")


@pytest.fixture
def sim():
    clock = FakeClock()
    rt = FakeRuntime(clock, images=(IMAGE, "app:v1", "app:v2"))
    cluster = SimCluster(runtime=rt, clock=clock, propagation_delay=1.0)
    cluster.start()
    yield cluster
    cluster.stop()
