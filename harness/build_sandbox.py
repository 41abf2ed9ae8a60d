"""Limits for image builds: a learner's RUN steps get the grader's container
budget (memory, swap, CPU, pids), and the whole build gets a deadline.

The Docker build API takes memory, swap and CPU shares directly
(``container_limits``), but neither a pids limit nor a CPU quota. So each
build also runs under a cgroup parent of its own that carries ``pids.max``, a
CPU quota and the memory limit (``cgroup_parent`` in the build call). Docker's
cgroupfs driver nests every RUN container under that parent, and cgroup
limits are hierarchical in v1 and v2, so a fork bomb stops at the pids limit
and a memory bomb is OOM-killed, inside the build.

Where the grader cannot make that cgroup (a remote daemon, Docker Desktop's
VM, the systemd cgroup driver, no root), the build keeps ``container_limits``
and the deadline, and :attr:`BuildSandbox.notice` says that pids are not
bounded, so the report can tell.

At the deadline the sandbox kills every process in its cgroup (the RUN step
fails at once) and the caller closes the build's connection, which makes the
daemon cancel the build.
"""
from __future__ import annotations

import os
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import budget

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


def container_limits() -> dict:
    """What the build API takes directly (docker-py's ``container_limits``)."""
    return {"memory": budget.CONTAINER_MEMORY_BYTES,
            "memswap": budget.CONTAINER_MEMORY_BYTES,      # = memory: no swap
            "cpushares": 512}                              # half the weight of the grader's own work


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError:
        return False


@dataclass
class BuildSandbox:
    """One build's cgroup parent. ``parent`` is None when it could not be made."""

    name: str = field(default_factory=lambda: f"mlops-labs-build-{uuid.uuid4().hex[:10]}")
    parent: str | None = None
    notice: str = ""
    _dirs: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, daemon_info: dict, root: Path = CGROUP_ROOT) -> "BuildSandbox":
        box = cls()
        why = box._unsupported(daemon_info, root)
        if why:
            box.notice = f"the build's pids limit is not enforced here ({why}); memory and the deadline are"
            return box
        made = box._make_v2(root) if (root / "cgroup.controllers").is_file() else box._make_v1(root)
        if made:
            box.parent = "/" + box.name
        else:
            box.remove()
            box.notice = "the build's pids limit is not enforced here (cannot write the cgroup); memory and the deadline are"
        return box

    @staticmethod
    def _unsupported(info: dict, root: Path) -> str:
        if info.get("CgroupDriver") != "cgroupfs":
            return f"the daemon's cgroup driver is {info.get('CgroupDriver') or 'unknown'}, not cgroupfs"
        if "desktop" in str(info.get("OperatingSystem", "")).lower():
            return "the daemon runs in Docker Desktop's VM"
        if os.geteuid() != 0 or not os.access(root, os.W_OK | os.X_OK):
            return "the grader cannot create cgroups (not root)"
        return ""

    def _make_v1(self, root: Path) -> bool:
        limits = {
            "pids": {"pids.max": str(budget.CONTAINER_PIDS)},
            "memory": {"memory.limit_in_bytes": str(budget.CONTAINER_MEMORY_BYTES)},
            "cpu": {"cpu.cfs_period_us": str(CPU_PERIOD_US),
                    "cpu.cfs_quota_us": str(int(budget.CONTAINER_CPUS * CPU_PERIOD_US))},
        }
        for controller, files in limits.items():
            d = root / controller / self.name
            try:
                d.mkdir(exist_ok=True)
            except OSError:
                return False
            self._dirs.append(d)
            for fname, value in files.items():
                if not _write(d / fname, value) and fname == "pids.max":
                    return False
        # swap: only where swap accounting is on (memory.memsw.*); otherwise there is no swap to bound
        memsw = root / "memory" / self.name / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            _write(memsw, str(budget.CONTAINER_MEMORY_BYTES))
        return True

    def _make_v2(self, root: Path) -> bool:
        _write(root / "cgroup.subtree_control", "+pids +memory +cpu")
        d = root / self.name
        try:
            d.mkdir(exist_ok=True)
        except OSError:
            return False
        self._dirs.append(d)
        _write(d / "cgroup.subtree_control", "+pids +memory +cpu")
        _write(d / "memory.max", str(budget.CONTAINER_MEMORY_BYTES))
        _write(d / "memory.swap.max", "0")
        _write(d / "cpu.max", f"{int(budget.CONTAINER_CPUS * CPU_PERIOD_US)} {CPU_PERIOD_US}")
        return _write(d / "pids.max", str(budget.CONTAINER_PIDS))

    def pids(self) -> set[int]:
        """Every process now running under this build's cgroup (any depth)."""
        out: set[int] = set()
        for d in self._dirs:
            for procs in d.rglob("cgroup.procs"):
                try:
                    out.update(int(x) for x in procs.read_text().split())
                except (OSError, ValueError):
                    pass
        return out

    def pids_limit_hit(self) -> bool:
        """Whether the build reached its pids limit: ``pids.peak`` at ``pids.max``
        (on cgroup v1 the fork-failure event is counted in the RUN container's
        own cgroup, gone by now), or a ``max`` event where v2 counts it."""
        for d in self._dirs:
            try:
                if (d / "pids.peak").is_file() and int((d / "pids.peak").read_text()) >= budget.CONTAINER_PIDS:
                    return True
                counts = dict(line.split() for line in (d / "pids.events").read_text().splitlines() if line.strip())
                if int(counts.get("max", "0")) > 0:
                    return True
            except (OSError, ValueError):
                continue
        return False

    def kill_all(self) -> int:
        """SIGKILL every process of the build (the deadline); returns how many."""
        n = 0
        for _ in range(5):            # a fork bomb may fork between two reads
            found = self.pids()
            if not found:
                break
            for pid in found:
                try:
                    os.kill(pid, signal.SIGKILL)
                    n += 1
                except OSError:
                    pass
        return n

    def remove(self) -> None:
        for d in reversed(self._dirs):
            for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                try:
                    sub.rmdir()
                except OSError:
                    pass
            try:
                d.rmdir()
            except OSError:
                pass
        self._dirs.clear()


def explain_failure(error: str, pids_hit: bool) -> str:
    """The build error with the limit that caused it, in words."""
    if pids_hit:
        return (f"{error}: a RUN step tried to start more than {budget.CONTAINER_PIDS} processes "
                "(the build's pids limit); a build step must not fork without bound")
    if error.rstrip().endswith("non-zero code: 137"):
        return (f"{error}: the RUN step was killed (137), most likely by the build's "
                f"{budget.CONTAINER_MEMORY_BYTES // budget.GiB} GiB memory limit")
    return error
