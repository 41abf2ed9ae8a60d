"""Canary scenarios for Lab 04: the traffic split measured through the
Gateway, and a progressive rollout (10 -> 25 -> 50 -> 100 %) with an automated
analysis at each step, in the Flagger / Argo Rollouts style: promote while the
canary's error rate and p99 latency stay close to stable's, roll back to 0 %
as soon as they do not.

Which backend answered is read from ``model_version`` in the JSON body
(stable serves v1, the canary v2), so the same code works on every backend.
"""
from __future__ import annotations

import io
import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from ..labs.cluster_lab import ClusterLab
from ..errors import ScenarioFailed

STEPS = (10, 25, 50, 100)
SIGMAS = 4.5                       # binomial tolerance: a false alarm about 1 in 150,000 runs


def tiny_jpeg() -> bytes:
    from PIL import Image

    img = Image.new("RGB", (96, 96), (180, 120, 60))
    buf = io.BytesIO()
    img.save(buf, format="JPEG")
    return buf.getvalue()


@dataclass
class Route:
    kind: str                      # HTTPRoute or VirtualService
    name: str
    gateway: str
    backends: list[tuple[str, int]]   # (service, weight) of the first rule

    def share(self, service: str) -> float:
        total = sum(w for _, w in self.backends)
        return (dict(self.backends).get(service, 0) / total) if total else 0.0


def route(ctx: ClusterLab) -> Route:
    hr = ctx.objects("HTTPRoute")
    vs = ctx.objects("VirtualService")
    if hr:
        m = hr[0]
        spec = m.obj.get("spec") or {}
        refs = ((spec.get("rules") or [{}])[0].get("backendRefs")) or []
        gw = ((spec.get("parentRefs") or [{}])[0]).get("name", "")
        return Route("HTTPRoute", m.name, gw, [(r.get("name", ""), r.get("weight", 1)) for r in refs])
    if vs:
        m = vs[0]
        spec = m.obj.get("spec") or {}
        dests = ((spec.get("http") or [{}])[0].get("route")) or []
        gw = (spec.get("gateways") or [""])[0]
        backends = [((d.get("destination") or {}).get("host", "").split(".")[0],
                     d.get("weight", 100 if len(dests) == 1 else 0)) for d in dests]
        return Route("VirtualService", m.name, gw, backends)
    raise ScenarioFailed("no HTTPRoute (or Istio VirtualService) in manifests/")


def set_weights(ctx: ClusterLab, r: Route, weights: dict[str, int]) -> None:
    live = ctx.cluster.get(r.kind, r.name)
    spec = live["spec"]
    if r.kind == "HTTPRoute":
        for ref in spec["rules"][0]["backendRefs"]:
            if ref.get("name") in weights:
                ref["weight"] = weights[ref["name"]]
        ctx.cluster.patch(r.kind, r.name, {"spec": {"rules": spec["rules"]}})
    else:
        for d in spec["http"][0]["route"]:
            host = (d.get("destination") or {}).get("host", "").split(".")[0]
            if host in weights:
                d["weight"] = weights[host]
        ctx.cluster.patch(r.kind, r.name, {"spec": {"http": spec["http"]}})


def gateway_url(ctx: ClusterLab, r: Route) -> str:
    return ctx.cluster.gateway_url(r.gateway)


@dataclass
class Sample:
    counts: dict[str, int] = field(default_factory=dict)      # model_version -> answers
    errors: dict[str, int] = field(default_factory=dict)      # model_version (or "?") -> 5xx/failures
    latencies: dict[str, list[float]] = field(default_factory=dict)
    total: int = 0

    def share(self, version: str) -> float:
        return self.counts.get(version, 0) / self.total if self.total else 0.0

    def error_rate(self, version: str) -> float:
        n = self.counts.get(version, 0)
        return self.errors.get(version, 0) / n if n else 0.0

    def p99(self, version: str) -> float | None:
        lat = sorted(self.latencies.get(version, []))
        return lat[min(len(lat) - 1, int(0.99 * len(lat)))] if lat else None


