"""The HPA's ``type: Pods`` and ``type: Object`` metrics: upstream's tables, then the controller.

Rows are ported from kubernetes/kubernetes ``pkg/controller/podautoscaler/replica_calculator_test.go``
as stored in the v1.32 era (``NewReplicaCalculator`` still takes the tolerance;
``GetResourceReplicas`` takes a context and a container; upstream tag not pinned, see FIDELITY.md),
every row whose metric goes through ``GetMetricReplicas``, ``GetObjectMetricReplicas`` or
``GetObjectPerPodMetricReplicas``. The calculator itself follows the newest
``replica_calculator.go`` (v1.33+ ``Tolerances.isWithin``); no row sits on a tolerance bound, so
both agree. Like upstream's harness: ``current`` pods named ``test-pod-<i>`` (more when phases are
listed), all Running and Ready unless a readiness is given, and the first ``len(levels)`` pods
get a value (milli-units); an Object metric's value is ``levels[0]`` on Deployment
``some-deployment``.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness.cluster.base import Invalid
from harness.cluster.sim.custom_metrics_source import (NO_ADAPTER, PodMetric, StaticCustomMetrics,
                                                       selector_string)
from harness.cluster.sim.hpa import MetricError, ReplicaCalculator, go_label_selector

from .hpa_helpers import cond, deployment, hpa, hpa_events, hsim, replicas, start_order, status  # noqa: F401

NS = "test-namespace"
SEL = "name=test-pod"
DEPLOYMENT = {"kind": "Deployment", "apiVersion": "apps/v1", "name": "some-deployment"}
T, F = "True", "False"


def mkpods(n: int, readiness=None, phases=None) -> list[dict]:
    n = max(n, len(phases or []))
    return [{"metadata": {"name": f"test-pod-{i}", "namespace": NS, "labels": {"name": "test-pod"}},
             "spec": {"containers": [{"name": "container1"}, {"name": "container2"}]},
             "status": {"phase": (phases or ["Running"] * n)[i],
                        "conditions": [{"type": "Ready", "status": (readiness or [])[i] if readiness and
                                        i < len(readiness) else T}]}} for i in range(n)]


def calc() -> ReplicaCalculator:
    return ReplicaCalculator(0.1, 120, 10)      # upstream's testing constants


@dataclass
class Row:
    name: str
    kind: str                  # "pods" (GetMetricReplicas), "object", "object_per_pod"
    current: int
    want: int
    levels: list[int]
    target: int
    want_usage: int
    readiness: list[str] | None = None
    phases: list[str] | None = None


ROWS = [
    Row("TestReplicaCalcScaleUpCM", "pods", 3, 4, [20000, 10000, 30000], 15000, 20000),
    # the pods are Ready=False and "hot": the CPU-only unready rules do not apply to custom metrics
    Row("TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale", "pods", 3, 6, [50000, 10000, 30000], 15000, 30000,
        readiness=[T, T, F]),
    Row("TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown", "pods", 3, 7, [50000, 15000, 30000], 15000,
        31666, readiness=[F, T, F]),
    Row("TestReplicaCalcScaleUpCMObject", "object", 3, 4, [20000], 15000, 20000),
    Row("TestReplicaCalcScaleUpCMPerPodObject", "object_per_pod", 3, 4, [20000], 5000, 6667),
    Row("TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods", "object", 3, 5, [50000], 10000, 50000,
        readiness=[F, T, F]),
    # upstream's "External" names with metricType podMetric: Pods metrics of one pod
    Row("TestReplicaCalcScaleUpCMExternal", "pods", 1, 2, [8600], 4400, 8600),
    Row("TestReplicaCalcScaleUpCMExternalNoLabels", "pods", 1, 2, [8600], 4400, 8600),
    Row("TestReplicaCalcScaleDownCM", "pods", 5, 3, [12000] * 5, 20000, 12000),
    Row("TestReplicaCalcScaleDownPerPodCMObject", "object_per_pod", 5, 3, [6000], 2000, 1200),
    Row("TestReplicaCalcScaleDownCMObject", "object", 5, 3, [12000], 20000, 12000),
    Row("TestReplicaCalcToleranceCM", "pods", 3, 3, [20000, 21000, 21000], 20000, 20666),
    Row("TestReplicaCalcToleranceCMObject", "object", 3, 3, [20666], 20000, 20666),
    Row("TestReplicaCalcTolerancePerPodCMObject", "object_per_pod", 4, 4, [20166], 5000, 5042),
    # 5 pods, 3 with values at exactly the target: the 2 missing pods change nothing
    Row("TestPlainMetricReplicaCalcMissingMetricsNoChangeEq", "pods", 5, 5, [20000, 19000, 21000], 20000, 20000),
    # 3 Running pods for 2 replicas, one without a value: at the target (17000) it would make 3 > current
    Row("TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM", "pods", 2, 2, [10000, 10000], 17000, 10000,
        phases=["Running"] * 3),
]


def run_row(r: Row, source: StaticCustomMetrics | None = None) -> tuple[int, int]:
    pods = mkpods(r.current, r.readiness, r.phases)
    if source is None:
        source = StaticCustomMetrics()
        if r.kind == "pods":
            source.set_pods(NS, "qps", {f"test-pod-{i}": v for i, v in enumerate(r.levels)})
        else:
            source.set_object(NS, "Deployment", "some-deployment", "qps", r.levels[0])
    if r.kind == "pods":
        return calc().metric_replicas(r.current, r.target, "qps", NS, SEL, None, pods, source, 0.0)
    if r.kind == "object":
        return calc().object_metric_replicas(r.current, r.target, "qps", NS, DEPLOYMENT, None, pods, source)
    return calc().object_per_pod_metric_replicas(r.current, r.target, "qps", NS, DEPLOYMENT, None, source)


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_replica_calculator_custom_metrics_table(row):
    assert run_row(row) == (row.want, row.want_usage)


def test_the_table_has_every_custom_metric_row():
    assert len(ROWS) == 16


# ---- errors, as the metrics client and the replica calculator word them ----------------------

def test_no_values_is_no_metrics_returned():
    """metrics_client_test.go "QPS empty metrics", then GetMetricReplicas' prefix."""
    src = StaticCustomMetrics()
    src.set_pods(NS, "qps", {})
    with pytest.raises(MetricError, match="^unable to get metric qps: no metrics returned from custom metrics "
                                          "API$"):
        calc().metric_replicas(3, 1000, "qps", NS, SEL, None, mkpods(3), src, 0.0)


