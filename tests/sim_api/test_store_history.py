"""The store's additions for the HTTP API: watch unsubscribe, the event ring buffer, DELETED's resourceVersion.

Blind spot before: a watcher could never be removed (every HTTP watch would leak one), a watch
could not resume from a resourceVersion, and a DELETED event carried the object's last
resourceVersion instead of the deletion's, so a client resuming from it saw the deletion again.
"""
from __future__ import annotations

import pytest

from harness.cluster.sim.clock import FakeClock
from harness.cluster.sim.store import Expired, Store


def _cm(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"}}


def test_unwatch_stops_notifications():
    s = Store(FakeClock())
    seen: list[str] = []
    stop = s.watch(lambda ev, obj: seen.append(ev))
    s.create(_cm("a"))
    stop()
    s.create(_cm("b"))
    assert seen == ["ADDED"]
    stop()   # idempotent


def test_events_since_resumes_in_order_and_filters_by_kind():
    s = Store(FakeClock())
    a = s.create(_cm("a"))
    rv = int(a["metadata"]["resourceVersion"])
    a["data"] = {"k": "v"}
    s.update(a)
    s.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "namespace": "default"}})
    deleted = s.delete("ConfigMap", "default", "a")
    evs = s.events_since(rv, "ConfigMap")
    assert [e.type for e in evs] == ["MODIFIED", "DELETED"]
    assert [e.rv for e in evs] == sorted(e.rv for e in evs)
    assert deleted["metadata"]["resourceVersion"] == str(evs[-1].rv) == str(s.revision)
    assert s.events_since(s.revision) == []


def test_compacted_resource_version_is_expired():
    s = Store(FakeClock(), history=3)
    for i in range(6):
        s.create(_cm(f"c{i}"))
    assert [e.rv for e in s.events_since(3)] == [4, 5, 6]
    with pytest.raises(Expired) as exc:
        s.events_since(1)
    assert exc.value.code == 410 and "too old resource version" in exc.value.message


def test_list_with_revision_is_the_revision_of_the_last_write():
    s = Store(FakeClock())
    s.create(_cm("a"))
    s.create(_cm("b"))
    objs, rv = s.list_with_revision("ConfigMap", "default")
    assert [o["metadata"]["name"] for o in objs] == ["a", "b"] and rv == s.revision == 2