def sample(url: str, n: int, *, predict: bool = False, concurrency: int = 8) -> Sample:
    """``n`` requests through the Gateway (GET /readyz, or POST /predict with a
    small JPEG), each attributed by the model_version in its answer."""
    body = tiny_jpeg() if predict else None
    out = Sample()

    def one(session: requests.Session):
        t0 = time.perf_counter()
        try:
            if predict:
                r = session.post(url + "/predict", data=body, headers={"Content-Type": "image/jpeg"}, timeout=10)
            else:
                r = session.get(url + "/readyz", timeout=5)
            dt = time.perf_counter() - t0
            try:
                version = r.json().get("model_version", "?")
            except ValueError:
                version = "?"
            return version, r.status_code, dt
        except requests.RequestException:
            return "?", 0, time.perf_counter() - t0

    per = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]

    def worker(k: int):
        with requests.Session() as s:
            return [one(s) for _ in range(k)]

    with ThreadPoolExecutor(concurrency) as pool:
        for results in pool.map(worker, per):
            for version, code, dt in results:
                out.total += 1
                out.counts[version] = out.counts.get(version, 0) + 1
                out.latencies.setdefault(version, []).append(dt)
                if code == 0 or code >= 500:
                    out.errors[version] = out.errors.get(version, 0) + 1
    return out


def within(observed: int, n: int, p: float, sigmas: float = SIGMAS) -> tuple[bool, float]:
    """Is ``observed`` of ``n`` within ``sigmas`` binomial standard deviations
    of n*p? Returns (ok, tolerance in percentage points)."""
    sd = math.sqrt(max(n * p * (1 - p), 1e-9))
    tol = sigmas * sd
    return abs(observed - n * p) <= tol + 1e-9, 100 * tol / n


@dataclass
class Step:
    weight: int
    observed_pct: float
    within_tolerance: bool
    canary_error_rate: float
    canary_p99_ms: float | None
    stable_p99_ms: float | None
    healthy: bool


@dataclass
class Progressive:
    steps: list[Step]
    promoted: bool
    rolled_back_at: int | None         # the weight at which the analysis failed
    rollback_s: float | None           # from the failing step's start to 0 % canary
    errors: int = 0
    total: int = 0


# The analysis gate, as a Flagger Canary's metric thresholds would set it.
MAX_ERROR_RATE = 0.01        # 5xx (and failed connections) among the canary's answers
# canary p99 <= max(5 x stable p99, 2.5 s): the canary is one pod of a model
# twice as heavy, on CPU here; the gate is for broken releases, not for tuning.
P99_FACTOR, P99_FLOOR_S = 5.0, 2.5


def analyse(s: Sample, canary: str, stable: str) -> tuple[bool, float, float | None, float | None]:
    err = s.error_rate(canary) + (s.errors.get("?", 0) / s.total if s.total else 0)
    cp99, sp99 = s.p99(canary), s.p99(stable)
    slow = cp99 is not None and sp99 is not None and cp99 > max(P99_FACTOR * sp99, P99_FLOOR_S)
    return err <= MAX_ERROR_RATE and not slow, err, cp99, sp99


def progressive(ctx: ClusterLab, r: Route, stable_svc: str, canary_svc: str, *,
                per_step: int = 200, split_n: int = 600) -> Progressive:
    url = gateway_url(ctx, r)
    steps, total, errors = [], 0, 0
    for w in STEPS:
        started = time.monotonic()
        set_weights(ctx, r, {stable_svc: 100 - w, canary_svc: w})
        time.sleep(getattr(ctx.cluster, "propagation_delay", 1.0) + 1.0)
        split = sample(url, split_n)
        ok_split, _ = within(split.counts.get("v2", 0), split.total, w / 100)
        s = sample(url, per_step, predict=True, concurrency=4)
        total += s.total
        errors += sum(s.errors.values())
        healthy, err, cp99, sp99 = analyse(s, "v2", "v1")
        steps.append(Step(w, 100 * split.share("v2"), ok_split, err,
                          cp99 * 1000 if cp99 else None, sp99 * 1000 if sp99 else None, healthy))
        if not healthy:
            set_weights(ctx, r, {stable_svc: 100, canary_svc: 0})
            return Progressive(steps, False, w, time.monotonic() - started, errors, total)
    return Progressive(steps, True, None, None, errors, total)
