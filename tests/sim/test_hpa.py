"""The HPA controller end to end in the sim: FakeRuntime CPU, fake clock, no sleeping.

Timeline of every test: the Deployment and HPA are applied at t=0 and the pods
start at once; metrics-server scrapes at 0 (no pods yet), 15, 30 ... so pods
have metrics from t=30; the HPA syncs 15 s after it is created, then every 15 s
(t=15: "no metrics returned", t=30: the first real decision).
"""
from __future__ import annotations

import pytest

from harness.cluster.base import Invalid
from harness.cluster.sim import FakeApp
from harness.cluster.sim.clock import FAKE_EPOCH, rfc3339

from .hpa_helpers import (PROBE, cond, deployment, hpa, hpa_events, hsim, make_sim, per_pod_apps,  # noqa: F401
                          replicas, set_levels, start_order, status)

UTIL_MSG = "cpu resource utilization (percentage of request)"
NO_METRICS = ("failed to get cpu utilization: unable to get metrics for resource cpu: no metrics returned from "
              "resource metrics API")
NO_STAB_DOWN = {"scaleDown": {"stabilizationWindowSeconds": 0}}


def run_to_first_decision(sim, dep, h, levels, apps=None):
    order = per_pod_apps(sim, apps) if apps is not None else None
    sim.apply([dep, h])
    sim.step(0)
    pods = order if order is not None else start_order(sim)
    set_levels(sim, pods, levels)
    sim.step(30)
    return pods


def test_scale_up_end_to_end(hsim):
    """horizontal_test.go TestScaleUp: min 2, max 6, current 3, target 30 %, levels 300/500/700 -> 5."""
    run_to_first_decision(hsim, deployment(replicas=3), hpa(min_r=2, max_r=6, target=30), [300, 500, 700])
    assert replicas(hsim) == 5
    st = status(hsim)
    assert st["currentReplicas"] == 3 and st["desiredReplicas"] == 5
    assert st["currentMetrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": 50, "averageValue": "1"}}}]
    assert st["lastScaleTime"] == rfc3339(FAKE_EPOCH + 30)
    assert cond(hsim, "AbleToScale") == ("True", "SucceededRescale",
                                         "the HPA controller was able to update the target scale to 5")
    assert cond(hsim, "ScalingActive") == (
        "True", "ValidMetricFound", f"the HPA was able to successfully calculate a replica count from {UTIL_MSG}")
    assert cond(hsim, "ScalingLimited") == ("False", "DesiredWithinRange",
                                            "the desired count is within the acceptable range")
    assert [c["type"] for c in st["conditions"]] == ["AbleToScale", "ScalingActive", "ScalingLimited"]
    assert hpa_events(hsim) == [
        ("Warning", "FailedGetResourceMetric", NO_METRICS),
        ("Warning", "FailedComputeMetricsReplicas",
         "invalid metrics (1 invalid out of 1), first error is: failed to get cpu resource metric value: "
         f"{NO_METRICS}"),
        ("Normal", "SuccessfulRescale", f"New size: 5; reason: {UTIL_MSG} above target")]
    hsim.step(15)        # the 2 new pods have no metric yet: counted as 0 on a scale-up -> 30 % -> stay at 5
    st = status(hsim)
    assert (st["currentReplicas"], st["desiredReplicas"], replicas(hsim)) == (5, 5, 5)
    assert cond(hsim, "AbleToScale")[1] == "ReadyForNewScale"


def test_first_sync_without_metrics_is_unknown(hsim):
    hsim.apply([deployment(replicas=1), hpa()])
    hsim.step(14.9)
    assert status(hsim) == {"desiredReplicas": 0} and hpa_events(hsim) == []
    hsim.step(0.1)
    st = status(hsim)
    assert st["currentMetrics"] == [{"type": ""}]     # kubectl: TARGETS <unknown>/50%
    assert st["currentReplicas"] == 1 and st["desiredReplicas"] == 0
    assert cond(hsim, "AbleToScale")[:2] == ("True", "SucceededGetScale")
    assert cond(hsim, "ScalingActive") == (
        "False", "FailedGetResourceMetric", f"the HPA was unable to compute the replica count: {NO_METRICS}")


