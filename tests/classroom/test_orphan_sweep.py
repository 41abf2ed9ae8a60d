"""Lab 01's containers carry their grading's pid, so a grading killed with SIGKILL (the class runner's
last resort after a timeout) leaves nothing running: the runner's sweep removes containers whose
owner is gone and keeps those of live gradings.

Blind spot before: Lab 01's runs were labelled ``io.mlops-labs.grader=1`` only, and the sweep
looked at sim pods alone, so a killed Lab 01 grading left its server container up.
"""
from __future__ import annotations

import os
import subprocess

import docker
import pytest

from harness import images
from harness.classroom.runner import sweep

pytestmark = pytest.mark.docker


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_the_sweep_removes_containers_of_dead_gradings_and_keeps_live_ones():
    try:
        client = docker.from_env()
        client.ping()
    except Exception:  # noqa: BLE001
        pytest.skip("no Docker engine")
    made = []
    try:
        for pid in (_dead_pid(), os.getppid()):
            made.append(client.containers.run("python:3.11-slim", ["sleep", "60"], detach=True,
                                              labels={images.LABEL: "1", images.OWNER: str(pid)}))
        assert images.owner_labels() == {images.LABEL: "1", images.OWNER: str(os.getpid())}
        assert sweep() >= 1
        left = {c.id for c in client.containers.list(all=True, filters={"label": images.OWNER})}
        assert made[0].id not in left            # its grading is gone
        assert made[1].id in left                # a live grading's container stays
    finally:
        for c in made:
            try:
                c.remove(force=True)
            except docker.errors.NotFound:
                pass
