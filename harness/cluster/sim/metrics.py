"""A metrics-server for the sim: container CPU and memory as ``metrics.k8s.io/v1beta1`` PodMetrics.

Why: ``kubectl top`` and the HorizontalPodAutoscaler read the resource metrics
API, and Lab 03 grades autoscaling on it. Upstream, metrics-server scrapes
every kubelet every ``--metric-resolution`` (the official manifests: 15 s),
keeps the last two samples of each container's *cumulative* CPU time and
serves the rate between them (``pkg/storage/types.go resourceUsage``):

* cpu = (cpu_ns(last) - cpu_ns(prev)) / (t(last) - t(prev)), in nanocores;
* memory = the last working set (usage minus inactive file pages);
* ``timestamp`` = the last sample's time, ``window`` = the time between the two.

A container therefore has a metric only after two scrapes; a restarted
container (new instance) starts over; a pod is served only when every running
container has a rate; pods that are gone disappear at the next scrape.

Where the numbers come from: ``runtime.stats(cid)`` returns a
:class:`ContainerStats`. :class:`~.runtime.FakeRuntime` integrates a scripted
millicore rate on the fake clock (exact windows, exact rates);
:class:`~.docker_runtime.DockerRuntime` reads the container's cgroup files
(``cpuacct.usage`` / ``cpu.stat``; ~0.03 ms each) and falls back to the Docker
stats API (``one_shot``; ~1 s each on Docker 20.10) where the cgroup is not
visible. With real containers a scrape runs on its own worker thread, so a
slow one never blocks the controller loop (a scrape still running when the next
is due is skipped, as metrics-server skips an overlapping tick).

Not modelled: node metrics, the kubelet's cAdvisor housekeeping lag (samples are
taken at the scrape instant), metrics-server's minimum resolution of 10 s (any
positive resolution is accepted so Docker tests can use 1-2 s).
"""
from __future__ import annotations

import copy
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from harness.cluster.base import Obj

from .clock import rfc3339

_DEC_SUFFIX = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BIN_SUFFIX = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


@dataclass
class ContainerStats:
    """One sample: cumulative CPU time (ns) and memory working set (bytes) at ``timestamp``."""

    cpu_ns: int
    memory_bytes: int
    timestamp: float | None = None     # None: the scraper uses its clock's "now"


def decimal_quantity(value: int, exponent: int) -> str:
    """``value * 10**exponent`` in ``resource.Quantity``'s canonical DecimalSI form
    (``250000000n`` -> ``250m``, ``1500m`` stays ``1500m``, ``2000m`` -> ``2``)."""
    value = int(value)
    if value == 0:
        return "0"
    while value % 1000 == 0 and exponent + 3 in _DEC_SUFFIX:
        value //= 1000
        exponent += 3
    while exponent not in _DEC_SUFFIX:     # not reached for the exponents used here
        value *= 10
        exponent -= 1
    return f"{value}{_DEC_SUFFIX[exponent]}"


def binary_quantity(n: int) -> str:
    """Bytes in canonical BinarySI form (``4096`` -> ``4Ki``, ``1000`` -> ``1000``)."""
    n = int(n)
    if -1024 < n < 1024:
        return str(n)
    i = 0
    while n % 1024 == 0 and i < len(_BIN_SUFFIX) - 1:
        n //= 1024
        i += 1
    return f"{n}{_BIN_SUFFIX[i]}"


def go_duration(seconds: float) -> str:
    """``time.Duration.String()`` for the ``window`` field (``15s``, ``2.0013s``, ``1m0s``)."""
    ns = int(round(seconds * 1e9))
    if ns == 0:
        return "0s"
    m, rest = divmod(ns, 60 * 10**9)
    s = f"{rest // 10**9}" + (f".{rest % 10**9:09d}".rstrip("0") if rest % 10**9 else "")
    if m >= 60:
        h, m = divmod(m, 60)
        return f"{h}h{m}m{s}s"
    return f"{m}m{s}s" if m else f"{s}s"


@dataclass
class _Target:
    namespace: str
    name: str
    uid: str
    labels: dict[str, str]
    containers: list[tuple[str, str]]      # (container name, runtime id), running containers only


@dataclass
class _Point:
    cid: str
    cpu_ns: int
    memory: int
    t: float


