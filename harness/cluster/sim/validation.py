"""API-server validation that learners actually hit, with upstream messages.

Why: on kind, ``kubectl apply`` refuses these manifests outright; a sim that
accepted them would grade a broken submission as deployable. Messages follow
k/k ``pkg/apis/apps/validation`` and ``pkg/apis/core/validation`` and the
``field.Error`` format (``<path>: Invalid value: <value>: <detail>``), joined as
``<Kind>.<group> "<name>" is invalid: [e1, e2]`` like ``errors.NewInvalid``.

Only a subset is validated (see FIDELITY.md): Deployment selector/template
labels, immutable selector, strategy (maxSurge/maxUnavailable), restartPolicy,
extended-resource rules (integer, request == limit, limit required), probe
handlers and thresholds, preStop sleep, Service ports and nodePort range.
"""
from __future__ import annotations

import json
import re
from typing import Any

from harness.cluster.base import Invalid, Obj

from .labels import selector_matcher
from .quantity import milli

NATIVE_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods"}
_GROUPS = {"Deployment": "apps", "ReplicaSet": "apps"}
_PERCENT = re.compile(r"^[0-9]+%$")


def go_value(v: Any) -> str:
    """How ``field.Invalid`` prints a value (``%v`` for numbers, ``%q`` for strings)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict) and all(isinstance(x, str) for x in v.values()):
        return "map[string]string{" + ", ".join(f"{json.dumps(k)}:{json.dumps(v[k])}" for k in sorted(v)) + "}"
    return json.dumps(v, sort_keys=True)


def invalid(path: str, value: Any, detail: str, *, raw: bool = False) -> str:
    return f"{path}: Invalid value: {value if raw else go_value(value)}: {detail}"


def raise_if_errors(obj: Obj, errors: list[str]) -> None:
    if not errors:
        return
    kind, name = obj["kind"], obj["metadata"].get("name", "")
    qual = f"{kind}.{_GROUPS[kind]}" if kind in _GROUPS else kind
    body = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    raise Invalid(f'{qual} "{name}" is invalid: {body}', kind=kind, name=name)


def _is_extended(name: str) -> bool:
    return name not in NATIVE_RESOURCES and not name.startswith("hugepages-") and "/" in name


def _validate_resources(res: dict[str, Any], path: str) -> list[str]:
    errs: list[str] = []
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    for section, values in (("limits", limits), ("requests", requests)):
        for rname, q in values.items():
            try:
                m = milli(q)
            except ValueError as exc:
                errs.append(invalid(f"{path}.{section}[{rname}]", str(q), str(exc)))
                continue
            if m < 0:
                errs.append(invalid(f"{path}.{section}[{rname}]", str(q), "must be greater than or equal to 0", raw=True))
            if _is_extended(rname) and m % 1000:
                errs.append(invalid(f"{path}.{section}[{rname}]", str(q), "must be an integer", raw=True))
    for rname, q in requests.items():
        if not _is_extended(rname):
            if rname in limits and milli(q) > milli(limits[rname]):
                errs.append(invalid(f"{path}.requests", str(q),
                                    f"must be less than or equal to {rname} limit of {limits[rname]}", raw=True))
            continue
        if rname not in limits:
            errs.append(f"{path}.limits: Required value: Limit must be set for non overcommitable resources")
        elif milli(q) != milli(limits[rname]):
            errs.append(invalid(f"{path}.requests", str(q), f"must be equal to {rname} limit of {limits[rname]}",
                                raw=True))
    return errs


def _validate_probe(p: dict[str, Any] | None, path: str, kind: str, ports: set[str]) -> list[str]:
    if not p:
        return []
    errs: list[str] = []
    handlers = [h for h in ("exec", "httpGet", "tcpSocket", "grpc") if h in p]
    if not handlers:
        errs.append(f"{path}: Required value: must specify a handler type")
    for h in handlers[1:]:
        errs.append(f"{path}.{h}: Forbidden: may not specify more than 1 handler type")
    for field_, minimum in (("periodSeconds", 1), ("timeoutSeconds", 1), ("successThreshold", 1),
                            ("failureThreshold", 1), ("initialDelaySeconds", 0)):
        v = p.get(field_)
        if isinstance(v, int) and v < minimum:
            errs.append(invalid(f"{path}.{field_}", v, f"must be greater than or equal to {minimum}"))
    if kind in ("livenessProbe", "startupProbe") and p.get("successThreshold", 1) != 1:
        errs.append(invalid(f"{path}.successThreshold", p["successThreshold"], "must be 1"))
    if kind == "readinessProbe" and p.get("terminationGracePeriodSeconds") is not None:
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", p["terminationGracePeriodSeconds"],
                            "must not be set for readinessProbes"))
    for h in ("httpGet", "tcpSocket"):
        port = (p.get(h) or {}).get("port")
        if isinstance(port, str) and not port.isdigit() and port not in ports:
            errs.append(invalid(f"{path}.{h}.port", port, "must contain a valid port name"))  # [UNVERIFIED]
    return errs


def validate_pod_spec(spec: dict[str, Any], path: str) -> list[str]:
    errs: list[str] = []
    if not spec.get("containers"):
        errs.append(f"{path}.containers: Required value")
    grace = spec.get("terminationGracePeriodSeconds", 30)
    for group in ("initContainers", "containers"):
        for i, c in enumerate(spec.get(group) or []):
            cpath = f"{path}.{group}[{i}]"
            if not c.get("name"):
                errs.append(f"{cpath}.name: Required value")
            if not c.get("image"):
                errs.append(f"{cpath}.image: Required value")
            errs += _validate_resources(c.get("resources") or {}, f"{cpath}.resources")
            names = {p["name"] for p in c.get("ports") or [] if p.get("name")}
            for kind in ("livenessProbe", "readinessProbe", "startupProbe"):
                errs += _validate_probe(c.get(kind), f"{cpath}.{kind}", kind, names)
            sleep = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {})
            if "seconds" in (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}):
                s = sleep["seconds"]
                if not (0 <= s < grace):
                    errs.append(invalid(f"{cpath}.lifecycle.preStop.sleep.seconds", s,
                                        f"must be non-negative and less than terminationGracePeriodSeconds ({grace})"))
    return errs


def validate_pod(pod: Obj) -> None:
    raise_if_errors(pod, validate_pod_spec(pod.get("spec") or {}, "spec"))


def _int_or_percent(v: Any, path: str) -> list[str]:
    if isinstance(v, int):
        return [invalid(path, v, "must be greater than or equal to 0")] if v < 0 else []
    if isinstance(v, str) and _PERCENT.match(v):
        return []
    return [invalid(path, v, "a valid percent string must be a numeric string followed by an ending '%' "
                             "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')", raw=True)]


def _zero(v: Any) -> bool:
    return v in (0, "0%", "0")


def validate_deployment(d: Obj, old: Obj | None = None) -> None:
    spec, errs = d.get("spec") or {}, []
    sel = spec.get("selector")
    tmpl = spec.get("template") or {}
    if sel is None:
        errs.append("spec.selector: Required value")
    elif not (sel.get("matchLabels") or sel.get("matchExpressions")):
        errs.append(invalid("spec.selector", sel, "empty selector is invalid for deployment", raw=True))
    elif not selector_matcher(sel)((tmpl.get("metadata") or {}).get("labels") or {}):
        errs.append(invalid("spec.template.metadata.labels", (tmpl.get("metadata") or {}).get("labels") or {},
                            "`selector` does not match template `labels`"))
    if old is not None and sel != old["spec"].get("selector"):
        errs.append(f"spec.selector: Invalid value: {go_value(sel)}: field is immutable")
    if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        errs.append(invalid("spec.replicas", spec["replicas"], "must be greater than or equal to 0"))
    strategy = spec.get("strategy") or {}
    ru = strategy.get("rollingUpdate")
    if strategy.get("type") == "Recreate" and ru is not None:
        errs.append("spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'")
    elif strategy.get("type") not in ("Recreate", "RollingUpdate"):
        errs.append(f'spec.strategy.type: Unsupported value: {go_value(strategy.get("type"))}: supported values: '
                    '"Recreate", "RollingUpdate"')
    elif ru is not None:
        mu, ms = ru.get("maxUnavailable", "25%"), ru.get("maxSurge", "25%")
        errs += _int_or_percent(mu, "spec.strategy.rollingUpdate.maxUnavailable")
        errs += _int_or_percent(ms, "spec.strategy.rollingUpdate.maxSurge")
        if _zero(mu) and _zero(ms):
            errs.append(invalid("spec.strategy.rollingUpdate.maxUnavailable", mu,
                                "may not be 0 when `maxSurge` is 0", raw=True))
        if isinstance(mu, str) and _PERCENT.match(mu) and int(mu[:-1]) > 100:
            errs.append(invalid("spec.strategy.rollingUpdate.maxUnavailable", mu, "must not be greater than 100%",
                                raw=True))
    if (tmpl.get("spec") or {}).get("restartPolicy", "Always") != "Always":
        errs.append(f'spec.template.spec.restartPolicy: Unsupported value: '
                    f'{go_value(tmpl["spec"]["restartPolicy"])}: supported values: "Always"')
    errs += validate_pod_spec(tmpl.get("spec") or {}, "spec.template.spec")
    raise_if_errors(d, errs)


def validate_service(svc: Obj, node_port_range: tuple[int, int] = (30000, 32767)) -> None:
    spec, errs = svc.get("spec") or {}, []
    ports = spec.get("ports") or []
    if not ports and spec.get("clusterIP") != "None":
        errs.append("spec.ports: Required value")
    for i, p in enumerate(ports):
        if len(ports) > 1 and not p.get("name"):
            errs.append(f"spec.ports[{i}].name: Required value")
        if not isinstance(p.get("port"), int) or not 1 <= p["port"] <= 65535:
            errs.append(invalid(f"spec.ports[{i}].port", p.get("port"), "must be between 1 and 65535, inclusive"))
        np_ = p.get("nodePort")
        if np_ is not None and not node_port_range[0] <= np_ <= node_port_range[1]:
            errs.append(invalid(f"spec.ports[{i}].nodePort", np_,
                                "provided port is not in the valid range. The range of valid ports is "
                                f"{node_port_range[0]}-{node_port_range[1]}"))
    raise_if_errors(svc, errs)
