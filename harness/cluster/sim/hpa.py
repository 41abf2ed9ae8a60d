"""HorizontalPodAutoscaler (autoscaling/v2): API defaulting/validation and the controller.

Why: Lab 03 grades autoscaling, and an HPA's behaviour is all in details
(tolerance, the conservative treatment of unready and metric-less pods,
stabilization windows, rate policies). This module transcribes upstream
(section 4 of ``/work/shared/reference/kubernetes-semantics.md``):

* ``replica_calculator.go``: :class:`ReplicaCalculator` (``GetResourceReplicas``,
  ``GetRawResourceReplicas``/``calcPlainMetricReplicas``, ``GetMetricReplicas``,
  ``GetObjectMetricReplicas``/``getUsageRatioReplicaCount``,
  ``GetObjectPerPodMetricReplicas``, ``groupPods``, ``calculateRequests``),
  ``metrics/utilization.go`` (:func:`resource_utilization_ratio`,
  :func:`metric_usage_ratio`) and the custom-metrics half of
  ``metrics/client.go`` (:func:`get_raw_metric`, :func:`get_object_metric`);
* ``horizontal.go``: ``reconcileAutoscaler`` (:meth:`HPAController.reconcile`),
  ``computeReplicasForMetrics``, the legacy ``normalizeDesiredReplicas``
  (5-minute stabilization, ``max(2 x current, 4)`` scale-up limit) and
  ``normalizeDesiredReplicasWithBehaviors`` (:func:`stabilize_with_behaviors`,
  :func:`convert_with_behavior_rate`), conditions, ``SuccessfulRescale`` events;
* ``pkg/apis/autoscaling/v2/defaults.go`` (:func:`default_hpa`) and
  ``pkg/apis/autoscaling/validation`` (:func:`validate_hpa`).

Resource metrics come from the sim's metrics-server (:mod:`.metrics`); Pods and
Object metrics from an injected :class:`~.custom_metrics_source.CustomMetricsSource`
(none: they fail as upstream does without an adapter). The target is
scaled by writing its ``spec.replicas``, as the scale subresource does. All
times come from the injected clock; differences from upstream are listed in
FIDELITY.md ("HorizontalPodAutoscaler and metrics").
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from harness.cluster.base import ApiError, Invalid, Obj

from .clock import parse_rfc3339, rfc3339
from .custom_metrics_source import (NO_ADAPTER, CustomMetricsError, CustomMetricsSource, PodMetric,
                                    selector_string, validate_metric_selector)
from .labels import selector_matcher
from .quantity import milli
from .metrics import decimal_quantity
from .validation import go_value

COMPONENT = "horizontal-pod-autoscaler"
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4.0
MAX_STABILIZATION_WINDOW_SECONDS = 3600
MAX_PERIOD_SECONDS = 1800
_SCALABLE = {"Deployment": "deployments.apps", "ReplicaSet": "replicasets.apps",
             "StatefulSet": "statefulsets.apps"}
_SOURCE_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]


@dataclass
class HPAConfig:
    """kube-controller-manager's ``--horizontal-pod-autoscaler-*`` flags (defaults as upstream)."""

    sync_period: float = 15.0
    tolerance: float = 0.1
    cpu_initialization_period: float = 300.0
    initial_readiness_delay: float = 30.0
    downscale_stabilization: float = 300.0


# ---- API defaulting and validation -------------------------------------------------------

