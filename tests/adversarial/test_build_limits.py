"""A learner's Dockerfile cannot reach the host through ``docker build``.

Before: RUN steps ran with ``pids.max = max`` and no memory limit, and the build
timeout was an idle timeout (a step printing a line every 5 s ran for ever).
Now each build runs under the container budget (harness.budget) and a deadline.
The host's process count is sampled from /proc during each build.
"""
from __future__ import annotations

import os
import resource
import threading
import time
from pathlib import Path

import pytest

from harness import budget, images

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FORK_BOMB = ("FROM python:3.11-slim\n"
             "RUN python3 -c \"import os, time; exec('while True:\\n  if os.fork() == 0:\\n"
             "    time.sleep(60); os._exit(0)')\"\n")
MEMORY_BOMB = "FROM python:3.11-slim\nRUN python3 -c \"b = bytearray(3 * 2**30); print(len(b))\"\n"
CHATTY_SLOW = "FROM python:3.11-slim\nRUN for i in $(seq 1 40); do echo tick $i; sleep 3; done\n"


def _host_processes() -> int:
    return sum(1 for d in os.listdir("/proc") if d.isdigit())


def _build(tmp_path: Path, dockerfile: str, timeout: float = 120):
    images.ensure_base_image()
    (tmp_path / "Dockerfile").write_text(dockerfile)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _host_processes())
            time.sleep(0.02)

    t = threading.Thread(target=sample, daemon=True)
    base = _host_processes()
    t.start()
    start = time.monotonic()
    try:
        result = images.build(tmp_path, f"mlops-labs/adversarial-{os.getpid()}:test", timeout=timeout)
    finally:
        stop.set()
        t.join()
    return result, base, peak[0], time.monotonic() - start


def test_fork_bomb_in_run_stops_at_the_pids_limit(tmp_path):
    result, base, peak, _ = _build(tmp_path, FORK_BOMB)
    assert not result.ok
    assert f"more than {budget.CONTAINER_PIDS} processes" in result.error, result.error
    # the bomb's processes are bounded by the build's pids limit (plus the daemon's own helpers)
    assert peak - base <= budget.CONTAINER_PIDS + 40, (base, peak)


def test_memory_bomb_in_run_is_oom_killed(tmp_path):
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result, _, _, took = _build(tmp_path, MEMORY_BOMB)
    assert not result.ok
    assert "memory limit" in result.error and "137" in result.error, result.error
    assert took < 60
    # the grader itself did not grow: the bomb ran in the build container
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before < 100 * 1024


def test_build_deadline_holds_whatever_the_step_prints(tmp_path):
    result, _, _, took = _build(tmp_path, CHATTY_SLOW, timeout=12)
    assert not result.ok
    assert "did not finish within its 12s deadline" in result.error, result.error
    assert "RUN for i in" in result.error
    assert took < 25, f"the deadline was not a deadline: {took:.0f}s"
