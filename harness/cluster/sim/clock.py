"""Injected clocks: every sim controller asks a clock for "now", never ``time`` directly.

Why: unit tests of the controllers must not wait on real time (house rule 7).
:class:`FakeClock` only moves when the test steps it (``SimCluster.step``), so a
600-second progress deadline is checked in microseconds. :class:`RealClock` is
used with real containers. Timestamps written into objects are RFC 3339 with
whole seconds, as the API server serialises ``metav1.Time``; controllers that
read them back (minReadySeconds, progress deadline) therefore see the same
truncation upstream controllers see.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

# 2024-01-01T00:00:00Z: a fixed epoch so fake-clock timestamps are reproducible.
FAKE_EPOCH = 1704067200.0


class FakeClock:
    """A clock that moves only when told to."""

    real = False

    def __init__(self, start: float = FAKE_EPOCH):
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds

    def set(self, t: float) -> None:
        with self._lock:
            if t < self._now:
                raise ValueError("a clock cannot go backwards")
            self._now = t


class RealClock:
    """Wall-clock seconds since the epoch."""

    real = True

    def now(self) -> float:
        return time.time()


def rfc3339(t: float) -> str:
    """``metav1.Time`` serialisation: UTC, whole seconds."""
    return datetime.fromtimestamp(int(t), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(s: str | None) -> float | None:
    if not s:
        return None
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
