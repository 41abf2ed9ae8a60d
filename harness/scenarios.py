"""Scenarios that cluster checks share: each drives the cluster for real, with
real traffic through the Service, and records what it saw once.

* :func:`slow_start` - a new pod whose model loads slowly joins under load
  (scale-up by one, MODEL_LOAD_DELAY_SECONDS set through the ConfigMap).
* :func:`hung_pod` - one pod stops answering (HANG_AFTER_SECONDS through the
  ConfigMap, then that pod is replaced) while load flows.

The knobs go through the learner's ConfigMap (loaded with ``envFrom``), so no
Deployment template changes and no rollout muddles the measurement.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from .checks.common import containers, is_ready, restarts
from .checks.registry import CheckFailed
from .cluster_lab import ClusterLab
from .errors import GradingError
from .load import LoadResult, start_load
from .waiting import WaitTimeout, wait_for

PREDICT_BODY = '{"text": "I love this, it is wonderful and amazing!"}'


@dataclass
class Traffic:
    """How the grader reaches the Deployment through its Service."""

    url: str
    headers: dict = field(default_factory=dict)


def deployment_manifest(ctx: ClusterLab):
    """The one Deployment of the lab's manifests (a CheckFailed otherwise)."""
    deps = ctx.objects("Deployment")
    if len(deps) != 1:
        raise CheckFailed(f"expected exactly one Deployment in manifests/, found {len(deps)}")
    return deps[0]


def apply_once(ctx: ClusterLab) -> list[dict]:
    """Apply the manifests unless a check already did; a refusal fails the check."""
    try:
        return ctx.apply()
    except GradingError as exc:
        raise CheckFailed(f"kubectl apply was refused: {exc}") from None


def deployment(ctx: ClusterLab) -> dict:
    """The live Deployment; the manifests are applied first if no check did yet."""
    deps = [deployment_manifest(ctx)]
    if ctx.applied is None:
        applied = apply_once(ctx)
        # the replica count the manifest asked for, before any controller acted
        # (the HPA bounds check starts its series here). Without spec.replicas
        # the API defaults it to 1 until the HPA's first sync: not the learner's.
        if "replicas" in (deps[0].obj.get("spec") or {}):
            ctx.observations["replicas_at_apply"] = next(
                (o["spec"].get("replicas", 1) for o in applied if o.get("kind") == "Deployment"), None)
        _wait_available(ctx, deps[0].name)
    return ctx.cluster.get("Deployment", deps[0].name)


def _wait_available(ctx: ClusterLab, name: str) -> None:
    def available():
        d = ctx.cluster.get("Deployment", name)
        st = d.get("status") or {}
        return st.get("availableReplicas", 0) >= max(1, d["spec"].get("replicas", 1))

    try:
        wait_for(available, f"Deployment/{name} to be available", ctx.timeouts.pod_start)
    except WaitTimeout as exc:
        raise CheckFailed(f"the Deployment never became available: {exc}") from None


def selector(dep: dict) -> dict:
    return ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}


def configmap_name(dep: dict) -> str:
    for c in containers(dep):
        for src in c.get("envFrom") or []:
            if (src.get("configMapRef") or {}).get("name"):
                return src["configMapRef"]["name"]
    raise CheckFailed("the container does not load a ConfigMap with envFrom, so the grader cannot set "
                      "MODEL_LOAD_DELAY_SECONDS / HANG_AFTER_SECONDS for this scenario")


def set_knobs(ctx: ClusterLab, dep: dict, **knobs) -> None:
    data = {k: (None if v is None else str(v)) for k, v in knobs.items()}
    ctx.cluster.patch("ConfigMap", configmap_name(dep), {"data": data})


