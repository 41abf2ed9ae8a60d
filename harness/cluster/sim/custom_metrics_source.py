"""Where the sim's HPA gets ``type: Pods`` and ``type: Object`` metrics: one small interface.

Why: upstream's HPA reads these metrics through ``custom.metrics.k8s.io``
(``metrics/client.go customMetricsClient``), served on a real cluster by an
adapter such as prometheus-adapter. The controller (:mod:`.hpa`) only needs two
questions answered, so that is the whole contract here:
:class:`CustomMetricsSource`. A Prometheus-backed source for the sim is a
separate piece of work; tests use :class:`StaticCustomMetrics`.

Division of labour, as upstream: a source answers like the custom metrics API
(values, or the API's error text); the controller adds the metrics client's
wrapping (``unable to fetch metrics from custom metrics API: ...``, ``no
metrics returned from custom metrics API``) and the replica calculator's
(``unable to get metric <name>: ...``). With no source at all the controller
fails the metric with the error client-go's discovery gives when no adapter is
registered: :data:`NO_ADAPTER`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from .labels import parse_selector, selector_matcher

NO_ADAPTER = "no custom metrics API (custom.metrics.k8s.io) registered"
_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass
class PodMetric:
    """One pod's value (``metricsclient.PodMetric``)."""

    value: int                 # milli-units (MilliValue)
    timestamp: float = 0.0
    window: float = 60.0


class CustomMetricsError(Exception):
    """The custom metrics API did not answer. The text is the API's error as client-go
    returns it (e.g. an adapter's 404 ``the server could not find the metric qps for pods``),
    without the controller's ``unable to fetch metrics from custom metrics API: `` prefix."""


class CustomMetricsSource(Protocol):
    """``custom.metrics.k8s.io`` as the HPA controller uses it. Raise :class:`CustomMetricsError`
    when the API cannot answer; any other exception is a bug and propagates."""

    def pod_metrics(self, namespace: str, metric_name: str, pod_selector: str,
                    metric_selector: dict[str, Any] | None) -> dict[str, PodMetric]:
        """``GET .../namespaces/<ns>/pods/*/<metric_name>?labelSelector=<pod_selector>``
        (``GetRawMetric``): pod name -> value for the pods matching ``pod_selector`` (the
        target's selector in string form, see :func:`selector_string`) whose series match
        ``metric_selector`` (``metric.selector``, a LabelSelector dict, or None). A pod without
        a value is absent; an empty dict is a valid answer."""
        ...

    def object_metric(self, namespace: str, described_object: dict[str, Any], metric_name: str,
                      metric_selector: dict[str, Any] | None) -> tuple[int, float]:
        """``GET .../namespaces/<ns>/<resource>/<name>/<metric_name>`` (``GetObjectMetric``):
        (milli-value, timestamp) for ``described_object`` (``{kind, name, apiVersion?}``). For
        kind ``Namespace`` (core group) upstream asks the root-scoped path of ``namespace`` and
        ignores the name. No value is an error (:class:`CustomMetricsError`)."""
        ...


def validate_metric_selector(sel: dict[str, Any] | None) -> None:
    """The part of ``metav1.LabelSelectorAsSelector`` that can fail on a metric selector
    (the API server does not validate ``metric.selector``); raises ValueError with Go's text."""
    for e in (sel or {}).get("matchExpressions") or []:
        if e.get("operator") not in _OPERATORS:
            raise ValueError(f'"{e.get("operator", "")}" is not a valid label selector operator')


def selector_string(sel: dict[str, Any] | None) -> str:
    """A LabelSelector dict as ``labels.Selector.String()`` writes it (requirements sorted
    by key, values sorted): ``app=web,tier in (a,b),!legacy``."""
    reqs: list[tuple[str, str]] = []
    for k, v in ((sel or {}).get("matchLabels") or {}).items():
        reqs.append((k, f"{k}={v}"))
    for e in (sel or {}).get("matchExpressions") or []:
        k, op, vals = e.get("key", ""), e.get("operator"), sorted(e.get("values") or [])
        text = {"In": f"{k} in ({','.join(vals)})", "NotIn": f"{k} notin ({','.join(vals)})",
                "Exists": k, "DoesNotExist": f"!{k}"}.get(op)
        if text is None:
            raise ValueError(f'"{op}" is not a valid label selector operator')
        reqs.append((k, text))
    return ",".join(t for _, t in sorted(reqs, key=lambda r: r[0]))


