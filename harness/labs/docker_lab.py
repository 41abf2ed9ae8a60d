"""Lab 01's observations: the staged build context, the image, the container.

Everything is built and run through the Docker SDK. The build context is the
staged copy of the submission plus the model artifacts (``model/``), which the
harness provides so that a learner cannot grade a different model.
"""
from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import requests

from .. import budget, images
from ..errors import GradingError
from ..submission import Submission
from ..waiting import DEFAULT_TIMEOUTS, Timeouts, progress_logger
from . import REPO_ROOT

MODELS_DIR = REPO_ROOT / "models"
APP_FILE_CANDIDATES = ("app/server.py", "app/main.py", "app/app.py", "service.py", "app.py", "server.py")


def provide_models(context: Path, models_dir: Path = MODELS_DIR) -> None:
    arts = sorted(models_dir.glob("sentiment-v*.joblib")) if models_dir.is_dir() else []
    if not arts:
        raise GradingError("the model artifacts are missing", where=str(models_dir),
                           fix="run `make model` first")
    dest = context / "model"
    if dest.exists() and not dest.is_dir():
        dest.unlink()
    dest.mkdir(exist_ok=True)
    for a in arts:
        shutil.copy2(a, dest / a.name)
        shutil.copy2(a.with_suffix(".json"), dest / a.with_suffix(".json").name)


@dataclass
class RunningContainer:
    container: object
    port: int
    base_url: str
    started_at: float


@dataclass
class DockerLab:
    submission: Submission
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    log: Callable[[str], None] = print
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    _build: images.BuildResult | None = None
    _running: RunningContainer | None = None
    _tags: list[str] = field(default_factory=list)
    _twins: list[RunningContainer] = field(default_factory=list)

    @property
    def context(self) -> Path:
        return self.submission.staged

    @property
    def tag(self) -> str:
        return f"mlops-labs/lab01-{self.run_id}:graded"

    # --- build -----------------------------------------------------------
    def prepare(self) -> None:
        if not (self.context / "Dockerfile").is_file():
            raise GradingError("no Dockerfile", where=str(self.submission.path / "Dockerfile"),
                               fix="create a Dockerfile in the lab folder you are grading (the starter has one with TODOs)")
        provide_models(self.context)
        for image in images.from_images(self.context / "Dockerfile"):
            images.ensure_base_image(image, log=self.log)

    def build(self) -> images.BuildResult:
        if self._build is None:
            self._tags.append(self.tag)
            self._build = images.build(self.context, self.tag, on_log=self.log,
                                       timeout=self.timeouts.image_build)
        return self._build

    def rebuild_after_touching(self, rel: str, stop_when=None) -> images.BuildResult:
        """Append a comment to one app file and build again (a real second build)."""
        path = self.context / rel
        path.write_text(path.read_text() + f"\n# touched by the grader {self.run_id}\n")
        tag = self.rebuild_tag
        self._tags.append(tag)
        return images.build(self.context, tag, on_log=self.log, timeout=self.timeouts.image_build,
                            stop_when=stop_when)

    @property
    def rebuild_tag(self) -> str:
        return f"mlops-labs/lab01-{self.run_id}:rebuild"

    def app_file(self) -> str | None:
        for rel in APP_FILE_CANDIDATES:
            if (self.context / rel).is_file():
                return rel
        found = sorted(p.relative_to(self.context).as_posix() for p in self.context.rglob("*.py"))
        return found[0] if found else None

    def image(self, tag: str | None = None):
        return images.client().images.get(tag or self.tag)

    # --- run -------------------------------------------------------------
    def container_port(self) -> int:
        exposed = (self.image().attrs.get("Config") or {}).get("ExposedPorts") or {}
        tcp = sorted(int(p.split("/")[0]) for p in exposed if p.endswith("/tcp"))
        return 8000 if (not tcp or 8000 in tcp) else tcp[0]

    def _start(self, name: str, env: dict | None = None) -> RunningContainer:
        port = self.container_port()
        c = images.client().containers.run(
            self.tag, detach=True, name=name, environment=env or {},
            labels=images.owner_labels(), ports={f"{port}/tcp": ("127.0.0.1", None)},
            mem_limit=budget.CONTAINER_MEMORY_BYTES, memswap_limit=budget.CONTAINER_MEMORY_BYTES,
            pids_limit=budget.CONTAINER_PIDS, security_opt=["no-new-privileges"])
        host_port = None
        for _ in range(50):
            c.reload()
            binding = (c.attrs["NetworkSettings"]["Ports"] or {}).get(f"{port}/tcp")
            if binding:
                host_port = int(binding[0]["HostPort"])
                break
            if c.status == "exited":
                break
            time.sleep(0.1)
        return RunningContainer(c, host_port or 0, f"http://127.0.0.1:{host_port}", time.monotonic())

    def run(self) -> RunningContainer:
        if self._running is None:
            self._running = self._start(f"lab01-{self.run_id}")
        return self._running

    def run_twin(self, env: dict) -> RunningContainer:
        """A second container of the image with extra environment (removed by close())."""
        twin = self._start(f"lab01-{self.run_id}-twin{len(self._twins)}", env)
        self._twins.append(twin)
        return twin

    def progress(self, desc: str, timeout: float):
        """An ``on_poll`` callback that logs a wait longer than 5 s every 5 s."""
        return progress_logger(desc, timeout, self.log)

    def logs_tail(self, n: int = 20) -> str:
        if self._running is None:
            return ""
        try:
            return self._running.container.logs(tail=n).decode(errors="replace")
        except Exception:  # noqa: BLE001
            return ""

    def http(self, method: str, path: str, **kw) -> requests.Response:
        r = self.run()
        kw.setdefault("timeout", self.timeouts.http_request)
        return requests.request(method, r.base_url + path, **kw)

    def close(self) -> None:
        for rc in [self._running, *self._twins]:
            if rc is None:
                continue
            try:
                rc.container.remove(force=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._running, self._twins = None, []
        for tag in self._tags:
            images.remove_image(tag)
