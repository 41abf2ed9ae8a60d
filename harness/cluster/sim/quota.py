"""LimitRanger and ResourceQuota admission for pods, as upstream's plugins do them.

Why: every grading namespace carries a ResourceQuota and a LimitRange (see
harness/budget.py), so one submission cannot flood the host; on sim the same
objects must have the same effect as on a real cluster.

Follows, at Kubernetes v1.32:
* plugin/pkg/admission/limitranger/admission.go - ``mergeContainerResources``
  (defaults: ``default`` for limits, ``defaultRequest`` for requests, only where
  the container sets none) and ``PodValidateLimitFunc`` (min/max per Container),
  with the upstream texts ``maximum memory usage per Container is 2Gi, but limit
  is 1Ti``. ``SetDefaults_LimitRangeItem`` fills ``default`` from ``max`` and
  ``defaultRequest`` from ``default`` / ``min`` for type Container.
* staging/src/k8s.io/apiserver/pkg/admission/plugin/resourcequota/controller.go -
  ``exceeded quota: <name>, requested: <r>, used: <u>, limited: <h>`` (only the
  exceeded resources, sorted), and ``failed quota: <name>: must specify <r>``
  for a tracked compute resource the pod leaves unset.
* pkg/quota/v1/evaluator/core/pods.go - a pod counts while it is not in a
  terminal phase; requests default to limits where only limits are set.
Usage is computed from the store at admission time (upstream reads the quota's
``status.used``, kept by the quota controller; here it is always exact).
"""
from __future__ import annotations

import copy
from decimal import Decimal

from .quantity import parse_quantity

Obj = dict

_COMPUTE = ("cpu", "memory")


def item_defaults(item: dict) -> tuple[dict, dict]:
    """(default limits, default requests) of a type Container item, as upstream defaults them."""
    default = dict(item.get("default") or {})
    for k, v in (item.get("max") or {}).items():
        default.setdefault(k, v)
    default_request = dict(item.get("defaultRequest") or {})
    for k, v in default.items():
        default_request.setdefault(k, v)
    for k, v in (item.get("min") or {}).items():
        default_request.setdefault(k, v)
    return default, default_request


def _container_items(limitranges: list[Obj]) -> list[dict]:
    return [it for lr in limitranges for it in (lr.get("spec") or {}).get("limits") or []
            if it.get("type") == "Container"]


def default_pod(pod: Obj, limitranges: list[Obj]) -> Obj:
    """The pod with LimitRange defaults merged into each container (mutating admission)."""
    items = _container_items(limitranges)
    if not items:
        return pod
    pod = copy.deepcopy(pod)
    for item in items:
        default, default_request = item_defaults(item)
        for c in (pod.get("spec") or {}).get("containers") or []:
            res = c.setdefault("resources", {})
            limits = res.setdefault("limits", {})
            requests = res.setdefault("requests", {})
            for k, v in default.items():
                limits.setdefault(k, v)
            for k, v in default_request.items():   # (a limit-only container already got its request
                requests.setdefault(k, v)             # from API defaulting, which runs first)
            if not limits:
                res.pop("limits")
            if not requests:
                res.pop("requests")
    return pod


def limit_errors(pod: Obj, limitranges: list[Obj]) -> list[str]:
    """Upstream's min/max errors for type Container items."""
    errs = []
    for item in _container_items(limitranges):
        for c in (pod.get("spec") or {}).get("containers") or []:
            res = c.get("resources") or {}
            for k, mx in (item.get("max") or {}).items():
                lim = (res.get("limits") or {}).get(k)
                if lim is None:
                    errs.append(f"maximum {k} usage per Container is {mx}.  No limit is specified")
                elif parse_quantity(lim) > parse_quantity(mx):
                    errs.append(f"maximum {k} usage per Container is {mx}, but limit is {lim}")
            for k, mn in (item.get("min") or {}).items():
                req = (res.get("requests") or {}).get(k)
                if req is not None and parse_quantity(req) < parse_quantity(mn):
                    errs.append(f"minimum {k} usage per Container is {mn}, but request is {req}")
    return errs


def pod_usage(pod: Obj) -> dict[str, Decimal]:
    """What one pod charges against a quota (pods, requests.*, limits.*)."""
    out = {"pods": Decimal(1), "count/pods": Decimal(1)}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        limits, requests = res.get("limits") or {}, res.get("requests") or {}
        for k in _COMPUTE:
            req = requests.get(k, limits.get(k))
            if req is not None:
                out[f"requests.{k}"] = out.get(f"requests.{k}", Decimal(0)) + parse_quantity(req)
                if k in ("cpu", "memory"):
                    out[k] = out.get(k, Decimal(0)) + parse_quantity(req)
            if k in limits:
                out[f"limits.{k}"] = out.get(f"limits.{k}", Decimal(0)) + parse_quantity(limits[k])
    return out


def _counts(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def _missing(pod: Obj, resource: str) -> bool:
    """A tracked compute resource the pod leaves unset (upstream: ``must specify``)."""
    if resource not in ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory"):
        return False
    kind, _, name = resource.rpartition(".")
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        have = (res.get("limits") or {}) if kind == "limits" else {**(res.get("limits") or {}), **(res.get("requests") or {})}
        if name not in have:
            return True
    return False


def _fmt(v: Decimal, like: str) -> str:
    """A sum as Quantity.String() renders it: binary values (like ``2Gi``) with the largest
    binary suffix that divides them exactly, others plain or in millis."""
    if like.endswith("i") and v == int(v) and v > 0:
        for suffix, mult in (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10)):
            if v % mult == 0:
                return f"{int(v / mult)}{suffix}"
    if v == int(v):
        return str(int(v))
    return f"{int(v * 1000)}m"


def quota_error(pod: Obj, quotas: list[Obj], others: list[Obj]) -> str | None:
    """The first quota this new pod would exceed, in upstream's words, or None."""
    new = pod_usage(pod)
    for q in quotas:
        hard = (q.get("spec") or {}).get("hard") or {}
        name = q["metadata"]["name"]
        missing = sorted(r for r in hard if _missing(pod, r))
        if missing:
            return f"failed quota: {name}: must specify {','.join(missing)}"
        used: dict[str, Decimal] = {}
        for o in others:
            if _counts(o):
                for k, v in pod_usage(o).items():
                    used[k] = used.get(k, Decimal(0)) + v
        exceeded = sorted(r for r, h in hard.items()
                          if r in new and used.get(r, Decimal(0)) + new[r] > parse_quantity(h))
        if exceeded:
            def pp(vals: dict[str, Decimal]) -> str:
                return ",".join(f"{r}={_fmt(vals.get(r, Decimal(0)), str(hard[r]))}" for r in exceeded)
            return (f"exceeded quota: {name}, requested: {pp(new)}, used: {pp(used)}, "
                    f"limited: {','.join(f'{r}={hard[r]}' for r in exceeded)}")
    return None
