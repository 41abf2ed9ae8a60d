"""Real containers through the Docker SDK, with the limits and labels the sim promises.

Why: checks need measured behaviour (a real OOM kill, real readiness
timing, real requests through a Service). Each pod container becomes one
Docker container:

* cpu/memory limits -> ``nano_cpus`` / ``mem_limit`` (swap disabled), so an
  OOM kill is the kernel's; cpu requests -> ``cpu_shares`` as the kubelet maps them;
* container ports (plus probe ports and Service targetPorts) are published on
  **127.0.0.1 only**, on random host ports; probes and Service proxies connect there;
* configMap/secret volume files are copied in (``put_archive``), emptyDir is a tmpfs;
* every container carries ``io.mlops-labs.sim=1`` plus this cluster's id and the
  owning process id, so ``cleanup()`` and :func:`sweep_stale` can find them.

Safety: the container config is built here from a :class:`ContainerSpec`, which
has no way to express bind mounts, host namespaces, devices, privileges or
added capabilities; :func:`_check_safe` re-checks the final kwargs anyway.
Nothing is ever pulled: an image missing from the local engine is reported to
the kubelet, which turns it into ErrImagePull.
"""
from __future__ import annotations

import io
import os
import re
import tarfile
import threading
import time
import uuid
from datetime import datetime, timezone

from harness import budget
from harness.cluster.base import BackendUnavailable

from . import probes
from .runtime import ContainerSpec, RuntimeStatus, StartError

LABEL = "io.mlops-labs.sim"
_FORBIDDEN_KWARGS = {"privileged", "network_mode", "pid_mode", "ipc_mode", "volumes", "mounts", "devices",
                     "cap_add", "userns_mode", "uts_mode", "volumes_from", "device_requests", "cgroupns",
                     "security_opt_unconfined", "sysctls"}
STATUS_TTL = 0.25


def _check_safe(kwargs: dict) -> None:
    bad = _FORBIDDEN_KWARGS & set(kwargs)
    if bad:
        raise StartError(f"refusing host access in container config: {sorted(bad)}")
    for binding in (kwargs.get("ports") or {}).values():
        if binding[0] != "127.0.0.1":
            raise StartError("refusing to publish a port outside 127.0.0.1")