def test_no_adapter():
    with pytest.raises(MetricError) as e:
        calc().metric_replicas(3, 1000, "qps", NS, SEL, None, mkpods(3), None, 0.0)
    assert str(e.value) == f"unable to get metric qps: unable to fetch metrics from custom metrics API: {NO_ADAPTER}"


def test_object_error_keeps_upstreams_argument_order():
    """``"unable to get metric %s: %v on %s %s/%s", metricName, objectRef.Kind, namespace, objectRef.Name, err``."""
    with pytest.raises(MetricError) as e:
        calc().object_metric_replicas(3, 1000, "qps", NS, DEPLOYMENT, None, mkpods(3), StaticCustomMetrics())
    assert str(e.value) == ("unable to get metric qps: Deployment on test-namespace some-deployment/unable to fetch "
                            "metrics from custom metrics API: the server could not find the metric qps for "
                            "deployments some-deployment")


def test_plain_metric_errors_are_not_prefixed():
    src = StaticCustomMetrics()
    src.set_pods(NS, "qps", {"test-pod-0": 1000})
    with pytest.raises(MetricError, match=r"^did not receive metrics for targeted pods \(pods might be unready\)$"):
        calc().metric_replicas(1, 1000, "qps", NS, SEL, None, mkpods(1, phases=["Pending"]), src, 0.0)
    with pytest.raises(MetricError, match="^no pods returned by selector while calculating replica count$"):
        calc().metric_replicas(1, 1000, "qps", NS, SEL, None, [], src, 0.0)


def test_object_value_needs_pods_only_outside_the_tolerance():
    src = StaticCustomMetrics()
    src.set_object(NS, "Deployment", "some-deployment", "qps", 20000)
    assert calc().object_metric_replicas(3, 20000, "qps", NS, DEPLOYMENT, None, [], src) == (3, 20000)
    with pytest.raises(MetricError, match="^unable to calculate ready pods: no pods returned by selector"):
        calc().object_metric_replicas(3, 10000, "qps", NS, DEPLOYMENT, None, [], src)
    assert calc().object_metric_replicas(0, 10000, "qps", NS, DEPLOYMENT, None, [], src) == (2, 20000)


