"""One way to wait: ``wait_for(condition, desc, timeout)``, with named timeouts.

A condition returns a truthy value when done (that value is returned), or a
falsy one to keep polling. It may raise :class:`FinalError` to stop early. On
timeout, :class:`WaitTimeout` carries the description, the elapsed time, the
last value seen and the last exception, never a bare "timed out".
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


def wait_for(condition: Callable[[], T], desc: str, timeout: float, *,
             poll: float = DEFAULT_TIMEOUTS.poll,
             clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep,
             on_poll: Callable[[float, Any], None] | None = None) -> T:
    """Poll ``condition`` until it returns a truthy value; return that value."""
    start = clock()
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
        if elapsed >= timeout:
            raise WaitTimeout(desc, elapsed, last_value, last_error)
        sleep(min(poll, max(0.0, timeout - elapsed)))
