"""Upstream unit-test tables for the Deployment formulas (deployment_util_test.go)."""
from __future__ import annotations

import pytest

from harness.cluster.sim import rollout as ru
from harness.cluster.sim.clock import FAKE_EPOCH, rfc3339


def dep(replicas, surge=None, unavail=None, strategy="RollingUpdate", **status):
    s = {"type": strategy}
    if strategy == "RollingUpdate":
        s["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavail}
    return {"metadata": {"name": "d", "generation": 1}, "spec": {"replicas": replicas, "strategy": s,
                                                                 "progressDeadlineSeconds": 10},
            "status": status}


@pytest.mark.parametrize("surge,unavail,desired,want", [
    ("0%", "0%", 0, (0, 1)),          # fencepost
    ("39%", "39%", 10, (4, 3)),       # ceil / floor
    ("25%", "25%", 1, (1, 0)),
    ("25%", "25%", 3, (1, 0)),
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 10, (3, 2)),
    (0, 0, 5, (0, 1)),
    ("10%", "10%", 3, (1, 0)),
])
def test_resolve_fenceposts(surge, unavail, desired, want):
    assert ru.resolve_fenceposts(surge, unavail, desired) == want


@pytest.mark.parametrize("bad", ["abc", "1.5%"])
def test_resolve_fenceposts_invalid(bad):
    with pytest.raises(ValueError):
        ru.resolve_fenceposts(bad, "25%", 10)


@pytest.mark.parametrize("replicas,mu,strategy,want", [
    (10, 5, "RollingUpdate", 5), (10, 10, "RollingUpdate", 10), (5, 10, "RollingUpdate", 5),
    (0, 10, "RollingUpdate", 0), (10, None, "Recreate", 0), (10, "50%", "RollingUpdate", 5),
    (10, "100%", "RollingUpdate", 10), (5, "100%", "RollingUpdate", 5),
])
def test_max_unavailable(replicas, mu, strategy, want):
    assert ru.max_unavailable(dep(replicas, 0 if strategy == "RollingUpdate" else None, mu, strategy)) == want


@pytest.mark.parametrize("strategy,replicas,surge,new_n,other,want", [
    ("RollingUpdate", 1, 1, 5, 5, 5),
    ("RollingUpdate", 6, 10, 2, 0, 6),
    ("Recreate", 3, None, 0, 0, 3),
])
def test_new_rs_new_replicas(strategy, replicas, surge, new_n, other, want):
    d = dep(replicas, surge, 0, strategy)
    new = {"spec": {"replicas": new_n}}
    old = {"spec": {"replicas": other}}
    assert ru.new_rs_new_replicas(d, [old, new], new) == want


@pytest.mark.parametrize("desired,current,updated,available,want", [
    (5, 5, 5, 4, False), (5, 5, 5, 3, False), (5, 5, 5, 5, True), (5, 5, 4, 5, False),
    (1, 2, 1, 1, False), (1, 1, 1, 0, False),
])
def test_deployment_complete(desired, current, updated, available, want):
    d = dep(desired, 0, 1)
    status = {"replicas": current, "updatedReplicas": updated, "availableReplicas": available,
              "observedGeneration": 1}
    assert ru.deployment_complete(d, status) is want


def _progressing(last_update: float, reason: str = ru.RS_UPDATED) -> dict:
    return {"conditions": [{"type": "Progressing", "status": "True", "reason": reason,
                            "lastUpdateTime": rfc3339(FAKE_EPOCH + last_update),
                            "lastTransitionTime": rfc3339(FAKE_EPOCH)}]}


@pytest.mark.parametrize("last,now,reason,deadline,want", [
    (69, 80, ru.RS_UPDATED, 10, True),       # 1:09 + 10 s = 1:19 < 1:20
    (71, 80, ru.RS_UPDATED, 10, False),      # 1:21 > 1:20
    (0, 999, ru.RS_UPDATED, None, False),    # no deadline
    (0, 999, ru.NEW_RS_AVAILABLE, 10, False),
    (70, 80, ru.RS_UPDATED, 10, False),      # strictly before: 1:20 is not before 1:20
])
def test_deployment_timed_out(last, now, reason, deadline, want):
    d = dep(1, 1, 0)
    d["spec"]["progressDeadlineSeconds"] = deadline
    assert ru.deployment_timed_out(d, _progressing(last, reason), FAKE_EPOCH + now) is want


def test_set_condition_keeps_transition_time_and_moves_last():
    st = {"conditions": [ru.new_condition("Progressing", "True", ru.NEW_RS_CREATED, "a", FAKE_EPOCH),
                         ru.new_condition("Available", "False", ru.MIN_UNAVAILABLE, "b", FAKE_EPOCH)]}
    ru.set_condition(st, ru.new_condition("Progressing", "True", ru.NEW_RS_AVAILABLE, "c", FAKE_EPOCH + 30))
    assert [c["type"] for c in st["conditions"]] == ["Available", "Progressing"]
    p = st["conditions"][1]
    assert p["lastTransitionTime"] == rfc3339(FAKE_EPOCH) and p["lastUpdateTime"] == rfc3339(FAKE_EPOCH + 30)


def test_template_hash_is_safe_encoded_and_stable():
    t = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a", "image": "x:1"}]}}
    h = ru.template_hash(t)
    assert h == ru.template_hash(t) and set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10
    assert ru.template_hash(t, 1) != h