def _parse_time(s: str | None) -> float | None:
    if not s or s.startswith("0001-"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?", s)
    if not m:
        return None
    base = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return base + (float("0" + m.group(2)[:10]) if m.group(2) else 0.0)


def _client():
    try:
        import docker
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except Exception as exc:  # noqa: BLE001 - any failure means "no Docker here"
        raise BackendUnavailable(f"failed to reach the Docker engine ({exc}); the sim backend runs pods as "
                                 "Docker containers: install Docker and make sure `docker ps` works") from exc


def available() -> bool:
    try:
        _client()
        return True
    except BackendUnavailable:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def sweep_stale(client=None) -> int:
    """Remove sim containers whose owning process is gone (after a crash or kill -9)."""
    client = client or _client()
    n = 0
    for c in client.containers.list(all=True, filters={"label": f"{LABEL}=1"}):
        pid = c.labels.get(f"{LABEL}.pid", "")
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            c.remove(force=True)
            n += 1
    return n


_CG_ROOT = "/sys/fs/cgroup"


def _version_ge(v: str, want: str) -> bool:
    try:
        return tuple(int(x) for x in v.split(".")) >= tuple(int(x) for x in want.split("."))
    except (AttributeError, ValueError):
        return False


def _find_cgroup(cid: str) -> tuple[str, str, str] | None:
    """(version, cpu dir, memory dir) of a Docker container's cgroup, if this process can read it."""
    rels = [f"docker/{cid}", f"system.slice/docker-{cid}.scope"]
    for rel in rels:      # cgroup v1: cgroupfs or systemd driver
        for cpu_ctl in ("cpuacct", "cpu,cpuacct"):
            cpu, mem = f"{_CG_ROOT}/{cpu_ctl}/{rel}", f"{_CG_ROOT}/memory/{rel}"
            if os.path.exists(f"{cpu}/cpuacct.usage") and os.path.exists(f"{mem}/memory.usage_in_bytes"):
                return ("v1", cpu, mem)
    for rel in rels:      # cgroup v2 (unified)
        d = f"{_CG_ROOT}/{rel}"
        if os.path.exists(f"{d}/cpu.stat") and os.path.exists(f"{d}/memory.current"):
            return ("v2", d, d)
    return None


def _stat_file(path: str) -> dict[str, int]:
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.partition(" ")
            if v.strip().isdigit():
                out[k] = int(v)
    return out


def _read_cgroup(cg: tuple[str, str, str]) -> tuple[int, int]:
    """Cumulative CPU ns and working set (usage - inactive_file), as cAdvisor computes them."""
    ver, cpu, mem = cg
    if ver == "v1":
        with open(f"{cpu}/cpuacct.usage") as f:
            cpu_ns = int(f.read())
        with open(f"{mem}/memory.usage_in_bytes") as f:
            usage = int(f.read())
        inactive = _stat_file(f"{mem}/memory.stat").get("total_inactive_file", 0)
    else:
        cpu_ns = _stat_file(f"{cpu}/cpu.stat")["usage_usec"] * 1000
        with open(f"{mem}/memory.current") as f:
            usage = int(f.read())
        inactive = _stat_file(f"{mem}/memory.stat").get("inactive_file", 0)
    return cpu_ns, max(0, usage - inactive)


class DockerRuntime:
    real = True

    def __init__(self, client=None, *, cluster_id: str | None = None):
        self.client = client or _client()
        self.cluster_id = cluster_id or uuid.uuid4().hex[:8]
        self._status: dict[str, tuple[float, RuntimeStatus]] = {}
        self._ports: dict[str, dict[int, int]] = {}
        self._images: dict[str, float] = {}
        self._cgroups: dict[str, tuple[str, str, str] | None] = {}
        self._lock = threading.Lock()
        self._closing = False

    # ---- images -------------------------------------------------------------------
    def image_present(self, image: str) -> bool:
        import docker
        if time.monotonic() - self._images.get(image, -1e9) < 5:
            return True
        try:
            self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError:
            return False
        self._images[image] = time.monotonic()
        return True

    # ---- lifecycle ---------------------------------------------------------------------
    def start(self, spec: ContainerSpec) -> str:
        import docker
        if self._closing:
            raise RuntimeError("the cluster is stopping: no new containers")
        raw = f"sim-{self.cluster_id}-{spec.namespace}-{spec.pod}-{spec.name}-{spec.instance}"
        name = re.sub(r"[^a-zA-Z0-9_.-]", "-", raw)[:120]
        kwargs: dict = {
            "image": spec.image, "name": name, "detach": True,
            "environment": dict(spec.env),
            "labels": {LABEL: "1", f"{LABEL}.cluster": self.cluster_id, f"{LABEL}.pid": str(os.getpid()),
                       f"{LABEL}.pod": f"{spec.namespace}/{spec.pod}", f"{LABEL}.container": spec.name},
            "ports": {f"{p}/tcp": ("127.0.0.1", None) for p in spec.ports},
            "security_opt": ["no-new-privileges"], "pids_limit": budget.CONTAINER_PIDS,
            "hostname": spec.pod[:63],
        }
        if spec.command is not None:
            kwargs["entrypoint"] = spec.command
            kwargs["command"] = spec.args or []
        elif spec.args is not None:
            kwargs["command"] = spec.args
        if spec.working_dir:
            kwargs["working_dir"] = spec.working_dir
        if spec.memory_limit_bytes:
            kwargs["mem_limit"] = spec.memory_limit_bytes
            kwargs["memswap_limit"] = spec.memory_limit_bytes
        if spec.cpu_limit_milli:
            kwargs["nano_cpus"] = spec.cpu_limit_milli * 1_000_000
        if spec.cpu_request_milli:
            kwargs["cpu_shares"] = max(2, spec.cpu_request_milli * 1024 // 1000)
        if spec.tmpfs:
            kwargs["tmpfs"] = {p: "rw,size=64m" for p in spec.tmpfs}
        _check_safe(kwargs)
        try:
            c = self.client.containers.create(**kwargs)
        except docker.errors.ImageNotFound as exc:
            raise StartError(f"image not found: {spec.image}") from exc
        except docker.errors.APIError as exc:
            raise StartError(f"failed to create container: {exc.explanation or exc}") from exc
        try:
            if spec.files:
                c.put_archive("/", self._tar(spec.files))
            c.start()
        except docker.errors.APIError as exc:
            c.remove(force=True)
            raise StartError(f"failed to start containerd task: {exc.explanation or exc}") from exc
        c.reload()
        ports = {}
        for key, binds in (c.attrs["NetworkSettings"].get("Ports") or {}).items():
            for b in binds or []:
                if b.get("HostIp") in ("127.0.0.1", "") and b.get("HostPort"):
                    ports[int(key.split("/")[0])] = int(b["HostPort"])
                    break
        with self._lock:
            self._ports[c.id] = ports
        return c.id

    @staticmethod
    def _tar(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for path, data in sorted(files.items()):
                info = tarfile.TarInfo(path.lstrip("/"))
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def status(self, cid: str) -> RuntimeStatus:
        import docker
        now = time.monotonic()
        with self._lock:
            cached = self._status.get(cid)
        if cached and now - cached[0] < STATUS_TTL and cached[1].running:
            return cached[1]
        if cached and not cached[1].running:
            return cached[1]
        try:
            st = self.client.api.inspect_container(cid)["State"]
        except docker.errors.NotFound:
            rs = RuntimeStatus(False, 137, False, None, time.time())
        else:
            running = st.get("Running") or st.get("Restarting") or False
            rs = RuntimeStatus(bool(running), None if running else st.get("ExitCode"), bool(st.get("OOMKilled")),
                               _parse_time(st.get("StartedAt")), None if running else _parse_time(st.get("FinishedAt")))
        with self._lock:
            self._status[cid] = (now, rs)
        return rs

    def signal(self, cid: str, sig: str) -> None:
        import docker
        try:
            self.client.api.kill(cid, signal=sig)
        except docker.errors.APIError:
            pass   # already stopped
        with self._lock:
            self._status.pop(cid, None)

    def remove(self, cid: str) -> None:
        import docker
        try:
            self.client.api.remove_container(cid, force=True)
        except docker.errors.APIError:
            pass
        with self._lock:
            self._ports.pop(cid, None)
            self._cgroups.pop(cid, None)

    def logs(self, cid: str, tail: int) -> str:
        import docker
        try:
            return self.client.api.logs(cid, tail=tail).decode("utf-8", "replace")
        except docker.errors.APIError as exc:
            return f"(logs unavailable: {exc})"

    def exec(self, cid: str, cmd: list[str], timeout: float) -> tuple[int, str]:
        result: list = []

        def run() -> None:
            try:
                r = self.client.api.exec_create(cid, cmd)
                out = self.client.api.exec_start(r["Id"])
                code = self.client.api.exec_inspect(r["Id"]).get("ExitCode")
                result.append((code if code is not None else 1, out.decode("utf-8", "replace")))
            except Exception as exc:  # noqa: BLE001 - an exec that cannot run is a failed probe
                result.append((126, str(exc)))

        t = threading.Thread(target=run, daemon=True)
        t.start()
        t.join(timeout)
        if not result:
            raise TimeoutError(f"command {cmd!r} timed out")
        return result[0]

    # ---- network ----------------------------------------------------------------------
    def address(self, cid: str, port: int) -> tuple[str, int] | None:
        with self._lock:
            hp = self._ports.get(cid, {}).get(port)
        return ("127.0.0.1", hp) if hp else None

    def http_get(self, cid, port, path, scheme, headers, timeout):
        addr = self.address(cid, port)
        if addr is None:
            return None, "connect: connection refused"
        return probes.http_get(addr[0], addr[1], path, scheme, headers, timeout)

    def tcp_connect(self, cid, port, timeout):
        addr = self.address(cid, port)
        return "connect: connection refused" if addr is None else probes.tcp_connect(addr[0], addr[1], timeout)

    def wakeups(self) -> list[float]:
        return []

    # ---- metrics ------------------------------------------------------------------------
    def stats(self, cid: str):
        """Cumulative CPU ns and memory working set of a running container.

        Read from the container's cgroup files when this process can see them
        (cgroup v1 ``cpuacct.usage`` + ``memory.usage_in_bytes``/``memory.stat``,
        or cgroup v2 ``cpu.stat`` + ``memory.current``/``memory.stat``): about
        0.03 ms per container. Otherwise the Docker stats API with ``one_shot``
        (API >= 1.41), which still takes about 1 s per call on Docker 20.10
        (the daemon waits for its own sample): the scraper runs on a worker
        thread, so that only delays the samples. Returns None for a stopped container.
        """
        from .metrics import ContainerStats
        with self._lock:
            known = cid in self._cgroups
            cg = self._cgroups.get(cid)
        if not known:
            cg = _find_cgroup(cid)      # a few stat() calls; only a found cgroup is cached
            if cg is not None:
                with self._lock:
                    self._cgroups[cid] = cg
        if cg is not None:
            try:
                return ContainerStats(*_read_cgroup(cg), time.time())
            except (OSError, ValueError):
                if self.status(cid).running:     # unreadable while running: use the API from now on
                    with self._lock:
                        self._cgroups[cid] = None
                else:
                    return None
        return self._api_stats(cid)

    def _api_stats(self, cid: str):
        import docker
        from .metrics import ContainerStats
        try:
            if _version_ge(self.client.api.api_version, "1.41"):
                s = self.client.api.stats(cid, stream=False, one_shot=True)
            else:
                s = self.client.api.stats(cid, stream=False)
        except docker.errors.APIError:
            return None
        cpu = ((s.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage")
        if not cpu:
            return None      # stopped containers report zeros
        mem = s.get("memory_stats") or {}
        st = mem.get("stats") or {}
        inactive = st.get("total_inactive_file", st.get("inactive_file", 0)) or 0
        return ContainerStats(int(cpu), max(0, int(mem.get("usage") or 0) - int(inactive)), _parse_time(s.get("read")))

    def cleanup(self, rounds: int = 10, pause: float = 0.5) -> int:
        """Remove every container of this cluster; returns how many are left (0).

        New starts are refused first, then removal repeats until a listing comes back
        empty: a start that was in flight when cleanup began (a kubelet worker, a flood
        of pods) is caught by a later round instead of being left behind."""
        self._closing = True
        left = -1
        for i in range(rounds):
            try:
                found = self.client.containers.list(all=True, filters={"label": f"{LABEL}.cluster={self.cluster_id}"})
            except Exception:  # noqa: BLE001 - the daemon hiccuped: try again
                found = None
            if found == [] and i > 0:
                left = 0
                break
            for c in found or []:
                try:
                    c.remove(force=True)
                except Exception:  # noqa: BLE001 - already gone, or removal in progress: next round
                    pass
            time.sleep(pause if found else 0.05)
        with self._lock:
            self._ports.clear()
            self._status.clear()
        if left < 0:
            try:
                left = len(self.client.containers.list(all=True, filters={"label": f"{LABEL}.cluster={self.cluster_id}"}))
            except Exception:  # noqa: BLE001
                left = -1
        return left
