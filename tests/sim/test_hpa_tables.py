"""The HPA algorithm against the reference sheet's tables (section 4.4 and 4.6), as pure functions.

Rows are transcribed from kubernetes-semantics.md (replica_calculator_test.go,
horizontal_test.go). Like upstream's harness, every pod has 2 containers and
``requests``/``levels`` are per container.
"""
from __future__ import annotations

import pytest

from harness.cluster.sim.clock import rfc3339
from harness.cluster.sim.hpa import (MetricError, PodMetric, Recommendation, ReplicaCalculator, ScaleEvent,
                                     convert_with_behavior_rate, convert_with_rules, default_hpa, stabilize_legacy)

T0 = 1_700_000_000.0
NOW = T0 + 1000          # past the 5-minute CPU initialization period


def mkpod(i: int, *, phase="Running", ready=True, request: str | None = "1", start=T0, ready_at=None,
          deleted=False) -> dict:
    res = {"requests": {"cpu": request}} if request is not None else {}
    p = {"metadata": {"name": f"pod-{i}"},
         "spec": {"containers": [{"name": f"container{k}", "resources": res} for k in (1, 2)]},
         "status": {"phase": phase, "startTime": rfc3339(start),
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "lastTransitionTime": rfc3339(ready_at if ready_at is not None else start)}]}}
    if deleted:
        p["metadata"]["deletionTimestamp"] = rfc3339(NOW)
    return p


def metrics(levels, names=None, ts=NOW, window=60.0):
    names = names or [f"pod-{i}" for i in range(len(levels))]
    return {n: PodMetric(2 * lvl, ts, window) for n, lvl in zip(names, levels)}


def calc():
    # the sheet: upstream's tests use a 2 min init period and 10 s delay; the pods here are far past both
    return ReplicaCalculator(0.1, 300, 30)


def rows():
    R = lambda *v: v  # noqa: E731
    # name, current, pods (readiness list / phases / requests), levels, metric pod names, target, util, replicas
    return [
        R("ScaleUp", 3, [mkpod(i) for i in range(3)], [300, 500, 700], None, 30, 50, 5),
        R("ScaleUpUnreadyLessScale", 3, [mkpod(0, ready=False), mkpod(1), mkpod(2)], [300, 500, 700], None, 30,
          60, 4),
        R("ScaleUpHotCpuLessScale", 3, [mkpod(0, start=NOW - 20), mkpod(1), mkpod(2)], [300, 500, 700], None, 30,
          60, 4),
        R("ScaleUpUnreadyNoScale", 3, [mkpod(0), mkpod(1, ready=False), mkpod(2, ready=False)], [400, 500, 700],
          None, 30, 40, 3),
        R("ScaleUpIgnoresFailedPods", 2, [mkpod(0), mkpod(1), mkpod(2, phase="Failed"), mkpod(3, phase="Failed")],
          [500, 700], None, 30, 60, 4),
        R("ScaleUpIgnoresDeletionPods", 2, [mkpod(0), mkpod(1), mkpod(2, deleted=True), mkpod(3, deleted=True)],
          [500, 700], None, 30, 60, 4),
        R("ScaleDown", 5, [mkpod(i) for i in range(5)], [100, 300, 500, 250, 250], None, 50, 28, 3),
        R("ScaleDownIncludeUnreadyPods", 5, [mkpod(0), mkpod(1), mkpod(2), mkpod(3, ready=False),
                                             mkpod(4, ready=False)], [100, 300, 500, 250, 250], None, 50, 30, 2),
        R("ScaleDownExcludeUnscheduledPods", 5, [mkpod(0)] + [mkpod(i, phase="Pending") for i in range(1, 5)],
          [100], None, 50, 10, 1),
        R("Tolerance", 3, [mkpod(0, request="0.9"), mkpod(1, request="1.0"), mkpod(2, request="1.1")],
          [1010, 1030, 1020], None, 100, 102, 3),
        R("SuperfluousMetrics", 4, [mkpod(i) for i in range(4)], [4000, 9500, 3000, 7000, 3200, 2000], None, 100,
          587, 24),
        R("MissingMetrics", 4, [mkpod(i) for i in range(4)], [400, 95], None, 100, 24, 3),
        R("MissingMetricsNoChangeEq", 2, [mkpod(i) for i in range(2)], [1000], None, 100, 100, 2),
        R("MissingMetricsNoChangeGt", 2, [mkpod(i) for i in range(2)], [1900], None, 100, 190, 2),
        R("MissingMetricsNoChangeLt", 2, [mkpod(i) for i in range(2)], [600], None, 100, 60, 2),
        R("MissingMetricsUnreadyChange", 3, [mkpod(0, ready=False), mkpod(1), mkpod(2)], [100, 450], None, 50, 45,
          3),
        R("MissingMetricsUnreadyScaleUp", 3, [mkpod(0, ready=False), mkpod(1), mkpod(2)], [100, 2000], None, 50,
          200, 4),
        R("MissingMetricsUnreadyScaleDown", 4, [mkpod(0, ready=False), mkpod(1), mkpod(2), mkpod(3)],
          [100, 100, 100], None, 50, 10, 3),
        R("MissingMetricsScaleDownTargetOver100", 4, [mkpod(0, ready=False), mkpod(1, request="1.0"),
                                                      mkpod(2, request="2.0"), mkpod(3, request="2.0")],
          [200, 100, 100], None, 300, 6, 2),
        R("DuringRollingUpdateWithMaxSurge", 2, [mkpod(i) for i in range(3)], [100, 100], None, 50, 10, 2),
    ]


