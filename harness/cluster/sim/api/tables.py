"""Server-side printing: ``meta.k8s.io/v1`` Tables with upstream's columns and cell formats.

Why: ``kubectl get`` asks for ``as=Table;v=v1;g=meta.k8s.io`` and prints the cells the server
formatted; AGE, STATUS, ``cpu: 10%/50%`` and LAST SEEN ``7s (x2 over 9s)`` come from here. The
columns and cell rules follow ``kubernetes/pkg/printers/internalversion/printers.go`` (v1.32):
priority-1 columns appear only with ``-o wide``. Kinds without a printer (CRDs without
additionalPrinterColumns, the rest) get upstream's default table: Name and Age.
"""
from __future__ import annotations

from typing import Any, Callable

from harness.cluster.base import Obj

from ..clock import parse_rfc3339


def human_duration(seconds: float) -> str:
    """apimachinery ``duration.HumanDuration``."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m" if s % 60 == 0 else f"{m}m{s % 60}s"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h" if m % 60 == 0 else f"{h}h{m % 60}m"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d" if h % 24 == 0 else f"{h // 24}d{h % 24}h"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        dy = (h // 24) % 365
        return f"{h // 24 // 365}y" if dy == 0 else f"{h // 24 // 365}y{dy}d"
    return f"{h // 24 // 365}y"


def _since(ts: str | None, now: float) -> str:
    t = parse_rfc3339(ts) if ts else None
    return "<unknown>" if t is None else human_duration(now - t)


def _col(name: str, type_: str = "string", priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": type_, "format": fmt, "description": "", "priority": priority}


NAME, AGE = _col("Name", fmt="name"), _col("Age")
WIDE_TEMPLATE = [_col("Containers", priority=1), _col("Images", priority=1), _col("Selector", priority=1)]


def _selector(sel: dict | None) -> str:
    if not sel:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((sel.get("matchLabels") or {}).items())]
    for e in sel.get("matchExpressions") or []:
        op, vals = e["operator"], ",".join(e.get("values") or [])
        parts.append({"In": f"{e['key']} in ({vals})", "NotIn": f"{e['key']} notin ({vals})",
                      "Exists": e["key"], "DoesNotExist": f"!{e['key']}"}.get(op, e["key"]))
    return ",".join(parts) or "<none>"


def _containers(tmpl_spec: dict) -> list[str]:
    cs = tmpl_spec.get("containers") or []
    return [",".join(c["name"] for c in cs), ",".join(c.get("image", "") for c in cs)]


# ---- per kind ---------------------------------------------------------------------------------
def pod_status(p: Obj) -> str:
    st, spec = p.get("status") or {}, p.get("spec") or {}
    reason = st.get("reason") or st.get("phase") or "Pending"
    init_statuses = st.get("initContainerStatuses") or []
    initializing = False
    for i, c in enumerate(init_statuses):
        term, wait = (c.get("state") or {}).get("terminated"), (c.get("state") or {}).get("waiting")
        if term and term.get("exitCode") == 0:
            continue
        if term:
            reason = "Init:" + (term.get("reason") or (f"Signal:{term['signal']}" if term.get("signal")
                                                          else f"ExitCode:{term.get('exitCode')}"))
        elif wait and wait.get("reason") and wait["reason"] != "PodInitializing":
            reason = "Init:" + wait["reason"]
        else:
            reason = f"Init:{i}/{len(spec.get('initContainers') or [])}"
        initializing = True
        break
    if not initializing:
        has_running = False
        for c in reversed(st.get("containerStatuses") or []):
            state = c.get("state") or {}
            if (state.get("waiting") or {}).get("reason"):
                reason = state["waiting"]["reason"]
            elif state.get("terminated"):
                t = state["terminated"]
                reason = t.get("reason") or (f"Signal:{t['signal']}" if t.get("signal") else f"ExitCode:{t.get('exitCode')}")
            elif state.get("running") and c.get("ready"):
                has_running = True
                reason = "Running"
        if reason == "Completed" and has_running:
            ready = any(x.get("type") == "Ready" and x.get("status") == "True" for x in st.get("conditions") or [])
            reason = "Running" if ready else "NotReady"
    if (p.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Unknown" if st.get("reason") == "NodeLost" else "Terminating"
    return reason


def _pod(p: Obj, now: float) -> list:
    st = p.get("status") or {}
    cs = st.get("containerStatuses") or []
    total = len((p.get("spec") or {}).get("containers") or [])
    ready = sum(1 for c in cs if c.get("ready"))
    restarts = sum(int(c.get("restartCount") or 0) for c in cs)
    last = max((((c.get("lastState") or {}).get("terminated") or {}).get("finishedAt") or "" for c in cs), default="")
    restarts_cell = f"{restarts} ({_since(last, now)} ago)" if last else str(restarts)
    gates = (p.get("spec") or {}).get("readinessGates") or []
    conds = {c.get("type"): c.get("status") for c in st.get("conditions") or []}
    gates_cell = f"{sum(1 for g in gates if conds.get(g.get('conditionType')) == 'True')}/{len(gates)}" if gates else "<none>"
    return [p["metadata"]["name"], f"{ready}/{total}", pod_status(p), restarts_cell,
            _since(p["metadata"].get("creationTimestamp"), now), st.get("podIP") or "<none>",
            (p.get("spec") or {}).get("nodeName") or "<none>", st.get("nominatedNodeName") or "<none>", gates_cell]


def _deployment(d: Obj, now: float) -> list:
    st, spec = d.get("status") or {}, d.get("spec") or {}
    return [d["metadata"]["name"], f"{st.get('readyReplicas', 0)}/{spec.get('replicas', 0)}",
            st.get("updatedReplicas", 0), st.get("availableReplicas", 0), _since(d["metadata"].get("creationTimestamp"), now),
            *_containers((spec.get("template") or {}).get("spec") or {}), _selector(spec.get("selector"))]


def _replicaset(r: Obj, now: float) -> list:
    st, spec = r.get("status") or {}, r.get("spec") or {}
    return [r["metadata"]["name"], spec.get("replicas", 0), st.get("replicas", 0), st.get("readyReplicas", 0),
            _since(r["metadata"].get("creationTimestamp"), now),
            *_containers((spec.get("template") or {}).get("spec") or {}), _selector(spec.get("selector"))]


def _service(s: Obj, now: float) -> list:
    spec = s.get("spec") or {}
    typ = spec.get("type", "ClusterIP")
    ext = list(spec.get("externalIPs") or [])
    if typ == "LoadBalancer":
        ing = [i.get("ip") or i.get("hostname") for i in ((s.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]
        ext = (ing + ext) or ["<pending>"]
    elif typ == "ExternalName":
        ext = [spec.get("externalName", "")]
    ports = []
    for p in spec.get("ports") or []:
        ports.append(f"{p['port']}:{p['nodePort']}/{p.get('protocol', 'TCP')}" if p.get("nodePort")
                     else f"{p['port']}/{p.get('protocol', 'TCP')}")
    sel = spec.get("selector")
    return [s["metadata"]["name"], typ, spec.get("clusterIP") or "<none>", ",".join(ext) or "<none>",
            ",".join(ports) or "<none>", _since(s["metadata"].get("creationTimestamp"), now),
            ",".join(f"{k}={v}" for k, v in sorted(sel.items())) if sel else "<none>"]


def _endpoints(e: Obj, now: float) -> list:
    addrs = []
    for ss in e.get("subsets") or []:
        ports = ss.get("ports") or [{}]
        for a in ss.get("addresses") or []:
            for p in ports:
                addrs.append(f"{a['ip']}:{p['port']}" if p.get("port") else a["ip"])
    cell = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "") if addrs else "<none>"
    return [e["metadata"]["name"], cell, _since(e["metadata"].get("creationTimestamp"), now)]


def _endpointslice(e: Obj, now: float) -> list:
    ports = ",".join(str(p.get("port")) for p in e.get("ports") or [] if p.get("port") is not None) or "<unset>"
    addrs = [a for ep in e.get("endpoints") or [] for a in ep.get("addresses") or []]
    cell = ",".join(addrs[:3]) + (f" + {len(addrs) - 3} more..." if len(addrs) > 3 else "") if addrs else "<unset>"
    return [e["metadata"]["name"], e.get("addressType", ""), ports, cell, _since(e["metadata"].get("creationTimestamp"), now)]


def _event(e: Obj, now: float) -> list:
    first = e.get("firstTimestamp") or e.get("eventTime") or e["metadata"].get("creationTimestamp")
    last = e.get("lastTimestamp") or first
    count = int(e.get("count") or 1)
    last_cell = (f"{_since(last, now)} (x{count} over {_since(first, now)})" if count > 1 else _since(last, now))
    io = e.get("involvedObject") or {}
    src = (e.get("source") or {})
    comp, host = src.get("component") or e.get("reportingComponent", ""), src.get("host") or e.get("reportingInstance", "")
    return [last_cell, e.get("type", ""), e.get("reason", ""), f"{io.get('kind', '').lower()}/{io.get('name', '')}",
            io.get("fieldPath", ""), f"{comp}, {host}" if host else comp, e.get("message", ""),
            _since(first, now), str(count), e["metadata"]["name"]]


def _node(n: Obj, now: float) -> list:
    st = n.get("status") or {}
    conds = {c["type"]: c.get("status") for c in st.get("conditions") or []}
    status = "Ready" if conds.get("Ready") == "True" else "NotReady" if "Ready" in conds else "Unknown"
    if (n.get("spec") or {}).get("unschedulable"):
        status += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in (n["metadata"].get("labels") or {})
                   if k.startswith("node-role.kubernetes.io/") and k.split("/", 1)[1])
    addr = {a["type"]: a["address"] for a in st.get("addresses") or []}
    info = st.get("nodeInfo") or {}
    return [n["metadata"]["name"], status, ",".join(roles) or "<none>", _since(n["metadata"].get("creationTimestamp"), now),
            info.get("kubeletVersion", ""), addr.get("InternalIP", "<none>"), addr.get("ExternalIP", "<none>"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


def _hpa_metrics(h: Obj) -> str:
    specs = (h.get("spec") or {}).get("metrics") or []
    if not specs:
        return "<none>"
    statuses = (h.get("status") or {}).get("currentMetrics") or []
    out = []
    for i, m in enumerate(specs):
        cur_m = statuses[i] if i < len(statuses) else {}
        if m.get("type") in ("Resource", "ContainerResource"):
            key = "resource" if m["type"] == "Resource" else "containerResource"
            r, cur = m.get(key) or {}, (cur_m.get(key) or {}).get("current") or {}
            t = r.get("target") or {}
            if t.get("averageValue") is not None:
                out.append(f"{r.get('name')}: {cur.get('averageValue', '<unknown>')}/{t['averageValue']}")
            else:
                c = f"{cur['averageUtilization']}%" if cur.get("averageUtilization") is not None else "<unknown>"
                tgt = f"{t['averageUtilization']}%" if t.get("averageUtilization") is not None else "<auto>"
                out.append(f"{r.get('name')}: {c}/{tgt}")
        elif m.get("type") in ("Pods", "Object", "External"):
            key = m["type"].lower()
            t, cur = (m.get(key) or {}).get("target") or {}, (cur_m.get(key) or {}).get("current") or {}
            if t.get("averageValue") is not None:
                suffix = "" if key == "pods" else " (avg)"
                out.append(f"{cur.get('averageValue', '<unknown>')}/{t['averageValue']}{suffix}")
            else:
                out.append(f"{cur.get('value', '<unknown>')}/{t.get('value')}")
        else:
            out.append("<unknown type>")
    return ", ".join(out[:2]) + (f" + {len(out) - 2} more..." if len(out) > 2 else "")


def _hpa(h: Obj, now: float) -> list:
    spec, st = h.get("spec") or {}, h.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    return [h["metadata"]["name"], f"{ref.get('kind', '')}/{ref.get('name', '')}", _hpa_metrics(h),
            str(spec["minReplicas"]) if spec.get("minReplicas") is not None else "<unset>",
            spec.get("maxReplicas", 0), st.get("currentReplicas", 0), _since(h["metadata"].get("creationTimestamp"), now)]


def _simple(*cells: Callable[[Obj], Any]) -> Callable[[Obj, float], list]:
    return lambda o, now: [o["metadata"]["name"], *(c(o) for c in cells), _since(o["metadata"].get("creationTimestamp"), now)]


PRINTERS: dict[str, tuple[list[dict], Callable[[Obj, float], list]]] = {
    "Pod": ([NAME, _col("Ready"), _col("Status"), _col("Restarts"), AGE, _col("IP", priority=1),
             _col("Node", priority=1), _col("Nominated Node", priority=1), _col("Readiness Gates", priority=1)], _pod),
    "Deployment": ([NAME, _col("Ready"), _col("Up-to-date", "integer"), _col("Available", "integer"), AGE,
                    *WIDE_TEMPLATE], _deployment),
    "ReplicaSet": ([NAME, _col("Desired", "integer"), _col("Current", "integer"), _col("Ready", "integer"), AGE,
                    *WIDE_TEMPLATE], _replicaset),
    "Service": ([NAME, _col("Type"), _col("Cluster-IP"), _col("External-IP"), _col("Port(s)"), AGE,
                 _col("Selector", priority=1)], _service),
    "Endpoints": ([NAME, _col("Endpoints"), AGE], _endpoints),
    "EndpointSlice": ([NAME, _col("AddressType"), _col("Ports"), _col("Endpoints"), AGE], _endpointslice),
    "Event": ([_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Subobject", priority=1),
               _col("Source", priority=1), _col("Message"), _col("First Seen", priority=1), _col("Count", priority=1),
               _col("Name", priority=1, fmt="name")], _event),
    "Node": ([NAME, _col("Status"), _col("Roles"), AGE, _col("Version"), _col("Internal-IP", priority=1),
              _col("External-IP", priority=1), _col("OS-Image", priority=1), _col("Kernel-Version", priority=1),
              _col("Container-Runtime", priority=1)], _node),
    "Namespace": ([NAME, _col("Status"), AGE],
                  lambda o, now: [o["metadata"]["name"], (o.get("status") or {}).get("phase", "Active"),
                                  _since(o["metadata"].get("creationTimestamp"), now)]),
    "ConfigMap": ([NAME, _col("Data", "integer"), AGE],
                  _simple(lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))),
    "Secret": ([NAME, _col("Type"), _col("Data", "string"), AGE],
               lambda o, now: [o["metadata"]["name"], o.get("type", "Opaque"), len(o.get("data") or {}),
                               _since(o["metadata"].get("creationTimestamp"), now)]),
    "HorizontalPodAutoscaler": ([NAME, _col("Reference"), _col("Targets"), _col("MinPods"), _col("MaxPods", "integer"),
                                 _col("Replicas", "integer"), AGE], _hpa),
    "ServiceAccount": ([NAME, _col("Secrets"), AGE], _simple(lambda o: len(o.get("secrets") or []))),
}


def _crd_columns(crd, version: str) -> list[tuple[dict, str]] | None:
    """A CRD version's ``additionalPrinterColumns`` (name, type, jsonPath) from the vendored CRD file."""
    from harness.crds import CRD_DIR
    import yaml
    for f in sorted(CRD_DIR.glob("*.yaml")):
        d = yaml.safe_load(f.read_text())
        if d["spec"]["group"] == crd.group and d["spec"]["names"]["kind"] == crd.kind:
            for v in d["spec"]["versions"]:
                if v["name"] == version:
                    return [(_col(c["name"], c.get("type", "string"), c.get("priority", 0)), c["jsonPath"])
                            for c in v.get("additionalPrinterColumns") or []]
    return None


