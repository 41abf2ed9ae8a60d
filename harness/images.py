"""Docker through its SDK: connect, build with streamed logs, run, inspect, stop.

Only the Docker SDK is used (no `docker` CLI), so the same code runs against
Docker Desktop, a Linux daemon, or Debian's docker.io. The daemon's classic
builder is what the SDK's build API drives; its log says, for each step,
whether the layer came from the cache ("Using cache"), which the layer-order
check reads.
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import GradingError
from .labs import REPO_ROOT

LABEL = "io.mlops-labs.grader"          # every container and image the grader makes
BASE_IMAGE = "python:3.11-slim"
BASE_SCRIPT = REPO_ROOT / "scripts" / "build-base-image.sh"

_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_GRADER_STEP = f"LABEL {LABEL}="


def client():
    """A Docker SDK client, or a GradingError that says how to get Docker."""
    import docker

    try:
        c = docker.from_env(timeout=120)
        c.ping()
        return c
    except Exception as exc:  # noqa: BLE001 - every way of "no daemon" ends here
        raise GradingError(
            f"failed to reach the Docker daemon ({type(exc).__name__}: {exc})",
            fix="start Docker (Docker Desktop, or `sudo systemctl start docker`); "
                "on Debian/Ubuntu: `sudo apt-get install docker.io`") from exc


def available() -> bool:
    try:
        client()
        return True
    except GradingError:
        return False


@dataclass
class BuildStep:
    number: int
    instruction: str


@dataclass
class BuildResult:
    ok: bool
    image_id: str | None
    tag: str
    duration_s: float
    log: list[str] = field(default_factory=list)
    steps: list[BuildStep] = field(default_factory=list)   # from the log: for progress only, never for judging
    error: str = ""
    notices: list[str] = field(default_factory=list)
    stopped: str = ""      # why the grader stopped the build early, if it did

    def log_tail(self, n: int = 15) -> str:
        return "\n".join(self.log[-n:])


def from_images(dockerfile: Path) -> list[str]:
    """The images named in FROM lines (stage names excluded)."""
    stages, images = set(), []
    for line in dockerfile.read_text(errors="replace").splitlines():
        m = re.match(r"\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            if m.group(1).lower() not in stages:
                images.append(m.group(1))
            if m.group(2):
                stages.add(m.group(2).lower())
    return images


def ensure_base_image(image: str = BASE_IMAGE, log: Callable[[str], None] = print) -> None:
    """Make ``python:3.11-slim`` usable: present, pulled, or built offline by
    scripts/build-base-image.sh (which says loudly when it builds a stand-in)."""
    c = client()
    try:
        c.images.get(image)
        return
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound
        pass
    if image.split(":")[0] != "python" or not image.startswith(BASE_IMAGE.split("-")[0]):
        return  # not ours to provide; the build will say it is missing
    log(f"{image} is not present: running {BASE_SCRIPT.relative_to(REPO_ROOT)}")
    proc = subprocess.run(["bash", str(BASE_SCRIPT)], capture_output=True, text=True)
    for line in (proc.stdout + proc.stderr).splitlines():
        log(line)
    if proc.returncode != 0:
        raise GradingError(f"failed to provide the base image {image}",
                           fix=f"run `bash {BASE_SCRIPT}` and read its message")


class _BuildClient:
    """A low-level client for one build. Its response can be closed from
    another thread (that is how the deadline cancels a build), and it passes
    the Engine API's ``cgroupparent`` build parameter, which docker-py's
    ``build()`` does not expose."""

    def __init__(self, timeout: float, cgroup_parent: str | None = None):
        import docker

        class Client(docker.APIClient):
            response = None

            def _post(self, url, **kwargs):
                if cgroup_parent and url.endswith("/build"):
                    kwargs["params"] = {**(kwargs.get("params") or {}), "cgroupparent": cgroup_parent}
                return super()._post(url, **kwargs)

            def _stream_helper(self, response, decode=False):
                type(self).response = response
                return super()._stream_helper(response, decode)

        self.api = Client(**docker.utils.kwargs_from_env(), timeout=timeout, version="auto")

    def close(self) -> None:
        resp = type(self.api).response
        try:
            if resp is not None:
                resp.close()
        finally:
            self.api.close()


def build(context: Path, tag: str, *, on_log: Callable[[str], None] | None = None,
          timeout: float = 900, buildargs: dict | None = None, dockerfile: str = "Dockerfile",
          limited: bool = True, stop_when: Callable[[list[str]], str] | None = None) -> BuildResult:
    """Build ``context`` (its ``dockerfile``, relative to it) with streamed logs.

    ``timeout`` is a deadline for the whole build, whatever it prints. With
    ``limited`` (a learner's Dockerfile), RUN steps get the container budget
    of harness.budget (memory, swap, CPU, pids: see build_sandbox).
    ``stop_when(log)`` may return a reason to stop the build early (the result
    then has ``stopped`` set to it); it only ever shortens a build, so what the
    log says can cut a build short but never make it pass.
    """
    from .build_sandbox import BuildSandbox, container_limits, explain_failure

    c = client()
    start = time.monotonic()
    result = BuildResult(ok=False, image_id=None, tag=tag, duration_s=0.0)
    box = BuildSandbox.create(c.info()) if limited else None
    if box is not None and box.notice:
        result.notices.append(box.notice)
    low = _BuildClient(timeout=timeout + 30, cgroup_parent=box.parent if box else None)
    expired = threading.Event()
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(timeout):
            expired.set()
            if box is not None:
                box.kill_all()
            low.close()

    guard = threading.Thread(target=watchdog, name="build-deadline", daemon=True)
    guard.start()
    kwargs = {"container_limits": container_limits()} if limited else {}
    try:
        stream = low.api.build(path=str(context), tag=tag, dockerfile=dockerfile, rm=True, forcerm=True, decode=True,
                               labels={LABEL: "1"}, buildargs=buildargs or {}, **kwargs)
        for chunk in stream:
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    if not line.strip() or _GRADER_STEP in line:
                        continue      # the label the grader adds to every image is not the learner's step
                    result.log.append(line)
                    if on_log:
                        on_log(line)
                    m = _STEP.match(line)
                    if m:
                        result.steps.append(BuildStep(int(m.group(1)), m.group(3)))
                    if stop_when is not None and not result.stopped:
                        result.stopped = stop_when(result.log)
                        if result.stopped:
                            if box is not None:
                                box.kill_all()
                            low.close()
            if "error" in chunk:
                result.error = chunk["error"].strip()
                result.log.append(result.error)
                if on_log:
                    on_log(result.error)
            if "aux" in chunk and "ID" in chunk["aux"]:
                result.image_id = chunk["aux"]["ID"]
    except Exception as exc:  # noqa: BLE001 - the daemon refused the context or the Dockerfile
        if not expired.is_set() and not result.stopped:
            result.error = f"{type(exc).__name__}: {exc}"
            result.log.append(result.error)
    finally:
        done.set()
        low.close()
        if box is not None:
            box.kill_all()
            pids_hit = box.pids_limit_hit()
            box.remove()
    if box is not None and result.error and not expired.is_set() and not result.stopped:
        result.error = explain_failure(result.error, pids_hit)
    result.duration_s = time.monotonic() - start
    if result.stopped:
        result.error = f"stopped by the grader: {result.stopped}"
        result.image_id = None
    elif expired.is_set():
        at = f" (it was at step {result.steps[-1].number}/{_total(result)}: {result.steps[-1].instruction[:60]})" \
            if result.steps else ""
        result.error = f"the build did not finish within its {timeout:.0f}s deadline and was stopped{at}"
        result.log.append(result.error)
        result.image_id = None
    elif not result.error and result.image_id is None:
        try:
            result.image_id = c.images.get(tag).id
        except Exception:  # noqa: BLE001
            result.error = "the build finished without producing an image"
    result.ok = not result.error and result.image_id is not None
    return result


def _total(result: BuildResult) -> str:
    m = _STEP.match(next((ln for ln in result.log if _STEP.match(ln)), "")) if result.log else None
    return m.group(2) if m else "?"


def remove_image(tag: str) -> None:
    """Remove the run's tag, keeping its untagged parent layers (``docker rmi --no-prune``): they
    are the build cache, so the learner's next grading rebuilds only what changed, as their own
    ``docker build`` would."""
    try:
        client().images.remove(tag, force=True, noprune=True)
    except Exception:  # noqa: BLE001 - already gone
        pass


OWNER = f"{LABEL}.pid"        # the grading process that started a container (Lab 01's runs)


def owner_labels() -> dict[str, str]:
    return {LABEL: "1", OWNER: str(os.getpid())}


def sweep_orphaned_containers() -> int:
    """Remove the grader's containers whose owning process is gone (a grading killed with SIGKILL,
    as the class runner does after its grace period); returns how many."""
    from .cluster.sim.docker_runtime import _pid_alive

    n = 0
    for ct in client().containers.list(all=True, filters={"label": OWNER}):
        pid = ct.labels.get(OWNER, "")
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            try:
                ct.remove(force=True)
                n += 1
            except Exception:  # noqa: BLE001 - removed meanwhile
                pass
    return n


def remove_labelled_containers(label: str = LABEL) -> int:
    """Force-remove every container carrying the grader's label; returns how many."""
    c = client()
    n = 0
    for ct in c.containers.list(all=True, filters={"label": label}):
        try:
            ct.remove(force=True)
            n += 1
        except Exception:  # noqa: BLE001
            pass
    return n