@pytest.mark.parametrize("name,current,pods,levels,names,target,util,want", rows(), ids=[r[0] for r in rows()])
def test_replica_calculator_table(name, current, pods, levels, names, target, util, want):
    got, got_util, _ = calc().resource_replicas(current, target, "cpu", pods, metrics(levels, names), NOW)
    assert (got, got_util) == (want, util)


def test_empty_cpu_request():
    with pytest.raises(MetricError, match="missing request for cpu in container container1 of Pod pod-0"):
        calc().resource_replicas(1, 100, "cpu", [mkpod(0, request=None)], metrics([200]), NOW)


def test_unready_pods_only():
    with pytest.raises(MetricError, match=r"did not receive metrics for targeted pods \(pods might be unready\)"):
        calc().resource_replicas(1, 50, "cpu", [mkpod(0, phase="Pending")], metrics([200]), NOW)


def test_hot_cpu_window_rule_uses_the_ready_transition():
    # started 60 s ago (inside the init period), Ready 50 s ago: a 60 s window that began before Ready is ignored
    pods = [mkpod(0, start=NOW - 60, ready_at=NOW - 50), mkpod(1), mkpod(2)]
    assert calc().resource_replicas(3, 30, "cpu", pods, metrics([300, 500, 700]), NOW)[:2] == (4, 60)
    pods[0] = mkpod(0, start=NOW - 120, ready_at=NOW - 100)   # window began after Ready: counted
    assert calc().resource_replicas(3, 30, "cpu", pods, metrics([300, 500, 700]), NOW)[:2] == (5, 50)


def test_never_ready_after_init_period_is_unready_but_once_ready_counts():
    never = mkpod(0, ready=False, start=T0, ready_at=T0 + 5)      # transition within 30 s of start
    was_ready = mkpod(0, ready=False, start=T0, ready_at=T0 + 600)
    c = calc()
    assert c.resource_replicas(3, 30, "cpu", [never, mkpod(1), mkpod(2)], metrics([300, 500, 700]), NOW)[0] == 4
    assert c.resource_replicas(3, 30, "cpu", [was_ready, mkpod(1), mkpod(2)], metrics([300, 500, 700]),
                               NOW)[0] == 5


@pytest.mark.parametrize("current,levels,target,want", [
    (3, [20000, 10000, 30000], 15000, 4),       # "Custom pods metric qps"
    (5, [20000, 19000, 21000], 20000, 5),       # "Plain metric NoChangeEq"
])
def test_plain_metric_table(current, levels, target, want):
    """Upstream's harness makes ``currentReplicas`` pods and gives metrics to the first
    ``len(levels)``: "NoChangeEq" has 5 pods, 2 of them without metrics, at exactly the target.
    Blind spot of the old row: it made one pod per level (3), so no pod was missing and the
    sim's fill of missing pods at 0 when the ratio is exactly 1.0 (5 -> 3) went unseen."""
    ms = {f"pod-{i}": PodMetric(v, NOW, 60) for i, v in enumerate(levels)}
    pods = [mkpod(i) for i in range(current)]
    assert calc().plain_metric_replicas(current, target, "qps", pods, ms, NOW)[0] == want


