"""rolling_test.go tables, run against the controller's own methods on a fake store."""
from __future__ import annotations

import pytest

from harness.cluster.sim.clock import FakeClock
from harness.cluster.sim.deployment import DeploymentController
from harness.cluster.sim.events import EventRecorder
from harness.cluster.sim.loop import Timers
from harness.cluster.sim.store import Store


def _setup(replicas, surge, unavail):
    clock = FakeClock()
    store = Store(clock)
    ctrl = DeploymentController(store, EventRecorder(store, clock), clock, Timers())
    d = store.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "foo", "namespace": "ns"},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"a": "b"}},
                               "strategy": {"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavail}},
                               "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}})
    return store, ctrl, d


def _rs(store, name, replicas, available=None, t=0):
    rs = store.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name, "namespace": "ns"},
                       "spec": {"replicas": replicas, "template": {}}})
    rs["status"] = {"replicas": replicas, "availableReplicas": replicas if available is None else available}
    return store.update(rs, subresource="status")


@pytest.mark.parametrize("surge,old_n,new_n,scaled,target", [
    (0, 10, 0, False, 0), (2, 10, 0, True, 2), (2, 5, 0, True, 7), (2, 10, 2, False, 2), (2, 2, 11, True, 10),
])
def test_reconcile_new_replica_set(surge, old_n, new_n, scaled, target):
    store, ctrl, d = _setup(10, surge, 0 if surge else 1)
    old, new = _rs(store, "old", old_n), _rs(store, "new", new_n)
    got, new2 = ctrl._reconcile_new([old, new], new, d)
    assert got is scaled
    assert new2["spec"]["replicas"] == target


@pytest.mark.parametrize("unavail,old_n,old_avail,want", [
    (0, 10, 10, 9),     # fencepost: maxUnavailable forced to 1
    (2, 10, 10, 8),
    (2, 10, 8, 10),     # 8 available == minAvailable: no scale-down
])
def test_scale_down_old_replica_sets_for_rolling_update(unavail, old_n, old_avail, want):
    store, ctrl, d = _setup(10, 0, unavail)
    old, new = _rs(store, "old", old_n, old_avail), _rs(store, "new", 0)
    ctrl._scale_down_old([old, new], [old], d)
    assert store.get("ReplicaSet", "ns", "old")["spec"]["replicas"] == want


@pytest.mark.parametrize("unavail,old_avail,want", [
    (0, 10, 9), (2, 10, 8),
    (2, 8, 8),          # the 2 unhealthy old pods go first (cleanupUnhealthyReplicas), capped by maxScaledDown 2
])
def test_reconcile_old_replica_sets(unavail, old_avail, want):
    store, ctrl, d = _setup(10, 0, unavail)
    old, new = _rs(store, "old", 10, old_avail), _rs(store, "new", 0)
    assert ctrl.reconcile_old([old, new], [old], new, d)
    assert store.get("ReplicaSet", "ns", "old")["spec"]["replicas"] == want


@pytest.mark.parametrize("cap,unhealthy,removed", [(1, 3, 1), (3, 2, 2), (0, 3, 0)])
def test_cleanup_unhealthy_replicas(cap, unhealthy, removed):
    store, ctrl, d = _setup(10, 0, 1)
    old = _rs(store, "old", 10, 10 - unhealthy)
    _, n = ctrl._cleanup_unhealthy([old], d, cap)
    assert n == removed
    assert store.get("ReplicaSet", "ns", "old")["spec"]["replicas"] == 10 - removed
