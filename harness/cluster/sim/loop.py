"""How the sim's controllers get to run: level-triggered passes on an injected clock.

Why: upstream controllers react to watch events and requeue themselves after
delays. The sim keeps that shape without goroutines: a *pass* runs every
controller until the store stops changing, and controllers ask to be woken at
future instants (:class:`Timers`: a probe's next period, a back-off's end, a
progress deadline). With a fake clock, :meth:`Reconciler.step` jumps from one
wake-up to the next, so a 10-minute rollout is simulated exactly and
instantly. With the real clock, a daemon thread runs a pass every ``tick``
seconds or as soon as something is written.
"""
from __future__ import annotations

import logging
import threading

from harness.cluster.base import ApiError

log = logging.getLogger(__name__)
MAX_ROUNDS = 50


class Timers:
    def __init__(self) -> None:
        self._times: set[float] = set()
        self._lock = threading.Lock()

    def at(self, t: float) -> None:
        with self._lock:
            self._times.add(round(t, 6))

    def next_after(self, now: float) -> float | None:
        with self._lock:
            self._times = {t for t in self._times if t > now}
            return min(self._times, default=None)


class Reconciler:
    def __init__(self, store, clock, timers, controllers, runtime, *, tick: float = 0.1):
        self.store, self.clock, self.timers = store, clock, timers
        self.controllers, self.runtime, self.tick = controllers, runtime, tick
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self.errors: list[str] = []

    def run_pass(self) -> None:
        """Run every controller until a round changes nothing."""
        with self._lock:
            for _ in range(MAX_ROUNDS):
                before = self.store.revision
                for c in self.controllers:
                    try:
                        c()
                    except ApiError as exc:   # a conflict or injected fault: the next round retries
                        log.debug("controller %s: %s", getattr(c, "__qualname__", c), exc)
                    except Exception as exc:  # noqa: BLE001 - keep the loop alive; surfaced in diagnostics
                        self.errors.append(f"{getattr(c, '__qualname__', c)}: {type(exc).__name__}: {exc}")
                        log.exception("sim controller failed")
                if self.store.revision == before:
                    return

    def step(self, seconds: float) -> None:
        """Advance a fake clock by ``seconds``, waking controllers at every instant they asked for."""
        if self.clock.real:
            raise RuntimeError("step() needs the fake clock; with real containers time passes by itself")
        target = self.clock.now() + seconds
        self.run_pass()
        while True:
            now = self.clock.now()
            nxt = self.timers.next_after(now)
            rt = [t for t in self.runtime.wakeups() if t > now]
            if rt:
                nxt = min([nxt] + rt) if nxt is not None else min(rt)
            if nxt is None or nxt > target:
                break
            self.clock.set(nxt)
            self.run_pass()
        if target > self.clock.now():
            self.clock.set(target)
        self.run_pass()

    # ---- real-time mode ---------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="sim-controllers", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.run_pass()
            self._wake.wait(self.tick)
            self._wake.clear()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
