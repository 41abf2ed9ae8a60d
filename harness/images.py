"""Docker through its SDK: connect, build with streamed logs, run, inspect, stop.

Only the Docker SDK is used (no `docker` CLI), so the same code runs against
Docker Desktop, a Linux daemon, or Debian's docker.io. The daemon's classic
builder is what the SDK's build API drives; its log says, for each step,
whether the layer came from the cache ("Using cache"), which the layer-order
check reads.
"""
from __future__ import annotations

import re
import subprocess
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
    cached: bool = False


@dataclass
class BuildResult:
    ok: bool
    image_id: str | None
    tag: str
    duration_s: float
    log: list[str] = field(default_factory=list)
    steps: list[BuildStep] = field(default_factory=list)
    error: str = ""

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


def build(context: Path, tag: str, *, on_log: Callable[[str], None] | None = None,
          timeout: float = 900, buildargs: dict | None = None, dockerfile: str = "Dockerfile") -> BuildResult:
    """Build ``context`` (its ``dockerfile``, relative to it) with streamed logs."""
    c = client()
    start = time.monotonic()
    result = BuildResult(ok=False, image_id=None, tag=tag, duration_s=0.0)
    try:
        stream = c.api.build(path=str(context), tag=tag, dockerfile=dockerfile, rm=True, forcerm=True, decode=True,
                             labels={LABEL: "1"}, buildargs=buildargs or {}, timeout=timeout)
        for chunk in stream:
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    if not line.strip():
                        continue
                    result.log.append(line)
                    if on_log:
                        on_log(line)
                    m = _STEP.match(line)
                    if m:
                        result.steps.append(BuildStep(int(m.group(1)), m.group(3)))
                    elif "Using cache" in line and result.steps:
                        result.steps[-1].cached = True
            if "error" in chunk:
                result.error = chunk["error"].strip()
                result.log.append(result.error)
                if on_log:
                    on_log(result.error)
            if "aux" in chunk and "ID" in chunk["aux"]:
                result.image_id = chunk["aux"]["ID"]
    except Exception as exc:  # noqa: BLE001 - the daemon refused the context or the Dockerfile
        result.error = f"{type(exc).__name__}: {exc}"
        result.log.append(result.error)
    result.duration_s = time.monotonic() - start
    if not result.error and result.image_id is None:
        try:
            result.image_id = c.images.get(tag).id
        except Exception:  # noqa: BLE001
            result.error = "the build finished without producing an image"
    result.ok = not result.error and result.image_id is not None
    return result


def remove_image(tag: str) -> None:
    try:
        client().images.remove(tag, force=True, noprune=False)
    except Exception:  # noqa: BLE001 - already gone
        pass


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