def traffic(ctx: ClusterLab) -> Traffic:
    """The Service URL, plus the API key header when a Secret provides one."""
    if "traffic" in ctx.observations:
        return ctx.observations["traffic"]
    services = ctx.objects("Service")
    if not services:
        raise CheckFailed("there is no Service in manifests/")
    svc = ctx.cluster.get("Service", services[0].name)
    port = (svc["spec"].get("ports") or [{}])[0].get("port")
    headers = {}
    dep = deployment(ctx)
    for c in containers(dep):
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {}).get("secretKeyRef")
            if e.get("name") == "API_KEY" and ref:
                try:
                    headers["Authorization"] = "Bearer " + ctx.secret_value(ref["name"], ref["key"])
                except Exception:  # noqa: BLE001 - reported by the config check
                    pass
            elif e.get("name") == "API_KEY" and e.get("value"):
                headers["Authorization"] = "Bearer " + e["value"]
    t = Traffic(ctx.cluster.service_url(svc["metadata"]["name"], port), headers)
    _wait_service_answers(ctx, t)
    ctx.observations["traffic"] = t
    return t


def _wait_service_answers(ctx: ClusterLab, t: Traffic) -> None:
    """Pods are Ready before kube-proxy (or the sim's proxy) has programmed
    their endpoints: wait until the Service answers /readyz with 200, as a
    client would. (/readyz, not /livez: without a readiness probe a pod gets
    traffic while its model loads, which only the probe checks should see.)"""
    import requests

    def answers():
        return requests.get(t.url + "/readyz", timeout=2).status_code == 200

    try:
        wait_for(answers, "the Service to answer GET /readyz with 200", ctx.timeouts.service_endpoints)
    except WaitTimeout as exc:
        raise CheckFailed(f"no answer through the Service: {exc}. Does its selector match the pod labels, "
                          "and its targetPort the container port?") from None


def _load(ctx: ClusterLab, seconds: float, timeout_s: float = 3):
    t = traffic(ctx)
    # New connection per request, so the Service balances every request
    # (keep-alive connections would stay pinned to the pods they started on).
    return start_load(t.url + "/predict", duration_s=seconds, concurrency=4, qps=10, method="POST",
                      body=PREDICT_BODY, headers=t.headers, timeout_s=timeout_s, disable_keepalive=True)


def _wait_new_pod(ctx: ClusterLab, sel: dict, before: set[str], timeout: float) -> dict | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new = [p for p in ctx.pods(sel) if p["metadata"]["name"] not in before]
        if new:
            return new[0]
        time.sleep(0.3)
    return None


@dataclass
class SlowStart:
    load: LoadResult | None
    new_pod: str | None
    ready_after_s: float | None
    restarts: int
    delay_s: float
    error: str = ""


def slow_start(ctx: ClusterLab, delay_s: float = 8, window_s: float = 20) -> SlowStart:
    """Scale up by one with a slow model load, under load through the Service."""
    if "slow_start" in ctx.observations:
        return ctx.observations["slow_start"]
    dep = deployment(ctx)
    sel, name = selector(dep), dep["metadata"]["name"]
    replicas = dep["spec"].get("replicas", 1)
    set_knobs(ctx, dep, MODEL_LOAD_DELAY_SECONDS=delay_s)
    before = {p["metadata"]["name"] for p in ctx.pods(sel)}
    handle = None
    try:
        try:
            handle = _load(ctx, window_s)
        except CheckFailed:
            handle = None
        start = time.monotonic()
        ctx.cluster.patch("Deployment", name, {"spec": {"replicas": replicas + 1}})
        pod = _wait_new_pod(ctx, sel, before, 20)
        ready_after = None
        while pod is not None and time.monotonic() - start < window_s - 2:
            pod = ctx.cluster.get("Pod", pod["metadata"]["name"])
            if is_ready(pod) and ready_after is None:
                ready_after = time.monotonic() - start
            if ready_after is not None and time.monotonic() - start > ready_after + 3:
                break
            time.sleep(0.5)
        result = handle.result() if handle else None
        obs = SlowStart(result, pod["metadata"]["name"] if pod else None, ready_after,
                        restarts(pod) if pod else 0, delay_s)
    finally:
        set_knobs(ctx, dep, MODEL_LOAD_DELAY_SECONDS=None)
        ctx.cluster.patch("Deployment", name, {"spec": {"replicas": replicas}})
        settle(ctx, sel, replicas)
    ctx.observations["slow_start"] = obs
    return obs


