"""The Kubernetes REST API through the ``kubernetes`` client's ``ApiClient``.

Why not the typed APIs (``AppsV1Api`` ...): checks want plain dicts shaped
exactly like the API JSON, for any kind (``HTTPRoute``, ``VirtualService``),
and the typed models would have to be converted back. So this module speaks
REST with the client's configuration (auth, TLS, proxies from the kubeconfig)
and returns parsed JSON. Kinds map to resources through a small static table;
kinds not in it are found once through API discovery (``/api/v1``, ``/apis``).

Errors come back as the protocol's :class:`~harness.cluster.base.ApiError`
subclasses, built from the ``Status`` object the API server returned.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from harness.cluster.base import ApiError, NotFound, Obj

from .cli import _REASONS, BadRequest


@dataclass(frozen=True)
class Resource:
    group: str        # "" for core
    version: str
    plural: str
    namespaced: bool

    @property
    def prefix(self) -> str:
        return f"/api/{self.version}" if not self.group else f"/apis/{self.group}/{self.version}"

    def path(self, namespace: str | None, name: str | None = None, sub: str | None = None) -> str:
        p = self.prefix
        if self.namespaced and namespace:
            p += f"/namespaces/{quote(namespace)}"
        p += f"/{self.plural}"
        if name:
            p += f"/{quote(name)}"
        if sub:
            p += f"/{sub}"
        return p


def _r(gv: str, plural: str, namespaced: bool = True) -> Resource:
    group, _, version = gv.rpartition("/")
    return Resource(group, version, plural, namespaced)


KNOWN: dict[str, Resource] = {
    "Pod": _r("v1", "pods"), "Service": _r("v1", "services"), "Endpoints": _r("v1", "endpoints"),
    "ConfigMap": _r("v1", "configmaps"), "Secret": _r("v1", "secrets"), "Event": _r("v1", "events"),
    "ServiceAccount": _r("v1", "serviceaccounts"), "PersistentVolumeClaim": _r("v1", "persistentvolumeclaims"),
    "Node": _r("v1", "nodes", False), "Namespace": _r("v1", "namespaces", False),
    "Deployment": _r("apps/v1", "deployments"), "ReplicaSet": _r("apps/v1", "replicasets"),
    "StatefulSet": _r("apps/v1", "statefulsets"), "DaemonSet": _r("apps/v1", "daemonsets"),
    "Job": _r("batch/v1", "jobs"), "CronJob": _r("batch/v1", "cronjobs"),
    "HorizontalPodAutoscaler": _r("autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": _r("policy/v1", "poddisruptionbudgets"),
    "EndpointSlice": _r("discovery.k8s.io/v1", "endpointslices"),
    "Ingress": _r("networking.k8s.io/v1", "ingresses"),
    "NetworkPolicy": _r("networking.k8s.io/v1", "networkpolicies"),
    "HTTPRoute": _r("gateway.networking.k8s.io/v1", "httproutes"),
    "Gateway": _r("gateway.networking.k8s.io/v1", "gateways"),
    "CustomResourceDefinition": _r("apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    "PodMetrics": _r("metrics.k8s.io/v1beta1", "pods"),
    "NodeMetrics": _r("metrics.k8s.io/v1beta1", "nodes", False),
}

_ALIASES = {"deploy": "Deployment", "rs": "ReplicaSet", "po": "Pod", "svc": "Service", "ep": "Endpoints",
            "no": "Node", "ns": "Namespace", "cm": "ConfigMap", "ev": "Event", "hpa": "HorizontalPodAutoscaler",
            "pdb": "PodDisruptionBudget", "sa": "ServiceAccount"}


def kind_of(kind: str) -> str:
    """``"deployment"``/``"deploy"`` -> ``"Deployment"``; a kind in CamelCase stays as it is."""
    if kind and kind[0].isupper():
        return kind
    k = kind.lower()
    if k in _ALIASES:
        return _ALIASES[k]
    for name in KNOWN:
        if k in (name.lower(), name.lower() + "s"):
            return name
    return kind


def api_error(status: int, body: bytes | str, *, kind: str = "", name: str = "") -> ApiError:
    """Build the protocol's error from the API server's ``Status`` body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        st = json.loads(text)
    except ValueError:
        st = {"message": text.strip() or f"HTTP {status}"}
    reason, msg = st.get("reason", ""), st.get("message", text)
    cls = _REASONS.get(reason) or {400: BadRequest, 404: NotFound, 422: _REASONS["Invalid"],
                                   403: _REASONS["Forbidden"]}.get(status, ApiError)
    err = cls(msg, kind=kind, name=name)
    if cls is ApiError:
        err.code, err.reason = status, reason or "InternalError"
    return err


