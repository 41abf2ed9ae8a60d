"""The API server's write path: defaulting, validation, admission, deletion, GC.

Why: every object, whether a learner applies it or a controller creates it,
passes through the same gate, as on a real cluster. In particular pods made
by the ReplicaSet controller meet Pod Security admission here, so a
privileged Deployment is *accepted* (with a warning) but its pods are
refused, and the refusal surfaces as ``FailedCreate`` events.

Deletion is graceful for pods (``deletionTimestamp = now + grace``) and
background-cascading for owners: the garbage collector removes objects whose
controller owner no longer exists.
"""
from __future__ import annotations

import base64
import copy
import ipaddress

from harness.cluster.base import ApiError, Conflict, Forbidden, Invalid, NotFound, Obj
from harness.crds import validate as crd_validate

from . import defaults, hpa, podsecurity, podutil, quota, validation
from .store import CLUSTER_SCOPED, storage_kind

_API_VERSIONS = {"Deployment": "apps/v1", "ReplicaSet": "apps/v1", "EndpointSlice": "discovery.k8s.io/v1",
                 "HorizontalPodAutoscaler": "autoscaling/v2", "HTTPRoute": "gateway.networking.k8s.io/v1",
                 "Gateway": "gateway.networking.k8s.io/v1", "GatewayClass": "gateway.networking.k8s.io/v1",
                 "VirtualService": "networking.istio.io/v1"}


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


def admit_custom(obj: Obj, old: Obj | None, warnings: list[str]) -> Obj:
    """CRD-backed kinds kept in ``harness/crds``: strict decoding, defaulting, schema + CEL
    validation (``Invalid``), then Istio's validating webhook (``BadRequest``, as its denial is
    a 400 without a reason). Returns the defaulted object, without ``status`` (a subresource)."""
    errs = crd_validate.field_errors(obj, old)
    kind, name = obj["kind"], obj["metadata"].get("name", "")
    version = obj["apiVersion"].rpartition("/")[2]
    for e in errs:
        if e.origin == "version":
            raise NotFound(f'resource mapping not found for name: "{name}": {e.message}; ensure CRDs are installed '
                           "first", kind=kind, name=name)
    unknown = [e for e in errs if e.origin == "unknown"]
    if unknown:
        raise BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
                         + ", ".join(e.message for e in unknown), kind=kind, name=name)
    if errs:
        body = str(errs[0]) if len(errs) == 1 else "[" + ", ".join(str(e) for e in errs) + "]"
        raise Invalid(f'{crd_validate.qualified_kind(obj)} "{name}" is invalid: {body}', kind=kind, name=name)
    hook = crd_validate.istio_webhook_errors(obj)
    if hook:
        raise BadRequest(crd_validate.istio_webhook_message(hook), kind=kind, name=name)
    warnings.extend(f"Warning: {w}" for w in crd_validate.istio_weight_warnings(obj))
    out = crd_validate.default(obj)
    out.pop("status", None)
    return out
_MUTABLE_POD_META = ("labels", "annotations", "ownerReferences")
_SCALABLE = ("Deployment", "ReplicaSet", "StatefulSet")


