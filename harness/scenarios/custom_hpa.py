"""Lab 05's autoscaling contrast: the same I/O-bound load against Lab 03's CPU HPA, then
against the learner's HPA on requests in flight.

Every request waits ``DOWNSTREAM_LATENCY_MS`` without using CPU, and the load (``CONCURRENCY``
clients) is several times what one pod serves at once, so requests queue in the pods.

1. **CPU phase.** The chart's HPA is set aside and Lab 03's (cpu ``averageUtilization: 50``,
   same target and bounds) takes its place for ``CPU_PHASE_S`` of load: CPU stays under its
   target, the replicas stay at the minimum. Its hey run gives the p99 *before*.
2. **Custom phase.** The chart's HPA comes back; the same load runs until the replicas stop
   growing (or ``SCALE_UP_MAX_S``). Once the new pods are Ready, a fresh hey run of the same
   shape gives the p99 *after*.
3. **Scale-down.** The load stops; the replicas are watched back to the minimum, within the
   HPA's scale-down stabilization window plus a few syncs.

Replicas and the pods' summed in-flight gauge (``custom.metrics.k8s.io``) are sampled every
second for the plot; load start and stop are marked.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..cluster.base import ApiError
from ..load import LoadResult, start_load
from ..manifests import Manifest
from .common import PREDICT_BODY
from .release import Release, install

METRIC = "inference_requests_in_flight"
CONCURRENCY = 32
CPU_PHASE_S = 30.0
CPU_EXTRA_S = 20.0
SCALE_UP_MAX_S = 75.0
MEASURE_S = 12.0
CPU_TARGET = 50                 # Lab 03's HPA: averageUtilization 50
BASELINE = "lab03-cpu-baseline"
MAX_WATCHED_WINDOW_S = 60       # a longer scale-down window is judged from the spec, not watched


@dataclass
class Phase:
    name: str                                   # "cpu" or "custom"
    load: LoadResult | None = None              # the hey run at the minimum (cpu) / at the peak (custom)
    peak: int = 0
    start_s: float = 0.0                        # load start and stop, on the contrast's clock
    stop_s: float = 0.0
    condition: str = ""                         # a False ScalingActive/AbleToScale condition, if any
    current: str = ""                           # the HPA's view of its metric at the end of the phase
    first_scale_up_s: float | None = None


@dataclass
class Contrast:
    min_replicas: int
    max_replicas: int
    capacity: int                               # requests one pod serves at once
    sync_period_s: float
    cpu: Phase
    custom: Phase
    series: list[tuple[float, str, int, float | None]] = field(default_factory=list)  # t, phase, replicas, in flight
    scale_down_window_s: int = 300
    back_to_min_s: float | None = None          # after the load stopped
    watched_down_s: float = 0.0
    below_min: bool = False
    above_max: bool = False
    error: str = ""


def _condition(hpa: dict) -> str:
    for c in (hpa.get("status") or {}).get("conditions") or []:
        if c.get("status") == "False" and c.get("type") in ("ScalingActive", "AbleToScale"):
            return f"{c.get('type')}=False {c.get('reason')}: {c.get('message')}"
    return ""


def _current(hpa: dict) -> str:
    parts = []
    for m in (hpa.get("status") or {}).get("currentMetrics") or []:
        if m.get("type") == "Resource":
            cur = (m.get("resource") or {}).get("current") or {}
            parts.append(f"cpu {cur.get('averageUtilization', '?')}% of request")
        elif m.get("type") == "Pods":
            cur = (m.get("pods") or {}).get("current") or {}
            parts.append(f"{(m['pods'].get('metric') or {}).get('name')} {cur.get('averageValue', '?')} per pod")
    return ", ".join(parts)


def _scale_down_window(hpa: Manifest) -> int:
    sd = (((hpa.obj.get("spec") or {}).get("behavior") or {}).get("scaleDown") or {})
    return int(sd.get("stabilizationWindowSeconds", 300))


def _cpu_hpa(hpa: Manifest) -> dict:
    spec = hpa.obj.get("spec") or {}
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": BASELINE, "labels": {"app.kubernetes.io/managed-by": "mlops-labs-harness"}},
            "spec": {"scaleTargetRef": spec.get("scaleTargetRef"),
                     "minReplicas": spec.get("minReplicas", 1), "maxReplicas": spec.get("maxReplicas", 1),
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": CPU_TARGET}}}]}}


# the phases whose replicas the chart's HPA decides (hpa.scale-down judges its bounds there)
BOUNDED_PHASES = ("custom", "after")


class _Sampler:
    def __init__(self, ctx, rel: Release, obs: Contrast):
        self.ctx, self.rel, self.obs, self.t0 = ctx, rel, obs, time.monotonic()
        self.selector = f"color={rel.active}" if rel.active else None

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    def sample(self, phase: str) -> int:
        d = self.ctx.cluster.get("Deployment", self.rel.active_deployment)
        r = int(d["spec"].get("replicas", 1))
        try:
            flight = round(sum(self.ctx.cluster.pods_custom_metric(METRIC, self.selector).values()), 2)
        except (ApiError, AttributeError):
            flight = None
        self.obs.series.append((self.now(), phase, r, flight))
        if phase in BOUNDED_PHASES:     # the chart's HPA at work; before Lab 03's first sync the Deployment has 1
            self.obs.below_min |= r < self.obs.min_replicas
            self.obs.above_max |= r > self.obs.max_replicas
        return r


def _load(rel: Release, seconds: float):
    return start_load(rel.url + "/predict", duration_s=seconds, concurrency=CONCURRENCY, method="POST",
                      body=PREDICT_BODY, headers=rel.headers, timeout_s=10, disable_keepalive=True)


def _ready_replicas(ctx, name: str) -> tuple[int, int]:
    d = ctx.cluster.get("Deployment", name)
    return int(d["spec"].get("replicas", 1)), int((d.get("status") or {}).get("availableReplicas", 0))


def contrast(ctx) -> Contrast:
    if "contrast" in ctx.observations:
        return ctx.observations["contrast"]
    rel = install(ctx)
    hpa = rel.hpa
    spec = (hpa.obj.get("spec") or {}) if hpa else {}
    obs = Contrast(spec.get("minReplicas", 1), spec.get("maxReplicas", 1), rel.capacity,
                   float(getattr(ctx.cluster, "hpa_sync_period", 15.0)), Phase("cpu"), Phase("custom"),
                   scale_down_window_s=_scale_down_window(hpa) if hpa else 300)
    ctx.observations["contrast"] = obs
    if hpa is None:
        obs.error = "prod renders no HorizontalPodAutoscaler"
        return obs
    s = _Sampler(ctx, rel, obs)
    sync = obs.sync_period_s

    # 1. Lab 03's CPU HPA in the chart's place
    ctx.cluster.delete("HorizontalPodAutoscaler", hpa.name)
    ctx.cluster.apply([_cpu_hpa(hpa)])
    ctx.log(f"CPU HPA (Lab 03, cpu {CPU_TARGET}%): {CONCURRENCY} clients for {CPU_PHASE_S:.0f} s, each request "
            f"waiting on I/O; one pod serves {obs.capacity} at once")
    for _ in range(int(sync) + 2):         # its first sync brings the Deployment to minReplicas
        if s.sample("cpu") >= obs.min_replicas:
            break
        time.sleep(1)
    obs.cpu.start_s = s.now()
    # CPU_PHASE_S of load, longer (up to CPU_EXTRA_S) until the CPU HPA has read its metric:
    # the contrast needs an HPA that saw the CPU, not one still waiting for metrics-server
    handle = _load(rel, CPU_PHASE_S + CPU_EXTRA_S)
    start = time.monotonic()
    while not handle.done():
        obs.cpu.peak = max(obs.cpu.peak, s.sample("cpu"))
        if time.monotonic() - start >= CPU_PHASE_S and _current(
                ctx.cluster.get("HorizontalPodAutoscaler", BASELINE)):
            break
        time.sleep(1)
    obs.cpu.load = handle.stop()
    obs.cpu.stop_s = s.now()
    live = ctx.cluster.get("HorizontalPodAutoscaler", BASELINE)
    obs.cpu.condition, obs.cpu.current = _condition(live), _current(live)
    ctx.cluster.delete("HorizontalPodAutoscaler", BASELINE)

    # 2. the chart's HPA under the same load
    ctx.cluster.apply([hpa.obj])
    ctx.log(f"the chart's HPA ({hpa.name}): the same load until the replicas stop growing "
            f"(at most {SCALE_UP_MAX_S:.0f} s)")
    obs.custom.start_s = s.now()
    handle = _load(rel, SCALE_UP_MAX_S + 30)
    start = time.monotonic()
    last_change = start
    peak = s.sample("custom")
    while time.monotonic() - start < SCALE_UP_MAX_S:
        r = s.sample("custom")
        if r > peak:
            peak, last_change = r, time.monotonic()
            if obs.custom.first_scale_up_s is None:
                obs.custom.first_scale_up_s = round(time.monotonic() - start, 1)
        if peak >= obs.max_replicas or (peak > obs.min_replicas and time.monotonic() - last_change > 3 * sync):
            break
        if obs.custom.first_scale_up_s is None and time.monotonic() - start > 6 * sync:
            cond = _condition(ctx.cluster.get("HorizontalPodAutoscaler", hpa.name))
            if cond.startswith("ScalingActive=False") or time.monotonic() - start > 9 * sync:
                break                       # it cannot compute its metric, or does not act on it
        time.sleep(1)
    obs.custom.peak = peak
    # the new pods Ready, then the p99 at the peak with a run of the same shape
    deadline = time.monotonic() + ctx.timeouts.pod_start
    while time.monotonic() < deadline:
        want, ready = _ready_replicas(ctx, rel.active_deployment)
        s.sample("custom")
        if ready >= want:
            break
        time.sleep(1)
    handle.stop()
    if peak > obs.min_replicas:
        measure = _load(rel, MEASURE_S)
        while not measure.done():
            s.sample("custom")
            time.sleep(1)
        obs.custom.load = measure.result()
    obs.custom.stop_s = s.now()
    live = ctx.cluster.get("HorizontalPodAutoscaler", hpa.name)
    obs.custom.condition, obs.custom.current = _condition(live), _current(live)

    # 3. scale-down after the load
    if peak > obs.min_replicas and obs.scale_down_window_s <= MAX_WATCHED_WINDOW_S:
        limit = obs.scale_down_window_s + 3 * sync + 10
        ctx.log(f"load stopped: watching the replicas go back to {obs.min_replicas} "
                f"(scale-down window {obs.scale_down_window_s} s; at most {limit:.0f} s)")
        stop_at = time.monotonic()
        while time.monotonic() - stop_at < limit:
            if s.sample("after") <= obs.min_replicas:
                obs.back_to_min_s = round(time.monotonic() - stop_at, 1)
                break
            time.sleep(1)
        obs.watched_down_s = round(time.monotonic() - stop_at, 1)
    ctx.observations.setdefault("plots", []).append(("replicas", plot_spec(obs)))
    return obs


def plot_spec(obs: Contrast) -> dict:
    """What :mod:`harness.plots` draws: replicas and in-flight requests over time per HPA."""
    def series(phase: str, column: int):
        return [(t, v[column - 2]) for t, p, *v in obs.series if p == phase and v[column - 2] is not None]

    return {"title": f"Lab 05: the same I/O-bound load ({CONCURRENCY} clients), CPU HPA vs in-flight HPA",
            "xlabel": "seconds",
            "panels": [
                {"ylabel": "replicas", "series": {"CPU HPA (Lab 03)": series("cpu", 2),
                                                  "in-flight HPA (chart)": series("custom", 2),
                                                  "after the load": series("after", 2)},
                 "hlines": {"minReplicas": obs.min_replicas, "maxReplicas": obs.max_replicas}},
                {"ylabel": "requests in flight (all pods)", "series": {"CPU HPA (Lab 03)": series("cpu", 3),
                                                                       "in-flight HPA (chart)": series("custom", 3),
                                                                       "after the load": series("after", 3)}}],
            "marks": {"load start (CPU HPA)": obs.cpu.start_s, "load stop (CPU HPA)": obs.cpu.stop_s,
                      "load start (in-flight HPA)": obs.custom.start_s,
                      "load stop (in-flight HPA)": obs.custom.stop_s}}