def _json_path(obj: Any, path: str) -> Any:
    for part in path.strip(".").split("."):
        if part.endswith("]") and "[" in part:
            name, idx = part[:-1].split("[")
            obj = (obj or {}).get(name) if name else obj
            try:
                obj = obj[int(idx)]
            except (TypeError, IndexError, ValueError):
                return None
        else:
            obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def table(kind: str, objs: list[Obj], now: float, *, resource=None, list_meta: dict | None = None,
          include_object: str = "Metadata") -> Obj:
    if kind in PRINTERS:
        cols, fn = PRINTERS[kind]
        rows = [fn(o, now) for o in objs]
    else:
        extra = _crd_columns(resource.extra["crd"], resource.version) if resource is not None and "crd" in resource.extra else None
        cols = [NAME] + [c for c, _ in extra or []] + ([] if extra and any(c["name"] == "Age" for c, _ in extra) else [AGE])
        rows = []
        for o in objs:
            cells: list = [o["metadata"]["name"]]
            for c, path in extra or []:
                v = _json_path(o, path)
                cells.append(_since(v, now) if c["type"] == "date" and v else ("" if v is None else v))
            if len(cells) < len(cols):
                cells.append(_since(o["metadata"].get("creationTimestamp"), now))
            rows.append(cells)
    out_rows = []
    for o, cells in zip(objs, rows):
        row: dict = {"cells": cells}
        if include_object == "Object":
            row["object"] = o
        elif include_object != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": o["metadata"]}
        out_rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": list_meta or {},
            "columnDefinitions": cols, "rows": out_rows}