def settle(ctx: ClusterLab, sel: dict, replicas: int) -> None:
    """Wait until exactly ``replicas`` pods exist (terminating ones aside) and
    are Ready, so the next scenario starts from a known state."""
    def settled():
        pods = ctx.pods(sel)
        return len(pods) == replicas and all(is_ready(p) for p in pods)

    try:
        wait_for(settled, f"{replicas} Ready pods again", ctx.timeouts.pod_start)
    except WaitTimeout:
        pass   # the next check reports what it finds


@dataclass
class HungPod:
    load: LoadResult | None
    pod: str | None
    hang_at: float | None         # seconds after the scenario started
    restarted_at: float | None    # first restart seen
    ready_again_at: float | None
    implied_s: float              # what the liveness settings allow
    has_liveness: bool


def liveness_budget(dep: dict) -> tuple[bool, float]:
    """(has a liveness probe, the seconds from a hang to the restart that its
    settings allow): the first failing probe can start up to one period after
    the hang, then failureThreshold failures, then the kill, which waits up to
    the probe's terminationGracePeriodSeconds (or the pod's, 30 s by default)."""
    probe = next((c.get("livenessProbe") for c in containers(dep) if c.get("livenessProbe")), None)
    if not probe:
        return False, 0.0
    period = probe.get("periodSeconds", 10)
    timeout = probe.get("timeoutSeconds", 1)
    failures = probe.get("failureThreshold", 3)
    pod_grace = ((dep.get("spec") or {}).get("template") or {}).get("spec", {}).get("terminationGracePeriodSeconds", 30)
    grace = probe.get("terminationGracePeriodSeconds", pod_grace)
    return True, period * failures + timeout + period + grace


def hung_pod(ctx: ClusterLab, hang_after_s: float = 5, slack_s: float = 6) -> HungPod:
    """Replace one pod with one that hangs after ``hang_after_s``, under load."""
    if "hung_pod" in ctx.observations:
        return ctx.observations["hung_pod"]
    dep = deployment(ctx)
    sel = selector(dep)
    has_liveness, implied = liveness_budget(dep)
    set_knobs(ctx, dep, HANG_AFTER_SECONDS=hang_after_s, MODEL_LOAD_DELAY_SECONDS=None)
    pods = sorted(ctx.pods(sel), key=lambda p: p["metadata"]["name"])
    before = {p["metadata"]["name"] for p in pods}
    window = hang_after_s + (implied or 20) + slack_s + 4
    handle = None
    try:
        start = time.monotonic()
        ctx.cluster.delete("Pod", pods[0]["metadata"]["name"])
        pod = _wait_new_pod(ctx, sel, before, 20)
        try:
            handle = _load(ctx, window, timeout_s=2)
        except CheckFailed:
            handle = None
        hang_at = restarted_at = ready_again_at = None
        started_seen = None
        while pod is not None and time.monotonic() - start < window:
            pod = ctx.cluster.get("Pod", pod["metadata"]["name"])
            cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
            if started_seen is None and "running" in (cs.get("state") or {}):
                started_seen = time.monotonic() - start
                hang_at = started_seen + hang_after_s
            if restarted_at is None and restarts(pod) > 0:
                restarted_at = time.monotonic() - start
            if restarted_at is not None and ready_again_at is None and is_ready(pod):
                ready_again_at = time.monotonic() - start
                break
            time.sleep(0.5)
        result = handle.result() if handle else None
        obs = HungPod(result, pod["metadata"]["name"] if pod else None, hang_at, restarted_at,
                      ready_again_at, implied, has_liveness)
    finally:
        set_knobs(ctx, dep, HANG_AFTER_SECONDS=None)
    ctx.observations["hung_pod"] = obs
    return obs
