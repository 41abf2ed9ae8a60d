"""Progress lines of long waits (harness.waiting), on a fake clock."""
from __future__ import annotations

import pytest

from harness.waiting import Progress, WaitTimeout, is_progress, wait_for


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def test_silent_for_five_seconds_then_every_five():
    clock, lines = FakeClock(), []
    p = Progress(lines.append, "2 pods to be Ready", 120, clock=clock)
    for _ in range(40):          # 20 s in 0.5 s steps
        clock.sleep(0.5)
        p.tick()
    assert lines == ["waiting for 2 pods to be Ready: 5 s of 120 s", "waiting for 2 pods to be Ready: 10 s of 120 s",
                     "waiting for 2 pods to be Ready: 15 s of 120 s", "waiting for 2 pods to be Ready: 20 s of 120 s"]
    assert all(is_progress(x) for x in lines)


def test_detail_and_no_bound():
    clock, lines = FakeClock(), []
    p = Progress(lines.append, "a restart of pod web-1", None, clock=clock)
    clock.sleep(6)
    assert p.tick("restarts: 0")
    assert lines == ["waiting for a restart of pod web-1: 6 s; restarts: 0"]
    assert Progress(None, "x", 1, clock=clock).tick() is False   # no sink: a no-op


def test_wait_for_prints_progress_and_a_short_wait_prints_nothing():
    clock, lines = FakeClock(), []
    with pytest.raises(WaitTimeout):
        wait_for(lambda: False, "the Service to answer", 12, poll=0.5, clock=clock, sleep=clock.sleep,
                 progress=lines.append)
    assert lines == ["waiting for the Service to answer: 5 s of 12 s", "waiting for the Service to answer: 10 s of 12 s"]
    lines.clear()
    n = iter(range(100))
    assert wait_for(lambda: next(n) > 6, "quick", 60, poll=0.5, clock=clock, sleep=clock.sleep, progress=lines.append)
    assert lines == []
