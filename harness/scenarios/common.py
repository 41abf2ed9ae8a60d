"""Scenarios that cluster checks share: each drives the cluster for real, with
real traffic through the Service, and records what it saw once.

* :func:`slow_start` - a new pod whose model loads slowly joins under load
  (scale-up by one, MODEL_LOAD_DELAY_SECONDS set through the ConfigMap).
* :func:`hung_pod` - one pod stops answering while load flows: that pod is
  replaced by one that hangs a fixed time after its model loaded
  (HANG_AFTER_READY_SECONDS through the ConfigMap), chosen so that the hang
  always begins after the pod is started and Ready, whatever its probes.

Every wait longer than a few seconds says what it waits for (``ctx.log``,
through :class:`harness.waiting.Progress`); the time limits come from the
learner's probe settings (:mod:`harness.probe_timing`) and are stated in the
observations, so the checks can say them.

The knobs go through the learner's ConfigMap (loaded with ``envFrom``), so no
Deployment template changes and no rollout muddles the measurement.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field

from ..cluster.objects import containers, is_ready, restarts
from ..labs.cluster_lab import ClusterLab
from ..errors import GradingError, ScenarioFailed
from ..load import LoadResult, start_load
from ..probe_timing import ContainerProbes
from ..waiting import FinalError, Progress, WaitTimeout, wait_for

PREDICT_BODY = '{"text": "I love this, it is wonderful and amazing!"}'


@dataclass
class Traffic:
    """How the grader reaches the Deployment through its Service."""

    url: str
    headers: dict = field(default_factory=dict)


def deployment_manifest(ctx: ClusterLab):
    """The one Deployment of the lab's manifests (a ScenarioFailed otherwise)."""
    deps = ctx.objects("Deployment")
    if len(deps) != 1:
        raise ScenarioFailed(f"expected exactly one Deployment in manifests/, found {len(deps)}")
    return deps[0]


def apply_once(ctx: ClusterLab) -> list[dict]:
    """Apply the manifests unless a check already did; a refusal fails the check."""
    try:
        return ctx.apply()
    except GradingError as exc:
        raise ScenarioFailed(f"kubectl apply was refused: {exc}") from None


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


# FailedCreate messages that clear up by themselves on a fresh namespace (the
# quota controller has not computed usage yet; the service account controller
# has not created "default" yet): the ReplicaSet controller retries them.
TRANSIENT_REFUSALS = ("status unknown for quota", "error looking up service account")


def refused_pods(ctx: ClusterLab, deployment_name: str) -> str | None:
    """The first ``FailedCreate`` event of the Deployment's ReplicaSets (Pod
    Security, a ResourceQuota or a LimitRange refused its pods), quoted, or
    None. The ReplicaSet keeps retrying, but the same pods are refused again."""
    own = re.compile(rf"^{re.escape(deployment_name)}-[a-z0-9]+$")
    for e in ctx.cluster.events(involved_kind="ReplicaSet"):
        name = (e.get("involvedObject") or {}).get("name", "")
        msg = e.get("message", "")
        if e.get("reason") == "FailedCreate" and own.match(name) and not any(t in msg for t in TRANSIENT_REFUSALS):
            return f"ReplicaSet/{name}: FailedCreate: {msg}"
    return None


def _wait_available(ctx: ClusterLab, name: str) -> None:
    def available():
        refused = refused_pods(ctx, name)
        if refused:
            raise FinalError(f"the pods are refused: {refused}")
        d = ctx.cluster.get("Deployment", name)
        st = d.get("status") or {}
        return st.get("availableReplicas", 0) >= max(1, d["spec"].get("replicas", 1))

    try:
        wait_for(available, f"Deployment/{name} to be available", ctx.timeouts.pod_start, progress=ctx.log)
    except (WaitTimeout, FinalError) as exc:
        raise ScenarioFailed(f"the Deployment never became available: {exc}") from None