class MetricsScraper:
    """metrics-server: see the module docstring. ``sync`` is a controller of the sim's loop."""

    def __init__(self, store, kubelet, runtime, clock, timers, *, resolution: float = 15.0,
                 threaded: bool = False):
        if resolution <= 0:
            raise ValueError("metrics_resolution must be positive")
        self.store, self.kubelet, self.runtime, self.clock, self.timers = store, kubelet, runtime, clock, timers
        self.resolution = float(resolution)
        self._lock = threading.Lock()
        self._points: dict[tuple[str, str], list[_Point]] = {}   # (pod uid, container) -> last two samples
        self._pods: dict[tuple[str, str], Obj] = {}
        self._next: float | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sim-metrics") if threaded else None
        # Docker's stats API takes ~1 s per call: sample containers in parallel (cgroup reads don't care)
        self._samplers = ThreadPoolExecutor(8, thread_name_prefix="sim-metrics-sample") if threaded else None
        self._pending: Future | None = None
        self.scrapes = 0
        self.skipped = 0
        self.cpu_seconds = 0.0      # thread CPU time spent scraping (its cost on a 2-core machine)
        self.wall_seconds = 0.0
        self.on_scrape: Callable[[], None] | None = None
        self._fast = False

    # ---- controller -----------------------------------------------------------------
    def sync(self) -> None:
        now = self.clock.now()
        if self._next is None:
            self._next = now
        if now + 1e-9 < self._next:
            self.timers.at(self._next)
            return
        while self._next <= now + 1e-9:
            self._next += self.resolution
        self.timers.at(self._next)
        targets = self._targets()
        if self._pool is None:
            self._scrape(targets)
        elif self._pending is not None and not self._pending.done():
            self.skipped += 1
        else:
            self._pending = self._pool.submit(self._scrape, targets)

    def _targets(self) -> list[_Target]:
        out = []
        for pod in self.store.list("Pod", record=False):
            w = self.kubelet.worker(pod["metadata"]["uid"])
            if w is None:
                continue
            cs = [(cw.name, cw.cid) for cw in w.containers if cw.running and cw.cid]
            if cs:
                m = pod["metadata"]
                out.append(_Target(m["namespace"], m["name"], m["uid"], dict(m.get("labels") or {}), cs))
        return out

    def _sample(self, cid: str) -> ContainerStats | None:
        fn = getattr(self.runtime, "stats", None)
        if fn is None:
            return None
        try:
            return fn(cid)
        except Exception:  # noqa: BLE001 - a container that vanished mid-scrape has no sample
            return None

    def _scrape(self, targets: list[_Target]) -> None:
        c0, w0 = time.thread_time(), time.perf_counter()
        cids = [cid for tgt in targets for _, cid in tgt.containers]
        if self._samplers is not None and len(cids) > 1 and not self._fast:
            got = dict(zip(cids, self._samplers.map(self._sample, cids)))
        else:
            got = {cid: self._sample(cid) for cid in cids}
        # cgroup reads are ~0.03 ms: once a scrape was quick, skip the thread hand-off
        self._fast = time.perf_counter() - w0 < 0.05 * max(1, len(cids))
        sampled: list[tuple[_Target, list[tuple[str, _Point]]]] = []
        for tgt in targets:
            pts = []
            for name, cid in tgt.containers:
                st = got.get(cid)
                if st is not None:
                    t = st.timestamp if st.timestamp is not None else self.clock.now()
                    pts.append((name, _Point(cid, int(st.cpu_ns), int(st.memory_bytes), t)))
            sampled.append((tgt, pts))
        with self._lock:
            points: dict[tuple[str, str], list[_Point]] = {}
            pods: dict[tuple[str, str], Obj] = {}
            for tgt, pts in sampled:
                containers, earliest = [], None
                complete = len(pts) == len(tgt.containers)
                for name, p in pts:
                    old = self._points.get((tgt.uid, name)) or []
                    prev = old[-1] if old and old[-1].cid == p.cid and old[-1].t < p.t else None
                    points[(tgt.uid, name)] = [prev, p] if prev else [p]
                    if prev is None or p.cpu_ns < prev.cpu_ns:
                        complete = False      # first sample of this instance, or a counter reset
                        continue
                    window = p.t - prev.t
                    nanocores = int((p.cpu_ns - prev.cpu_ns) / window)
                    containers.append({"name": name, "usage": {"cpu": decimal_quantity(nanocores, -9),
                                                               "memory": binary_quantity(max(p.memory, 0))}})
                    if earliest is None or p.t < earliest[0]:
                        earliest = (p.t, window)
                if complete and containers:
                    pods[(tgt.namespace, tgt.name)] = {
                        "kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                        "metadata": {"name": tgt.name, "namespace": tgt.namespace, "labels": tgt.labels},
                        "timestamp": rfc3339(earliest[0]), "window": go_duration(earliest[1]),
                        "containers": containers,
                        "_t": earliest[0], "_window": earliest[1]}
            self._points, self._pods = points, pods
            self.scrapes += 1
            self.cpu_seconds += time.thread_time() - c0
            self.wall_seconds += time.perf_counter() - w0
        if self.on_scrape is not None:
            self.on_scrape()

    # ---- the metrics.k8s.io API -----------------------------------------------------------
    def list(self, namespace: str | None = None, match: Callable[[dict[str, str]], bool] | None = None, *,
             internal: bool = False) -> list[Obj]:
        """PodMetrics in ``namespace`` (all when None) whose pod labels ``match``, sorted by name.

        ``internal=True`` keeps the exact float ``_t``/``_window`` for the HPA (the API
        serialises the timestamp with whole seconds; the HPA sees that too, see ``hpa.py``)."""
        now = rfc3339(self.clock.now())
        with self._lock:
            items = [copy.deepcopy(m) for (ns, _), m in sorted(self._pods.items())
                     if (namespace is None or ns == namespace) and (match is None or match(m["metadata"]["labels"]))]
        for m in items:
            m["metadata"]["creationTimestamp"] = now   # metrics-server stamps the response time
            if not internal:
                m.pop("_t")
                m.pop("_window")
        return items

    def stats(self) -> dict[str, Any]:
        return {"resolution_s": self.resolution, "scrapes": self.scrapes, "skipped_overlapping": self.skipped,
                "cpu_seconds": round(self.cpu_seconds, 4), "wall_seconds": round(self.wall_seconds, 4)}

    def shutdown(self) -> None:
        for pool in (self._pool, self._samplers):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
