"""Lab 04 checks: GPU-aware scheduling, and a canary behind weighted routing.

The GPU checks read the manifests and the pods' nodes; the routing checks
send real requests through the Gateway and attribute each answer by its
``model_version`` (stable v1, canary v2).
"""
from __future__ import annotations

import copy
import time

from ..scenarios import common as sc
from ..scenarios import canary as cs
from ..labs.cluster_lab import ClusterLab
from ..manifests import validate
from ..waiting import WaitTimeout, wait_for
from ..cluster.objects import containers, is_ready, pod_state
from .registry import CheckFailed, check

LAB = "04-gpu-canary"
K8S = "https://kubernetes.io/docs"
GPU = "nvidia.com/gpu"
GPU_LABEL = "nvidia.com/gpu.present"
CANARY_SHARE = 10      # the route must start at 10 %
STABLE_REPLICAS, CANARY_REPLICAS = 3, 1


def _roles(ctx: ClusterLab) -> tuple[str, str]:
    """(stable Service, canary Service) from the route: the heavier backend is stable."""
    r = cs.route(ctx)
    if len(r.backends) != 2:
        raise CheckFailed(f"{r.kind}/{r.name} should have two backends (stable and canary), found {len(r.backends)}")
    ordered = sorted(r.backends, key=lambda b: -b[1])
    return ordered[0][0], ordered[1][0]


