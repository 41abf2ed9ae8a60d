"""Lab 03 checks: an HPA under real load, and zero-downtime rollouts.

Scenarios (harness.scenarios.hpa, harness.scenarios.rollout) drive the cluster
with real traffic through the Service; each check reads what they measured.
Times are measured on the backend's clock; on sim the controller periods
(metrics resolution, HPA sync) are reported in the report's notices.
"""
from __future__ import annotations

from ..scenarios import common as sc
from ..scenarios import hpa as hs
from ..scenarios import rollout as rs
from ..labs.cluster_lab import IMAGE_V2, IMAGE_V3_BROKEN, ClusterLab
from ..cluster.objects import containers
from .registry import CheckFailed, Partial, check

LAB = "03-autoscaling"
K8S = "https://kubernetes.io/docs"
MAX_REPLICAS_BUDGET = 6
MAX_SCALE_DOWN_WINDOW = 60


def _hpa_manifest(ctx: ClusterLab):
    hpas = ctx.objects("HorizontalPodAutoscaler")
    if len(hpas) != 1:
        raise CheckFailed(f"expected one HorizontalPodAutoscaler in manifests/, found {len(hpas)}")
    return hpas[0]


@check("hpa.spec", lab=LAB, points=2,
       hint="autoscaling/v2 HPA on the Deployment: Resource cpu, target Utilization 50, minReplicas ≥ 2, maxReplicas ≤ 6; remove spec.replicas from the Deployment",
       doc=f"{K8S}/tasks/run-application/horizontal-pod-autoscale-walkthrough/")
def hpa_spec(ctx: ClusterLab):
    """HPA autoscaling/v2 on CPU at 50 %, sane bounds; the Deployment leaves replicas to it"""
    m = _hpa_manifest(ctx)
    spec = m.obj.get("spec") or {}
    if m.obj.get("apiVersion") != "autoscaling/v2":
        raise CheckFailed(f"{m.where()}: {m.ref}: use apiVersion autoscaling/v2 (found {m.obj.get('apiVersion')})")
    dep = sc.deployment_manifest(ctx)
    target = spec.get("scaleTargetRef") or {}
    if target.get("kind") != "Deployment" or target.get("name") != dep.name:
        raise CheckFailed(f"{m.where(('spec', 'scaleTargetRef'))}: scaleTargetRef must name Deployment/{dep.name}")
    cpu = [x for x in spec.get("metrics") or [] if x.get("type") == "Resource"
           and (x.get("resource") or {}).get("name") == "cpu"]
    t = ((cpu[0].get("resource") or {}).get("target") or {}) if cpu else {}
    if t.get("type") != "Utilization" or t.get("averageUtilization") != 50:
        raise CheckFailed(f"{m.where(('spec', 'metrics'))}: want a cpu Resource metric with target "
                          f"type Utilization, averageUtilization 50 (found {t or 'none'})")
    lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
    if lo < 2 or hi > MAX_REPLICAS_BUDGET or hi <= lo:
        raise CheckFailed(f"{m.where(('spec', 'minReplicas'))}: minReplicas {lo} / maxReplicas {hi}: "
                          f"want 2 ≤ min < max ≤ {MAX_REPLICAS_BUDGET}")
    if "replicas" in (dep.obj.get("spec") or {}):
        return Partial(1, f"{dep.where(('spec', 'replicas'))}: WARNING: {dep.ref} sets spec.replicas while the "
                          "HPA owns it: every kubectl apply resets the HPA's choice")
    return f"cpu 50 % target, {lo}..{hi} replicas; the Deployment leaves replicas to the HPA"


@check("hpa.scales-up", lab=LAB, points=3,
       hint="the HPA needs CPU requests on the container (else TARGETS <unknown>: missing request for cpu) and metrics (metrics-server on kind)",
       doc=f"{K8S}/tasks/run-application/horizontal-pod-autoscale/#algorithm-details")
def hpa_scales_up(ctx: ClusterLab) -> str:
    """under sustained load the HPA raises replicas above min within a bounded time"""
    obs = hs.hpa_cycle(ctx)
    if obs.first_scale_up_s is None:
        why = f"; HPA says: {obs.last_condition}" if obs.last_condition else ""
        raise CheckFailed(f"replicas stayed at {obs.min_replicas} for {obs.load_s:.0f}s of load "
                          f"({obs.load.ok if obs.load else 0} requests){why}")
    return (f"first scale-up {obs.first_scale_up_s:.0f}s after the load started; peak {obs.peak} replicas "
            f"({obs.load.ok_rps:.0f} req/s served)" if obs.load else "scaled up")


