"""Namespaces left behind by grading runs that were killed, and which run each belongs to.

Why: ``stop()`` deletes a run's namespace, but a killed run (Ctrl-C twice, a closed laptop, an
OOM kill) leaves it. On kind its leftovers do harm: its grader Services hold the NodePorts
30080-30089, and its Gateways of class ``mlops-labs`` are merged by Traefik onto the one ``web``
entrypoint, where equal-priority ``PathPrefix /`` rules of two Gateways tie in no defined order,
so an old run's route can answer this run's requests.

Each run's namespace carries the host and PID of the harness that made it
(:data:`~.real.RUN_HOST`, :data:`~.real.RUN_PID`). A namespace is *stale* when that process is
gone (same host, no such PID), or when it has no such annotations (made by an older harness)
and is older than :data:`UNMARKED_GRACE_S`. Other namespaces are kept: a live run is never
touched.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Callable

from harness.cluster.base import Obj

from .real import MANAGED_BY, RUN_HOST, RUN_PID

UNMARKED_GRACE_S = 3600.0
SELECTOR = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # someone else's process
        return True
    return True


def _created(ns: Obj) -> float | None:
    ts = ns["metadata"].get("creationTimestamp")
    if not ts:
        return None
    try:
        return time.mktime(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    except ValueError:
        return None


def is_run_namespace(ns: Obj) -> bool:
    """A grading run's namespace (not an addon's, such as ``mlops-gateway``, which has the label too)."""
    ann = ns["metadata"].get("annotations") or {}
    return RUN_PID in ann or ns["metadata"]["name"].startswith("grade-")


def why_stale(ns: Obj, *, host: str | None = None, now: float | None = None,
              alive: Callable[[int], bool] = pid_alive) -> str | None:
    """Why ``ns`` belongs to a run that is gone (a phrase), or None when it may be alive."""
    if not is_run_namespace(ns) or ns["metadata"].get("deletionTimestamp"):
        return None
    ann = ns["metadata"].get("annotations") or {}
    host = host or socket.gethostname()
    if RUN_PID in ann:
        try:
            pid = int(ann[RUN_PID])
        except ValueError:
            return None
        if ann.get(RUN_HOST) == host and not alive(pid):
            return f"its run (PID {pid} on {host}) has ended"
        return None
    created = _created(ns)
    now = time.time() if now is None else now
    if created is not None and now - created > UNMARKED_GRACE_S:
        return f"made by an older harness {int((now - created) // 60)} minutes ago"
    return None