def test_object_per_pod_with_no_status_replicas():
    src = StaticCustomMetrics()
    src.set_object(NS, "Deployment", "some-deployment", "qps", 4500)
    assert calc().object_per_pod_metric_replicas(0, 1000, "qps", NS, DEPLOYMENT, None, src) == (5, 4500)


# ---- the static source --------------------------------------------------------------------------

def test_static_source_metric_selector_and_namespace_objects():
    src = StaticCustomMetrics()
    src.set_pod(NS, "a", "qps", 1000, labels={"verb": "GET"})
    src.set_pod(NS, "b", "qps", 3000, labels={"verb": "POST"})
    assert src.pod_metrics(NS, "qps", SEL, {"matchLabels": {"verb": "POST"}}) == {"b": PodMetric(3000, 0.0, 60.0)}
    assert set(src.pod_metrics(NS, "qps", SEL, None)) == {"a", "b"}
    src.set_object(NS, "Namespace", NS, "queue", 7000)
    assert src.object_metric(NS, {"kind": "Namespace", "name": "ignored"}, "queue", None)[0] == 7000
    src.fail("the server is currently unable to handle the request")
    with pytest.raises(Exception, match="unable to handle"):
        src.pod_metrics(NS, "qps", SEL, None)


def test_selector_string_and_go_label_selector():
    sel = {"matchLabels": {"tier": "web", "app": "x"},
           "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]},
                                {"key": "legacy", "operator": "DoesNotExist"}]}
    assert selector_string(sel) == "app=x,env in (a,b),!legacy,tier=web"
    assert go_label_selector(None) == "nil"
    assert go_label_selector({"matchLabels": {"verb": "GET"}}) == (
        "&LabelSelector{MatchLabels:map[string]string{verb: GET,},MatchExpressions:[]LabelSelectorRequirement{},}")


# ---- the controller ---------------------------------------------------------------------------

METRIC = "inference_requests_in_flight"
PODS_SPEC = [{"type": "Pods", "pods": {"metric": {"name": METRIC},
                                       "target": {"type": "AverageValue", "averageValue": "2"}}}]


def with_source(sim) -> StaticCustomMetrics:
    src = StaticCustomMetrics(sim.store)
    sim.hpa.custom_metrics = src
    return src


def start(sim, dep, h) -> list[str]:
    sim.apply([dep, h])
    sim.step(0)
    return start_order(sim)


def test_pods_metric_scales_a_deployment_from_2_to_4(hsim):
    src = with_source(hsim)
    pods = start(hsim, deployment(replicas=2), hpa(metrics=PODS_SPEC))
    src.set_pods(hsim.namespace, METRIC, {p: 4000 for p in pods})      # 4 in flight each, target 2
    hsim.step(15)
    assert replicas(hsim) == 4
    st = status(hsim)
    assert st["currentMetrics"] == [{"type": "Pods", "pods": {"metric": {"name": METRIC},
                                                              "current": {"averageValue": "4"}}}]
    assert cond(hsim, "ScalingActive") == ("True", "ValidMetricFound", "the HPA was able to successfully "
                                           f"calculate a replica count from pods metric {METRIC}")
    assert hpa_events(hsim)[-1] == ("Normal", "SuccessfulRescale",
                                    f"New size: 4; reason: pods metric {METRIC} above target")
    assert src.calls[-1] == ("pods", hsim.namespace, METRIC, "app=web")
    hsim.step(15)     # 2 new pods without values, on a scale-up counted as 0: (4+4+0+0)/4 = 2 -> stay
    assert replicas(hsim) == 4
    assert status(hsim)["currentMetrics"][0]["pods"]["current"] == {"averageValue": "4"}


def test_pods_metric_scale_down_assumes_missing_pods_at_target(hsim):
    src = with_source(hsim)
    spec = [{"type": "Pods", "pods": {"metric": {"name": METRIC, "selector": {"matchLabels": {"verb": "POST"}}},
                                      "target": {"type": "AverageValue", "averageValue": "10"}}}]
    pods = start(hsim, deployment(replicas=4), hpa(metrics=spec, behavior={"scaleDown": {
        "stabilizationWindowSeconds": 0}}))
    src.set_pods(hsim.namespace, METRIC, {p: 1000 for p in pods[:2]}, labels={"verb": "POST"})
    src.set_pods(hsim.namespace, METRIC, {pods[2]: 1000})          # wrong series: not selected
    hsim.step(15)     # (1+1+10+10)/4 = 5.5 -> ratio 0.55 -> ceil(2.2) = 3
    assert replicas(hsim) == 3
    assert status(hsim)["currentMetrics"] == [{"type": "Pods", "pods": {
        "metric": {"name": METRIC, "selector": {"matchLabels": {"verb": "POST"}}},
        "current": {"averageValue": "1"}}}]