@check("hpa.respects-bounds", lab=LAB, points=1,
       hint="minReplicas and maxReplicas bound the HPA; spec.replicas on the Deployment can push it outside between syncs",
       doc=f"{K8S}/reference/kubernetes-api/workload-resources/horizontal-pod-autoscaler-v2/")
def hpa_bounds(ctx: ClusterLab) -> str:
    """the replica count never goes outside [min, max]"""
    obs = hs.hpa_cycle(ctx)
    out = [(t, r) for t, r in obs.series if r < obs.min_replicas or r > obs.max_replicas]
    if out:
        t, r = out[0]
        raise CheckFailed(f"{r} replicas at {t:.0f}s, outside [{obs.min_replicas}, {obs.max_replicas}]")
    seen = sorted({r for _, r in obs.series})
    return f"{len(obs.series)} samples, replicas in {seen} within [{obs.min_replicas}, {obs.max_replicas}]"


@check("hpa.scales-down", lab=LAB, points=2,
       hint=f"set spec.behavior.scaleDown.stabilizationWindowSeconds (30 here; ≤ {MAX_SCALE_DOWN_WINDOW}) so scale-down comes in grading time",
       doc=f"{K8S}/tasks/run-application/horizontal-pod-autoscale/#stabilization-window")
def hpa_scales_down(ctx: ClusterLab) -> str:
    """after the load, replicas return toward min, honouring the scale-down window"""
    m = _hpa_manifest(ctx)
    window = (((m.obj.get("spec") or {}).get("behavior") or {}).get("scaleDown") or {}).get(
        "stabilizationWindowSeconds", 300)
    if window > MAX_SCALE_DOWN_WINDOW:
        raise CheckFailed(f"{m.where(('spec',))}: scaleDown stabilizationWindowSeconds is {window}s: "
                          f"shorten it to ≤ {MAX_SCALE_DOWN_WINDOW}s for this lab")
    obs = hs.hpa_cycle(ctx)
    if obs.first_scale_up_s is None:
        raise CheckFailed("never scaled up, so scale-down could not be observed")
    if obs.first_scale_down_s is None:
        raise CheckFailed(f"still {obs.series[-1][1] if obs.series else '?'} replicas "
                          f"{obs.watch_down_s:.0f}s after the load stopped (window {window}s)")
    early = window - obs.sync_period_s - 2
    if obs.first_scale_down_s < early:
        raise CheckFailed(f"scaled down {obs.first_scale_down_s:.0f}s after the load stopped, before the "
                          f"{window}s stabilization window")
    back = f", back to {obs.min_replicas} after {obs.back_to_min_s:.0f}s" if obs.back_to_min_s else ""
    return f"first scale-down {obs.first_scale_down_s:.0f}s after the load stopped (window {window}s){back}"


@check("rollout.strategy", lab=LAB, points=1,
       hint="spec.strategy: RollingUpdate with rollingUpdate maxSurge: 1 and maxUnavailable: 1 (or 0)",
       doc=f"{K8S}/concepts/workloads/controllers/deployment/#rolling-update-deployment")
def rollout_strategy(ctx: ClusterLab) -> str:
    """maxUnavailable 1 and maxSurge 1 (or the equivalent)"""
    m = sc.deployment_manifest(ctx)
    for replicas in range(2, MAX_REPLICAS_BUDGET + 1):
        surge, unavailable = rs.surge_unavailable(m.obj, replicas)
        if surge != 1 or unavailable > 1:
            raise CheckFailed(f"{m.where(('spec', 'strategy'))}: with {replicas} replicas this strategy allows "
                              f"{surge} extra and {unavailable} unavailable pods: want 1 and at most 1")
    return "maxSurge 1, maxUnavailable ≤ 1 at any replica count"


@check("rollout.zero-downtime", lab=LAB, points=3,
       hint="readinessProbe on /readyz plus a preStop sleep (lifecycle.preStop.sleep.seconds: 5) so old pods finish their traffic",
       doc=f"{K8S}/concepts/containers/container-lifecycle-hooks/")
