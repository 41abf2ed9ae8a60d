"""The container runtime interface the sim kubelet drives, and a scripted fake.

Why: the kubelet's logic (pull policy, probes, restarts, back-off,
termination) is the same whether containers are real or not. ``Runtime`` is
the small surface it needs; :class:`FakeRuntime` answers from a script on the
injected fake clock so controller tests are exact and instant, and
:class:`~.docker_runtime.DockerRuntime` runs real containers.

A :class:`ContainerSpec` never carries host paths, host namespaces or
privileges: the kubelet builds it from the pod, and the types have no field
that could express a bind mount or host networking.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, Protocol


@dataclass
class ContainerSpec:
    """What the runtime needs to start one container instance."""

    namespace: str
    pod: str
    pod_uid: str
    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    env: dict[str, str] = field(default_factory=dict)
    ports: list[int] = field(default_factory=list)          # container ports to publish on 127.0.0.1
    cpu_limit_milli: int | None = None
    cpu_request_milli: int | None = None
    memory_limit_bytes: int | None = None
    working_dir: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)    # absolute path -> content (configMap/secret volumes)
    tmpfs: list[str] = field(default_factory=list)          # emptyDir mount paths
    instance: int = 0                                       # restart count of this container


@dataclass
class RuntimeStatus:
    running: bool
    exit_code: int | None = None
    oom_killed: bool = False
    started_at: float | None = None
    finished_at: float | None = None


class StartError(Exception):
    """The runtime could not start the container (bad command, refused config)."""


class Runtime(Protocol):
    real: bool

    def image_present(self, image: str) -> bool: ...
    def start(self, spec: ContainerSpec) -> str: ...
    def status(self, cid: str) -> RuntimeStatus: ...
    def signal(self, cid: str, sig: str) -> None: ...          # "SIGTERM" | "SIGKILL"
    def remove(self, cid: str) -> None: ...
    def logs(self, cid: str, tail: int) -> str: ...
    def exec(self, cid: str, cmd: list[str], timeout: float) -> tuple[int, str]: ...
    def http_get(self, cid: str, port: int, path: str, scheme: str, headers: dict[str, str],
                 timeout: float) -> tuple[int | None, str]: ...
    def tcp_connect(self, cid: str, port: int, timeout: float) -> str | None: ...
    def address(self, cid: str, port: int) -> tuple[str, int] | None: ...
    def wakeups(self) -> list[float]: ...
    def cleanup(self) -> None: ...
    # optional: ``stats(cid) -> metrics.ContainerStats | None`` (cumulative CPU ns, memory
    # working set) for the metrics scraper; a runtime without it serves no metrics.


@dataclass
class FakeApp:
    """What a fake container does, in seconds since it started.

    ``http`` maps a path to a status code, or is ``f(path, elapsed) -> code``;
    a code of ``None`` means the request hangs (the probe times out).
    """

    ready_after: float = 0.0
    http: dict[str, int | None] | Callable[[str, float], int | None] | None = None
    exit_after: float | None = None
    exit_code: int = 0
    oom_after: float | None = None
    term_delay: float | None = 0.0        # SIGTERM -> exit; None ignores SIGTERM
    term_exit_code: int = 0
    start_error: str | None = None
    exec: Callable[[list[str], float], tuple[int, str]] | None = None
    logs: list[str] = field(default_factory=lambda: ["started"])
    ports: set[int] | None = None          # listening ports; None listens on every port
    cpu_milli: float = 0.0                 # CPU usage rate (millicores) until FakeRuntime.set_cpu changes it
    memory_bytes: int = 0                  # memory working set
    metrics: bool = True                   # False: the kubelet reports no stats for it (a "missing" pod)


@dataclass
class _FakeContainer:
    spec: ContainerSpec
    app: FakeApp
    started_at: float
    term_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    oom: bool = False
    removed: bool = False
    signals: list[tuple[float, str]] = field(default_factory=list)
    cpu_milli: float = 0.0
    cpu_ns: float = 0.0             # accumulated up to cpu_since
    cpu_since: float = 0.0
    memory_bytes: int = 0


class FakeRuntime:
    """A scripted runtime on the injected clock. Nothing runs, nothing listens."""

    real = False

    def __init__(self, clock, images: tuple[str, ...] = ("python:3.11-slim",), default: FakeApp | None = None):
        self.clock = clock
        self.images = set(images)
        self.apps: dict[str, FakeApp] = {}
        self.default = default or FakeApp()
        self.app_for: Callable[[ContainerSpec], FakeApp | None] | None = None
        self.containers: dict[str, _FakeContainer] = {}
        self._ids = itertools.count(1)

    # ---- scripting -------------------------------------------------------
    def set_app(self, image: str, app: FakeApp) -> None:
        self.images.add(image)
        self.apps[image] = app

    def started(self, pod_prefix: str = "") -> list[_FakeContainer]:
        return [c for c in self.containers.values() if c.spec.pod.startswith(pod_prefix)]

    def _live(self, pod: str, container: str | None) -> list[_FakeContainer]:
        out = [c for c in self.containers.values() if c.spec.pod == pod and not c.removed
               and (container is None or c.spec.name == container)]
        if not out:
            which = f"pod {pod!r}" + (f" container {container!r}" if container else "")
            raise KeyError(f"no running fake container for {which}")
        return out

    def set_cpu(self, pod: str, millicores: float, container: str | None = None) -> None:
        """From now on, ``pod``'s containers (or just ``container``) burn ``millicores`` of CPU."""
        now = self.clock.now()
        for c in self._live(pod, container):
            end = min(now, c.finished_at) if c.finished_at is not None else now
            c.cpu_ns += c.cpu_milli * 1e6 * max(0.0, end - c.cpu_since)
            c.cpu_milli, c.cpu_since = float(millicores), now

    def set_memory(self, pod: str, nbytes: int, container: str | None = None) -> None:
        for c in self._live(pod, container):
            c.memory_bytes = int(nbytes)

    def stats(self, cid: str):
        """Cumulative CPU (ns) and working set, as cgroups/cAdvisor report them; None once stopped."""
        from .metrics import ContainerStats
        c = self.containers[cid]
        self._settle(c)
        if c.removed or c.finished_at is not None or not c.app.metrics:
            return None
        now = self.clock.now()
        ns = c.cpu_ns + c.cpu_milli * 1e6 * (now - c.cpu_since)
        return ContainerStats(int(round(ns)), c.memory_bytes, now)

    # ---- Runtime -----------------------------------------------------------
    def image_present(self, image: str) -> bool:
        return image in self.images

    def start(self, spec: ContainerSpec) -> str:
        app = (self.app_for(spec) if self.app_for else None) or self.apps.get(spec.image) or self.default
        if app.start_error:
            raise StartError(app.start_error)
        cid = f"{next(self._ids):064x}"
        now = self.clock.now()
        self.containers[cid] = _FakeContainer(spec, app, now, cpu_milli=float(app.cpu_milli), cpu_since=now,
                                              memory_bytes=int(app.memory_bytes))
        return cid

    def _settle(self, c: _FakeContainer) -> None:
        if c.finished_at is not None:
            return
        now, a = self.clock.now(), c.app
        ends = []
        if a.exit_after is not None:
            ends.append((c.started_at + a.exit_after, a.exit_code, False))
        if a.oom_after is not None:
            ends.append((c.started_at + a.oom_after, 137, True))
        if c.term_at is not None and a.term_delay is not None:
            ends.append((c.term_at + a.term_delay, a.term_exit_code, False))
        for t, code, oom in sorted(ends):
            if t <= now:
                c.finished_at, c.exit_code, c.oom = t, code, oom
                return

    def status(self, cid: str) -> RuntimeStatus:
        c = self.containers[cid]
        self._settle(c)
        return RuntimeStatus(c.finished_at is None, c.exit_code, c.oom, c.started_at, c.finished_at)

    def signal(self, cid: str, sig: str) -> None:
        c = self.containers[cid]
        self._settle(c)
        c.signals.append((self.clock.now(), sig))
        if c.finished_at is not None:
            return
        if sig == "SIGKILL":
            c.finished_at, c.exit_code = self.clock.now(), 137
        elif c.term_at is None:
            c.term_at = self.clock.now()
            self._settle(c)

    def remove(self, cid: str) -> None:
        c = self.containers.get(cid)
        if c is not None:
            c.removed = True
            if c.finished_at is None:
                c.finished_at, c.exit_code = self.clock.now(), 137

    def logs(self, cid: str, tail: int) -> str:
        lines = self.containers[cid].app.logs
        return "".join(f"{x}\n" for x in lines[-tail:] if tail)

    def _elapsed(self, c: _FakeContainer) -> float:
        return self.clock.now() - c.started_at

    def _listening(self, c: _FakeContainer, port: int) -> bool:
        self._settle(c)
        return c.finished_at is None and self._elapsed(c) >= c.app.ready_after and (
            c.app.ports is None or port in c.app.ports)

    def exec(self, cid: str, cmd: list[str], timeout: float) -> tuple[int, str]:
        c = self.containers[cid]
        if c.app.exec is None:
            return 0, ""
        return c.app.exec(cmd, self._elapsed(c))

    def http_get(self, cid, port, path, scheme, headers, timeout):
        c = self.containers[cid]
        if not self._listening(c, port):
            return None, "connect: connection refused"
        h = c.app.http
        code = 200 if h is None else (h(path, self._elapsed(c)) if callable(h) else h.get(path, 404))
        if code is None:
            return None, "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        return code, ""

    def tcp_connect(self, cid, port, timeout):
        return None if self._listening(self.containers[cid], port) else "connect: connection refused"

    def address(self, cid: str, port: int) -> tuple[str, int] | None:
        return None

    def wakeups(self) -> list[float]:
        out = []
        for c in self.containers.values():
            if c.finished_at is not None:
                continue
            a = c.app
            for t in (a.exit_after, a.oom_after, a.ready_after):
                if t is not None:
                    out.append(c.started_at + t)
            if c.term_at is not None and a.term_delay is not None:
                out.append(c.term_at + a.term_delay)
        return out

    def cleanup(self) -> None:
        for cid in list(self.containers):
            self.remove(cid)
