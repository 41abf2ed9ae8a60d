"""Rollout scenarios for Lab 03, measured under continuous load through the
Service: a v1 -> v2 rolling update, and a broken v3 that must stall and be
rolled back.

While a rollout runs, a sampler thread looks at the pods every 0.25 s and keeps
the extremes (most pods present, fewest Ready), which the checks compare with
replicas ± maxSurge / maxUnavailable.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import requests

from ..cluster.objects import containers, is_ready
from ..labs.cluster_lab import ClusterLab
from ..errors import ScenarioFailed
from ..load import LoadResult
from .common import _load, deployment, selector, traffic


def resolve_int_or_percent(value, replicas: int, round_up: bool) -> int:
    """intstr.GetScaledValueFromIntOrPercent: percent rounds up for maxSurge and
    down for maxUnavailable."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if text.endswith("%"):
        scaled = int(text[:-1]) * replicas / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return int(text)


def surge_unavailable(dep: dict, replicas: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) as the Deployment controller resolves them,
    fencepost included (both 0 -> unavailable 1)."""
    strategy = (dep.get("spec") or {}).get("strategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0, replicas
    ru = strategy.get("rollingUpdate") or {}
    surge = resolve_int_or_percent(ru.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve_int_or_percent(ru.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, min(unavailable, replicas)


@dataclass
class Sampler:
    ctx: ClusterLab
    sel: dict
    max_pods: int = 0
    min_ready: int = 10 ** 6
    samples: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> "Sampler":
        self._thread = threading.Thread(target=self._run, name="rollout-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pods = self.ctx.pods(self.sel)
                self.max_pods = max(self.max_pods, len(pods))
                self.min_ready = min(self.min_ready, sum(is_ready(p) for p in pods))
                self.samples += 1
            except Exception:  # noqa: BLE001 - a failed look is just a missed sample
                pass
            self._stop.wait(0.25)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)


def condition(dep: dict, kind: str) -> dict:
    return next((c for c in (dep.get("status") or {}).get("conditions") or [] if c.get("type") == kind), {})


def complete(dep: dict) -> bool:
    """DeploymentComplete (deployment_util.go)."""
    st, want = dep.get("status") or {}, (dep.get("spec") or {}).get("replicas", 1)
    return (st.get("updatedReplicas") == want and st.get("replicas") == want
            and st.get("availableReplicas") == want
            and st.get("observedGeneration", 0) >= dep["metadata"].get("generation", 0))


def deadline_exceeded(dep: dict) -> bool:
    c = condition(dep, "Progressing")
    return c.get("status") == "False" and c.get("reason") == "ProgressDeadlineExceeded"


@dataclass
class Rollout:
    image: str
    replicas: int
    surge: int
    unavailable: int
    load: LoadResult | None
    completed_after_s: float | None
    stalled_after_s: float | None
    max_pods: int
    min_ready: int
    versions: dict[str, int]
    undo_after_s: float | None = None


def versions_seen(ctx: ClusterLab, n: int = 20) -> dict[str, int]:
    t = traffic(ctx)
    seen: dict[str, int] = {}
    for _ in range(n):
        try:
            r = requests.post(t.url + "/predict", json={"text": "I love it"}, headers={**t.headers, "Connection": "close"},
                              timeout=5)
            v = r.json().get("model_version", "?") if r.status_code == 200 else f"HTTP {r.status_code}"
        except (requests.RequestException, ValueError) as exc:
            v = type(exc).__name__
        seen[v] = seen.get(v, 0) + 1
    return seen


def set_image(ctx: ClusterLab, dep: dict, image: str) -> None:
    name = containers(dep)[0]["name"]
    ctx.cluster.patch("Deployment", dep["metadata"]["name"],
                      {"spec": {"template": {"spec": {"containers": [{"name": name, "image": image}]}}}},
                      patch_type="strategic")


def rollout(ctx: ClusterLab, image: str, *, timeout: float = 120, expect_stall: bool = False,
            undo: bool = False, settle_s: float = 3) -> Rollout:
    """Roll the Deployment to ``image`` under load. With ``expect_stall``, wait
    for ProgressDeadlineExceeded; with ``undo``, then ``rollout undo`` and wait
    for that rollout to complete. The load runs through all of it."""
    dep = deployment(ctx)
    sel = selector(dep)
    replicas = dep["spec"].get("replicas", 1)
    surge, unavailable = surge_unavailable(dep, replicas)
    try:
        handle = _load(ctx, timeout * 2 + 60)
    except ScenarioFailed:
        handle = None
    sampler = Sampler(ctx, sel).start()
    start = time.monotonic()
    completed = stalled = undo_after = None
    try:
        time.sleep(1)
        set_image(ctx, dep, image)
        while time.monotonic() - start < timeout:
            d = ctx.cluster.get("Deployment", dep["metadata"]["name"])
            if expect_stall and deadline_exceeded(d):
                stalled = time.monotonic() - start
                break
            if not expect_stall and complete(d) and d["metadata"].get("generation", 0) > dep["metadata"].get("generation", 0):
                completed = time.monotonic() - start
                break
            time.sleep(0.5)
        if undo and stalled is not None:
            undo_start = time.monotonic()
            ctx.cluster.rollout_undo(dep["metadata"]["name"])
            while time.monotonic() - undo_start < timeout:
                d = ctx.cluster.get("Deployment", dep["metadata"]["name"])
                if complete(d) and not deadline_exceeded(d):
                    undo_after = time.monotonic() - undo_start
                    break
                time.sleep(0.5)
        time.sleep(settle_s)
    finally:
        sampler.stop()
        result = handle.stop() if handle else None
    return Rollout(image, replicas, surge, unavailable, result, completed, stalled, sampler.max_pods,
                   sampler.min_ready, versions_seen(ctx) if handle else {}, undo_after)