def test_plain_metric_missing_pods_at_exactly_the_target_keep_the_count():
    ms = {f"pod-{i}": PodMetric(20000, NOW, 60) for i in range(3)}
    assert calc().plain_metric_replicas(5, 20000, "qps", [mkpod(i) for i in range(5)], ms, NOW)[0] == 5


@pytest.mark.parametrize("usage, want", [(11000, 10), (9000, 10), (11001, 12), (8999, 9)])
def test_tolerance_is_inclusive_at_both_ends(usage, want):
    """Upstream since v1.33 (``Tolerances.isWithin``): ``1 - tol <= ratio <= 1 + tol``. The old
    ``abs(1 - ratio) <= tol`` put a ratio of exactly 1.1 outside (0.10000000000000009 > 0.1) and
    scaled 10 -> 12."""
    ms = {f"pod-{i}": PodMetric(usage, NOW, 60) for i in range(10)}
    assert calc().plain_metric_replicas(10, 10000, "qps", [mkpod(i) for i in range(10)], ms, NOW)[0] == want
    assert ReplicaCalculator(0.1)._within(1.1) and ReplicaCalculator(0.1)._within(0.9)


def test_a_pod_without_the_named_container_fails_the_metric():
    """ContainerResource: upstream (``calculatePodRequestsFromContainers``) fails the metric with
    ``container <c> not found in Pod <p>``; the sim used to skip such a pod silently."""
    pods = [mkpod(0), mkpod(1)]
    pods[1]["spec"]["containers"] = [{"name": "other", "resources": {"requests": {"cpu": "1"}}}]
    with pytest.raises(MetricError, match="^container container1 not found in Pod pod-1$"):
        calc().resource_replicas(2, 50, "cpu", pods, metrics([500, 500]), NOW, container="container1")


# ---- section 4.6: rate rules and stabilization ------------------------------------------------

def rules(direction: str, *pols):
    """``("Pods", 4, 60)`` tuples -> a defaulted behavior; the other direction keeps the defaults."""
    hpa = {"spec": {"behavior": {direction: {"policies": [
        {"type": t, "value": v, "periodSeconds": p} for t, v, p in pols]}} if pols else {}}}
    b = default_hpa(hpa)["spec"]["behavior"]
    return b["scaleUp"], b["scaleDown"]


SCALING_WITH_RULES = [
    (5, 7, 3, 8, (), 7, "DesiredWithinRange"),
    (3, 1, 2, 8, (), 2, "TooFewReplicas"),
    (1, 0, 0, 10, (), 0, "DesiredWithinRange"),
    (20, 1000, 1, 10, (), 10, "TooManyReplicas"),
    (100, 1000, 100, 150, (), 150, "TooManyReplicas"),
    (3, 1000, 1, 2000, ("scaleUp", ("Percent", 1, 60)), 4, "ScaleUpLimit"),
    (10, 50, 1, 1000, (), 20, "ScaleUpLimit"),
    (10, 500, 1, 1000, ("scaleUp", ("Pods", 100, 60), ("Percent", 100, 60)), 110, "ScaleUpLimit"),
    (10, 500, 1, 1000, ("scaleUp", ("Pods", 2, 60), ("Percent", 100, 60)), 20, "ScaleUpLimit"),
    (10, 50, 1, 1000, ("scaleUp", ("Pods", 100, 60)), 50, "DesiredWithinRange"),
    (10, 50, 1, 1000, ("scaleUp", ("Pods", 30, 60)), 40, "ScaleUpLimit"),
    (10, 50, 1, 1000, ("scaleUp", ("Percent", 200, 60)), 30, "ScaleUpLimit"),
    (100, 2, 1, 1000, ("scaleDown", ("Pods", 20, 60), ("Percent", 1, 60)), 80, "ScaleDownLimit"),
    (100, 2, 1, 1000, ("scaleDown", ("Pods", 2, 60), ("Percent", 1, 60)), 98, "ScaleDownLimit"),
    (10, 0, 1, 1000, ("scaleDown", ("Pods", 100, 60)), 1, "TooFewReplicas"),
    (10, 2, 5, 1000, ("scaleDown", ("Percent", 100, 60)), 5, "TooFewReplicas"),
    (10, 2, 1, 1000, ("scaleDown", ("Pods", 5, 60)), 5, "ScaleDownLimit"),
    (10, 5, 1, 1000, ("scaleDown", ("Percent", 50, 60)), 5, "DesiredWithinRange"),
]