@dataclass
class _Value:
    milli: int
    timestamp: float
    window: float
    labels: dict[str, str] = field(default_factory=dict)


class StaticCustomMetrics:
    """An in-memory custom metrics API for tests.

    ``set_pod``/``set_object`` store values; ``labels`` are the series' labels, matched by a
    ``metric.selector``. With a ``store``, ``pod_metrics`` answers only for the pods of the
    namespace that match the pod selector (as an adapter lists them); without one, every pod
    given a value answers. A metric never set in the namespace is a 404 in the words of
    prometheus-adapter (``the server could not find the metric <m> for pods``); ``fail(text)``
    makes every call raise that text (an unavailable adapter)."""

    def __init__(self, store=None):
        self.store = store
        self._pods: dict[tuple[str, str], dict[str, _Value]] = {}          # (ns, metric) -> pod -> value
        self._objects: dict[tuple[str, str, str, str], _Value] = {}       # (ns, kind, name, metric)
        self._failure: str | None = None
        self.calls: list[tuple[str, ...]] = []

    def set_pod(self, namespace: str, pod: str, metric: str, milli: int, *, timestamp: float = 0.0,
                window: float = 60.0, labels: dict[str, str] | None = None) -> None:
        self._pods.setdefault((namespace, metric), {})[pod] = _Value(int(milli), timestamp, window,
                                                                    dict(labels or {}))

    def set_pods(self, namespace: str, metric: str, values: dict[str, int], **kw: Any) -> None:
        """Values for several pods (``{}``: the metric exists, no pod has a value)."""
        self._pods.setdefault((namespace, metric), {})
        for pod, milli in values.items():
            self.set_pod(namespace, pod, metric, milli, **kw)

    def clear_pod(self, namespace: str, pod: str, metric: str) -> None:
        self._pods.get((namespace, metric), {}).pop(pod, None)

    def set_object(self, namespace: str, kind: str, name: str, metric: str, milli: int, *,
                   timestamp: float = 0.0, labels: dict[str, str] | None = None) -> None:
        self._objects[(namespace, kind, name, metric)] = _Value(int(milli), timestamp, 60.0, dict(labels or {}))

    def fail(self, message: str | None) -> None:
        """Every call raises ``CustomMetricsError(message)`` from now on (None: answer again)."""
        self._failure = message

    # -- CustomMetricsSource -----------------------------------------------------------------
    def pod_metrics(self, namespace: str, metric_name: str, pod_selector: str,
                    metric_selector: dict[str, Any] | None) -> dict[str, PodMetric]:
        self.calls.append(("pods", namespace, metric_name, pod_selector))
        if self._failure is not None:
            raise CustomMetricsError(self._failure)
        values = self._pods.get((namespace, metric_name))
        if values is None:
            raise CustomMetricsError(f"the server could not find the metric {metric_name} for pods")
        wanted = None
        if self.store is not None:
            match = parse_selector(pod_selector)
            wanted = {p["metadata"]["name"] for p in self.store.list("Pod", namespace, record=False)
                      if match(p["metadata"].get("labels") or {})}
        series = selector_matcher(metric_selector or {})
        return {pod: PodMetric(v.milli, v.timestamp, v.window) for pod, v in sorted(values.items())
                if (wanted is None or pod in wanted) and series(v.labels)}

    def object_metric(self, namespace: str, described_object: dict[str, Any], metric_name: str,
                      metric_selector: dict[str, Any] | None) -> tuple[int, float]:
        kind, name = described_object.get("kind", ""), described_object.get("name", "")
        self.calls.append(("object", namespace, kind, name, metric_name))
        if self._failure is not None:
            raise CustomMetricsError(self._failure)
        if kind == "Namespace" and "/" not in (described_object.get("apiVersion") or "v1"):
            name = namespace             # root-scoped: upstream ignores the name
        v = self._objects.get((namespace, kind, name, metric_name))
        if v is None or not selector_matcher(metric_selector or {})(v.labels):
            raise CustomMetricsError(f"the server could not find the metric {metric_name} for "
                                     f"{kind.lower()}s {name}")
        return v.milli, v.timestamp