def _scale_up_default() -> dict[str, Any]:
    return {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
            "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                         {"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _scale_down_default() -> dict[str, Any]:
    # stabilizationWindowSeconds stays nil: the controller uses --horizontal-pod-autoscaler-downscale-stabilization
    return {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _rules_with_defaults(rules: dict[str, Any] | None, default: dict[str, Any]) -> dict[str, Any]:
    if rules is None:
        return default
    out = dict(default)
    for k in ("stabilizationWindowSeconds", "selectPolicy", "policies"):
        if rules.get(k) is not None:
            out[k] = rules[k]
    for k, v in rules.items():
        out.setdefault(k, v)
    return out


def default_hpa(hpa: Obj) -> Obj:
    """``SetDefaults_HorizontalPodAutoscaler`` (+ conversion of an autoscaling/v1 manifest to v2)."""
    spec = hpa.setdefault("spec", {})
    if hpa.get("apiVersion") == "autoscaling/v1":
        pct = spec.pop("targetCPUUtilizationPercentage", None)
        if pct is not None:
            spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": pct}}}]
    hpa["apiVersion"] = "autoscaling/v2"
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]
    if spec.get("behavior") is not None:
        b = spec["behavior"]
        b["scaleUp"] = _rules_with_defaults(b.get("scaleUp"), _scale_up_default())
        b["scaleDown"] = _rules_with_defaults(b.get("scaleDown"), _scale_down_default())
    return hpa


def _invalid(path: str, value: Any, detail: str) -> str:
    return f"{path}: Invalid value: {go_value(value)}: {detail}"


def _required(path: str, detail: str = "") -> str:
    return f"{path}: Required value" + (f": {detail}" if detail else "")


def _unsupported(path: str, value: Any, supported: list[str]) -> str:
    return f"{path}: Unsupported value: {go_value(value)}: supported values: " + ", ".join(
        go_value(s) for s in supported)


def _validate_target(t: dict[str, Any], path: str) -> list[str]:
    errs = []
    typ = t.get("type")
    if not typ:
        errs.append(_required(f"{path}.type", "must specify a metric target type"))
    if typ not in ("Utilization", "Value", "AverageValue"):
        errs.append(_invalid(f"{path}.type", typ or "", "must be either Utilization, Value, or AverageValue"))
    for k in ("value", "averageValue"):
        if t.get(k) is not None:
            try:
                ok = milli(t[k]) > 0
            except ValueError:
                ok = False
            if not ok:
                errs.append(_invalid(f"{path}.{k}", t[k], "must be positive"))
    if t.get("averageUtilization") is not None and t["averageUtilization"] < 1:
        errs.append(_invalid(f"{path}.averageUtilization", t["averageUtilization"], "must be greater than 0"))
    return errs


def _validate_resource_source(src: dict[str, Any], path: str, container: bool) -> list[str]:
    errs = []
    if not src.get("name"):
        errs.append(_required(f"{path}.name", "must specify a resource name"))
    if container and not src.get("container"):
        errs.append(_required(f"{path}.container", "must specify a container"))
    t = src.get("target") or {}
    errs += _validate_target(t, f"{path}.target")
    if t.get("averageUtilization") is None and t.get("averageValue") is None:
        errs.append(_required(f"{path}.target.averageUtilization", "must set either a target raw value or a "
                                                                     "target utilization"))
    if t.get("averageUtilization") is not None and t.get("averageValue") is not None:
        errs.append(f"{path}.target.averageValue: Forbidden: may not set both a target raw value and a target "
                    "utilization")
    return errs


def _path_segment_errors(value: str, path: str) -> list[str]:
    """``pathvalidation.IsValidPathSegmentName``."""
    if value in (".", ".."):
        return [_invalid(path, value, f"may not be '{value}'")]
    return [_invalid(path, value, f"may not contain '{c}'") for c in ("/", "%") if c in value]


def _validate_cross_version_ref(ref: dict[str, Any], path: str) -> list[str]:
    """``ValidateCrossVersionObjectReference``."""
    errs = []
    for k in ("kind", "name"):
        v = ref.get(k) or ""
        errs += _path_segment_errors(v, f"{path}.{k}") if v else [_required(f"{path}.{k}")]
    return errs


def _validate_metric_identifier(ident: dict[str, Any], path: str) -> list[str]:
    name = ident.get("name") or ""
    if not name:
        return [_required(f"{path}.name", "must specify a metric name")]
    return _path_segment_errors(name, f"{path}.name")


def _validate_custom_source(kind: str, src: dict[str, Any], path: str) -> list[str]:
    """``validatePodsSource``, ``validateObjectSource``, ``validateExternalSource``. Upstream
    checks that the needed quantity is set, not that ``target.type`` names it."""
    errs = []
    t = src.get("target") or {}
    if kind == "object":
        errs += _validate_cross_version_ref(src.get("describedObject") or {}, f"{path}.describedObject")
    errs += _validate_metric_identifier(src.get("metric") or {}, f"{path}.metric")
    errs += _validate_target(t, f"{path}.target")
    if kind == "pods" and t.get("averageValue") is None:
        errs.append(_required(f"{path}.target.averageValue", "must specify a positive target averageValue"))
    if kind == "object" and t.get("value") is None and t.get("averageValue") is None:
        errs.append(_required(f"{path}.target.averageValue", "must set either a target value or averageValue"))
    if kind == "external":
        if t.get("value") is None and t.get("averageValue") is None:
            errs.append(_required(f"{path}.target.averageValue",
                                  "must set either a target value for metric or a per-pod target"))
        if t.get("value") is not None and t.get("averageValue") is not None:
            errs.append(f"{path}.target.value: Forbidden: may not set both a target value for metric and a "
                        "per-pod target")
    return errs


def _validate_metric(m: dict[str, Any], path: str) -> list[str]:
    errs = []
    typ = m.get("type") or ""
    if not typ:
        errs.append(_required(f"{path}.type", "must specify a metric source type"))
    if typ not in _SOURCE_TYPES:
        errs.append(_unsupported(f"{path}.type", typ, _SOURCE_TYPES))
    fields = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
              "Object": "object", "External": "external"}
    present = [f for f in ("object", "external", "pods", "resource", "containerResource") if m.get(f) is not None]
    if present:      # upstream validates only the first source present, in this order
        first = present[0]
        if first in ("resource", "containerResource"):
            errs += _validate_resource_source(m[first], f"{path}.{first}", first == "containerResource")
        else:
            errs += _validate_custom_source(first, m[first] or {}, f"{path}.{first}")
    expected = fields.get(typ)
    if expected and m.get(expected) is None:
        errs.append(_required(f"{path}.{expected}", "must populate information for the given metric source"))
    if len(present) != 1:
        for f in present:
            if f != expected:
                errs.append(f"{path}.{f}: Forbidden: must populate the given metric source only")
    return errs


