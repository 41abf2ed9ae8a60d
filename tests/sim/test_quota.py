"""LimitRanger and ResourceQuota admission (harness/cluster/sim/quota.py).

Rows follow upstream's tables in plugin/pkg/admission/limitranger/admission_test.go
(TestMergePodResourceRequirements, TestPodLimitFunc) and
staging/.../admission/plugin/resourcequota/admission_test.go (TestAdmitExceedQuota...),
cut to what the sim supports: type Container items, pods/requests/limits quotas.
"""
from __future__ import annotations

import pytest

from harness.cluster.sim import quota


def _pod(*containers, phase=None):
    p = {"metadata": {"name": "p", "namespace": "n"},
         "spec": {"containers": [{"name": f"c{i}", "resources": r} for i, r in enumerate(containers)]}}
    if phase:
        p["status"] = {"phase": phase}
    return p


LR = [{"metadata": {"name": "lr"}, "spec": {"limits": [{"type": "Container", "default": {"memory": "1Gi"},
                                                         "defaultRequest": {"memory": "128Mi"},
                                                         "max": {"memory": "2Gi"}, "min": {"memory": "4Mi"}}]}}]


@pytest.mark.parametrize("resources, want", [
    # no resources: both defaults
    ({}, {"limits": {"memory": "1Gi"}, "requests": {"memory": "128Mi"}}),
    # what the container sets wins
    ({"limits": {"memory": "512Mi"}, "requests": {"memory": "256Mi"}},
     {"limits": {"memory": "512Mi"}, "requests": {"memory": "256Mi"}}),
    # only a request: the default limit is added
    ({"requests": {"memory": "64Mi"}}, {"limits": {"memory": "1Gi"}, "requests": {"memory": "64Mi"}}),
    # other resources are left alone
    ({"requests": {"cpu": "100m"}}, {"limits": {"memory": "1Gi"}, "requests": {"cpu": "100m", "memory": "128Mi"}}),
])
def test_limitranger_merges_defaults(resources, want):
    out = quota.default_pod(_pod(resources), LR)
    assert out["spec"]["containers"][0]["resources"] == want


def test_item_defaults_follow_set_defaults_limit_range_item():
    """default <- max, defaultRequest <- default, then <- min (SetDefaults_LimitRangeItem)."""
    default, req = quota.item_defaults({"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "1Mi"}})
    assert default == {"cpu": "2"}
    assert req == {"cpu": "2", "memory": "1Mi"}


@pytest.mark.parametrize("resources, want", [
    ({"limits": {"memory": "1Ti"}}, ["maximum memory usage per Container is 2Gi, but limit is 1Ti"]),
    ({"limits": {"memory": "2Gi"}}, []),
    ({"limits": {"memory": "1Gi"}, "requests": {"memory": "1Mi"}},
     ["minimum memory usage per Container is 4Mi, but request is 1Mi"]),
    ({"requests": {"memory": "8Mi"}}, ["maximum memory usage per Container is 2Gi.  No limit is specified"]),
])
def test_limitranger_validates_min_and_max(resources, want):
    assert quota.limit_errors(_pod(resources), LR) == want


Q = [{"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2", "limits.memory": "2Gi"}}}]
SMALL = {"limits": {"memory": "512Mi"}, "requests": {"memory": "512Mi"}}


def test_quota_admits_within_hard():
    assert quota.quota_error(_pod(SMALL), Q, [_pod(SMALL)]) is None


def test_quota_refuses_over_pods_with_upstream_text():
    err = quota.quota_error(_pod(SMALL), Q, [_pod(SMALL), _pod(SMALL)])
    assert err == "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"


def test_quota_names_every_exceeded_resource_sorted():
    big = {"limits": {"memory": "1536Mi"}, "requests": {"memory": "1Gi"}}
    err = quota.quota_error(_pod(big), Q, [_pod(SMALL), _pod(SMALL)])
    assert err == ("exceeded quota: q, requested: limits.memory=1536Mi,pods=1, used: limits.memory=1Gi,pods=2, "
                   "limited: limits.memory=2Gi,pods=2")


def test_quota_ignores_terminal_pods():
    done = [_pod(SMALL, phase="Succeeded"), _pod(SMALL, phase="Failed")]
    assert quota.quota_error(_pod(SMALL), Q, done) is None


def test_quota_must_specify_a_tracked_resource():
    assert quota.quota_error(_pod({}), Q, []) == "failed quota: q: must specify limits.memory"


def test_flood_is_bounded_by_the_grading_namespace_budget():
    """replicas: 500 with 1m/1Mi requests: the quota caps the pods at 16 and the
    ReplicaSet reports the quota's message (before: 187 containers were created)."""
    from harness.cluster.sim.clock import FakeClock
    from harness.cluster.sim.cluster import SimCluster
    from harness.cluster.sim.runtime import FakeRuntime
    from harness.labs.cluster_lab import namespace_budget

    clock = FakeClock()
    c = SimCluster(runtime=FakeRuntime(clock, images=("x:1",)), clock=clock, namespace="g")
    c.start()
    c.apply(namespace_budget())
    c.apply([{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
              "spec": {"replicas": 500, "selector": {"matchLabels": {"app": "w"}},
                       "template": {"metadata": {"labels": {"app": "w"}},
                                    "spec": {"containers": [{"name": "c", "image": "x:1", "resources": {
                                        "requests": {"cpu": "1m", "memory": "1Mi"}}}]}}}}])
    most = 0
    for _ in range(60):
        c.step(1)
        most = max(most, len(c.list("Pod")))
    assert most == 16
    events = [e["message"] for e in c.list("Event") if e["reason"] == "FailedCreate"]
    assert events and "exceeded quota: grading-quota" in events[-1]
    c.stop()
