"""Project-wide test setup.

* Tests marked ``docker`` need a Docker daemon. They skip without one, except
  when REQUIRE_DOCKER=1 (CI), where a missing daemon is a failure.
* Each test gets a fresh check registry (the lab modules register into it).
"""
from __future__ import annotations

import os

import pytest


def _docker_ok() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
        return True
    except Exception:  # noqa: BLE001
        return False


def pytest_collection_modifyitems(config, items):
    if not any(item.get_closest_marker("docker") for item in items):
        return
    if _docker_ok():
        return
    if os.environ.get("REQUIRE_DOCKER") == "1":
        for item in items:
            if item.get_closest_marker("docker"):
                item.add_marker(pytest.mark.xfail(reason="no Docker daemon", run=False, strict=True))
        raise pytest.UsageError("REQUIRE_DOCKER=1 but no Docker daemon is reachable: start dockerd")
    skip = pytest.mark.skip(reason="no Docker daemon (set REQUIRE_DOCKER=1 to make this an error)")
    for item in items:
        if item.get_closest_marker("docker"):
            item.add_marker(skip)
