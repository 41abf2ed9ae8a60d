"""Start a reference model server, on the host or in a container, with knobs.

Variants: ``flask-host``, ``bentoml-host`` (subprocesses from this venv) and
``flask-container``, ``bentoml-container`` (the solution images, built once per
session through the Docker SDK). Every server listens on 127.0.0.1 only.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "models"
FLASK_DIR = ROOT / "solutions" / "01-docker"
BENTO_DIR = ROOT / "solutions" / "01-docker-bentoml"
BIN = Path(sys.executable).parent
VARIANTS = ("flask-host", "bentoml-host", "flask-container", "bentoml-container")
LABEL = "io.mlops-labs.contract-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    variant: str
    base_url: str
    _proc: subprocess.Popen | None = None
    _container: object | None = None
    _log: Path | None = None
    _tmp: list[str] = field(default_factory=list)

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 5)
        return requests.get(self.base_url + path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 5)
        return requests.post(self.base_url + path, **kw)

    def wait_ready(self, timeout: float = 60) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if self.get("/readyz", timeout=2).status_code == 200:
                    return time.monotonic() - start
            except requests.RequestException:
                pass
            if not self.alive():
                raise RuntimeError(f"{self.variant} exited before ready:\n{self.logs()}")
            time.sleep(0.2)
        raise TimeoutError(f"{self.variant} not ready after {timeout}s:\n{self.logs()}")

    def wait_live(self, timeout: float = 30) -> None:
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            try:
                if self.get("/livez", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise TimeoutError(f"{self.variant} not live after {timeout}s:\n{self.logs()}")

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        self._container.reload()
        return self._container.status == "running"

    def terminate(self) -> None:
        """Send SIGTERM (docker stop sends the same signal to PID 1)."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGTERM)
        else:
            self._container.kill(signal="SIGTERM")

    def wait_exit(self, timeout: float = 30) -> int:
        if self._proc is not None:
            return self._proc.wait(timeout=timeout)
        return self._container.wait(timeout=timeout)["StatusCode"]

    def logs(self) -> str:
        if self._proc is not None:
            return self._log.read_text(errors="replace") if self._log and self._log.exists() else ""
        return self._container.logs().decode(errors="replace")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=5)   # a hung server never finishes: do not wait long
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        if self._container is not None:
            try:
                self._container.remove(force=True)
            except Exception:  # noqa: BLE001
                pass
        for d in self._tmp:
            shutil.rmtree(d, ignore_errors=True)


def _host_cmd(variant: str, port: int) -> tuple[list[str], Path]:
    if variant == "flask-host":
        return [str(BIN / "gunicorn"), "--config", "app/gunicorn.conf.py", "app.server:app"], FLASK_DIR
    return [str(BIN / "bentoml"), "serve", "service:SentimentService", "--host", "127.0.0.1",
            "--port", str(port)], BENTO_DIR


def start_host(variant: str, env: dict[str, str]) -> Server:
    port = free_port()
    cmd, cwd = _host_cmd(variant, port)
    tmp = tempfile.mkdtemp(prefix="contract-")
    full_env = {**os.environ, "PORT": str(port), "MODEL_DIR": str(MODELS), "BENTOML_HOME": tmp,
                "BENTOML_DO_NOT_TRACK": "True", "WEB_CONCURRENCY": "2", "HOST": "127.0.0.1", **env}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    full_env.pop("SERVER_START_TIME", None)
    full_env.pop("SERVER_STATE_DIR", None)
    log = Path(tmp) / "server.log"
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return Server(variant, f"http://127.0.0.1:{port}", _proc=proc, _log=log, _tmp=[tmp])


_images: dict[str, str] = {}


def image_for(variant: str) -> str:
    """Build the solution image once per session, with the models staged in."""
    import docker

    if variant in _images:
        return _images[variant]
    src = FLASK_DIR if variant.startswith("flask") else BENTO_DIR
    ctx = Path(tempfile.mkdtemp(prefix="contract-ctx-"))
    shutil.copytree(src, ctx, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "model"))
    (ctx / "model").mkdir(exist_ok=True)
    for f in MODELS.glob("sentiment-*"):
        shutil.copy2(f, ctx / "model" / f.name)
    tag = f"mlops-labs/contract-{variant.split('-')[0]}:test"
    client = docker.from_env()
    client.images.build(path=str(ctx), tag=tag, rm=True, labels={LABEL: "1"})
    shutil.rmtree(ctx, ignore_errors=True)
    _images[variant] = tag
    return tag


def start_container(variant: str, env: dict[str, str]) -> Server:
    import docker

    client = docker.from_env()
    tag = image_for(variant)
    c = client.containers.run(tag, detach=True, name=f"contract-{uuid.uuid4().hex[:8]}",
                              labels={LABEL: "1"}, environment=env,
                              ports={"8000/tcp": ("127.0.0.1", None)})
    for _ in range(100):
        c.reload()
        binding = (c.attrs["NetworkSettings"]["Ports"] or {}).get("8000/tcp")
        if binding:
            return Server(variant, f"http://127.0.0.1:{binding[0]['HostPort']}", _container=c)
        time.sleep(0.05)
    c.remove(force=True)
    raise RuntimeError(f"{variant}: no port published")


def start(variant: str, env: dict[str, str] | None = None) -> Server:
    env = {k: str(v) for k, v in (env or {}).items()}
    if variant.endswith("-host"):
        return start_host(variant, env)
    return start_container(variant, env)


def remove_images() -> None:
    import docker

    client = docker.from_env()
    for tag in _images.values():
        try:
            client.images.remove(tag, force=True)
        except Exception:  # noqa: BLE001
            pass
    _images.clear()