def zero_downtime(ctx: ClusterLab) -> str:
    """v1 -> v2 under continuous load: zero failed requests, all pods on v2, surge/unavailable respected"""
    obs = ctx.observations.get("rollout_v2") or rs.rollout(ctx, IMAGE_V2)
    ctx.observations["rollout_v2"] = obs
    if obs.completed_after_s is None:
        raise CheckFailed(f"the rollout to {IMAGE_V2} did not complete (rollout status never finished)")
    r = obs.load
    if r is None or r.total < 20:
        raise CheckFailed("no traffic went through the Service during the rollout")
    if r.failed:
        raise CheckFailed(f"{r.failed} of {r.total} requests failed during the rollout ({r.failures()})")
    if set(obs.versions) != {"v2"}:
        raise CheckFailed(f"after the rollout the Service answered with versions {obs.versions}, want only v2")
    if obs.min_ready < 1:
        # Requests can still succeed here: with no Ready endpoint, kube-proxy falls back to
        # serving-and-terminating ones (ProxyTerminatingEndpoints), so only the preStop sleep
        # of the old pods covered the gap. That is luck with timing, not zero downtime.
        raise CheckFailed(f"for a moment no pod was Ready (of {obs.replicas} replicas, maxUnavailable "
                          f"{obs.unavailable} lets all go at once); only terminating pods still in preStop "
                          "answered: keep spec.strategy.rollingUpdate.maxUnavailable below replicas (1 here)")
    if obs.max_pods > obs.replicas + obs.surge or obs.min_ready < obs.replicas - obs.unavailable:
        raise CheckFailed(f"pods ranged up to {obs.max_pods} with as few as {obs.min_ready} Ready; "
                          f"{obs.replicas} replicas with maxSurge {obs.surge} / maxUnavailable {obs.unavailable} allow "
                          f"≤ {obs.replicas + obs.surge} and ≥ {obs.replicas - obs.unavailable}")
    return (f"rolled out in {obs.completed_after_s:.0f}s; 0 of {r.total} requests failed; all answers v2; "
            f"≤ {obs.max_pods} pods, ≥ {obs.min_ready} Ready")


@check("rollout.rollback", lab=LAB, points=2,
       hint="set progressDeadlineSeconds (20 here) so a stuck rollout is reported; readiness keeps the broken pods out; then kubectl rollout undo",
       doc=f"{K8S}/concepts/workloads/controllers/deployment/#rolling-back-a-deployment")
def rollback(ctx: ClusterLab) -> str:
    """a broken v3 stalls with ProgressDeadlineExceeded, takes no traffic, and `rollout undo` restores v2"""
    m = sc.deployment_manifest(ctx)
    deadline = (m.obj.get("spec") or {}).get("progressDeadlineSeconds", 600)
    if deadline > 60:
        raise CheckFailed(f"{m.where(('spec',))}: progressDeadlineSeconds is {deadline}: set it to ≤ 60 "
                          "so a stuck rollout is reported in grading time")
    if "rollout_v2" not in ctx.observations:
        ctx.observations["rollout_v2"] = rs.rollout(ctx, IMAGE_V2)
    obs = rs.rollout(ctx, IMAGE_V3_BROKEN, timeout=deadline + 40, expect_stall=True, undo=True)
    if obs.stalled_after_s is None:
        raise CheckFailed(f"the broken rollout was never marked ProgressDeadlineExceeded within {deadline + 40}s")
    if obs.undo_after_s is None:
        raise CheckFailed("after `rollout undo` the Deployment did not complete again")
    r = obs.load
    if r is None or r.failed:
        detail = r.failures() if r else "no traffic"
        raise CheckFailed(f"{r.failed if r else '?'} of {r.total if r else '?'} requests failed while v3 was "
                          f"stuck or during the undo ({detail})")
    if set(obs.versions) != {"v2"}:
        raise CheckFailed(f"after the undo the Service answered with versions {obs.versions}, want only v2")
    return (f"v3 stalled after {obs.stalled_after_s:.0f}s (ProgressDeadlineExceeded); undo back to v2 in "
            f"{obs.undo_after_s:.0f}s; 0 of {r.total} requests failed")
