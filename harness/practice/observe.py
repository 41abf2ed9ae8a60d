"""What a practice scenario measures on the live cluster (observations, no judgement).

Traffic is real: ``hey`` POSTs ``/predict`` through the scenario's entry point (a Gateway's
listener, or the Service through the API server's proxy), so a fix is judged by what users
would see. Model versions are counted from the responses' ``model_version`` field.
"""
from __future__ import annotations

import json
import time
from collections import Counter

import requests

from harness import load
from harness.cluster.base import ApiError, BackendUnavailable, Cluster, NotFound
from harness.cluster.objects import is_ready, restarts

BODY = json.dumps({"text": "the model answers fast and the result is great"})


def entry_url(cluster: Cluster, entry: dict) -> str:
    """The Gateway's address (``status.addresses``, as the sim and a LoadBalancer publish it) or,
    on the course's kind cluster, where Traefik publishes none, the NodePort its config maps to
    127.0.0.1; a Service through the API server's proxy."""
    if "gateway" in entry:
        try:
            return cluster.gateway_url(entry["gateway"])
        except BackendUnavailable:
            from harness.cluster.kind.cluster import DEFAULT_NAME, GATEWAY_NODE_PORT
            if getattr(getattr(cluster, "kubectl", None), "context", None) == f"kind-{DEFAULT_NAME}":
                return f"http://127.0.0.1:{GATEWAY_NODE_PORT}"
            raise
    return cluster.service_url(entry["service"], entry["port"])


def warm_up(url: str, *, in_a_row: int = 10, within_s: float = 20, timeout_s: float = 5) -> int:
    """Send sequential requests until ``in_a_row`` succeed one after another (or ``within_s``
    passes): a rollout that just finished leaves routes and endpoints converging for a moment,
    which is not what the check measures. Returns the requests sent."""
    deadline, streak, sent = time.monotonic() + within_s, 0, 0
    with requests.Session() as s:
        while streak < in_a_row and time.monotonic() < deadline:
            sent += 1
            try:
                ok = s.post(url, data=BODY, headers={"Content-Type": "application/json"},
                            timeout=timeout_s).status_code == 200
            except requests.RequestException:
                ok = False
            streak = streak + 1 if ok else 0
            if not ok:
                time.sleep(0.5)
    return sent


def traffic(cluster: Cluster, entry: dict, *, seconds: float = 10, concurrency: int = 10,
            timeout_s: float = 5, selector: str | None = None, settle: bool = False) -> dict:
    """hey for ``seconds`` at ``concurrency``; the outcome, and (with ``selector``) the pods'
    highest CPU usage as a percentage of their request, read from metrics.k8s.io at the end.
    ``settle``: first :func:`warm_up` (what a check does; a symptom is measured as it is)."""
    url = entry_url(cluster, entry).rstrip("/") + "/predict"
    if settle:
        warm_up(url, timeout_s=timeout_s)
    handle = load.start_load(url, duration_s=seconds, concurrency=concurrency, method="POST", body=BODY,
                             timeout_s=timeout_s)
    cpu: list[float] = []

    def sample() -> None:
        time.sleep(2)
        pct = cpu_percent_of_request(cluster, selector)
        if pct is not None:
            cpu.append(pct)
    while selector and not handle.done():   # metrics-server's samples taken while the load runs
        sample()
    res = handle.result()
    deadline = time.monotonic() + 20        # no sample yet (one per resolution): the next one still spans the load
    while selector and not cpu and time.monotonic() < deadline:
        sample()
    total = max(res.total, 1)
    facts = {"requests": res.total, "ok": res.ok, "error_rate": round(res.error_rate, 4),
             "p99_ms": res.p99_ms, "p50_ms": res.p50_ms, "status_counts": dict(res.status_counts),
             "errors": dict(res.errors),
             "rate_504": round(res.status_counts.get(504, 0) / total, 4),
             "tool": res.tool}
    if selector:
        facts["cpu_percent_of_request"] = max(cpu) if cpu else None
    return facts


def versions(cluster: Cluster, entry: dict, *, requests_n: int = 600, timeout_s: float = 5) -> dict:
    """``requests_n`` sequential /predict calls; the share of each ``model_version`` among all
    calls and the error rate."""
    url = entry_url(cluster, entry).rstrip("/") + "/predict"
    seen: Counter = Counter()
    codes: Counter = Counter()
    errors = 0
    with requests.Session() as s:
        for _ in range(requests_n):
            try:
                r = s.post(url, data=BODY, headers={"Content-Type": "application/json"}, timeout=timeout_s)
                codes[r.status_code] += 1
                if r.status_code == 200:
                    seen[str(r.json().get("model_version"))] += 1
                else:
                    errors += 1
            except (requests.RequestException, ValueError) as exc:
                codes[type(exc).__name__] += 1
                errors += 1
    facts = {"requests": requests_n, "error_rate": round(errors / requests_n, 4),
             "versions": dict(seen), "status_counts": dict(codes)}
    for v, n in seen.items():
        facts[f"share_{v}"] = round(n / requests_n, 4)
    return facts