def _validate_rules(rules: dict[str, Any] | None, path: str) -> list[str]:
    if rules is None:
        return []
    errs = []
    w = rules.get("stabilizationWindowSeconds")
    if w is not None and w < 0:
        errs.append(_invalid(f"{path}.stabilizationWindowSeconds", w, "must be greater than or equal to zero"))
    if w is not None and w > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(_invalid(f"{path}.stabilizationWindowSeconds", w,
                             f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    sp = rules.get("selectPolicy")
    if sp is not None and sp not in ("Disabled", "Max", "Min"):
        errs.append(_unsupported(f"{path}.selectPolicy", sp, ["Disabled", "Max", "Min"]))
    if not rules.get("policies"):
        errs.append(_required(f"{path}.policies", "must specify at least one Policy"))
    for i, p in enumerate(rules.get("policies") or []):
        pp = f"{path}.policies[{i}]"
        if p.get("type") not in ("Pods", "Percent"):
            errs.append(_unsupported(f"{pp}.type", p.get("type") or "", ["Percent", "Pods"]))
        if (p.get("value") or 0) <= 0:
            errs.append(_invalid(f"{pp}.value", p.get("value") or 0, "must be greater than zero"))
        ps = p.get("periodSeconds") or 0
        if ps <= 0:
            errs.append(_invalid(f"{pp}.periodSeconds", ps, "must be greater than zero"))
        if ps > MAX_PERIOD_SECONDS:
            errs.append(_invalid(f"{pp}.periodSeconds", ps, f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def validate_hpa(hpa: Obj) -> None:
    """``ValidateHorizontalPodAutoscaler`` (spec part); raises :class:`Invalid` like the API server."""
    spec, errs = hpa.get("spec") or {}, []
    mn, mx = spec.get("minReplicas"), spec.get("maxReplicas") or 0
    if mn is not None and mn < 1:
        errs.append(_invalid("spec.minReplicas", mn, "must be greater than or equal to 1"))
    if mx < 1:
        errs.append(_invalid("spec.maxReplicas", mx, "must be greater than 0"))
    if mn is not None and mx < mn:
        errs.append(_invalid("spec.maxReplicas", mx, "must be greater than or equal to `minReplicas`"))
    ref = spec.get("scaleTargetRef") or {}
    ref_errs = []
    if not ref.get("kind"):
        ref_errs.append(_required("spec.scaleTargetRef.kind"))
    if not ref.get("name"):
        ref_errs.append(_required("spec.scaleTargetRef.name"))
    if ref_errs:
        errs += ref_errs
    else:
        metric_errs = []
        for i, m in enumerate(spec.get("metrics") or []):
            metric_errs += _validate_metric(m, f"spec.metrics[{i}]")
        if metric_errs:
            errs += metric_errs
        elif spec.get("behavior") is not None:
            b = spec["behavior"]
            errs += _validate_rules(b.get("scaleUp"), "spec.behavior.scaleUp")
            errs += _validate_rules(b.get("scaleDown"), "spec.behavior.scaleDown")
    if errs:
        name = (hpa.get("metadata") or {}).get("name", "")
        body = errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"
        raise Invalid(f'HorizontalPodAutoscaler.autoscaling "{name}" is invalid: {body}',
                      kind="HorizontalPodAutoscaler", name=name)


# ---- the replica calculator ---------------------------------------------------------------

class MetricError(Exception):
    """An error of one metric (its text is what upstream puts in events and conditions);
    ``condition`` is the ScalingActive=False condition it sets when it decides the sync."""

    def __init__(self, message: str, condition: tuple[str, str, str, str] | None = None):
        super().__init__(message)
        self.condition = condition


def pod_metrics_info(items: list[Obj], resource: str, container: str | None = None) -> dict[str, PodMetric]:
    """``getPodMetrics`` / ``getContainerMetrics`` over PodMetrics objects."""
    res: dict[str, PodMetric] = {}
    for m in items:
        ts = parse_rfc3339(m.get("timestamp")) or 0.0
        window = m.get("_window", 60.0)
        name = m["metadata"]["name"]
        if container:
            c = next((c for c in m.get("containers") or [] if c["name"] == container), None)
            if c is None:
                raise MetricError(f"container {container} not present in metrics for pod "
                                  f"{m['metadata'].get('namespace', '')}/{name}")
            if resource in c.get("usage", {}):
                res[name] = PodMetric(milli(c["usage"][resource]), ts, window)
            continue
        cs = m.get("containers") or []
        if not cs or any(resource not in (c.get("usage") or {}) for c in cs):
            continue
        res[name] = PodMetric(sum(milli(c["usage"][resource]) for c in cs), ts, window)
    return res


def _ready_condition(pod: Obj) -> dict[str, Any] | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"), None)


def group_pods(pods: list[Obj], metrics: dict[str, PodMetric], resource: str, now: float,
               cpu_initialization_period: float, delay_of_initial_readiness: float
               ) -> tuple[int, set[str], set[str], set[str]]:
    """``groupPods``: (readyPodCount, unreadyPods, missingPods, ignoredPods)."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name, st = pod["metadata"]["name"], pod.get("status") or {}
        if pod["metadata"].get("deletionTimestamp") or st.get("phase") == "Failed":
            ignored.add(name)
            continue
        if st.get("phase", "Pending") == "Pending":
            unready.add(name)
            continue
        metric = metrics.get(name)
        if metric is None:
            missing.add(name)
            continue
        if resource == "cpu":
            cond, start = _ready_condition(pod), parse_rfc3339(st.get("startTime"))
            if cond is None or start is None:
                is_unready = True
            else:
                transition = parse_rfc3339(cond.get("lastTransitionTime")) or 0.0
                if start + cpu_initialization_period > now:
                    is_unready = cond["status"] == "False" or metric.timestamp < transition + metric.window
                else:
                    is_unready = cond["status"] == "False" and start + delay_of_initial_readiness > transition
            if is_unready:
                unready.add(name)
                continue
        ready += 1
    return ready, unready, missing, ignored


def calculate_requests(pods: list[Obj], container: str | None, resource: str) -> dict[str, int]:
    """``calculateRequests``: per-pod sum of container requests (milli); restartable init containers count."""
    out = {}
    for pod in pods:
        total = 0
        cs = list(pod["spec"].get("containers") or []) + [
            c for c in pod["spec"].get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        found = False
        for c in cs:
            if container and c["name"] != container:
                continue
            found = True
            req = ((c.get("resources") or {}).get("requests") or {})
            if resource not in req:
                raise MetricError(f"missing request for {resource} in container {c['name']} of Pod "
                                  f"{pod['metadata']['name']}")
            total += milli(req[resource])
        if container and not found:   # calculatePodRequestsFromContainers (v1.35, kubernetes#133415)
            raise MetricError(f"container {container} not found in Pod {pod['metadata']['name']}")
        out[pod["metadata"]["name"]] = total
    return out


def resource_utilization_ratio(metrics: dict[str, PodMetric], requests: dict[str, int],
                               target_utilization: int) -> tuple[float, int, int]:
    """``GetResourceUtilizationRatio``: (ratio, utilization %, raw average value in milli)."""
    total = req_total = n = 0
    for name, m in metrics.items():
        if name not in requests:
            continue      # extraneous metrics
        total += m.value
        req_total += requests[name]
        n += 1
    if req_total == 0:
        raise MetricError("no metrics returned matched known pods")
    util = (total * 100) // req_total
    return util / target_utilization, util, total // n


def metric_usage_ratio(metrics: dict[str, PodMetric], target_usage: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: (ratio, average usage)."""
    total = sum(m.value for m in metrics.values())
    usage = int(total / len(metrics))     # Go integer division (values are non-negative)
    return usage / target_usage, usage


class ReplicaCalculator:
    def __init__(self, tolerance: float = 0.1, cpu_initialization_period: float = 300.0,
                 delay_of_initial_readiness: float = 30.0):
        self.tolerance = tolerance
        self.cpu_init = cpu_initialization_period
        self.delay = delay_of_initial_readiness

    def _within(self, ratio: float) -> bool:
        """``Tolerances.isWithin`` (v1.33+, kubernetes#130797): inclusive at both ends, so a ratio of
        exactly 1.1 is within 0.1 (``abs(1 - 1.1)`` is 0.10000000000000009 in floating point)."""
        return 1.0 - self.tolerance <= ratio <= 1.0 + self.tolerance

    def resource_replicas(self, current: int, target_utilization: int, resource: str, pods: list[Obj],
                          metrics: dict[str, PodMetric], now: float, container: str | None = None
                          ) -> tuple[int, int, int]:
        """``GetResourceReplicas`` after the metrics fetch: (replicas, utilization %, raw average milli)."""
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        metrics = dict(metrics)
        ready, unready, missing, ignored = group_pods(pods, metrics, resource, now, self.cpu_init, self.delay)
        for n in ignored | unready:
            metrics.pop(n, None)
        if not metrics:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        requests = calculate_requests(pods, container, resource)
        ratio, util, raw = resource_utilization_ratio(metrics, requests, target_utilization)
        scale_up_with_unready = bool(unready) and ratio > 1.0
        if not scale_up_with_unready and not missing:
            if self._within(ratio):
                return current, util, raw
            return math.ceil(ratio * ready), util, raw
        if missing:
            if ratio < 1.0:
                fallback = max(100, target_utilization)
                for n in missing:
                    metrics[n] = PodMetric(requests[n] * fallback // 100)
            elif ratio > 1.0:
                for n in missing:
                    metrics[n] = PodMetric(0)
        if scale_up_with_unready:
            for n in unready:
                metrics[n] = PodMetric(0)
        new_ratio, _, _ = resource_utilization_ratio(metrics, requests, target_utilization)
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, util, raw
        new = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
            return current, util, raw
        return new, util, raw

    def plain_metric_replicas(self, current: int, target_usage: int, resource: str, pods: list[Obj],
                              metrics: dict[str, PodMetric], now: float) -> tuple[int, int]:
        """``calcPlainMetricReplicas`` (AverageValue targets): (replicas, average usage milli)."""
        if not pods:
            raise MetricError("no pods returned by selector while calculating replica count")
        metrics = dict(metrics)
        ready, unready, missing, ignored = group_pods(pods, metrics, resource, now, self.cpu_init, self.delay)
        for n in ignored | unready:
            metrics.pop(n, None)
        if not metrics:
            raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
        ratio, usage = metric_usage_ratio(metrics, target_usage)
        scale_up_with_unready = bool(unready) and ratio > 1.0
        if not scale_up_with_unready and not missing:
            if self._within(ratio):
                return current, usage
            return math.ceil(ratio * ready), usage
        if missing:   # at exactly 1.0 neither: the missing pods add nothing (upstream's `else if`)
            if ratio < 1.0:
                for n in missing:
                    metrics[n] = PodMetric(target_usage)
            elif ratio > 1.0:
                for n in missing:
                    metrics[n] = PodMetric(0)
        if scale_up_with_unready:
            for n in unready:
                metrics[n] = PodMetric(0)
        new_ratio, _ = metric_usage_ratio(metrics, target_usage)
        if self._within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
            return current, usage
        new = math.ceil(new_ratio * len(metrics))
        if (new_ratio < 1.0 and new > current) or (new_ratio > 1.0 and new < current):
            return current, usage
        return new, usage

    # -- custom metrics (Pods and Object sources) ------------------------------------------------
    def metric_replicas(self, current: int, target_usage: int, metric_name: str, namespace: str,
                        pod_selector: str, metric_selector: dict[str, Any] | None, pods: list[Obj],
                        source: CustomMetricsSource | None, now: float) -> tuple[int, int]:
        """``GetMetricReplicas``: (replicas, average usage milli). Only the fetch error is prefixed
        with ``unable to get metric <name>: ``; ``calcPlainMetricReplicas``' errors are not."""
        try:
            metrics = get_raw_metric(source, metric_name, namespace, pod_selector, metric_selector)
        except MetricError as exc:
            raise MetricError(f"unable to get metric {metric_name}: {exc}") from None
        return self.plain_metric_replicas(current, target_usage, "", pods, metrics, now)

    def object_metric_replicas(self, current: int, target_usage: int, metric_name: str, namespace: str,
                               described: dict[str, Any], metric_selector: dict[str, Any] | None,
                               pods: list[Obj], source: CustomMetricsSource | None) -> tuple[int, int]:
        """``GetObjectMetricReplicas`` (a ``Value`` target): (replicas, the object's value milli)."""
        usage = _object_value(source, metric_name, namespace, described, metric_selector)
        return self.usage_ratio_replica_count(current, usage / target_usage, pods), usage

    def usage_ratio_replica_count(self, current: int, ratio: float, pods: list[Obj]) -> int:
        """``getUsageRatioReplicaCount``: ``ceil(ratio x ready pods)`` (Running and Ready; any pod
        the selector lists counts, deleted or not); ``ceil(ratio)`` when scaled to zero."""
        if current == 0:
            return math.ceil(ratio)
        if self._within(ratio):
            return current
        if not pods:
            raise MetricError("unable to calculate ready pods: no pods returned by selector while calculating "
                              "replica count")
        ready = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running"
                    and (_ready_condition(p) or {}).get("status") == "True")
        return min(math.ceil(ratio * ready), 2**31 - 1)

    def object_per_pod_metric_replicas(self, status_replicas: int, target_average: int, metric_name: str,
                                       namespace: str, described: dict[str, Any],
                                       metric_selector: dict[str, Any] | None,
                                       source: CustomMetricsSource | None) -> tuple[int, int]:
        """``GetObjectPerPodMetricReplicas`` (an ``AverageValue`` target): the object's value over
        the target's ``status.replicas``: (replicas, ``ceil(value / status.replicas)`` milli)."""
        usage = _object_value(source, metric_name, namespace, described, metric_selector)
        replicas = status_replicas
        if status_replicas == 0:     # Go: x/0 is +Inf (NaN for 0/0): never within the tolerance
            ratio = math.inf if usage else math.nan
        else:
            ratio = usage / (target_average * status_replicas)
        if not self._within(ratio):
            replicas = math.ceil(usage / target_average)
        average = math.ceil(usage / status_replicas) if status_replicas else usage
        return replicas, average


def get_raw_metric(source: CustomMetricsSource | None, metric_name: str, namespace: str, pod_selector: str,
                   metric_selector: dict[str, Any] | None) -> dict[str, PodMetric]:
    """``customMetricsClient.GetRawMetric``: the source's answer, with the client's errors."""
    try:
        if source is None:
            raise CustomMetricsError(NO_ADAPTER)
        metrics = source.pod_metrics(namespace, metric_name, pod_selector, metric_selector)
    except CustomMetricsError as exc:
        raise MetricError(f"unable to fetch metrics from custom metrics API: {exc}") from None
    if not metrics:
        raise MetricError("no metrics returned from custom metrics API")
    return dict(metrics)


def get_object_metric(source: CustomMetricsSource | None, metric_name: str, namespace: str,
                      described: dict[str, Any], metric_selector: dict[str, Any] | None) -> tuple[int, float]:
    """``customMetricsClient.GetObjectMetric``."""
    try:
        if source is None:
            raise CustomMetricsError(NO_ADAPTER)
        return source.object_metric(namespace, described, metric_name, metric_selector)
    except CustomMetricsError as exc:
        raise MetricError(f"unable to fetch metrics from custom metrics API: {exc}") from None


def _object_value(source: CustomMetricsSource | None, metric_name: str, namespace: str,
                  described: dict[str, Any], metric_selector: dict[str, Any] | None) -> int:
    try:
        return get_object_metric(source, metric_name, namespace, described, metric_selector)[0]
    except MetricError as exc:
        # upstream's format string: "unable to get metric %s: %v on %s %s/%s" with the
        # arguments (name, kind, namespace, object name, err): the error comes last
        raise MetricError(f"unable to get metric {metric_name}: {described.get('kind', '')} on {namespace} "
                          f"{described.get('name', '')}/{exc}") from None


def go_label_selector(sel: dict[str, Any] | None) -> str:
    """``%+v`` of a ``*metav1.LabelSelector`` (its generated ``String()``), as upstream puts it in
    the Object ``AverageValue`` metric name (``external metric qps(nil)``)."""
    if sel is None:
        return "nil"
    labels = "".join(f"{k}: {v}," for k, v in sorted((sel.get("matchLabels") or {}).items()))
    exprs = "".join(f"LabelSelectorRequirement{{Key:{e.get('key', '')},Operator:{e.get('operator', '')},"
                    f"Values:[{' '.join(e.get('values') or [])}],}},"
                    for e in sel.get("matchExpressions") or [])
    return (f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},"
            f"MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}")


# ---- normalization: stabilization and rate limits ---------------------------------------------

@dataclass
class Recommendation:
    replicas: int
    t: float


@dataclass
class ScaleEvent:
    change: int
    t: float


def stabilize_legacy(recs: list[Recommendation], proposal: int, now: float, window: float) -> int:
    """``stabilizeRecommendation``: the highest recommendation of the last ``window`` s (records ``proposal``)."""
    best, old = proposal, None
    cutoff = now - window
    for i, r in enumerate(recs):
        if r.t < cutoff:
            old = i
        elif r.replicas > best:
            best = r.replicas
    if old is not None:
        recs[old] = Recommendation(proposal, now)
    else:
        recs.append(Recommendation(proposal, now))
    return best


def convert_with_rules(current: int, desired: int, min_replicas: int, max_replicas: int) -> tuple[int, str, str]:
    """``convertDesiredReplicasWithRules`` (no ``behavior``)."""
    limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > limit:
        maximum, reason, msg = limit, "ScaleUpLimit", "the desired replica count is increasing faster than the " \
                                                      "maximum scale rate"
    else:
        maximum, reason, msg = max_replicas, "TooManyReplicas", "the desired replica count is more than the " \
                                                                "maximum replica count"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas", "the desired replica count is less than the minimum replica count"
    if desired > maximum:
        return maximum, reason, msg
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


def stabilize_with_behaviors(recs: list[Recommendation], current: int, desired: int, up_window: float,
                             down_window: float, now: float) -> tuple[int, str, str]:
    """``stabilizeRecommendationWithBehaviors`` (records the unstabilized ``desired``)."""
    up, down = desired, desired
    up_cutoff, down_cutoff = now - up_window, now - down_window
    old = None
    for i, r in enumerate(recs):
        if r.t > up_cutoff:
            up = min(r.replicas, up)
        if r.t > down_cutoff:
            down = max(r.replicas, down)
        if r.t < up_cutoff and r.t < down_cutoff:
            old = i
    rec = current
    if rec < up:
        rec = up
    if rec > down:
        rec = down
    if old is not None:
        recs[old] = Recommendation(desired, now)
    else:
        recs.append(Recommendation(desired, now))
    if desired >= current:
        return rec, "ScaleUpStabilized", "recent recommendations were lower than current one, applying the " \
                                         "lowest recent recommendation"
    return rec, "ScaleDownStabilized", "recent recommendations were higher than current one, applying the " \
                                       "highest recent recommendation"


def _change_in_period(period: float, events: list[ScaleEvent], now: float) -> int:
    cutoff = now - period
    return sum(e.change for e in events if e.t > cutoff)


def scale_up_limit(current: int, up_events: list[ScaleEvent], down_events: list[ScaleEvent],
                   rules: dict[str, Any], now: float) -> int:
    """``calculateScaleUpLimitWithScalingRules``."""
    sel = rules.get("selectPolicy", "Max")
    if sel == "Disabled":
        return current
    pick, result = (min, math.inf) if sel == "Min" else (max, -math.inf)
    for p in rules.get("policies") or []:
        start = current - _change_in_period(p["periodSeconds"], up_events, now) + \
            _change_in_period(p["periodSeconds"], down_events, now)
        if p["type"] == "Pods":
            proposed = start + p["value"]
        else:
            proposed = math.ceil(start * (1 + p["value"] / 100))
        result = pick(result, proposed)
    return int(result)


def scale_down_limit(current: int, up_events: list[ScaleEvent], down_events: list[ScaleEvent],
                     rules: dict[str, Any], now: float) -> int:
    """``calculateScaleDownLimitWithBehaviors``."""
    sel = rules.get("selectPolicy", "Max")
    if sel == "Disabled":
        return current
    pick, result = (max, -math.inf) if sel == "Min" else (min, math.inf)
    for p in rules.get("policies") or []:
        start = current - _change_in_period(p["periodSeconds"], up_events, now) + \
            _change_in_period(p["periodSeconds"], down_events, now)
        if p["type"] == "Pods":
            proposed = start - p["value"]
        else:
            proposed = int(start * (1 - p["value"] / 100))
        result = pick(result, proposed)
    return int(result)


def convert_with_behavior_rate(current: int, desired: int, min_replicas: int, max_replicas: int,
                               up_rules: dict[str, Any], down_rules: dict[str, Any],
                               up_events: list[ScaleEvent], down_events: list[ScaleEvent], now: float
                               ) -> tuple[int, str, str]:
    """``convertDesiredReplicasWithBehaviorRate``."""
    if desired > current:
        limit = max(scale_up_limit(current, up_events, down_events, up_rules, now), current)
        if max_replicas > limit:
            maximum, reason, msg = limit, "ScaleUpLimit", "the desired replica count is increasing faster than " \
                                                          "the maximum scale rate"
        else:
            maximum, reason, msg = max_replicas, "TooManyReplicas", "the desired replica count is more than the " \
                                                                    "maximum replica count"
        if desired > maximum:
            return maximum, reason, msg
    elif desired < current:
        limit = min(scale_down_limit(current, up_events, down_events, down_rules, now), current)
        if min_replicas < limit:
            minimum, reason, msg = limit, "ScaleDownLimit", "the desired replica count is decreasing faster than " \
                                                            "the maximum scale rate"
        else:
            minimum, reason, msg = min_replicas, "TooFewReplicas", "the desired replica count is less than the " \
                                                                   "minimum replica count"
        if desired < minimum:
            return minimum, reason, msg
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"


# ---- the controller ----------------------------------------------------------------------------

@dataclass
class _State:
    uid: str
    next_sync: float
    recommendations: list[Recommendation] | None = None
    up_events: list[ScaleEvent] = field(default_factory=list)
    down_events: list[ScaleEvent] = field(default_factory=list)
    last_proposal: int | None = None


def set_condition(conds: list[dict[str, Any]], type_: str, status: str, reason: str, message: str,
                  now: float) -> None:
    """``setConditionInList``: the transition time moves only when the status changes."""
    c = next((c for c in conds if c["type"] == type_), None)
    if c is None:
        c = {"type": type_}
        conds.append(c)
    if c.get("status") != status:
        c["lastTransitionTime"] = rfc3339(now)
    c["status"], c["reason"], c["message"] = status, reason, message


class HPAController:
    """Syncs every HPA once per ``config.sync_period`` (first sync one period after it is seen,
    as the rate-limited work queue does)."""

    def __init__(self, store, recorder, clock, timers, metrics, config: HPAConfig | None = None,
                 custom_metrics: CustomMetricsSource | None = None):
        self.store, self.recorder, self.clock, self.timers, self.metrics = store, recorder, clock, timers, metrics
        self.custom_metrics = custom_metrics      # None: no custom.metrics.k8s.io adapter registered
        self.config = config or HPAConfig()
        self.calc = ReplicaCalculator(self.config.tolerance, self.config.cpu_initialization_period,
                                      self.config.initial_readiness_delay)
        self._state: dict[tuple[str, str], _State] = {}

    def last_proposal(self, namespace: str, name: str) -> int | None:
        """The raw metric proposal of the last sync (before stabilization and limits), for diagnostics."""
        st = self._state.get((namespace, name))
        return st.last_proposal if st else None

    def sync(self) -> None:
        now = self.clock.now()
        seen = set()
        for hpa in self.store.list("HorizontalPodAutoscaler", record=False):
            key = (hpa["metadata"]["namespace"], hpa["metadata"]["name"])
            seen.add(key)
            st = self._state.get(key)
            if st is None or st.uid != hpa["metadata"]["uid"]:
                st = self._state[key] = _State(hpa["metadata"]["uid"], now + self.config.sync_period)
            if now + 1e-9 >= st.next_sync:
                while st.next_sync <= now + 1e-9:
                    st.next_sync += self.config.sync_period
                try:
                    self.reconcile(hpa, st, now)
                except ApiError:
                    pass     # a conflict: the next sync retries
            self.timers.at(st.next_sync)
        for key in set(self._state) - seen:
            del self._state[key]

    def _event(self, hpa: Obj, type_: str, reason: str, message: str) -> None:
        self.recorder.record(hpa, type_, reason, message, COMPONENT)

    # -- reconcileAutoscaler ------------------------------------------------------------------
    def reconcile(self, hpa: Obj, st: _State, now: float) -> None:
        spec, ns = hpa["spec"], hpa["metadata"]["namespace"]
        status = copy.deepcopy(hpa.get("status") or {})
        conds: list[dict[str, Any]] = status.setdefault("conditions", [])
        ref = spec.get("scaleTargetRef") or {}
        kind, name = ref.get("kind", ""), ref.get("name", "")
        target = self.store.try_get(kind, ns, name) if kind in _SCALABLE else None
        if target is None:
            err = (f'{_SCALABLE[kind]} "{name}" not found' if kind in _SCALABLE else
                   f'unable to determine resource for scale target reference: no matches for kind "{kind}" in '
                   f'group "{ref.get("apiVersion", "").split("/")[0] if "/" in ref.get("apiVersion", "") else ""}"')
            self._event(hpa, "Warning", "FailedGetScale", err)
            set_condition(conds, "AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {err}", now)
            self._write_status(hpa, status)
            return
        set_condition(conds, "AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale", now)
        current = target["spec"].get("replicas", 1)
        if st.recommendations is None:
            st.recommendations = [Recommendation(current, now)]     # recordInitialRecommendation
        min_r, max_r = spec.get("minReplicas", 1), spec["maxReplicas"]
        statuses: list[dict[str, Any]] = []
        rescale, reason, desired = True, "", 0
        if current == 0 and min_r != 0:
            rescale = False
            set_condition(conds, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", now)
        elif current > max_r:
            reason, desired = "Current number of replicas above Spec.MaxReplicas", max_r
        elif current < min_r:
            reason, desired = "Current number of replicas below Spec.MinReplicas", min_r
        else:
            proposal, metric_name, statuses, err = self._compute_for_metrics(hpa, target, current, conds, now)
            if err is not None and proposal == -1:
                self._set_status(status, current, status.get("desiredReplicas", 0), statuses, False, now)
                self._write_status(hpa, status)
                self._event(hpa, "Warning", "FailedComputeMetricsReplicas", err)
                return
            st.last_proposal = proposal
            rescale_metric = ""
            if proposal > desired:
                desired, rescale_metric = proposal, metric_name
            if desired > current:
                reason = f"{rescale_metric} above target"
            if desired < current:
                reason = "All metrics below target"
            if spec.get("behavior") is None:
                desired = self._normalize_legacy(st, conds, current, desired, min_r, max_r, now)
            else:
                desired = self._normalize_behaviors(spec["behavior"], st, conds, current, desired, min_r, max_r,
                                                    now)
            rescale = desired != current
        if rescale:
            try:
                target["spec"]["replicas"] = desired
                self.store.update(target)      # the scale subresource: only spec.replicas changes
            except ApiError as exc:
                self._event(hpa, "Warning", "FailedRescale", f"New size: {desired}; reason: {reason}; error: {exc}")
                set_condition(conds, "AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {exc}", now)
                self._set_status(status, current, status.get("desiredReplicas", 0), statuses, False, now)
                self._write_status(hpa, status)
                return
            set_condition(conds, "AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}", now)
            self._event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            if spec.get("behavior") is not None:
                self._store_scale_event(spec["behavior"], st, current, desired, now)
        else:
            desired = current
        self._set_status(status, current, desired, statuses, rescale, now)
        self._write_status(hpa, status)

    @staticmethod
    def _set_status(status: dict[str, Any], current: int, desired: int, statuses: list[dict[str, Any]],
                    rescale: bool, now: float) -> None:
        for k in ("currentReplicas", "currentMetrics"):
            status.pop(k, None)
        if current:
            status["currentReplicas"] = current             # omitempty
        status["desiredReplicas"] = desired
        if statuses:
            status["currentMetrics"] = statuses
        if rescale:
            status["lastScaleTime"] = rfc3339(now)

    def _write_status(self, hpa: Obj, status: dict[str, Any]) -> None:
        if not status.get("conditions"):
            status.pop("conditions", None)
        order = ["currentReplicas", "desiredReplicas", "currentMetrics", "conditions", "lastScaleTime"]
        status = {k: status[k] for k in sorted(status, key=lambda k: order.index(k) if k in order else 99)}
        if status != hpa.get("status"):
            hpa["status"] = status
            hpa["metadata"].pop("resourceVersion", None)
            self.store.update(hpa, subresource="status")

    # -- computeReplicasForMetrics ----------------------------------------------------------------
    def _compute_for_metrics(self, hpa: Obj, target: Obj, spec_replicas: int, conds: list[dict[str, Any]],
                             now: float) -> tuple[int, str, list[dict[str, Any]], str | None]:
        specs = hpa["spec"].get("metrics") or []
        sel = target["spec"].get("selector")
        if not sel:
            self._event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(conds, "ScalingActive", "False", "InvalidSelector",
                          "the HPA target's scale is missing a selector", now)
            return -1, "", [], "selector is required"
        match = selector_matcher(sel)
        ns = hpa["metadata"]["namespace"]
        pods = [p for p in self.store.list("Pod", ns, record=False) if match(p["metadata"].get("labels") or {})]
        statuses: list[dict[str, Any]] = [{"type": ""} for _ in specs]
        replicas, metric, invalid, first_err, first_cond = 0, "", 0, None, None
        for i, ms in enumerate(specs):
            try:
                proposal, name, statuses[i] = self._compute_for_metric(hpa, ms, spec_replicas, pods, match, now,
                                                                       target)
            except MetricError as exc:
                if invalid == 0:
                    first_err, first_cond = str(exc), exc.condition
                invalid += 1
                continue
            if replicas == 0 or proposal > replicas:
                replicas, metric = proposal, name
        err = None
        if first_err is not None:
            err = f"invalid metrics ({invalid} invalid out of {len(specs)}), first error is: {first_err}"
        if invalid >= len(specs) or (invalid > 0 and replicas < spec_replicas):
            if first_cond is not None:
                set_condition(conds, *first_cond, now)
            return -1, "", statuses, err
        set_condition(conds, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {metric}", now)
        return replicas, metric, statuses, err

    def _compute_for_metric(self, hpa: Obj, ms: dict[str, Any], spec_replicas: int, pods: list[Obj], match,
                            now: float, target: Obj) -> tuple[int, str, dict[str, Any]]:
        typ = ms.get("type")
        if typ in ("Resource", "ContainerResource"):
            src = ms["resource"] if typ == "Resource" else ms["containerResource"]
            container = src.get("container") if typ == "ContainerResource" else None
            reason = "FailedGetResourceMetric" if typ == "Resource" else "FailedGetContainerResourceMetric"
            try:
                proposal, current, name = self._resource_metric(hpa, src, spec_replicas, pods, match, now, container)
            except MetricError as exc:
                self._event(hpa, "Warning", reason, str(exc))
                cond = ("ScalingActive", "False", reason, f"the HPA was unable to compute the replica count: {exc}")
                raise MetricError(f"failed to get {src.get('name')} {'container ' if container else ''}resource "
                                  f"metric value: {exc}", cond) from None
            body = {"name": src["name"], "current": current}
            if container:
                body["container"] = container
            key = "resource" if typ == "Resource" else "containerResource"
            return proposal, name, {"type": typ, key: body}
        if typ in ("Pods", "Object"):
            return self._custom_metric(hpa, ms, typ, spec_replicas, target, pods, now)
        # External needs external.metrics.k8s.io: no adapter in the sim.
        what = (ms.get("external") or {}).get("metric", {}).get("name", "") if typ == "External" else ""
        reason = "FailedGetExternalMetric" if typ == "External" else "InvalidMetricSourceType"
        err = (f"unable to get metric {what}: unable to fetch metrics from external metrics API: the server could "
               "not find the requested resource (the sim serves no external.metrics.k8s.io adapter)")
        self._event(hpa, "Warning", reason, err)
        cond = ("ScalingActive", "False", reason, f"the HPA was unable to compute the replica count: {err}")
        raise MetricError(f"failed to get {typ.lower() if typ else 'unknown'} metric value: {err}", cond)

    def _metric_failure(self, hpa: Obj, reason: str, err: str, wrapped: str) -> MetricError:
        """``getUnableComputeReplicaCountCondition``: a Warning event with ``err`` and the
        ScalingActive=False condition; ``wrapped`` is the error computeReplicasForMetric returns."""
        self._event(hpa, "Warning", reason, err)
        return MetricError(wrapped, ("ScalingActive", "False", reason,
                                     f"the HPA was unable to compute the replica count: {err}"))

    def _custom_metric(self, hpa: Obj, ms: dict[str, Any], typ: str, spec_replicas: int, target: Obj,
                       pods: list[Obj], now: float) -> tuple[int, str, dict[str, Any]]:
        """``computeStatusForPodsMetric`` / ``computeStatusForObjectMetric``."""
        key = "pods" if typ == "Pods" else "object"
        reason, outer = ("FailedGetPodsMetric", "failed to get pods metric value") if typ == "Pods" else \
            ("FailedGetObjectMetric", "failed to get object metric value")
        src = ms.get(key) or {}
        ident = src.get("metric") or {}
        name, msel = ident.get("name", ""), ident.get("selector")
        metric_id: dict[str, Any] = {"name": name}
        if msel is not None:
            metric_id["selector"] = copy.deepcopy(msel)
        try:
            validate_metric_selector(msel)                 # metav1.LabelSelectorAsSelector
        except ValueError as exc:
            raise self._metric_failure(hpa, reason, str(exc), f"{outer}: {exc}") from None
        ns, t = hpa["metadata"]["namespace"], src.get("target") or {}
        if typ == "Pods":
            try:
                proposal, usage = self.calc.metric_replicas(
                    spec_replicas, milli(t["averageValue"]), name, ns, selector_string(target["spec"]["selector"]),
                    msel, pods, self.custom_metrics, now)
            except MetricError as exc:
                raise self._metric_failure(hpa, reason, str(exc), f"{outer}: {exc}") from None
            return proposal, f"pods metric {name}", {"type": "Pods", "pods": {
                "metric": metric_id, "current": {"averageValue": decimal_quantity(usage, -3)}}}
        described = src.get("describedObject") or {}
        if t.get("type") == "Value" and t.get("value") is not None:
            try:
                proposal, usage = self.calc.object_metric_replicas(spec_replicas, milli(t["value"]), name, ns,
                                                                   described, msel, pods, self.custom_metrics)
            except MetricError as exc:
                raise self._metric_failure(hpa, reason, str(exc), f"{outer}: {exc}") from None
            return proposal, f"{described.get('kind', '')} metric {name}", {"type": "Object", "object": {
                "describedObject": copy.deepcopy(described), "metric": metric_id,
                "current": {"value": decimal_quantity(usage, -3)}}}
        if t.get("type") == "AverageValue" and t.get("averageValue") is not None:
            status_replicas = (target.get("status") or {}).get("replicas", 0)     # scale.Status.Replicas
            try:
                proposal, usage = self.calc.object_per_pod_metric_replicas(
                    status_replicas, milli(t["averageValue"]), name, ns, described, msel, self.custom_metrics)
            except MetricError as exc:
                raise self._metric_failure(hpa, reason, str(exc),
                                           f"{outer}: failed to get {name} object metric: {exc}") from None
            # upstream leaves describedObject empty here and names the metric "external metric ..."
            return proposal, f"external metric {name}({go_label_selector(msel)})", {"type": "Object", "object": {
                "describedObject": {"kind": "", "name": ""}, "metric": metric_id,
                "current": {"averageValue": decimal_quantity(usage, -3)}}}
        err = "invalid object metric source: neither a value target nor an average value target was set"
        raise self._metric_failure(hpa, reason, err, f"{outer}: {err}")

    def _resource_metric(self, hpa: Obj, src: dict[str, Any], spec_replicas: int, pods: list[Obj], match,
                         now: float, container: str | None) -> tuple[int, dict[str, Any], str]:
        res, target = src["name"], src.get("target") or {}
        ns = hpa["metadata"]["namespace"]

        def fetch() -> dict[str, PodMetric]:
            items = self.metrics.list(ns, match, internal=True) if self.metrics is not None else []
            if not items:
                raise MetricError(f"unable to get metrics for resource {res}: no metrics returned from resource "
                                  "metrics API")
            try:
                return pod_metrics_info(items, res, container)
            except MetricError as exc:
                raise MetricError(f"unable to get metrics for resource {res}: {exc}") from None

        if target.get("averageValue") is not None:
            try:
                proposal, usage = self.calc.plain_metric_replicas(spec_replicas, milli(target["averageValue"]), res,
                                                                  pods, fetch(), now)
            except MetricError as exc:
                raise MetricError(f"failed to get {res} usage: {exc}") from None
            return proposal, {"averageValue": decimal_quantity(usage, -3)}, f"{res} resource"
        if target.get("averageUtilization") is None:
            raise MetricError("invalid resource metric source: neither an average utilization target nor an "
                              "average value (usage) target was set")
        try:
            proposal, util, raw = self.calc.resource_replicas(spec_replicas, target["averageUtilization"], res, pods,
                                                              fetch(), now, container)
        except MetricError as exc:
            raise MetricError(f"failed to get {res} utilization: {exc}") from None
        name = f"{res} {'container ' if container else ''}resource utilization (percentage of request)"
        return proposal, {"averageUtilization": util, "averageValue": decimal_quantity(raw, -3)}, name

    # -- normalization ----------------------------------------------------------------------------
    def _normalize_legacy(self, st: _State, conds, current: int, desired: int, min_r: int, max_r: int,
                          now: float) -> int:
        stabilized = stabilize_legacy(st.recommendations, desired, now, self.config.downscale_stabilization)
        if stabilized != desired:
            set_condition(conds, "AbleToScale", "True", "ScaleDownStabilized",
                          "recent recommendations were higher than current one, applying the highest recent "
                          "recommendation", now)
        else:
            set_condition(conds, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size",
                          now)
        out, reason, msg = convert_with_rules(current, stabilized, min_r, max_r)
        set_condition(conds, "ScalingLimited", "False" if out == stabilized else "True", reason, msg, now)
        return out

    def _normalize_behaviors(self, behavior: dict[str, Any], st: _State, conds, current: int, desired: int,
                             min_r: int, max_r: int, now: float) -> int:
        up, down = behavior["scaleUp"], behavior["scaleDown"]
        down_window = down.get("stabilizationWindowSeconds")
        if down_window is None:
            down_window = self.config.downscale_stabilization      # maybeInitScaleDownStabilizationWindow
        stabilized, reason, msg = stabilize_with_behaviors(st.recommendations, current, desired,
                                                           up.get("stabilizationWindowSeconds") or 0, down_window,
                                                           now)
        if stabilized != desired:
            set_condition(conds, "AbleToScale", "True", reason, msg, now)
        else:
            set_condition(conds, "AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size",
                          now)
        out, reason, msg = convert_with_behavior_rate(current, stabilized, min_r, max_r, up, down,
                                                      st.up_events, st.down_events, now)
        set_condition(conds, "ScalingLimited", "False" if out == stabilized else "True", reason, msg, now)
        return out

    @staticmethod
    def _store_scale_event(behavior: dict[str, Any], st: _State, prev: int, new: int, now: float) -> None:
        """``storeScaleEvent``: events older than the direction's longest policy period are replaced."""
        up = new > prev
        rules = behavior["scaleUp"] if up else behavior["scaleDown"]
        events = st.up_events if up else st.down_events
        longest = max((p["periodSeconds"] for p in rules.get("policies") or []), default=0)
        ev = ScaleEvent(abs(new - prev), now)
        old = next((i for i, e in enumerate(events) if e.t + longest < now), None)
        if old is not None:
            events[old] = ev
        else:
            events.append(ev)
