"""Version conversion and the Scale subresource.

Why: the sim stores HorizontalPodAutoscalers as ``autoscaling/v2`` (as etcd does upstream), but
``kubectl autoscale`` creates ``autoscaling/v1`` and older clients read it; ``kubectl scale``
reads and patches ``deployments/x/scale`` (an ``autoscaling/v1`` Scale). Conversion follows
``pkg/apis/autoscaling/v1/conversion.go``: v1 has only ``targetCPUUtilizationPercentage``;
the other v2 metrics ride in the ``autoscaling.alpha.kubernetes.io/metrics`` annotation there,
which the sim does not write (FIDELITY.md).
"""
from __future__ import annotations

import copy

from harness.cluster.base import Obj

V1, V2 = "autoscaling/v1", "autoscaling/v2"


def hpa_to_v1(h: Obj) -> Obj:
    out = copy.deepcopy(h)
    out["apiVersion"] = V1
    spec = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for m in metrics:
        t = ((m.get("resource") or {}).get("target") or {})
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu" \
                and t.get("type") == "Utilization":
            spec["targetCPUUtilizationPercentage"] = t.get("averageUtilization")
    st = out.get("status") or {}
    cur = st.pop("currentMetrics", None) or []
    st.pop("conditions", None)
    for m in cur:
        c = ((m.get("resource") or {}).get("current") or {})
        if m.get("type") == "Resource" and (m.get("resource") or {}).get("name") == "cpu" \
                and c.get("averageUtilization") is not None:
            st["currentCPUUtilizationPercentage"] = c["averageUtilization"]
    return out


def hpa_from_v1(h: Obj) -> Obj:
    out = copy.deepcopy(h)
    out["apiVersion"] = V2
    spec = out.setdefault("spec", {})
    pct = spec.pop("targetCPUUtilizationPercentage", None)
    if pct is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": pct}}}]
    st = out.get("status")
    if isinstance(st, dict):
        st.pop("currentCPUUtilizationPercentage", None)
    return out


def to_version(obj: Obj, api_version: str) -> Obj:
    if obj.get("kind") == "HorizontalPodAutoscaler" and api_version == V1 and obj.get("apiVersion") != V1:
        return hpa_to_v1(obj)
    return obj


def from_version(obj: Obj) -> Obj:
    if obj.get("kind") == "HorizontalPodAutoscaler" and obj.get("apiVersion") == V1:
        return hpa_from_v1(obj)
    return obj


def scale_of(obj: Obj) -> Obj:
    """The ``autoscaling/v1`` Scale of a Deployment/ReplicaSet/StatefulSet."""
    from .tables import _selector
    meta = obj["metadata"]
    sel = (obj.get("spec") or {}).get("selector")
    return {"kind": "Scale", "apiVersion": V1,
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0),
                       **({"selector": _selector(sel)} if sel else {})}}
