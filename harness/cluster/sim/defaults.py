"""API-server defaulting (``SetDefaults_*``) for the kinds the sim runs.

Why: upstream behaviour hangs on defaults (maxSurge 25%, periodSeconds 10,
imagePullPolicy Always for ``:latest``, grace period 30 s ...). Applying them
once, at write time, lets every controller read plain fields, and lets checks
see the same defaulted objects they would see on kind.

Source: k/k ``pkg/apis/apps/v1/defaults.go``, ``pkg/apis/core/v1/defaults.go``.
"""
from __future__ import annotations

from typing import Any

from harness.cluster.base import Obj

PROBE_DEFAULTS = {"initialDelaySeconds": 0, "timeoutSeconds": 1, "periodSeconds": 10,
                  "successThreshold": 1, "failureThreshold": 3}


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``None`` when untagged or digest-only)."""
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def default_pull_policy(image: str) -> str:
    """``:latest`` or no tag -> Always; a digest or any other tag -> IfNotPresent."""
    if "@" in image and image_tag(image) is None:
        return "IfNotPresent"
    tag = image_tag(image)
    return "Always" if tag in (None, "latest") else "IfNotPresent"


def _default_probe(p: dict[str, Any] | None) -> None:
    if not p:
        return
    for k, v in PROBE_DEFAULTS.items():
        p.setdefault(k, v)
    if "httpGet" in p:
        p["httpGet"].setdefault("path", "/")
        p["httpGet"].setdefault("scheme", "HTTP")


def default_container(c: dict[str, Any], *, is_pod: bool) -> None:
    c.setdefault("imagePullPolicy", default_pull_policy(c.get("image", "")))
    c.setdefault("terminationMessagePath", "/dev/termination-log")
    c.setdefault("terminationMessagePolicy", "File")
    for port in c.get("ports") or []:
        port.setdefault("protocol", "TCP")
    for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(c.get(kind))
    res = c.setdefault("resources", {})
    if is_pod and res.get("limits"):
        # Limits imply requests: SetDefaults_Pod only, so templates keep the omission.
        req = res.setdefault("requests", {})
        for k, v in res["limits"].items():
            req.setdefault(k, v)


def default_pod_spec(spec: dict[str, Any], *, is_pod: bool) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("initContainers") or []:
        default_container(c, is_pod=is_pod)
    for c in spec.get("containers") or []:
        default_container(c, is_pod=is_pod)


def default_pod(pod: Obj) -> Obj:
    default_pod_spec(pod.setdefault("spec", {}), is_pod=True)
    pod.setdefault("status", {"phase": "Pending", "qosClass": qos_class(pod["spec"])})
    return pod


def default_deployment(d: Obj) -> Obj:
    spec = d.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    strategy = spec.setdefault("strategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        ru = strategy.setdefault("rollingUpdate", {})
        ru.setdefault("maxSurge", "25%")
        ru.setdefault("maxUnavailable", "25%")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    tmpl = spec.setdefault("template", {})
    tmpl.setdefault("metadata", {})
    default_pod_spec(tmpl.setdefault("spec", {}), is_pod=False)
    return d


def default_replicaset(rs: Obj) -> Obj:
    spec = rs.setdefault("spec", {})
    spec.setdefault("replicas", 1)
    tmpl = spec.setdefault("template", {})
    tmpl.setdefault("metadata", {})
    default_pod_spec(tmpl.setdefault("spec", {}), is_pod=False)
    return rs


def default_service(svc: Obj) -> Obj:
    spec = svc.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for p in spec.get("ports") or []:
        p.setdefault("protocol", "TCP")
        p.setdefault("targetPort", p.get("port"))
    return svc


def qos_class(spec: dict[str, Any]) -> str:
    """Guaranteed / Burstable / BestEffort from cpu and memory requests and limits."""
    cs = spec.get("containers") or []
    reqs = [(c.get("resources") or {}).get("requests") or {} for c in cs]
    lims = [(c.get("resources") or {}).get("limits") or {} for c in cs]
    if not any(r.get(k) or l.get(k) for r, l in zip(reqs, lims) for k in ("cpu", "memory")):
        return "BestEffort"
    if all(l.get(k) and (r.get(k, l.get(k)) == l.get(k)) for r, l in zip(reqs, lims) for k in ("cpu", "memory")):
        return "Guaranteed"
    return "Burstable"


def default_secret(secret: Obj) -> Obj:
    """``SetDefaults_Secret``: an empty type is ``Opaque``."""
    if not secret.get("type"):
        secret["type"] = "Opaque"
    return secret


DEFAULTERS = {"Pod": default_pod, "Deployment": default_deployment,
              "ReplicaSet": default_replicaset, "Service": default_service, "Secret": default_secret}
