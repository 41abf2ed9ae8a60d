"""An in-process sim with its HTTP API on an ephemeral port, driven by the real kubectl and kubernetes client.

The sim runs on the fake runtime with a fake clock that a background thread advances (0.5 s of
sim time every 20 ms of wall time), so pods become Ready and rollouts finish while kubectl waits.
kubectl gets its own ``--cache-dir`` (it caches discovery for 6 hours) and kubeconfig per test.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from harness.cluster.sim import FakeApp
from harness.cluster.sim.api import ApiHttpServer
from harness.cluster.sim.clock import FakeClock
from harness.cluster.sim.cluster import SimCluster
from harness.cluster.sim.runtime import FakeRuntime

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
IMAGES = ("python:3.11-slim", "app:v1", "app:v2", "mlops-labs/sentiment:v1", "mlops-labs/sentiment:v2")


@dataclass
class ApiEnv:
    sim: SimCluster
    server: ApiHttpServer
    kubeconfig: Path
    cache: Path

    @property
    def url(self) -> str:
        return self.server.url

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 60, check: bool = True):
        p = subprocess.run([KUBECTL, "--kubeconfig", str(self.kubeconfig), "--cache-dir", str(self.cache), *args],
                           input=input, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
        return p


def write_kubeconfig(path: Path, url: str) -> None:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sim",
        "clusters": [{"name": "sim", "cluster": {"server": url}}],
        "users": [{"name": "sim", "user": {}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim", "namespace": "default"}}]}))


@pytest.fixture
def api_env(tmp_path):
    clock = FakeClock()
    rt = FakeRuntime(clock, images=IMAGES, default=FakeApp(logs=["line 1", "line 2", "line 3"], cpu_milli=50,
                                                            memory_bytes=64 * 2 ** 20))
    sim = SimCluster(runtime=rt, clock=clock, namespace="default", metrics_resolution=1.0)
    sim.start()
    server = ApiHttpServer(sim)
    server.start()
    stop = threading.Event()

    def drive() -> None:
        while not stop.is_set():
            sim.step(0.5)
            time.sleep(0.02)
    t = threading.Thread(target=drive, name="sim-api-test-clock", daemon=True)
    t.start()
    kc = tmp_path / "kubeconfig"
    write_kubeconfig(kc, server.url)
    try:
        yield ApiEnv(sim, server, kc, tmp_path / "kubectl-cache")
    finally:
        stop.set()
        t.join(timeout=5)
        server.stop()
        sim.stop()
