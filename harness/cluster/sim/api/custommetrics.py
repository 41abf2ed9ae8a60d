"""``/apis/custom.metrics.k8s.io/v1beta2/...``: the aggregated API that prometheus-adapter serves.

Present only when the sim runs a Prometheus (``SimCluster(custom_metrics=True)``,
Lab 05); without one the group is absent, as on a cluster with no adapter.
The answers come from :class:`~harness.cluster.sim.custom_metrics.PrometheusAdapter`.
"""
from __future__ import annotations

import re

from . import errors
from ..custom_metrics import GROUP, VERSION, MetricNotFound, MetricsUnavailable

PREFIX = f"/apis/{GROUP}"
_PATH = re.compile(rf"^{re.escape(PREFIX)}/{VERSION}(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[^/]+)/(?P<name>[^/]+)"
                   r"/(?P<metric>[^/]+)/?$")
_NS_PATH = re.compile(rf"^{re.escape(PREFIX)}/{VERSION}/namespaces/(?P<ns>[^/]+)/metrics/(?P<metric>[^/]+)/?$")


def group() -> dict:
    gv = {"groupVersion": f"{GROUP}/{VERSION}", "version": VERSION}
    return {"name": GROUP, "versions": [gv], "preferredVersion": gv}


def aggregated_group() -> dict:
    return {"metadata": {"name": GROUP, "creationTimestamp": None},
            "versions": [{"version": VERSION, "freshness": "Current", "resources": []}]}


def answer(adapter, path: str, method: str, query) -> tuple[int, dict]:
    """(HTTP code, body) for a request under :data:`PREFIX`."""
    if method != "GET":
        return 405, errors.status(405, "MethodNotAllowed", "the server does not allow this method")
    if path.rstrip("/") == PREFIX:
        return 200, {"kind": "APIGroup", "apiVersion": "v1", **group()}
    try:
        if path.rstrip("/") == f"{PREFIX}/{VERSION}":
            return 200, adapter.resource_list()
        nm = _NS_PATH.match(path)
        if nm:                                      # a metric of the namespace object itself
            return 200, adapter.value_list(nm["ns"], "namespaces", nm["ns"], nm["metric"])
        m = _PATH.match(path)
        if not m:
            return 404, errors.not_found_resource(path)
        ns, res, name, metric = m["ns"], m["res"], m["name"], m["metric"]
        return 200, adapter.value_list(ns or "", res, name, metric, query.get("labelSelector"))
    except MetricNotFound as exc:
        return 404, errors.status(404, "NotFound", str(exc))
    except MetricsUnavailable as exc:
        return 503, errors.status(503, "ServiceUnavailable", str(exc))