def selector(dep: dict) -> dict:
    return ((dep.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}


def configmap_name(dep: dict) -> str:
    for c in containers(dep):
        for src in c.get("envFrom") or []:
            if (src.get("configMapRef") or {}).get("name"):
                return src["configMapRef"]["name"]
    raise ScenarioFailed("the container does not load a ConfigMap with envFrom, so the grader cannot set "
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
        raise ScenarioFailed("there is no Service in manifests/")
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

    timeout = ctx.timeouts.service_endpoints
    if not probes_of(deployment(ctx)).readiness:
        timeout += START_ALLOWANCE_S   # Ready as soon as it runs: the model may still be loading
    try:
        wait_for(answers, "the Service to answer GET /readyz with 200", timeout, progress=ctx.log)
    except WaitTimeout as exc:
        raise ScenarioFailed(f"no answer through the Service: {exc}. Does its selector match the pod labels, "
                          "and its targetPort the container port?") from None


def _load(ctx: ClusterLab, seconds: float, timeout_s: float = 3):
    t = traffic(ctx)
    # New connection per request, so the Service balances every request
    # (keep-alive connections would stay pinned to the pods they started on).
    return start_load(t.url + "/predict", duration_s=seconds, concurrency=4, qps=10, method="POST",
                      body=PREDICT_BODY, headers=t.headers, timeout_s=timeout_s, disable_keepalive=True)


def _wait_new_pod(ctx: ClusterLab, sel: dict, before: set[str], timeout: float) -> dict | None:
    try:
        return wait_for(lambda: next((p for p in ctx.pods(sel) if p["metadata"]["name"] not in before), None),
                        "the ReplicaSet to create a new pod", timeout, poll=0.3, progress=ctx.log)
    except WaitTimeout:
        return None


def probes_of(dep: dict) -> ContainerProbes:
    """The probes of the Deployment's first container (the server)."""
    cs = containers(dep)
    pod_spec = ((dep.get("spec") or {}).get("template") or {}).get("spec") or {}
    return ContainerProbes.of(cs[0] if cs else {}, pod_spec)


# Seconds from "the pod exists" to "its model has loaded" when the load itself
# is instant: scheduling, container start, gunicorn boot, joblib load. Generous:
# the grader's host may be a busy 2-core laptop. The lean Lab 01 image has no .pyc
# files, so every start compiles scipy and scikit-learn again: on a fresh 2-core
# machine, 2 workers under a 1-CPU limit were not Ready 19 s after a scale-up with
# an 8 s load (8 s allowed for this part), so correct answers failed there.
START_ALLOWANCE_S = 15.0


@dataclass
class SlowStart:
    load: LoadResult | None
    new_pod: str | None
    ready_after_s: float | None
    restarts: int
    delay_s: float
    deadline_s: float = 0.0       # Ready expected within this, after the scale-up
    error: str = ""


def slow_start(ctx: ClusterLab, delay_s: float = 8) -> SlowStart:
    """Scale up by one with a slow model load, under load through the Service.
    The new pod must be Ready within what its probes imply for that load
    (:meth:`ContainerProbes.ready_by`), and never restarted."""
    if "slow_start" in ctx.observations:
        return ctx.observations["slow_start"]
    dep = deployment(ctx)
    sel, name = selector(dep), dep["metadata"]["name"]
    replicas = dep["spec"].get("replicas", 1)
    deadline = math.ceil(probes_of(dep).ready_by(delay_s + START_ALLOWANCE_S))
    set_knobs(ctx, dep, MODEL_LOAD_DELAY_SECONDS=delay_s)
    before = {p["metadata"]["name"] for p in ctx.pods(sel)}
    handle = None
    try:
        try:
            handle = _load(ctx, deadline + 6)
        except ScenarioFailed:
            handle = None
        start = time.monotonic()
        ctx.cluster.patch("Deployment", name, {"spec": {"replicas": replicas + 1}})
        pod = _wait_new_pod(ctx, sel, before, 20)
        ready_after = None
        if pod is not None:
            progress = Progress(ctx.log, f"new pod {pod['metadata']['name']} to be Ready after a {delay_s:g} s "
                                         "model load", deadline)
        while pod is not None and time.monotonic() - start < deadline:
            pod = ctx.cluster.get("Pod", pod["metadata"]["name"])
            if restarts(pod):
                break                  # liveness killed the slow start: nothing more to see
            if is_ready(pod) and ready_after is None:
                ready_after = time.monotonic() - start
            if ready_after is not None and time.monotonic() - start > ready_after + 3:
                break                  # it has had traffic for a few seconds
            progress.tick()
            time.sleep(0.5)
        result = handle.stop() if handle else None
        obs = SlowStart(result, pod["metadata"]["name"] if pod else None, ready_after,
                        restarts(pod) if pod else 0, delay_s, deadline)
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
        wait_for(settled, f"{replicas} Ready pods again", ctx.timeouts.pod_start, progress=ctx.log)
    except WaitTimeout:
        pass   # the next check reports what it finds


# The hang begins this long after the pod can possibly be started and Ready
# (its probes' ready lag), so the grader has seen it Ready before it hangs.
HANG_MARGIN_S = 4.0
# Beyond the bound the probe settings imply: the kubelet's sync, the container
# start after the kill, and the grader's own polling.
RESTART_SLACK_S = 8.0


@dataclass
class HungPod:
    load: LoadResult | None
    pod: str | None
    hang_after_ready_s: float     # the knob: seconds after the model loaded
    running_at: float | None      # seconds after the scenario started
    ready_at: float | None        # first seen started and Ready
    hang_at: float | None         # the hang began at the latest then
    started_at_hang: bool
    bound_s: float | None         # hang -> restart, from the probes that applied then
    bound_why: str
    restarted_at: float | None    # first restart seen after the pod was Ready
    ready_again_at: float | None
    has_liveness: bool
    early_restart_at: float | None = None   # restarted before it was ever Ready (not the hang)

    @property
    def allowed_s(self) -> float | None:
        return None if self.bound_s is None else self.bound_s + RESTART_SLACK_S


def hung_pod(ctx: ClusterLab) -> HungPod:
    """Replace one pod with one that hangs a fixed time after it became ready,
    under load; see whether it is restarted within what its probes imply."""
    if "hung_pod" in ctx.observations:
        return ctx.observations["hung_pod"]
    dep = deployment(ctx)
    sel = selector(dep)
    probes = probes_of(dep)
    hang_after = math.ceil(probes.ready_lag() + HANG_MARGIN_S)
    set_knobs(ctx, dep, HANG_AFTER_READY_SECONDS=hang_after, MODEL_LOAD_DELAY_SECONDS=None)
    pods = sorted(ctx.pods(sel), key=lambda p: p["metadata"]["name"])
    before = {p["metadata"]["name"] for p in pods}
    worst = max(probes.liveness.budget if probes.liveness else 0, 20)
    window = START_ALLOWANCE_S + probes.ready_lag() + hang_after + worst + RESTART_SLACK_S + 10
    handle = None
    pod = None
    try:
        start = time.monotonic()
        ctx.cluster.delete("Pod", pods[0]["metadata"]["name"])
        pod = _wait_new_pod(ctx, sel, before, 20)
        try:
            handle = _load(ctx, window, timeout_s=2)
        except ScenarioFailed:
            handle = None
        obs = _watch_hang(ctx, pod, probes, hang_after, start)
        obs.load = handle.stop() if handle else None
    finally:
        set_knobs(ctx, dep, HANG_AFTER_READY_SECONDS=None)
        if pod is not None:
            # its restarted container read the knob again and would hang again: replace it
            try:
                ctx.cluster.delete("Pod", pod["metadata"]["name"])
            except Exception:  # noqa: BLE001 - already gone
                pass
    ctx.observations["hung_pod"] = obs
    return obs


def _watch_hang(ctx: ClusterLab, pod: dict | None, probes: ContainerProbes, hang_after: float,
                start: float) -> HungPod:
    obs = HungPod(None, pod["metadata"]["name"] if pod else None, hang_after, None, None, None, False, None, "",
                  None, None, probes.liveness is not None)
    if pod is None:
        return obs
    name = obs.pod
    now = lambda: time.monotonic() - start  # noqa: E731
    ready_deadline = START_ALLOWANCE_S + probes.ready_lag() + 10
    progress = Progress(ctx.log, f"replacement pod {name} to be started and Ready", ready_deadline)
    deadline = ready_deadline
    while now() < deadline:
        pod = ctx.cluster.get("Pod", name)
        cs = ((pod.get("status") or {}).get("containerStatuses") or [{}])[0]
        t = now()
        if obs.running_at is None and "running" in (cs.get("state") or {}):
            obs.running_at = t
        if obs.ready_at is None and cs.get("started") and is_ready(pod):
            obs.ready_at = t
            # the model loaded at the latest now, so the hang begins hang_after later at the latest
            obs.hang_at = t + hang_after
            since_start = obs.hang_at - (obs.running_at if obs.running_at is not None else t)
            obs.started_at_hang = True        # seen started before the hang began
            obs.bound_s, obs.bound_why = probes.restart_bound(started=True, since_start=since_start)
            bound = obs.bound_s if obs.bound_s is not None else 20
            deadline = obs.hang_at + bound + RESTART_SLACK_S
            ctx.log(f"waiting up to {bound + RESTART_SLACK_S:.0f} s for a restart of pod {name} after it hangs "
                    f"(Ready at {t:.0f} s; it hangs at {obs.hang_at:.0f} s at the latest)")
            progress = Progress(ctx.log, f"a restart of hung pod {name}", deadline - t)
        if obs.ready_at is None and obs.early_restart_at is None and restarts(pod) > 0:
            obs.early_restart_at = t          # killed while starting: its probes, not the hang
            break
        if obs.ready_at is not None and obs.restarted_at is None and restarts(pod) > 0:
            obs.restarted_at = t
            deadline = t + probes.ready_lag() + START_ALLOWANCE_S
            progress = Progress(ctx.log, f"pod {name} to be Ready again after its restart", deadline - t)
        if obs.restarted_at is not None and is_ready(pod):
            obs.ready_again_at = t
            break
        progress.tick()
        time.sleep(0.5)
    return obs
