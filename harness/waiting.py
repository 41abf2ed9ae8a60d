"""One way to wait: ``wait_for(condition, desc, timeout)``, with named timeouts.

A condition returns a truthy value when done (that value is returned), or a
falsy one to keep polling. It may raise :class:`FinalError` to stop early. On
timeout, :class:`WaitTimeout` carries the description, the elapsed time, the
last value seen and the last exception, never a bare "timed out".

Progress: a wait that lasts longer than :data:`PROGRESS_AFTER_S` says what it
waits for and for how long, one plain line every :data:`PROGRESS_EVERY_S`
(``waiting for 2 pods to be Ready: 20 s of 120 s``), whether or not a terminal
is attached. Give ``wait_for(..., progress=say)`` a function that prints a
line, or drive a :class:`Progress` from a loop of your own::

    p = Progress(say, "a restart of pod web-1 (hung at 6 s)", timeout=27)
    while ...:
        p.tick()              # prints only when a line is due
        time.sleep(0.5)

Lines start with ``waiting`` (:func:`is_progress` tells them apart), so a
front end that hides log lines can still let them through.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Callable, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timeouts:
    """Named timeouts, in seconds. Callers take a copy with ``replace()``."""

    poll: float = 0.5            # between two looks at a condition
    image_build: float = 900.0   # cold build with a pip install of scikit-learn
    container_healthy: float = 90.0  # HEALTHCHECK start-period + a few intervals
    container_ready: float = 60.0    # /readyz answering 200
    http_request: float = 5.0        # one request to a model server
    stop_grace: float = 10.0         # docker stop's default grace period
    pod_start: float = 120.0         # scheduling + start + readiness
    rollout: float = 180.0           # a Deployment rollout on a small cluster
    service_endpoints: float = 15.0  # Ready pods programmed into the Service's proxy
    nodes_ready: float = 300.0       # kind nodes Ready after create

    def scaled(self, factor: float) -> "Timeouts":
        return replace(self, **{k: v * factor for k, v in self.__dict__.items() if k != "poll"})


DEFAULT_TIMEOUTS = Timeouts()


class FinalError(Exception):
    """Raised by a condition to stop waiting: the state can no longer become good."""


class WaitTimeout(TimeoutError):
    def __init__(self, desc: str, elapsed: float, last_value: Any, last_error: BaseException | None):
        self.desc, self.elapsed, self.last_value, self.last_error = desc, elapsed, last_value, last_error
        msg = f"timed out after {elapsed:.1f}s waiting for {desc}"
        if last_error is not None:
            msg += f"; last error: {type(last_error).__name__}: {last_error}"
        if last_value not in (None, False, "", [], {}):
            msg += f"; last seen: {_short(last_value)}"
        super().__init__(msg)


def _short(v: Any, limit: int = 300) -> str:
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + "..."


PROGRESS_AFTER_S = 5.0    # a wait shorter than this stays silent
PROGRESS_EVERY_S = 5.0    # then one line this often
PROGRESS_PREFIX = "waiting "


def is_progress(line: str) -> bool:
    """Whether a log line is a progress line of a wait."""
    return line.startswith(PROGRESS_PREFIX)


class Progress:
    """Says what a wait waits for and how long it has waited, once the wait
    has lasted ``after`` seconds, then every ``every`` seconds:
    ``waiting for <what>: <elapsed> s of <timeout> s[; <detail>]``.

    ``say`` gets one complete line per call (``print``, a lab's ``log``);
    ``say=None`` makes every call a no-op. ``timeout`` may be None (no bound
    known): the line then says only the elapsed time. ``clock`` is injectable
    for tests.
    """

    def __init__(self, say: Callable[[str], None] | None, what: str, timeout: float | None = None, *,
                 after: float = PROGRESS_AFTER_S, every: float = PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        self.say, self.what, self.timeout, self.every, self.clock = say, what, timeout, every, clock
        self.start = clock()
        self._next = self.start + after
        self.lines = 0

    @property
    def elapsed(self) -> float:
        return self.clock() - self.start

    def line(self, detail: str = "") -> str:
        of = f" of {self.timeout:.0f} s" if self.timeout is not None else ""
        return f"waiting for {self.what}: {self.elapsed:.0f} s{of}" + (f"; {detail}" if detail else "")

    def tick(self, detail: str = "") -> bool:
        """Print a line if one is due; True when it printed."""
        if self.say is None or self.clock() < self._next:
            return False
        self.say(self.line(detail))
        self.lines += 1
        while self._next <= self.clock():
            self._next += self.every
        return True


def wait_for(condition: Callable[[], T], desc: str, timeout: float, *,
             poll: float = DEFAULT_TIMEOUTS.poll,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep,
             on_poll: Callable[[float, Any], None] | None = None,
             progress: Callable[[str], None] | None = None) -> T:
    """Poll ``condition`` until it returns a truthy value; return that value.
    With ``progress``, a long wait prints :class:`Progress` lines through it."""
    start = clock()
    ticker = Progress(progress, desc, timeout, clock=clock) if progress is not None else None
    last_value: Any = None
    last_error: BaseException | None = None
    while True:
        try:
            last_value = condition()
            last_error = None
            if last_value:
                return last_value
        except FinalError:
            raise
        except Exception as exc:  # noqa: BLE001 - kept and reported on timeout
            last_error = exc
        elapsed = clock() - start
        if on_poll is not None:
            on_poll(elapsed, last_value)
        if ticker is not None and elapsed < timeout:
            ticker.tick()
        if elapsed >= timeout:
            raise WaitTimeout(desc, elapsed, last_value, last_error)
        sleep(min(poll, max(0.0, timeout - elapsed)))



def progress_logger(desc: str, timeout: float, log: Callable[[str], None], *,
                    after: float = PROGRESS_AFTER_S, every: float = PROGRESS_EVERY_S) -> Callable[[float, Any], None]:
    """An ``on_poll`` for :func:`wait_for`: once a wait has lasted ``after`` seconds,
    log ``waiting for <desc>: 20 s of 60 s`` every ``every`` seconds (plain lines, so
    it reads the same with or without a terminal). Same lines as ``progress=``."""
    state = {"next": after}

    def on_poll(elapsed: float, _value: Any) -> None:
        if elapsed >= state["next"]:
            log(f"waiting for {desc}: {elapsed:.0f} s of {timeout:.0f} s")
            state["next"] = elapsed + every
    return on_poll