@pytest.mark.parametrize("current,proposal,mn,mx,rule,want,reason", SCALING_WITH_RULES)
def test_scaling_with_rules(current, proposal, mn, mx, rule, want, reason):
    up, down = rules(rule[0], *rule[1:]) if rule else rules("scaleUp")
    got = convert_with_behavior_rate(current, proposal, mn, mx, up, down, [], [], NOW)
    assert got[:2] == (want, reason)


def ev(*changes):
    return [ScaleEvent(c, NOW - 10 * (i + 1)) for i, c in enumerate(changes)]


WITH_EVENTS = [
    (100, 500, 1, 1000, ev(1, 5, 9), [], ("scaleUp", ("Pods", 150, 120)), 235, "ScaleUpLimit"),
    (100, 500, 1, 1000, ev(1, 5, 9), [], ("scaleUp", ("Percent", 200, 120)), 255, "ScaleUpLimit"),
    (100, 500, 1, 1000, ev(1, 5, 9), [], ("scaleUp", ("Pods", 5, 120)), 100, "ScaleUpLimit"),
    (100, 500, 1, 200, ev(1, 5, 9), [], ("scaleUp", ("Pods", 300, 60)), 200, "TooManyReplicas"),
    (6, 24, 1, 1000, ev(4), ev(2), ("scaleUp", ("Percent", 300, 300)), 16, "ScaleUpLimit"),
    (100, 2, 1, 1000, [], ev(1, 5, 9), ("scaleDown", ("Pods", 5, 120)), 100, "ScaleDownLimit"),
    (100, 0, 1, 1000, [], ev(2, 4, 6), ("scaleDown", ("Percent", 50, 120)), 56, "ScaleDownLimit"),
    (10, 1, 1, 1000, ev(2), ev(4), ("scaleDown", ("Percent", 50, 180)), 6, "ScaleDownLimit"),
    (100, 0, 1, 1000, [], ev(10, 10, 10), ("scaleDown", ("Percent", 10, 120)), 100, "ScaleDownLimit"),
    (10, 5, 1, 1000, [], ev(10, 10, 10), ("scaleDown", ("Percent", 1000, 120)), 5, "DesiredWithinRange"),
]


@pytest.mark.parametrize("current,proposal,mn,mx,up_ev,down_ev,rule,want,reason", WITH_EVENTS)
def test_scaling_with_earlier_events(current, proposal, mn, mx, up_ev, down_ev, rule, want, reason):
    up, down = rules(rule[0], *rule[1:])
    assert convert_with_behavior_rate(current, proposal, mn, mx, up, down, up_ev, down_ev, NOW)[:2] == \
        (want, reason)


def test_events_outside_the_period_do_not_count():
    up, down = rules("scaleUp", ("Pods", 5, 60))
    old = [ScaleEvent(50, NOW - 60), ScaleEvent(50, NOW - 61)]   # "After(cutoff)": exactly 60 s ago is out
    assert convert_with_behavior_rate(100, 500, 1, 1000, up, down, old, [], NOW)[0] == 105


@pytest.mark.parametrize("recs,proposal,want", [
    ([], 5, 5),
    ([(4, -120), (5, -60)], 3, 5),
    ([(1, -120), (2, -60)], 3, 3),
    ([(10, -600), (9, -540)], 3, 3),
    ([(10, -600), (4, -60), (5, -120), (9, -540)], 3, 5),
])
def test_normalize_desired_replicas_legacy(recs, proposal, want):
    hist = [Recommendation(r, NOW + dt) for r, dt in recs]
    assert stabilize_legacy(hist, proposal, NOW, 300) == want
    assert Recommendation(proposal, NOW) in hist      # the raw proposal is recorded (replacing a stale one)


@pytest.mark.parametrize("current,desired,mn,mx,want", [
    (3, 5, 2, 6, (5, "DesiredWithinRange")),         # TestScaleUp end-to-end numbers
    (3, 20, 1, 20, (6, "ScaleUpLimit")),             # max(2 x 3, 4)
    (1, 20, 1, 20, (4, "ScaleUpLimit")),             # the minimum of 4
    (3, 20, 1, 5, (5, "TooManyReplicas")),
    (5, 1, 2, 10, (2, "TooFewReplicas")),
])
def test_legacy_limits(current, desired, mn, mx, want):
    assert convert_with_rules(current, desired, mn, mx)[:2] == want