def pods(cluster: Cluster, selector: str) -> list[dict]:
    return [p for p in cluster.list("Pod", label_selector=selector) if not p["metadata"].get("deletionTimestamp")]


def pod_facts(cluster: Cluster, selector: str) -> dict:
    """Readiness, restarts and every container state reason of the pods a selector picks."""
    found = pods(cluster, selector)
    reasons: set[str] = set()
    for p in found:
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            for part in ("state", "lastState"):
                for st in (cs.get(part) or {}).values():
                    if isinstance(st, dict) and st.get("reason"):
                        reasons.add(st["reason"])
        for c in (p.get("status") or {}).get("conditions") or []:
            if c.get("status") == "False" and c.get("reason"):
                reasons.add(c["reason"])
    return {"pods": len(found), "ready": sum(1 for p in found if is_ready(p)),
            "restarts": sum(restarts(p) for p in found), "reasons": sorted(reasons),
            "nodes": sorted({(p.get("spec") or {}).get("nodeName") or "" for p in found} - {""})}


def cpu_percent_of_request(cluster: Cluster, selector: str) -> float | None:
    from harness.cluster.objects import quantity
    wanted = {p["metadata"]["name"]: p for p in pods(cluster, selector)}
    worst = None
    try:
        metrics = cluster.top_pods()
    except ApiError:
        return None
    for m in metrics:
        pod = wanted.get(m["metadata"]["name"])
        if pod is None:
            continue
        req = sum(quantity(((c.get("resources") or {}).get("requests") or {}).get("cpu", "0"))
                  for c in pod["spec"]["containers"])
        used = sum(quantity(c["usage"].get("cpu", "0")) for c in m.get("containers") or [])
        if req > 0:
            pct = round(100 * used / req, 1)
            worst = pct if worst is None else max(worst, pct)
    return worst


def hpa(cluster: Cluster, name: str) -> dict:
    """The HPA's current metrics as kubectl shows them (``<unknown>`` when it has none) and its
    ScalingActive condition."""
    try:
        h = cluster.get("HorizontalPodAutoscaler", name)
    except NotFound:
        return {"exists": False, "metric": "<none>", "scaling_active": "False", "reason": "NotFound"}
    st = h.get("status") or {}
    cur = [m for m in st.get("currentMetrics") or [] if _metric_value(m) is not None]
    cond = next((c for c in st.get("conditions") or [] if c.get("type") == "ScalingActive"), {})
    return {"exists": True, "metric": "known" if cur else "<unknown>", "scaling_active": cond.get("status", "Unknown"),
            "reason": cond.get("reason", ""), "message": cond.get("message", ""),
            "current_replicas": st.get("currentReplicas")}


def _metric_value(m: dict):
    for part in m.values():
        if isinstance(part, dict):
            cur = part.get("current") or {}
            for k in ("averageUtilization", "averageValue", "value"):
                if cur.get(k) is not None:
                    return cur[k]
    return None


def endpoints(cluster: Cluster, service: str) -> dict:
    """Ready addresses behind a Service (EndpointSlices, as kube-proxy reads them)."""
    ready = 0
    for s in cluster.list("EndpointSlice", label_selector=f"kubernetes.io/service-name={service}"):
        for ep in s.get("endpoints") or []:
            if (ep.get("conditions") or {}).get("ready", True):
                ready += len(ep.get("addresses") or [])
    return {"ready": ready}


def deployment(cluster: Cluster, name: str) -> dict:
    """What ``kubectl rollout status`` reads: generations, replica counts, the Progressing condition."""
    try:
        d = cluster.get("Deployment", name)
    except NotFound:
        return {"exists": False, "complete": False, "progressing_reason": "NotFound"}
    st = d.get("status") or {}
    want = (d.get("spec") or {}).get("replicas", 1)
    prog = next((c for c in st.get("conditions") or [] if c.get("type") == "Progressing"), {})
    complete = (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
                and st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
                and st.get("availableReplicas", 0) == want)
    return {"exists": True, "complete": complete, "progressing_reason": prog.get("reason", ""),
            "replicas": want, "available": st.get("availableReplicas", 0), "updated": st.get("updatedReplicas", 0)}


def stable(cluster: Cluster, selector: str, seconds: float, min_ready: int = 1, settle_s: float = 90) -> dict:
    """Wait up to ``settle_s`` for ``min_ready`` Ready pods, then watch ``seconds``: the pods must
    stay Ready with no restart."""
    deadline = time.monotonic() + settle_s
    facts = pod_facts(cluster, selector)
    while facts["ready"] < max(min_ready, 1) or facts["ready"] < facts["pods"]:
        if time.monotonic() > deadline:
            return {**facts, "stable": False, "why": "not ready"}
        time.sleep(1)
        facts = pod_facts(cluster, selector)
    before = facts["restarts"]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(min(2, max(end - time.monotonic(), 0)))
        facts = pod_facts(cluster, selector)
        if facts["restarts"] > before or facts["ready"] < facts["pods"] or facts["ready"] < min_ready:
            return {**facts, "stable": False, "why": "restarted" if facts["restarts"] > before else "not ready"}
    return {**facts, "stable": True, "why": ""}
