"""``custom.metrics.k8s.io`` for the sim, answered from Prometheus the way prometheus-adapter answers it.

Why: the HPA's ``type: Pods`` and ``type: Object`` metrics read the custom
metrics API; on a real cluster prometheus-adapter serves it from Prometheus.
This module does the adapter's part against the sim's real Prometheus
(:mod:`.prometheus`), with the adapter's own rule format, read from
``harness/cluster/addons/custom-metrics-rules.yaml`` (the same file the kind
addon installs):

* **Discovery** (``seriesQuery``): the series Prometheus has, renamed by the
  rule's ``name.matches``/``as``, make the API's resource list
  (``pods/<metric>``, ``namespaces/<metric>``), like the adapter's periodic
  relist.
* **Pods** (``GET /namespaces/<ns>/pods/*/<metric>?labelSelector=...``):
  the pods matching the selector are listed from the store and the rule's
  ``metricsQuery`` runs with ``<<.LabelMatchers>>`` =
  ``namespace="<ns>",pod=~"a|b"`` and ``<<.GroupBy>>`` = ``pod``. A pod with
  no sample is missing from the answer, as with the adapter.
* **Object**: ``describedObject`` Pod (by its ``pod`` label) or Namespace (the
  sum over the namespace). Other kinds have no label on the scraped series, so
  the metric is not found for them, as the adapter would answer.

Values are ``resource.Quantity`` in milli-units (``NewMilliQuantity``), the
``timestamp`` is Prometheus' evaluation time and ``windowSeconds`` the rule's
window. Not modelled: the adapter's relist interval (discovery is per request),
``metricSelector`` on label values other than equality.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .clock import rfc3339
from .custom_metrics_source import CustomMetricsError, PodMetric
from .labels import parse_selector
from .metrics import decimal_quantity

RULES_FILE = Path(__file__).resolve().parent.parent / "addons" / "custom-metrics-rules.yaml"
GROUP, VERSION = "custom.metrics.k8s.io", "v1beta2"


class MetricNotFound(LookupError):
    """The metric or the object has no data; the text is what the adapter answers (404)."""


class MetricsUnavailable(RuntimeError):
    """Prometheus did not answer (503 from the adapter)."""


@dataclass(frozen=True)
class Rule:
    series_query: str
    matches: str
    as_: str
    metrics_query: str

    def name_of(self, series: str) -> str | None:
        m = re.match(self.matches, series)
        if not m:
            return None
        return re.sub(r"\$\{(\d+)\}", lambda g: m.group(int(g.group(1))) or "", self.as_)

    def series_for(self, metric: str, names: list[str]) -> str | None:
        return next((s for s in names if self.name_of(s) == metric), None)


def load_rules(path: Path = RULES_FILE) -> list[Rule]:
    doc = yaml.safe_load(path.read_text())
    return [Rule(r["seriesQuery"], (r.get("name") or {}).get("matches", "^(.*)$"),
                 (r.get("name") or {}).get("as", "${1}") or "${1}", r["metricsQuery"]) for r in doc["rules"]]


def _quote(values: list[str]) -> str:
    """Object names as one PromQL regex alternation. Names are DNS labels/subdomains
    ([a-z0-9.-]): only the dot is special, escaped for the regex and the PromQL string."""
    return "|".join(v.replace(".", "\\\\.") for v in values)


def _selector_matchers(metric_selector: dict | None) -> list[str]:
    """``metric.selector.matchLabels`` as PromQL equality matchers on the series' labels."""
    out = []
    for k, v in ((metric_selector or {}).get("matchLabels") or {}).items():
        out.append(f'{k}="{v}"')
    return out


