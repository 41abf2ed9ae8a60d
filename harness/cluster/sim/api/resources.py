"""The REST resources the sim's API server serves: one row per group/version/resource.

Why a static table: kube-apiserver's discovery, URL routing, OpenAPI and Tables
all key on (group, version, resource). The rows below are the built-in kinds the
sim stores (names, short names, categories and verbs as ``kubectl api-resources``
lists them on v1.32), plus one row per served version of each CRD kept in
``harness/crds``. ``storage_kind`` is the key the sim's store keeps the kind
under (Istio's Gateway is stored apart from the Gateway API's).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

from harness.crds.validate import crds

from ..store import ISTIO_GATEWAY

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
READ = ("get", "list")


@dataclass(frozen=True)
class Resource:
    group: str                 # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = VERBS
    subresources: tuple[str, ...] = ()
    storage_kind: str = ""
    schema_id: str = ""        # OpenAPI definition name (io.k8s.api.apps.v1.Deployment), "" for CRDs
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def stored(self) -> str:
        return self.storage_kind or self.kind

    @property
    def qualified(self) -> str:
        """``deployments.apps``: how errors name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(version_pkg: str, group: str, version: str, plural: str, kind: str, **kw) -> Resource:
    pkg = version_pkg or (group.split(".")[0] if group else "core")
    return Resource(group, version, plural, kind, schema_id=f"io.k8s.api.{pkg}.{version}.{kind}", **kw)


BUILTIN: tuple[Resource, ...] = (
    _core("core", "", "v1", "pods", "Pod", short=("po",), categories=("all",),
          subresources=("status", "log", "exec", "portforward", "binding", "eviction")),
    _core("core", "", "v1", "services", "Service", short=("svc",), categories=("all",),
          verbs=tuple(v for v in VERBS if v != "deletecollection"), subresources=("status", "proxy")),
    _core("core", "", "v1", "endpoints", "Endpoints", short=("ep",)),
    _core("core", "", "v1", "configmaps", "ConfigMap", short=("cm",)),
    _core("core", "", "v1", "secrets", "Secret"),
    _core("core", "", "v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _core("core", "", "v1", "events", "Event", short=("ev",)),
    _core("core", "", "v1", "resourcequotas", "ResourceQuota", short=("quota",), subresources=("status",)),
    _core("core", "", "v1", "limitranges", "LimitRange", short=("limits",)),
    _core("core", "", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",),
          subresources=("status",)),
    _core("core", "", "v1", "nodes", "Node", namespaced=False, short=("no",), subresources=("status", "proxy")),
    _core("core", "", "v1", "namespaces", "Namespace", namespaced=False, short=("ns",),
          verbs=("create", "delete", "get", "list", "patch", "update", "watch"), subresources=("status", "finalize")),
    _core("apps", "apps", "v1", "deployments", "Deployment", short=("deploy",), categories=("all",),
          subresources=("status", "scale")),
    _core("apps", "apps", "v1", "replicasets", "ReplicaSet", short=("rs",), categories=("all",),
          subresources=("status", "scale")),
    _core("apps", "apps", "v1", "statefulsets", "StatefulSet", short=("sts",), categories=("all",),
          subresources=("status", "scale")),
    _core("apps", "apps", "v1", "daemonsets", "DaemonSet", short=("ds",), categories=("all",),
          subresources=("status",)),
    _core("autoscaling", "autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
          short=("hpa",), categories=("all",), subresources=("status",)),
    _core("autoscaling", "autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
          short=("hpa",), categories=("all",), subresources=("status",)),
    _core("discovery", "discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    _core("networking", "networking.k8s.io", "v1", "ingresses", "Ingress", short=("ing",), subresources=("status",)),
    _core("networking", "networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=("netpol",)),
    _core("policy", "policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=("pdb",),
          subresources=("status",)),
    Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", verbs=READ),
    Resource("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", namespaced=False, verbs=READ),
)

# Short names and categories of the CRDs (from their `names` stanzas upstream).
_CRD_NAMES = {("gateway.networking.k8s.io", "Gateway"): (("gtw",), ("gateway-api",)),
              ("gateway.networking.k8s.io", "GatewayClass"): (("gc",), ("gateway-api",)),
              ("gateway.networking.k8s.io", "HTTPRoute"): ((), ("gateway-api",)),
              ("gateway.networking.k8s.io", "GRPCRoute"): ((), ("gateway-api",)),
              ("gateway.networking.k8s.io", "ReferenceGrant"): (("refgrant",), ("gateway-api",)),
              ("networking.istio.io", "Gateway"): (("gw",), ("istio-io", "networking-istio-io")),
              ("networking.istio.io", "VirtualService"): (("vs",), ("istio-io", "networking-istio-io")),
              ("networking.istio.io", "DestinationRule"): (("dr",), ("istio-io", "networking-istio-io"))}


@functools.lru_cache(maxsize=1)
def all_resources() -> tuple[Resource, ...]:
    out = list(BUILTIN)
    for (group, kind), crd in sorted(crds().items()):
        short, cats = _CRD_NAMES.get((group, kind), ((), ()))
        stored = ISTIO_GATEWAY if (group, kind) == ("networking.istio.io", "Gateway") else kind
        for version in crd.versions:
            out.append(Resource(group, version, crd.plural, kind, namespaced=crd.scope == "Namespaced",
                                short=short, categories=cats, subresources=("status",), storage_kind=stored,
                                extra={"crd": crd}))
    return tuple(out)


def preferred_versions() -> dict[str, list[str]]:
    """group -> its versions, preferred first (v1 > v1beta1 > v1alpha2; autoscaling v2 first, as upstream)."""
    def rank(v: str) -> tuple:
        import re
        m = re.fullmatch(r"v(\d+)(alpha|beta)?(\d*)", v)
        if not m:
            return (3, 0, 0)
        return ({"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""], -int(m.group(1)), -int(m.group(3) or 0))
    groups: dict[str, set[str]] = {}
    for r in all_resources():
        groups.setdefault(r.group, set()).add(r.version)
    return {g: sorted(vs, key=rank) for g, vs in groups.items()}


@functools.lru_cache(maxsize=None)
def lookup(group: str, version: str, plural: str) -> Resource | None:
    for r in all_resources():
        if (r.group, r.version, r.plural) == (group, version, plural):
            return r
    return None


def for_kind(api_version: str, kind: str) -> Resource | None:
    group, _, version = api_version.rpartition("/")
    for r in all_resources():
        if (r.group, r.version, r.kind) == (group, version, kind):
            return r
    return None


def group_versions() -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for r in all_resources():
        if (r.group, r.version) not in seen:
            seen.append((r.group, r.version))
    return seen