def test_wrong_metric_name_fails_with_upstreams_words(hsim):
    src = with_source(hsim)
    spec = [{"type": "Pods", "pods": {"metric": {"name": "inference_requests_in_flght"},
                                      "target": {"type": "AverageValue", "averageValue": "2"}}}]
    pods = start(hsim, deployment(replicas=2), hpa(metrics=spec))
    src.set_pods(hsim.namespace, METRIC, {p: 4000 for p in pods})
    hsim.step(15)
    err = ("unable to get metric inference_requests_in_flght: unable to fetch metrics from custom metrics API: "
           "the server could not find the metric inference_requests_in_flght for pods")
    assert cond(hsim, "ScalingActive") == ("False", "FailedGetPodsMetric",
                                           f"the HPA was unable to compute the replica count: {err}")
    assert status(hsim)["currentMetrics"] == [{"type": ""}]
    assert hpa_events(hsim) == [
        ("Warning", "FailedGetPodsMetric", err),
        ("Warning", "FailedComputeMetricsReplicas",
         f"invalid metrics (1 invalid out of 1), first error is: failed to get pods metric value: {err}")]
    assert replicas(hsim) == 2


def test_no_custom_metrics_api(hsim):
    start(hsim, deployment(replicas=2), hpa(metrics=PODS_SPEC))
    hsim.step(15)
    err = f"unable to get metric {METRIC}: unable to fetch metrics from custom metrics API: {NO_ADAPTER}"
    assert cond(hsim, "ScalingActive") == ("False", "FailedGetPodsMetric",
                                           f"the HPA was unable to compute the replica count: {err}")
    assert ("Warning", "FailedGetPodsMetric", err) in hpa_events(hsim)


def test_invalid_metric_selector_operator(hsim):
    with_source(hsim)
    spec = [{"type": "Pods", "pods": {"metric": {"name": METRIC, "selector": {"matchExpressions": [
        {"key": "verb", "operator": "Like", "values": ["G*"]}]}},
        "target": {"type": "AverageValue", "averageValue": "2"}}}]
    start(hsim, deployment(replicas=2), hpa(metrics=spec))
    hsim.step(15)
    assert cond(hsim, "ScalingActive")[1:] == ("FailedGetPodsMetric", "the HPA was unable to compute the replica "
                                               'count: "Like" is not a valid label selector operator')


def object_spec(target: dict, described: dict | None = None) -> list[dict]:
    described = described or {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main-route"}
    return [{"type": "Object", "object": {"describedObject": described, "metric": {"name": "requests_per_second"},
                                          "target": target}}]


def test_object_value_metric(hsim):
    src = with_source(hsim)
    start(hsim, deployment(replicas=2), hpa(metrics=object_spec({"type": "Value", "value": "10k"})))
    src.set_object(hsim.namespace, "Ingress", "main-route", "requests_per_second", 15_000_000)
    hsim.step(15)                       # 15k / 10k = 1.5 x 2 ready pods -> 3
    assert replicas(hsim) == 3
    assert status(hsim)["currentMetrics"] == [{"type": "Object", "object": {
        "describedObject": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "main-route"},
        "metric": {"name": "requests_per_second"}, "current": {"value": "15k"}}}]
    assert cond(hsim, "ScalingActive")[2].endswith("from Ingress metric requests_per_second")


def test_object_average_value_metric_is_reported_as_upstream_does(hsim):
    src = with_source(hsim)
    start(hsim, deployment(replicas=2), hpa(metrics=object_spec({"type": "AverageValue", "averageValue": "500"})))
    src.set_object(hsim.namespace, "Ingress", "main-route", "requests_per_second", 2_000_000)
    hsim.step(15)                       # 2000 over status.replicas 2 = 1000 per pod; 2000 / 500 -> 4
    assert replicas(hsim) == 4
    assert status(hsim)["currentMetrics"] == [{"type": "Object", "object": {
        "describedObject": {"kind": "", "name": ""}, "metric": {"name": "requests_per_second"},
        "current": {"averageValue": "1k"}}}]
    assert hpa_events(hsim)[-1][2] == "New size: 4; reason: external metric requests_per_second(nil) above target"


