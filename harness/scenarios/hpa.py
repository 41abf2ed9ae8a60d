"""The HPA scenario for Lab 03: sustained load through the Service until the
HPA scales up (plus a little more, to see the peak), then no load until it
scales back toward minReplicas. The replica count is sampled every second.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..labs.cluster_lab import ClusterLab
from ..errors import ScenarioFailed
from ..load import LoadResult, start_load
from .common import PREDICT_BODY, deployment, traffic

# pkg/apis/autoscaling/v2/defaults.go: GenerateHPAScaleDownRules, the scale-down window
DEFAULT_SCALE_DOWN_WINDOW_S = 300


@dataclass
class HpaCycle:
    min_replicas: int
    max_replicas: int
    sync_period_s: float
    load: LoadResult | None
    load_s: float
    first_scale_up_s: float | None
    peak: int
    first_scale_down_s: float | None     # after the load stopped
    back_to_min_s: float | None          # after the load stopped
    watch_down_s: float
    series: list[tuple[float, int]] = field(default_factory=list)
    last_condition: str = ""


def _hpa_condition(hpa: dict) -> str:
    """The HPA condition that explains a stuck HPA (ScalingActive or AbleToScale
    False); ScalingLimited=False is the normal state and is not reported."""
    for c in (hpa.get("status") or {}).get("conditions") or []:
        if c.get("status") == "False" and c.get("type") in ("ScalingActive", "AbleToScale"):
            return f"{c.get('type')}=False {c.get('reason')}: {c.get('message')}"
    return ""


def hpa_cycle(ctx: ClusterLab, *, max_load_s: float = 120, extra_load_s: float = 15,
              max_down_s: float = 120, concurrency: int = 8) -> HpaCycle:
    if "hpa_cycle" in ctx.observations:
        return ctx.observations["hpa_cycle"]
    hpa_m = ctx.one("HorizontalPodAutoscaler")
    dep_name = deployment(ctx)["metadata"]["name"]
    spec = hpa_m.obj.get("spec") or {}
    lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas", 1)
    sync = float(getattr(ctx.cluster, "hpa_sync_period", 15.0))
    series: list[tuple[float, int]] = []
    if ctx.observations.get("replicas_at_apply") is not None:
        series.append((0.0, ctx.observations["replicas_at_apply"]))

    def replicas_now(t0: float, record: bool = True) -> int:
        r = ctx.cluster.get("Deployment", dep_name)["spec"].get("replicas", 1)
        if record:
            series.append((time.monotonic() - t0, r))
        return r

    # Without spec.replicas the Deployment starts at the API default (1) until
    # the HPA's first sync brings it to minReplicas: sample from there on.
    t0 = time.monotonic()
    while (replicas_now(t0, record=bool(series)) < lo and not series
           and time.monotonic() - t0 < 60):
        time.sleep(1)
    try:
        t = traffic(ctx)
    except ScenarioFailed:
        t = None
    start = time.monotonic()
    handle = None
    if t is not None:
        # A new connection per request, so new pods get their share of the load.
        handle = start_load(t.url + "/predict", duration_s=max_load_s + extra_load_s, concurrency=concurrency,
                            method="POST", body=PREDICT_BODY, headers=t.headers, timeout_s=5,
                            disable_keepalive=True)
    first_up = None
    inactive_since = None
    while time.monotonic() - start < max_load_s + (extra_load_s if first_up is not None else 0):
        r = replicas_now(t0)
        if first_up is None and r > lo:
            first_up = time.monotonic() - start
            max_load_s = first_up            # keep loading extra_load_s more, then stop
        if first_up is None:
            # An HPA that cannot compute its metric (ScalingActive=False, e.g.
            # "missing request for cpu") will not recover during the run: stop early.
            cond = _hpa_condition(ctx.cluster.get("HorizontalPodAutoscaler", hpa_m.name))
            if cond.startswith("ScalingActive=False"):
                inactive_since = inactive_since or time.monotonic()
                if time.monotonic() - inactive_since > 3 * sync:
                    break
            else:
                inactive_since = None
        time.sleep(1)
    result = handle.stop() if handle else None
    load_s = time.monotonic() - start
    peak = max((r for _, r in series), default=lo)
    # Upstream's HPA scales down to the highest recommendation of the last
    # stabilizationWindowSeconds (default 300 s), so no scale-down can come before
    # the window has passed since the load's last high recommendation. When that is
    # beyond the watch, waiting it out observes nothing: watch two syncs (the bounds
    # are still sampled) and report the short watch.
    window = ((spec.get("behavior") or {}).get("scaleDown") or {}).get(
        "stabilizationWindowSeconds", DEFAULT_SCALE_DOWN_WINDOW_S)
    if window - sync > max_down_s:
        max_down_s = min(max_down_s, 2 * sync)
    stop_at = time.monotonic()
    first_down = back = None
    prev = series[-1][1] if series else lo
    while first_up is not None and time.monotonic() - stop_at < max_down_s:
        r = replicas_now(t0)
        if first_down is None and r < prev:
            first_down = time.monotonic() - stop_at
        if r <= lo:
            back = time.monotonic() - stop_at
            break
        prev = min(prev, r)
        time.sleep(1)
    hpa = ctx.cluster.get("HorizontalPodAutoscaler", hpa_m.name)
    obs = HpaCycle(lo, hi, sync, result, load_s, first_up, peak, first_down, back,
                   time.monotonic() - stop_at, series, _hpa_condition(hpa))
    ctx.observations["hpa_cycle"] = obs
    return obs