class Api:
    """Plain-dict REST over a ``kubernetes.client.ApiClient``."""

    def __init__(self, client: Any, *, request_timeout: float = 30.0):
        self.client = client
        self.timeout = request_timeout
        self._discovered: dict[str, Resource] = {}

    @classmethod
    def from_kubeconfig(cls, path: str | None, context: str | None) -> "Api":
        from kubernetes import config

        return cls(config.new_client_from_config(config_file=path, context=context))

    # ---- raw --------------------------------------------------------------------------
    def request(self, method: str, path: str, *, query: list[tuple[str, Any]] | None = None,
                body: Any = None, content_type: str = "application/json", raw: bool = False,
                kind: str = "", name: str = "") -> Any:
        # ``body`` stays a Python object: the client serialises it, and rewrites a JSON-patch
        # content type to strategic merge unless the body is a list.
        headers = {"Accept": "application/json, */*", "Content-Type": content_type}
        _, url, hdrs, _, _ = self.client.param_serialize(method, path, query_params=query or [],
                                                           header_params=headers, auth_settings=["BearerToken"])
        resp = self.client.call_api(method, url, header_params=hdrs, body=body, _request_timeout=self.timeout)
        payload = resp.read()
        if resp.status >= 400:
            raise api_error(resp.status, payload, kind=kind, name=name)
        if raw:
            return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
        return json.loads(payload) if payload else {}

    # ---- resources --------------------------------------------------------------------
    def resource(self, kind: str) -> Resource:
        kind = kind_of(kind)
        if kind in KNOWN:
            return KNOWN[kind]
        if kind not in self._discovered:
            self._discover()
        if kind not in self._discovered:
            raise NotFound(f'the server doesn\'t have a resource type for kind "{kind}"', kind=kind)
        return self._discovered[kind]

    def _discover(self) -> None:
        groups = [("", "v1")]
        for g in self.request("GET", "/apis").get("groups") or []:
            pv = (g.get("preferredVersion") or {}).get("version")
            if pv:
                groups.append((g["name"], pv))
        for group, version in groups:
            path = f"/api/{version}" if not group else f"/apis/{group}/{version}"
            try:
                lst = self.request("GET", path)
            except ApiError:
                continue   # an unavailable aggregated API must not break discovery
            for r in lst.get("resources") or []:
                if "/" not in r["name"]:
                    self._discovered.setdefault(r["kind"], Resource(group, version, r["name"], r["namespaced"]))

    def get(self, kind: str, name: str, namespace: str | None) -> Obj:
        r = self.resource(kind)
        return self.request("GET", r.path(namespace, name), kind=kind_of(kind), name=name)

    def list(self, kind: str, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[Obj]:
        r, kind = self.resource(kind), kind_of(kind)
        query = [(k, v) for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v]
        lst = self.request("GET", r.path(namespace), query=query, kind=kind)
        items = lst.get("items") or []
        for it in items:   # list items carry no kind/apiVersion; add them so objects read alike
            it.setdefault("kind", kind)
            it.setdefault("apiVersion", f"{r.group}/{r.version}" if r.group else r.version)
        return sorted(items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))

    def create(self, obj: Obj, namespace: str | None) -> Obj:
        r = self.resource(obj["kind"])
        return self.request("POST", r.path(namespace), body=obj, kind=obj["kind"],
                            name=obj["metadata"].get("name", ""))

    def delete(self, kind: str, name: str, namespace: str | None, *, propagation: str = "Background") -> Obj:
        r = self.resource(kind)
        return self.request("DELETE", r.path(namespace, name), body={"propagationPolicy": propagation},
                            kind=kind_of(kind), name=name)

    def patch(self, kind: str, name: str, patch: Any, namespace: str | None, patch_type: str = "merge",
              subresource: str | None = None) -> Obj:
        ctype = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json",
                 "json": "application/json-patch+json"}.get(patch_type)
        if ctype is None:
            raise BadRequest(f"unknown patch type {patch_type!r}", kind=kind, name=name)
        r = self.resource(kind)
        return self.request("PATCH", r.path(namespace, name, subresource), body=patch, content_type=ctype,
                            kind=kind_of(kind), name=name)

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