class ApiServer:
    def __init__(self, store, clock, *, namespace: str):
        self.store, self.clock, self.namespace = store, clock, namespace
        self.warnings: list[str] = []
        self._next_ip = 10
        self._node_ports: set[int] = set()

    def _ns_labels(self, ns: str) -> dict[str, str]:
        obj = self.store.try_get("Namespace", None, ns)
        return ((obj or {}).get("metadata") or {}).get("labels") or {}

    def _prepare(self, obj: Obj) -> Obj:
        obj = copy.deepcopy(obj)
        kind = obj.get("kind")
        if not kind:
            raise Invalid("Object 'Kind' is missing")
        obj.setdefault("apiVersion", _API_VERSIONS.get(kind, "v1"))
        meta = obj.setdefault("metadata", {})
        if kind not in CLUSTER_SCOPED:
            meta.setdefault("namespace", self.namespace)
        for k in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
            meta.pop(k, None)
        if not meta.get("name") and not meta.get("generateName"):
            raise Invalid(f"{kind} in version \"{obj['apiVersion'].split('/')[-1]}\" cannot be handled as a "
                          f"{kind}: resource name may not be empty", kind=kind)
        if kind in defaults.DEFAULTERS:
            defaults.DEFAULTERS[kind](obj)
        if kind in ("Deployment", "ReplicaSet"):
            obj["status"] = {}
        elif kind == "Service":
            obj["status"] = {"loadBalancer": {}}
        elif kind == "HorizontalPodAutoscaler":
            hpa.default_hpa(obj)
            obj["status"] = {"desiredReplicas": 0}
        if kind == "Secret" and "stringData" in obj:
            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        return obj

    def admit(self, obj: Obj, old: Obj | None) -> Obj:
        """Default, validate and run admission; returns what would be stored."""
        obj = self._prepare(obj)
        kind = obj["kind"]
        if kind == "Pod":
            if old is None:
                ns = obj["metadata"]["namespace"]
                limitranges = self.store.list("LimitRange", ns, record=False)
                obj = quota.default_pod(obj, limitranges)          # mutating admission: LimitRanger
                validation.validate_pod(obj)
                podsecurity.check_pod(obj, self._ns_labels(ns))     # validating admission, upstream's order
                self._check_budget(obj, limitranges)
            elif obj["spec"] != old["spec"] and {k: v for k, v in obj["spec"].items() if k != "nodeName"} != \
                    {k: v for k, v in old["spec"].items() if k != "nodeName"}:
                validation.raise_if_errors(obj, ["spec: Forbidden: pod updates may not change fields other than "
                                                 "`spec.containers[*].image`, `spec.initContainers[*].image`, "
                                                 "`spec.activeDeadlineSeconds`, `spec.tolerations` (only additions "
                                                 "to existing tolerations), `spec.terminationGracePeriodSeconds` "
                                                 "(allow it to be set to 1 if it was previously negative)"])
        elif kind == "Deployment":
            validation.validate_deployment(obj, old)
            if self._ns_labels(obj["metadata"]["namespace"]).get("pod-security.kubernetes.io/enforce"):
                for w in podsecurity.warnings_for_template(kind, obj["metadata"]["name"], obj["spec"]["template"]["spec"]):
                    self.warnings.append(f'Warning: {w} (deployment.apps/{obj["metadata"]["name"]})')
        elif kind == "ReplicaSet":
            validation.raise_if_errors(obj, validation.validate_pod_spec(obj["spec"]["template"]["spec"],
                                                                         "spec.template.spec"))
        elif kind == "HorizontalPodAutoscaler":
            hpa.validate_hpa(obj)
        elif kind == "Service":
            validation.validate_service(obj)
            self._allocate_service(obj, old)
        elif crd_validate.is_custom(obj):
            obj = admit_custom(obj, old, self.warnings)
        return obj

    def _check_budget(self, pod: Obj, limitranges: list[Obj]) -> None:
        """LimitRanger's and ResourceQuota's validation of a new pod (``Forbidden``, upstream texts)."""
        meta = pod["metadata"]
        name = meta.get("name") or meta.get("generateName", "")
        errs = quota.limit_errors(pod, limitranges)
        if errs:
            raise Forbidden(f'pods "{name}" is forbidden: ' + (errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"),
                            kind="Pod", name=name)
        quotas = self.store.list("ResourceQuota", meta["namespace"], record=False)
        if quotas:
            others = [p for p in self.store.list("Pod", meta["namespace"], record=False)]
            err = quota.quota_error(pod, quotas, others)
            if err:
                raise Forbidden(f'pods "{name}" is forbidden: {err}', kind="Pod", name=name)

    def _allocate_service(self, svc: Obj, old: Obj | None) -> None:
        spec = svc["spec"]
        if old is not None and old["spec"].get("clusterIP"):
            spec.setdefault("clusterIP", old["spec"]["clusterIP"])
        if spec.get("clusterIP") is None:
            self._next_ip += 1
            spec["clusterIP"] = str(ipaddress.ip_address("10.96.0.0") + self._next_ip)
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        if spec["type"] in ("NodePort", "LoadBalancer"):
            old_ports = {p.get("name", ""): p.get("nodePort") for p in (old or {}).get("spec", {}).get("ports") or []}
            for p in spec.get("ports") or []:
                if p.get("nodePort") is None:
                    p["nodePort"] = old_ports.get(p.get("name", "")) or next(
                        n for n in range(30000, 32768) if n not in self._node_ports)
                self._node_ports.add(p["nodePort"])

    def apply(self, obj: Obj) -> Obj:
        """Create or replace (``kubectl apply`` without three-way merge)."""
        meta = obj.get("metadata") or {}
        ns = None if obj.get("kind") in CLUSTER_SCOPED else meta.get("namespace", self.namespace)
        cur = self.store.try_get(storage_kind(obj), ns, meta.get("name", "")) if meta.get("name") else None
        new = self.admit(obj, cur)
        if cur is None:
            return self.store.create(new)
        if (new["kind"] in _SCALABLE and "replicas" not in (obj.get("spec") or {})
                and "replicas" in (cur.get("spec") or {})):
            # kubectl apply's (and Helm's) three-way merge leaves a field that neither the last
            # applied object nor this one set: the live count, which an HPA or `kubectl scale`
            # owns, survives instead of being defaulted back to 1.
            new["spec"]["replicas"] = cur["spec"]["replicas"]
        return self.update(new, cur)

    def update(self, new: Obj, cur: Obj) -> Obj:
        merged = copy.deepcopy(cur)
        for k, v in new.items():
            if k not in ("metadata", "status"):
                merged[k] = v
        for k in ("labels", "annotations") + (_MUTABLE_POD_META if new["kind"] == "Pod" else ()):
            if k in new["metadata"]:
                merged["metadata"][k] = new["metadata"][k]
        ann = cur["metadata"].get("annotations") or {}
        for k in ("deployment.kubernetes.io/revision",):   # controller-owned annotations survive apply
            if k in ann:
                merged["metadata"].setdefault("annotations", {})[k] = ann[k]
        return self.store.update(merged)

    def create_pod(self, pod: Obj) -> Obj:
        """The path pods from controllers take: defaulting, admission, create."""
        return self.store.create(self.admit(pod, None))

    # ---- deletion and garbage collection ----------------------------------------------------
    def delete(self, kind: str, ns: str | None, name: str) -> None:
        obj = self.store.get(kind, ns, name)
        if kind == "Pod":
            podutil.graceful_delete(self.store, obj, self.clock.now())
        elif kind == "Namespace":
            for o in self.store.snapshot():
                if o["metadata"].get("namespace") == name:
                    if o["kind"] == "Pod":
                        self._delete_pod_fresh(name, o["metadata"]["name"])
                    else:
                        self._remove(o)
            self.store.delete("Namespace", None, name)
        else:
            self._remove(obj)

    def _delete_pod_fresh(self, ns: str, name: str, tries: int = 5) -> None:
        """Graceful delete of the pod as stored now: the kubelet may have written its status since
        the snapshot was taken (the namespace controller retries the same way on a conflict)."""
        for _ in range(tries):
            cur = self.store.try_get("Pod", ns, name)
            if cur is None:
                return
            try:
                podutil.graceful_delete(self.store, copy.deepcopy(cur), self.clock.now())
                return
            except Conflict:
                continue

    def _remove(self, obj: Obj) -> None:
        try:
            self.store.delete(storage_kind(obj), obj["metadata"].get("namespace"), obj["metadata"]["name"])
        except NotFound:
            pass

    def collect_garbage(self) -> None:
        """Delete dependents whose controller owner is gone (background propagation)."""
        uids = set()
        dependents = []
        for o in self.store.snapshot():
            uids.add(o["metadata"].get("uid"))
            refs = o["metadata"].get("ownerReferences") or []
            if refs:
                dependents.append(o)
        for o in dependents:
            refs = o["metadata"]["ownerReferences"]
            if all(r.get("uid") not in uids for r in refs):
                cur = self.store.try_get(storage_kind(o), o["metadata"].get("namespace"), o["metadata"]["name"])
                if cur is None:
                    continue
                if o["kind"] == "Pod":
                    podutil.graceful_delete(self.store, cur, self.clock.now())
                else:
                    self._remove(cur)