def test_object_metric_missing(hsim):
    with_source(hsim)
    start(hsim, deployment(replicas=2), hpa(metrics=object_spec({"type": "AverageValue", "averageValue": "500"})))
    hsim.step(15)
    err = ("unable to get metric requests_per_second: Ingress on default main-route/unable to fetch metrics from "
           "custom metrics API: the server could not find the metric requests_per_second for ingresss main-route")
    err = err.replace("default", hsim.namespace)
    assert cond(hsim, "ScalingActive") == ("False", "FailedGetObjectMetric",
                                           f"the HPA was unable to compute the replica count: {err}")
    assert hpa_events(hsim)[-1] == ("Warning", "FailedComputeMetricsReplicas",
                                    "invalid metrics (1 invalid out of 1), first error is: failed to get object "
                                    f"metric value: failed to get requests_per_second object metric: {err}")


def test_object_utilization_target_is_invalid_for_the_controller(hsim):
    with_source(hsim)
    start(hsim, deployment(replicas=2), hpa(metrics=object_spec({"type": "Utilization", "value": "5"})))
    hsim.step(15)
    assert cond(hsim, "ScalingActive")[1:] == (
        "FailedGetObjectMetric", "the HPA was unable to compute the replica count: invalid object metric source: "
        "neither a value target nor an average value target was set")


def test_largest_proposal_of_cpu_and_pods_metrics_wins(hsim):
    src = with_source(hsim)
    cpu = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                      "averageUtilization": 50}}}
    pods = start(hsim, deployment(replicas=2), hpa(metrics=[cpu] + PODS_SPEC))
    src.set_pods(hsim.namespace, METRIC, {p: 3000 for p in pods})      # 1.5 -> 3; cpu has no metrics at t=15
    hsim.step(15)
    assert replicas(hsim) == 3      # a failing metric blocks only a scale-down
    assert [m["type"] for m in status(hsim)["currentMetrics"]] == ["", "Pods"]


# ---- validation ------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric,msg", [
    ({"type": "Pods", "pods": {"metric": {}, "target": {"type": "AverageValue", "averageValue": "1"}}},
     "spec.metrics[0].pods.metric.name: Required value: must specify a metric name"),
    ({"type": "Pods", "pods": {"metric": {"name": "a/b"}, "target": {"type": "AverageValue", "averageValue": "1"}}},
     "spec.metrics[0].pods.metric.name: Invalid value: \"a/b\": may not contain '/'"),
    ({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "Value", "value": "1"}}},
     "spec.metrics[0].pods.target.averageValue: Required value: must specify a positive target averageValue"),
    ({"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": "0"}}},
     "spec.metrics[0].pods.target.averageValue: Invalid value: \"0\": must be positive"),
    ({"type": "Object", "object": {"describedObject": {"name": "x"}, "metric": {"name": "qps"},
                                   "target": {"type": "Value", "value": "1"}}},
     "spec.metrics[0].object.describedObject.kind: Required value"),
    ({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "x"}, "metric": {"name": "qps"},
                                   "target": {"type": "Value"}}},
     "spec.metrics[0].object.target.averageValue: Required value: must set either a target value or averageValue"),
    ({"type": "Object", "object": {"describedObject": {"kind": "Service", "name": "x"}, "metric": {"name": "qps"},
                                   "target": {"type": "Bogus", "value": "1"}}},
     "spec.metrics[0].object.target.type: Invalid value: \"Bogus\": must be either Utilization, Value, or "
     "AverageValue"),
    ({"type": "Pods", "object": {"describedObject": {"kind": "Service", "name": "x"}, "metric": {"name": "qps"},
                                 "target": {"type": "Value", "value": "1"}}},
     "spec.metrics[0].pods: Required value: must populate information for the given metric source"),
    ({"type": "External", "external": {"metric": {"name": "q"}, "target": {"type": "Value", "value": "1",
                                                                           "averageValue": "1"}}},
     "spec.metrics[0].external.target.value: Forbidden: may not set both a target value for metric and a per-pod "
     "target"),
])
def test_validation(hsim, metric, msg):
    with pytest.raises(Invalid) as e:
        hsim.apply([hpa(metrics=[metric])])
    assert msg in str(e.value)


def test_valid_custom_metric_specs_are_accepted(hsim):
    out = hsim.apply([hpa(metrics=PODS_SPEC + object_spec({"type": "Value", "value": "1"}))])[0]
    assert [m["type"] for m in out["spec"]["metrics"]] == ["Pods", "Object"]