def _deployment_for(ctx: ClusterLab, service: str):
    svc = next((m for m in ctx.objects("Service") if m.name == service), None)
    if svc is None:
        raise CheckFailed(f"the route sends to Service/{service}, which is not in manifests/")
    sel = (svc.obj.get("spec") or {}).get("selector") or {}
    for m in ctx.objects("Deployment"):
        labels = ((m.obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
        if sel and all(labels.get(k) == v for k, v in sel.items()):
            return m, sel
    raise CheckFailed(f"Service/{service}'s selector {sel} matches no Deployment's pods")


def _wait_ready(ctx: ClusterLab, name: str, want: int, sel: dict) -> list[dict]:
    def ready():
        pods = ctx.pods(sel)
        return pods if len(pods) >= want and sum(is_ready(p) for p in pods) >= want else None

    try:
        return wait_for(ready, f"{want} Ready pods of Deployment/{name}", ctx.timeouts.pod_start)
    except WaitTimeout as exc:
        states = "; ".join(pod_state(p) for p in ctx.pods(sel))
        raise CheckFailed(f"{exc}; pods: {states or 'none'}") from None


def _node_labels(ctx: ClusterLab, node: str) -> dict:
    return (ctx.cluster.get("Node", node).get("metadata") or {}).get("labels") or {}


@check("manifests.valid", lab=LAB, points=1,
       hint="fix the field named at file:line (core kinds: Kubernetes 1.34 schema; Gateway API / Istio: their CRD schemas)",
       doc="https://gateway-api.sigs.k8s.io/reference/spec/")
def manifests_valid(ctx: ClusterLab) -> str:
    """the manifests validate (core kinds and the routing CRDs)"""
    custom = {"Gateway", "HTTPRoute", "GatewayClass", "VirtualService", "DestinationRule"}
    errors = validate(ctx.manifests, skip_kinds=frozenset(custom))
    try:
        from ..crds.validate import validate_custom
    except ImportError:
        validate_custom = None
    if validate_custom is not None:
        for m in ctx.manifests:
            if m.kind in custom:
                errors += [f"{m.where()}: {m.ref}: {e}" for e in validate_custom(m.obj)]
    if errors:
        raise CheckFailed(f"{len(errors)} schema error(s); first: {errors[0]}", details="\n".join(errors))
    return f"{len(ctx.manifests)} objects valid"


@check("gpu.limits", lab=LAB, points=1,
       hint="set resources.limits[nvidia.com/gpu] (an integer); if you also set the request it must equal the limit",
       doc=f"{K8S}/tasks/manage-gpus/scheduling-gpus/")
def gpu_limits(ctx: ClusterLab) -> str:
    """nvidia.com/gpu limits are set on the GPU workload and equal the requests"""
    _, canary = _roles(ctx)
    m, _ = _deployment_for(ctx, canary)
    for i, c in enumerate(containers(m.obj)):
        res = c.get("resources") or {}
        lim, req = (res.get("limits") or {}).get(GPU), (res.get("requests") or {}).get(GPU)
        where = m.where(("spec", "template", "spec", "containers", i, "resources"))
        if lim is None:
            raise CheckFailed(f"{where}: container {c.get('name')!r} has no limits[{GPU}]"
                              + (" (a request without a limit is refused)" if req is not None else ""))
        if req is not None and str(req) != str(lim):
            raise CheckFailed(f"{where}: requests[{GPU}]={req} but limits[{GPU}]={lim}: they must be equal")
    return f"{m.ref} asks for {GPU} with limits == requests"


@check("gpu.placement", lab=LAB, points=2, requires=("manifests.valid",),
       hint="give the GPU pods a toleration for nvidia.com/gpu and required node affinity (or nodeSelector) on nvidia.com/gpu.present=true",
       doc=f"{K8S}/concepts/scheduling-eviction/taint-and-toleration/")
def gpu_placement(ctx: ClusterLab) -> str:
    """GPU pods land only on GPU nodes, and other pods never do"""
    stable, canary = _roles(ctx)
    cm, csel = _deployment_for(ctx, canary)
    pod_spec = ((cm.obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    tolerates = any(t.get("key") == GPU and t.get("operator", "Equal") in ("Exists", "Equal")
                    for t in pod_spec.get("tolerations") or [])
    terms = (((pod_spec.get("affinity") or {}).get("nodeAffinity") or {})
             .get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get("nodeSelectorTerms") or []
    selects = (pod_spec.get("nodeSelector") or {}).get(GPU_LABEL) == "true" or any(
        e.get("key") == GPU_LABEL for t in terms for e in t.get("matchExpressions") or [])
    where = cm.where(("spec", "template", "spec"))
    if not tolerates:
        raise CheckFailed(f"{where}: {cm.ref} has no toleration for the {GPU} taint: it can never run on a GPU node")
    if not selects:
        raise CheckFailed(f"{where}: {cm.ref} does not require GPU nodes (required nodeAffinity or nodeSelector "
                          f"on {GPU_LABEL}=true): with a toleration alone it may land anywhere")
    sc.apply_once(ctx)
    sm, ssel = _deployment_for(ctx, stable)
    canary_pods = _wait_ready(ctx, cm.name, CANARY_REPLICAS, csel)
    stable_pods = _wait_ready(ctx, sm.name, 1, ssel)
    wrong = [p["metadata"]["name"] for p in canary_pods
             if _node_labels(ctx, p["spec"]["nodeName"]).get(GPU_LABEL) != "true"]
    if wrong:
        raise CheckFailed(f"GPU pods on non-GPU nodes: {wrong}")
    intruders = [p["metadata"]["name"] for p in stable_pods
                 if _node_labels(ctx, p["spec"]["nodeName"]).get(GPU_LABEL) == "true"]
    if intruders:
        raise CheckFailed(f"non-GPU pods on a GPU node: {intruders}")
    nodes = sorted({p["spec"]["nodeName"] for p in canary_pods})
    return f"canary on GPU node(s) {nodes}; stable pods on CPU nodes only"


@check("gpu.insufficient-pending", lab=LAB, points=2, requires=("manifests.valid",),
       hint="a pod asking for more GPUs than any node has stays Pending: read its FailedScheduling event",
       doc=f"{K8S}/concepts/scheduling-eviction/kube-scheduler/")
def insufficient(ctx: ClusterLab) -> str:
    """a pod asking for more GPUs than exist stays Pending with the upstream FailedScheduling message"""
    _, canary = _roles(ctx)
    cm, _ = _deployment_for(ctx, canary)
    tmpl = copy.deepcopy((cm.obj.get("spec") or {}).get("template") or {})
    spec = tmpl.get("spec") or {}
    # one more than the biggest GPU node has: 2 on the fake GPU node, 9 on a real 8-GPU node
    want = 1 + max([int(((n.get("status") or {}).get("allocatable") or {}).get(GPU, "0") or 0)
                    for n in ctx.cluster.list("Node", None)] or [0])
    for c in spec.get("containers") or []:
        res = c.setdefault("resources", {})
        for section in ("limits", "requests"):
            if GPU in (res.get(section) or {}) or section == "limits":
                res.setdefault(section, {})[GPU] = str(want)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "gpu-probe", "labels": {"app.kubernetes.io/part-of": "grader-probe"}},
           "spec": spec}
    ctx.cluster.apply([pod])
    try:
        def unschedulable():
            p = ctx.cluster.get("Pod", "gpu-probe")
            cond = next((c for c in (p.get("status") or {}).get("conditions") or []
                         if c.get("type") == "PodScheduled"), {})
            if p["spec"].get("nodeName"):
                raise CheckFailed(f"the {want}-GPU probe pod was scheduled on {p['spec']['nodeName']}")
            return cond.get("message") if cond.get("reason") == "Unschedulable" else None

        try:
            message = wait_for(unschedulable, f"the {want}-GPU probe pod to be reported Unschedulable", 30)
        except WaitTimeout as exc:
            raise CheckFailed(str(exc)) from None
        events = [e for e in ctx.cluster.events(involved_kind="Pod", involved_name="gpu-probe")
                  if e.get("reason") == "FailedScheduling"]
        if not events:
            raise CheckFailed("no FailedScheduling event for the probe pod")
        if f"Insufficient {GPU}" not in message:
            raise CheckFailed(f"Pending, but not for lack of GPUs: {message}")
        return f"Pending as expected: {events[-1]['message']}"
    finally:
        try:
            ctx.cluster.delete("Pod", "gpu-probe")
        except Exception:  # noqa: BLE001 - gone already
            pass


@check("deploy.stable-canary-ready", lab=LAB, points=2, requires=("manifests.valid",),
       hint="run 3 replicas of stable and 1 of the canary; both must become Ready",
       doc=f"{K8S}/concepts/workloads/controllers/deployment/")
def stable_canary_ready(ctx: ClusterLab) -> str:
    """stable runs 3 replicas and the canary 1; both are Ready"""
    stable, canary = _roles(ctx)
    sm, ssel = _deployment_for(ctx, stable)
    cm, csel = _deployment_for(ctx, canary)
    for m, want in ((sm, STABLE_REPLICAS), (cm, CANARY_REPLICAS)):
        got = (m.obj.get("spec") or {}).get("replicas", 1)
        if got != want:
            raise CheckFailed(f"{m.where(('spec', 'replicas'))}: {m.ref} has {got} replicas, want {want}")
    sc.apply_once(ctx)
    _wait_ready(ctx, sm.name, STABLE_REPLICAS, ssel)
    _wait_ready(ctx, cm.name, CANARY_REPLICAS, csel)
    return f"{sm.ref}: {STABLE_REPLICAS}/{STABLE_REPLICAS} Ready; {cm.ref}: 1/1 Ready"


def _ready_for_traffic(ctx: ClusterLab):
    stable, canary = _roles(ctx)
    sm, ssel = _deployment_for(ctx, stable)
    cm, csel = _deployment_for(ctx, canary)
    sc.apply_once(ctx)
    _wait_ready(ctx, sm.name, 1, ssel)
    _wait_ready(ctx, cm.name, 1, csel)
    r = cs.route(ctx)
    url = cs.gateway_url(ctx, r)

    def answers():
        import requests
        return requests.get(url + "/readyz", timeout=2).status_code == 200

    try:
        wait_for(answers, "the Gateway to answer", ctx.timeouts.service_endpoints)
    except WaitTimeout as exc:
        raise CheckFailed(f"no answer through the Gateway: {exc}") from None
    return r, url, stable, canary


@check("route.split", lab=LAB, points=3, requires=("manifests.valid",),
       hint="backendRefs weights are relative: stable 90 and canary 10 send 10 % to the canary (not 3 stable + 1 canary pods behind one Service: ~25 %)",
       doc="https://gateway-api.sigs.k8s.io/guides/traffic-splitting/")
def route_split(ctx: ClusterLab) -> str:
    """the split measured through the Gateway matches the configured 10 % within a binomial tolerance"""
    r = cs.route(ctx)
    _, canary = _roles(ctx)
    share = 100 * r.share(canary)
    if abs(share - CANARY_SHARE) > 0.01:
        m = ctx.one(r.kind)
        raise CheckFailed(f"{m.where(('spec',))}: {r.kind}/{r.name} gives the canary {share:.1f} % "
                          f"({dict(r.backends)}): the lab starts at {CANARY_SHARE} %")
    r, url, stable, canary = _ready_for_traffic(ctx)
    n = 1500
    s = cs.sample(url, n)
    hits = s.counts.get("v2", 0)
    ok, tol = cs.within(hits, s.total, CANARY_SHARE / 100)
    ctx.observations["split"] = s
    if s.errors:
        raise CheckFailed(f"{sum(s.errors.values())} of {s.total} requests through the Gateway failed")
    if not ok:
        raise CheckFailed(f"measured {100 * hits / s.total:.1f} % canary over {s.total} requests; configured "
                          f"{CANARY_SHARE} % ± {tol:.1f}")
    return f"measured {100 * hits / s.total:.1f} % canary over {s.total} requests (configured {CANARY_SHARE} % ± {tol:.1f})"


@check("route.model-version", lab=LAB, points=1, requires=("route.split",),
       hint="stable must run the v1 image and the canary the v2 image, so model_version tells them apart",
       doc="https://gateway-api.sigs.k8s.io/guides/traffic-splitting/")
def model_version(ctx: ClusterLab) -> str:
    """model_version in the answers shows which backend answered"""
    s = ctx.observations["split"]
    versions = set(s.counts)
    if versions != {"v1", "v2"}:
        raise CheckFailed(f"answers carried model_version {sorted(versions)}, want v1 (stable) and v2 (canary)")
    return f"v1 × {s.counts['v1']}, v2 × {s.counts['v2']}"


@check("route.progressive", lab=LAB, points=3, requires=("route.split",),
       hint="keep both backendRefs in one rule so that the weights can be shifted; the canary must stay healthy under load",
       doc="https://fluxcd.io/flagger/usage/deployment-strategies/#canary-release")
def route_progressive(ctx: ClusterLab) -> str:
    """weights shift 10 -> 25 -> 50 -> 100 with the analysis gate passed at each step"""
    r, url, stable, canary = _ready_for_traffic(ctx)
    try:
        p = cs.progressive(ctx, r, stable, canary)
    finally:
        cs.set_weights(ctx, r, dict(r.backends))
    ctx.observations["progressive"] = p
    steps = ", ".join(f"{st.weight}%→{st.observed_pct:.0f}%" for st in p.steps)
    if not p.promoted:
        last = p.steps[-1]
        raise CheckFailed(f"the canary was rolled back at {last.weight} %: error rate "
                          f"{last.canary_error_rate:.1%}, p99 {last.canary_p99_ms or 0:.0f} ms vs stable "
                          f"{last.stable_p99_ms or 0:.0f} ms (gate: ≤ {cs.MAX_ERROR_RATE:.0%} errors, p99 ≤ "
                          f"max({cs.P99_FACTOR:g}× stable, {cs.P99_FLOOR_S * 1000:.0f} ms))")
    off = [st for st in p.steps if not st.within_tolerance]
    if off:
        raise CheckFailed(f"at {off[0].weight} % the measured split was {off[0].observed_pct:.1f} %")
    return f"promoted: {steps} (configured→measured); analysis passed at every step"


@check("route.bad-canary-rollback", lab=LAB, points=2, requires=("route.split",),
       hint="the canary Deployment must roll out a new pod cleanly (Recreate: one GPU, no surge) so a bad release can be tried",
       doc="https://argo-rollouts.readthedocs.io/en/stable/features/analysis/")
def bad_canary(ctx: ClusterLab) -> str:
    """a bad canary (FAIL_RATE) is rolled back automatically, with error exposure bounded by its weight"""
    r, url, stable, canary = _ready_for_traffic(ctx)
    cm, csel = _deployment_for(ctx, canary)
    name = containers(cm.obj)[0]["name"]
    ctx.cluster.patch("Deployment", cm.name, {"spec": {"template": {"spec": {"containers": [
        {"name": name, "env": [{"name": "FAIL_RATE", "value": "0.3"}]}]}}}}, patch_type="strategic")
    time.sleep(2)
    _wait_ready(ctx, cm.name, CANARY_REPLICAS, csel)
    time.sleep(2)
    try:
        p = cs.progressive(ctx, r, stable, canary)
    finally:
        cs.set_weights(ctx, r, dict(r.backends))
    if p.promoted:
        raise CheckFailed("a canary failing 30 % of requests was promoted to 100 %")
    exposure = p.errors / p.total if p.total else 0
    bound = p.rolled_back_at / 100 * 0.3 * 2 + 0.01
    if exposure > bound:
        raise CheckFailed(f"{exposure:.1%} of requests failed before the rollback, over the {bound:.1%} its weight allows")
    return (f"rolled back at {p.rolled_back_at} % after {p.rollback_s:.1f}s; {p.errors} of {p.total} requests "
            f"failed ({exposure:.1%}, bound {bound:.1%})")
