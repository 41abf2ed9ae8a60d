"""Tables that reach the data plane a moment after a controller wants them.

Both kube-proxy (Service endpoints) and a Gateway implementation (route tables)
lag behind the API: a change is *wanted* now and *programmed* ``delay`` seconds
later, additions and removals alike. The endpoints controller and the Gateway
router keep their tables in one of these; the data plane reads ``get``.
"""
from __future__ import annotations

import threading
from typing import Any, Hashable


class DelayedTables:
    def __init__(self, timers: Any, delay: float):
        self.timers, self.delay = timers, delay
        self._lock = threading.Lock()
        self._programmed: dict[Hashable, Any] = {}
        self._desired: dict[Hashable, Any] = {}
        self._pending: list[tuple[float, Hashable, Any]] = []

    def get(self, key: Hashable) -> Any:
        """The programmed table of ``key`` (None when there is none)."""
        with self._lock:
            return self._programmed.get(key)

    def keys(self) -> list[Hashable]:
        """Every key programmed or about to be."""
        with self._lock:
            return sorted(set(self._programmed) | set(self._desired))

    def wanted(self) -> set[Hashable]:
        return set(self._desired)

    def busy(self) -> bool:
        """Anything wanted or still on its way."""
        return bool(self._desired or self._pending)

    def want(self, key: Hashable, table: Any, now: float) -> None:
        """Ask for ``table`` (None: remove) at ``key``; it is programmed at ``now + delay``."""
        if self._desired.get(key) == table:
            return
        if table is None:
            self._desired.pop(key, None)
        else:
            self._desired[key] = table
        with self._lock:
            self._pending.append((now + self.delay, key, table))

    def program(self, now: float) -> None:
        """Program what is due; ask the timers to wake us for the rest."""
        with self._lock:
            keep = []
            for t, key, table in self._pending:
                if t <= now:
                    if table is None:
                        self._programmed.pop(key, None)
                    else:
                        self._programmed[key] = table
                else:
                    keep.append((t, key, table))
                    self.timers.at(t)
            self._pending = keep
