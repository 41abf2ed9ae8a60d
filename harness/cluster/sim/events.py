"""core/v1 Events, recorded the way client-go's EventRecorder and correlator do.

Why: graders read events (``FailedScheduling``, ``Unhealthy``, ``BackOff``,
``ScalingReplicaSet`` ...) and compare reasons and messages with upstream. An
event repeated for the same object with the same type, reason, message and
source is folded into one object whose ``count`` grows and whose
``lastTimestamp`` moves, as the upstream EventCorrelator does.

Not modelled: the correlator's "similar events" aggregation (``(combined from
similar events)``), rate limiting (spam filter), and event expiry (1 h TTL).
"""
from __future__ import annotations

from typing import Any

from harness.cluster.base import Obj

from .clock import rfc3339


class EventRecorder:
    def __init__(self, store, clock):
        self._store = store
        self._clock = clock
        self._index: dict[tuple, str] = {}   # correlation key -> event name
        self._seq = 0

    def record(self, obj: Obj, type_: str, reason: str, message: str, component: str, *,
               field_path: str = "", host: str = "") -> Obj:
        meta = obj["metadata"]
        ns = meta.get("namespace") or "default"
        involved: dict[str, Any] = {"kind": obj["kind"], "namespace": meta.get("namespace", ""),
                                    "name": meta["name"], "uid": meta.get("uid", ""),
                                    "apiVersion": obj.get("apiVersion", "v1"),
                                    "resourceVersion": meta.get("resourceVersion", "")}
        if field_path:
            involved["fieldPath"] = field_path
        source = {"component": component, **({"host": host} if host else {})}
        key = (ns, involved["kind"], involved["name"], involved["uid"], field_path, type_, reason, message, component)
        now = rfc3339(self._clock.now())
        name = self._index.get(key)
        if name is not None:
            ev = self._store.try_get("Event", ns, name)
            if ev is not None:
                ev["count"] += 1
                ev["lastTimestamp"] = now
                ev["metadata"].pop("resourceVersion", None)
                return self._store.update(ev)
        self._seq += 1
        name = f"{meta['name']}.{self._seq:016x}"
        self._index[key] = name
        ev = {"apiVersion": "v1", "kind": "Event",
              "metadata": {"name": name, "namespace": ns},
              "involvedObject": involved, "reason": reason, "message": message, "type": type_,
              "source": source, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
              "reportingComponent": component, "reportingInstance": host}
        return self._store.create(ev)

    def list(self, namespace: str | None = None, *, involved_kind: str | None = None,
             involved_name: str | None = None) -> list[Obj]:
        evs = [e for e in self._store.list("Event", namespace, record=False)
               if (involved_kind is None or e["involvedObject"]["kind"] == involved_kind)
               and (involved_name is None or e["involvedObject"]["name"] == involved_name)]
        # Oldest first: by lastTimestamp, ties broken by creation order (the hex suffix).
        evs.sort(key=lambda e: (e["lastTimestamp"], e["metadata"]["name"].rsplit(".", 1)[-1]))
        return evs
