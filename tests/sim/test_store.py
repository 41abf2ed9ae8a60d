"""The tracker: deep copies, API errors, resourceVersion, generation, actions, reactors, watches."""
from __future__ import annotations

import pytest

from harness.cluster.base import AlreadyExists, Conflict, Forbidden, NotFound
from harness.cluster.sim import FakeClock
from harness.cluster.sim.labels import parse_selector
from harness.cluster.sim.store import Store


def cm(name, **labels):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "ns", "labels": labels},
            "data": {"a": "1"}}


def test_deep_copies_and_metadata():
    s = Store(FakeClock())
    created = s.create(cm("x"))
    created["data"]["a"] = "changed"
    got = s.get("ConfigMap", "ns", "x")
    assert got["data"]["a"] == "1"
    assert got["metadata"]["resourceVersion"] and got["metadata"]["uid"] and got["metadata"]["generation"] == 1
    assert got["metadata"]["creationTimestamp"] == "2024-01-01T00:00:00Z"


def test_errors_are_the_apis():
    s = Store(FakeClock())
    s.create(cm("x"))
    with pytest.raises(AlreadyExists, match='configmaps "x" already exists'):
        s.create(cm("x"))
    with pytest.raises(NotFound, match='deployments.apps "nope" not found'):
        s.get("Deployment", "ns", "nope")
    stale = s.get("ConfigMap", "ns", "x")
    fresh = s.get("ConfigMap", "ns", "x")
    fresh["data"]["a"] = "2"
    s.update(fresh)
    stale["data"]["a"] = "3"
    with pytest.raises(Conflict, match="the object has been modified"):
        s.update(stale)


def test_generation_bumps_on_spec_change_only():
    s = Store(FakeClock())
    d = s.create({"kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}, "spec": {"replicas": 1}})
    d["status"] = {"replicas": 1}
    d = s.update(d, subresource="status")
    assert d["metadata"]["generation"] == 1
    d["spec"]["replicas"] = 2
    rv = d["metadata"]["resourceVersion"]
    d = s.update(d)
    assert d["metadata"]["generation"] == 2 and d["status"] == {"replicas": 1} and d["metadata"]["resourceVersion"] != rv
    assert s.update(d)["metadata"]["resourceVersion"] == d["metadata"]["resourceVersion"]   # no-op write


def test_sorted_lists_selectors_actions_reactors_and_watch():
    s = Store(FakeClock())
    seen = []
    s.watch(lambda ev, o: seen.append((ev, o["metadata"]["name"])))
    for n, tier in (("b", "web"), ("a", "db"), ("c", "web")):
        s.create(cm(n, tier=tier))
    assert [o["metadata"]["name"] for o in s.list("ConfigMap", "ns")] == ["a", "b", "c"]
    assert [o["metadata"]["name"] for o in s.list("ConfigMap", "ns", "tier=web")] == ["b", "c"]
    assert [o["metadata"]["name"] for o in s.list("ConfigMap", "ns", "tier!=web")] == ["a"]
    assert seen == [("ADDED", "b"), ("ADDED", "a"), ("ADDED", "c")]
    s.prepend_reactor("create", "ConfigMap", lambda a: (True, None, Forbidden("quota exceeded")))
    with pytest.raises(Forbidden, match="quota exceeded"):
        s.create(cm("d"))
    assert [(a.verb, a.name) for a in s.actions if a.verb == "create"][-1] == ("create", "d")
    s.delete("ConfigMap", "ns", "a")
    assert seen[-1] == ("DELETED", "a")


@pytest.mark.parametrize("sel,labels,want", [
    ("a=b", {"a": "b"}, True), ("a==b", {"a": "c"}, False), ("a", {"a": ""}, True), ("!a", {"a": "x"}, False),
    ("a in (x, y),b notin (z)", {"a": "y", "b": "q"}, True), ("a in (x,y)", {"a": "z"}, False),
])
def test_label_selector_syntax(sel, labels, want):
    assert parse_selector(sel)(labels) is want


def test_generate_name():
    s = Store(FakeClock())
    o = s.create({"kind": "Pod", "metadata": {"generateName": "web-abc-", "namespace": "ns"}, "spec": {}})
    assert o["metadata"]["name"].startswith("web-abc-") and len(o["metadata"]["name"]) == 13