def test_scale_down_waits_for_the_default_stabilization_window(hsim):
    """TestScaleDown numbers (5 -> 3) through the legacy path: the 5-minute window holds the 5."""
    run_to_first_decision(hsim, deployment(replicas=5), hpa(target=50), [100, 300, 500, 250, 250])
    assert replicas(hsim) == 5 and status(hsim)["desiredReplicas"] == 5
    assert cond(hsim, "AbleToScale") == ("True", "ScaleDownStabilized", "recent recommendations were higher than "
                                         "current one, applying the highest recent recommendation")
    assert status(hsim)["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 28
    hsim.step(315 - 30)  # the initial recommendation (5 @ t=15) is inside the window until t=315
    assert replicas(hsim) == 5
    hsim.step(15)
    assert replicas(hsim) == 3
    assert hpa_events(hsim)[-1] == ("Normal", "SuccessfulRescale", "New size: 3; reason: All metrics below target")


def _steady_then_drop(sim, behavior):
    """5 pods exactly at target until t=120, then idle: returns when the Deployment shrank (seconds after the drop)."""
    sim.apply([deployment(replicas=5), hpa(target=50, behavior=behavior)])
    sim.step(0)
    pods = start_order(sim)
    set_levels(sim, pods, [500] * 5)
    sim.step(120)
    assert replicas(sim) == 5
    set_levels(sim, pods, [100] * 5)
    for t in range(0, 600, 15):
        if replicas(sim) < 5:
            return t
        sim.step(15)
    return None


@pytest.mark.parametrize("behavior,after", [
    (None, 315),                       # legacy: the last 5 (t=120) leaves the window when r.t < now-300: t=435
    ({"scaleUp": {}}, 300),            # behavior defaulted, scaleDown window nil -> the 300 s flag; strict After
    ({"scaleDown": {"stabilizationWindowSeconds": 30}}, 30),
    ({"scaleDown": {"stabilizationWindowSeconds": 0}}, 15),    # first low recommendation (t=135)
])
def test_measured_scale_down_time(hsim, behavior, after):
    assert _steady_then_drop(hsim, behavior) == after
    assert replicas(hsim) == 1          # 10 % of target 50 -> ceil(0.2 x 5) = 1


def test_scale_up_rate_default_behavior_policies(hsim):
    """Defaults: max(+4 pods, +100 %) per 15 s; then maxReplicas (TooManyReplicas)."""
    hsim.apply([deployment(replicas=1, request="100m"), hpa(target=50, max_r=20, behavior={})])
    hsim.step(0)
    hsim.runtime.set_cpu(start_order(hsim)[0], 2000)
    seen = []
    for _ in range(5):
        hsim.step(15)
        seen.append(replicas(hsim))
    assert seen == [1, 5, 10, 20, 20]
    assert cond(hsim, "ScalingLimited") == ("True", "TooManyReplicas",
                                            "the desired replica count is more than the maximum replica count")
    spec = hsim.get("HorizontalPodAutoscaler", "web")["spec"]["behavior"]
    assert spec["scaleUp"] == {"stabilizationWindowSeconds": 0, "selectPolicy": "Max", "policies": [
        {"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert spec["scaleDown"] == {"selectPolicy": "Max", "policies": [
        {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def test_scale_up_rate_legacy_and_scale_up_limit_condition(hsim):
    hsim.apply([deployment(replicas=1, request="100m"), hpa(target=50, max_r=20)])
    hsim.step(0)
    hsim.runtime.set_cpu(start_order(hsim)[0], 2000)
    hsim.step(30)
    assert replicas(hsim) == 4
    assert cond(hsim, "ScalingLimited") == ("True", "ScaleUpLimit", "the desired replica count is increasing "
                                            "faster than the maximum scale rate")
    hsim.step(15)
    assert replicas(hsim) == 8


def test_unready_pod_less_scale(hsim):
    """ScaleUpUnreadyLessScale: pod0 never ready -> 60 % from the ready pods, 4 not 5."""
    bad = FakeApp(http={"/": 503})
    run_to_first_decision(hsim, deployment(replicas=3, probe=True), hpa(target=30), [300, 500, 700],
                          apps=[bad, None, None])
    assert replicas(hsim) == 4
    assert status(hsim)["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 60


def test_hot_cpu_less_scale(hsim):
    """ScaleUpHotCpuLessScale: pod0 became Ready at t=25; the t=30 sample's window began before that."""
    slow = FakeApp(ready_after=25)
    run_to_first_decision(hsim, deployment(replicas=3, probe=True), hpa(target=30), [300, 500, 700],
                          apps=[slow, None, None])
    assert replicas(hsim) == 4
    assert status(hsim)["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 60


def test_unready_no_scale(hsim):
    bad = FakeApp(http={"/": 503})
    run_to_first_decision(hsim, deployment(replicas=3, probe=True), hpa(target=30), [400, 500, 700],
                          apps=[None, bad, bad])
    assert replicas(hsim) == 3 and status(hsim)["desiredReplicas"] == 3


def test_ignores_failed_pods(hsim):
    """ScaleUpIgnoresFailedPods: 2 replicas + 2 Failed pods matching the selector -> 4."""
    failed = FakeApp(exit_after=1, exit_code=1)
    hsim.runtime.app_for = lambda spec: failed if spec.pod.startswith("old-") else None
    for i in range(2):
        hsim.apply([{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"old-{i}", "labels": {"app": "web"}},
                     "spec": {"restartPolicy": "Never", "containers": deployment()["spec"]["template"]["spec"][
                         "containers"]}}])
    hsim.apply([deployment(replicas=2), hpa(target=30)])
    hsim.step(0)
    set_levels(hsim, start_order(hsim), [500, 700])
    hsim.step(30)
    assert {hsim.get("Pod", f"old-{i}")["status"]["phase"] for i in range(2)} == {"Failed"}
    assert replicas(hsim) == 4


def test_missing_metrics_on_scale_down(hsim):
    """MissingMetrics: 4 pods, 2 with metrics (400, 95) at target 100 -> 24 % -> 3 (missing pods assumed 100 %)."""
    none = FakeApp(metrics=False)
    run_to_first_decision(hsim, deployment(replicas=4), hpa(target=100, behavior=NO_STAB_DOWN), [400, 95],
                          apps=[None, None, none, none])
    assert replicas(hsim) == 3
    assert status(hsim)["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 24


def test_tolerance_keeps_the_count(hsim):
    run_to_first_decision(hsim, deployment(replicas=3), hpa(target=100, behavior=NO_STAB_DOWN), [1050, 1050, 1050])
    assert replicas(hsim) == 3 and status(hsim)["desiredReplicas"] == 3
    set_levels(hsim, start_order(hsim), [1150] * 3)
    hsim.step(30)
    assert replicas(hsim) == 4       # 115 % is outside the 0.1 tolerance: ceil(1.15 x 3)


def test_missing_request_for_cpu(hsim):
    hsim.runtime.default = FakeApp(cpu_milli=200)
    hsim.apply([deployment(replicas=1, request=None), hpa(target=50)])
    hsim.step(30)
    pod = start_order(hsim)[0]
    err = f"failed to get cpu utilization: missing request for cpu in container c1 of Pod {pod}"
    assert cond(hsim, "ScalingActive") == ("False", "FailedGetResourceMetric",
                                           f"the HPA was unable to compute the replica count: {err}")
    assert status(hsim)["currentMetrics"] == [{"type": ""}]
    evs = hpa_events(hsim)
    assert ("Warning", "FailedGetResourceMetric", err) in evs
    assert ("Warning", "FailedComputeMetricsReplicas", "invalid metrics (1 invalid out of 1), first error is: "
            f"failed to get cpu resource metric value: {err}") in evs
    assert "missing request for cpu" in cond(hsim, "ScalingActive")[2]
    hsim.step(30)
    ev = next(e for e in hsim.events(involved_kind="HorizontalPodAutoscaler")
              if e["reason"] == "FailedGetResourceMetric" and e["message"] == err)
    assert ev["count"] == 3 and ev["source"] == {"component": "horizontal-pod-autoscaler"}
    assert replicas(hsim) == 1


def test_min_and_max_bounds(hsim):
    hsim.apply([deployment(replicas=1), hpa(min_r=3, max_r=5)])
    hsim.step(15)        # below minReplicas: scaled without metrics
    assert replicas(hsim) == 3
    assert hpa_events(hsim)[-1] == ("Normal", "SuccessfulRescale",
                                    "New size: 3; reason: Current number of replicas below Spec.MinReplicas")
    hsim.patch("Deployment", "web", {"spec": {"replicas": 9}})
    hsim.step(15)
    assert replicas(hsim) == 5
    assert hpa_events(hsim)[-1][2] == "New size: 5; reason: Current number of replicas above Spec.MaxReplicas"


def test_too_few_replicas(hsim):
    run_to_first_decision(hsim, deployment(replicas=4), hpa(min_r=2, target=50, behavior=NO_STAB_DOWN),
                          [10, 10, 10, 10])
    assert replicas(hsim) == 2
    assert cond(hsim, "ScalingLimited") == ("True", "TooFewReplicas",
                                            "the desired replica count is less than the minimum replica count")


def test_average_value_target(hsim):
    m = [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "500m"}}}]
    run_to_first_decision(hsim, deployment(replicas=3), hpa(metrics=m), [500, 500, 500])
    assert replicas(hsim) == 6
    assert status(hsim)["currentMetrics"][0]["resource"]["current"] == {"averageValue": "1"}
    assert hpa_events(hsim)[-1][2] == "New size: 6; reason: cpu resource above target"


def test_zero_replicas_disables_scaling(hsim):
    hsim.apply([deployment(replicas=0), hpa()])
    hsim.step(15)
    assert cond(hsim, "ScalingActive") == ("False", "ScalingDisabled",
                                           "scaling is disabled since the replica count of the target is zero")
    assert replicas(hsim) == 0


def test_missing_target(hsim):
    hsim.apply([hpa(name="nope")])
    hsim.step(15)
    msg = 'deployments.apps "nope" not found'
    assert cond(hsim, "AbleToScale", "nope") == (
        "False", "FailedGetScale", f"the HPA controller was unable to get the target's current scale: {msg}")
    assert hpa_events(hsim, "nope") == [("Warning", "FailedGetScale", msg)]


def test_sync_period_is_configurable():
    sim = make_sim(hpa_sync_period=5, metrics_resolution=5)
    try:
        sim.apply([deployment(replicas=1, request="100m"), hpa(target=50)])
        sim.step(0)
        sim.runtime.set_cpu(start_order(sim)[0], 100)
        sim.step(10)         # metrics from t=10, HPA syncs at 5, 10
        assert replicas(sim) == 2
    finally:
        sim.stop()


# ---- API ---------------------------------------------------------------------------------------

def test_defaults_and_v1_conversion(hsim):
    out = hsim.apply([hpa(min_r=None, target=None)])[0]
    assert out["apiVersion"] == "autoscaling/v2" and out["spec"]["minReplicas"] == 1
    assert out["spec"]["metrics"] == [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": 80}}}]
    assert "behavior" not in out["spec"] and out["status"] == {"desiredReplicas": 0}
    v1 = {"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "v1"},
          "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                   "minReplicas": 2, "maxReplicas": 4, "targetCPUUtilizationPercentage": 60}}
    out = hsim.apply([v1])[0]
    assert out["spec"]["metrics"][0]["resource"]["target"] == {"type": "Utilization", "averageUtilization": 60}
    assert hsim.get("hpa", "v1")["apiVersion"] == "autoscaling/v2"


@pytest.mark.parametrize("change,msg", [
    ({"maxReplicas": 0}, "spec.maxReplicas: Invalid value: 0: must be greater than 0"),
    ({"minReplicas": 0}, "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"),
    ({"minReplicas": 5, "maxReplicas": 3},
     "spec.maxReplicas: Invalid value: 3: must be greater than or equal to `minReplicas`"),
    ({"scaleTargetRef": {"kind": "Deployment"}}, "spec.scaleTargetRef.name: Required value"),
    ({"metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization"}}}]},
     "spec.metrics[0].resource.target.averageUtilization: Required value: must set either a target raw value or "
     "a target utilization"),
    ({"metrics": [{"resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 5}}}]},
     "spec.metrics[0].type: Required value: must specify a metric source type"),
    ({"behavior": {"scaleDown": {"stabilizationWindowSeconds": -1}}},
     "spec.behavior.scaleDown.stabilizationWindowSeconds: Invalid value: -1: must be greater than or equal to zero"),
    ({"behavior": {"scaleUp": {"policies": [{"type": "Pods", "value": 0, "periodSeconds": 15}]}}},
     "spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero"),
])
def test_validation(hsim, change, msg):
    h = hpa()
    h["spec"].update(change)
    with pytest.raises(Invalid) as e:
        hsim.apply([h])
    assert str(e.value).startswith('HorizontalPodAutoscaler.autoscaling "web" is invalid: ')
    assert msg in str(e.value)