class PrometheusAdapter:
    def __init__(self, store, server, window_s: float, rules: list[Rule] | None = None):
        self.store, self.server, self.window_s = store, server, window_s
        self.rules = rules if rules is not None else load_rules()

    @property
    def window(self) -> str:
        return f"{int(round(self.window_s))}s"

    # ---- discovery -----------------------------------------------------------------------
    def _series_names(self, rule: Rule) -> list[str]:
        try:
            rows = self.server.query(f"count by (__name__) ({rule.series_query})")
        except (OSError, ValueError) as exc:
            raise MetricsUnavailable(f"unable to fetch metrics from Prometheus: {exc}") from None
        return sorted(r["metric"]["__name__"] for r in rows)

    def metric_names(self) -> list[str]:
        return sorted({n for rule in self.rules for s in self._series_names(rule) if (n := rule.name_of(s))})

    def _find(self, metric: str) -> tuple[Rule, str]:
        for rule in self.rules:
            series = rule.series_for(metric, self._series_names(rule))
            if series:
                return rule, series
        raise MetricNotFound(f'the server could not find the metric {metric} for pods')

    def _run(self, rule: Rule, series: str, matchers: list[str], group_by: str) -> list[dict[str, Any]]:
        q = (rule.metrics_query.replace("<<.Series>>", series).replace("<<.LabelMatchers>>", ",".join(matchers))
             .replace("<<.GroupBy>>", group_by).replace("<<.Window>>", self.window))
        try:
            return self.server.query(q)
        except (OSError, ValueError) as exc:
            raise MetricsUnavailable(f"unable to fetch metrics from Prometheus: {exc}") from None

    # ---- values ------------------------------------------------------------------------------
    def pod_values(self, namespace: str, metric: str, label_selector: str | None,
                   metric_selector: dict | None = None) -> dict[str, tuple[int, float]]:
        """pod name -> (milli-value, timestamp) for the pods matching ``label_selector``."""
        match = parse_selector(label_selector)
        pods = sorted(p["metadata"]["name"] for p in self.store.list("Pod", namespace, record=False)
                      if match(p["metadata"].get("labels") or {}))
        if not pods:
            return {}
        rule, series = self._find(metric)
        rows = self._run(rule, series, [f'namespace="{namespace}"', f'pod=~"{_quote(pods)}"',
                                        *_selector_matchers(metric_selector)], "pod")
        return {r["metric"]["pod"]: (int(round(float(r["value"][1]) * 1000)), float(r["value"][0]))
                for r in rows if r["metric"].get("pod") in pods and r["value"][1] not in ("NaN", "+Inf", "-Inf")}

    def object_value(self, namespace: str, described: dict, metric: str,
                     metric_selector: dict | None = None) -> tuple[int, float]:
        kind, name = described.get("kind", ""), described.get("name", "")
        if kind not in ("Pod", "Namespace"):
            raise MetricNotFound(f"the server could not find the metric {metric} for {kind.lower()}s {name}")
        rule, series = self._find(metric)
        if kind == "Pod":
            rows = self._run(rule, series, [f'namespace="{namespace}"', f'pod="{name}"',
                                            *_selector_matchers(metric_selector)], "pod")
        else:
            rows = self._run(rule, series, [f'namespace="{name or namespace}"',
                                            *_selector_matchers(metric_selector)], "namespace")
        if not rows or rows[0]["value"][1] in ("NaN", "+Inf", "-Inf"):
            raise MetricNotFound(f"the server could not find the metric {metric} for {kind.lower()}s {name}")
        return int(round(float(rows[0]["value"][1]) * 1000)), float(rows[0]["value"][0])

    # ---- the HPA controller's CustomMetricsSource (custom_metrics_source.py) -------------------
    def pod_metrics(self, namespace: str, metric_name: str, pod_selector: str,
                    metric_selector: dict | None) -> dict[str, PodMetric]:
        """What the HPA's metrics client gets from ``GetRawMetric``: the adapter's errors become
        :class:`CustomMetricsError` with the API's text."""
        try:
            values = self.pod_values(namespace, metric_name, pod_selector, metric_selector)
        except (MetricNotFound, MetricsUnavailable) as exc:
            raise CustomMetricsError(str(exc)) from None
        return {pod: PodMetric(m, ts, self.window_s) for pod, (m, ts) in values.items()}

    def object_metric(self, namespace: str, described_object: dict, metric_name: str,
                      metric_selector: dict | None) -> tuple[int, float]:
        try:
            return self.object_value(namespace, described_object, metric_name, metric_selector)
        except (MetricNotFound, MetricsUnavailable) as exc:
            raise CustomMetricsError(str(exc)) from None

    # ---- the API's objects ----------------------------------------------------------------------
    def value_list(self, namespace: str, resource: str, name: str, metric: str,
                   label_selector: str | None = None) -> dict[str, Any]:
        """``MetricValueList`` (v1beta2) for ``/namespaces/<ns>/<resource>/<name|*>/<metric>``."""
        items = []
        if resource == "pods" and name == "*":
            for pod, (milli, ts) in sorted(self.pod_values(namespace, metric, label_selector).items()):
                items.append(self._item("Pod", namespace, pod, metric, milli, ts))
            if not items:
                raise MetricNotFound(f"the server could not find the metric {metric} for pods")
        else:
            kind = {"pods": "Pod", "namespaces": "Namespace"}.get(resource, resource.rstrip("s").capitalize())
            milli, ts = self.object_value(namespace, {"kind": kind, "name": name}, metric)
            items.append(self._item(kind, namespace if kind != "Namespace" else "", name, metric, milli, ts))
        return {"kind": "MetricValueList", "apiVersion": f"{GROUP}/{VERSION}", "metadata": {}, "items": items}

    def _item(self, kind: str, namespace: str, name: str, metric: str, milli: int, ts: float) -> dict[str, Any]:
        obj = {"kind": kind, "name": name, "apiVersion": "/v1"}
        if namespace:
            obj["namespace"] = namespace
        return {"describedObject": obj, "metric": {"name": metric, "selector": None},
                "timestamp": rfc3339(ts), "windowSeconds": int(round(self.window_s)),
                "value": decimal_quantity(milli, -3)}

    def resource_list(self) -> dict[str, Any]:
        """``APIResourceList`` of the group: every discovered metric, for pods and namespaces."""
        res = []
        for n in self.metric_names():
            for plural, namespaced in (("pods", True), ("namespaces", False)):
                res.append({"name": f"{plural}/{n}", "singularName": "", "namespaced": namespaced,
                            "kind": "MetricValueList", "verbs": ["get"]})
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{GROUP}/{VERSION}", "resources": res}
