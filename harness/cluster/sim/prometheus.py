"""A real Prometheus server for the sim, scraping its pods.

Why: Lab 05 autoscales on ``inference_requests_in_flight``, a metric the
servers export on ``/metrics``. On a real cluster Prometheus scrapes the pods
and prometheus-adapter serves ``custom.metrics.k8s.io`` from it; the sim does
the same with the Prometheus binary of the machine (Debian's ``prometheus``
package, 2.42 in bookworm), not with a model of it.

* **Discovery.** Upstream's example ``kubernetes-pods`` job keeps the pods
  annotated ``prometheus.io/scrape: "true"`` and takes the port and path from
  ``prometheus.io/port`` and ``prometheus.io/path`` (default ``/metrics``).
  The sim has no Kubernetes SD for Prometheus to call, so :class:`PodTargets`
  writes the same selection as file-based service discovery (``file_sd_configs``,
  picked up by inotify): one target per Ready, annotated pod, at the address the
  runtime publishes for that port, with the labels ``namespace`` and ``pod``
  that upstream's relabelling gives.
* **Lifecycle.** Started and stopped with the cluster (:class:`PrometheusServer`);
  its TSDB lives in a temporary folder. A missing binary is a
  :class:`~harness.errors.GradingError` (exit 2) with the install command.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from harness.errors import GradingError

SCRAPE = "prometheus.io/scrape"
PORT = "prometheus.io/port"
PATH = "prometheus.io/path"
INSTALL = "apt-get install -y prometheus   (Debian/Ubuntu; or put a prometheus binary on PATH)"


def find_binary() -> str:
    path = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if not path:
        raise GradingError("this lab's cluster needs a Prometheus server, and no `prometheus` binary is on PATH",
                           fix=INSTALL)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusServer:
    """One ``prometheus`` process with one file-SD job, ``kubernetes-pods``."""

    def __init__(self, scrape_interval: float = 2.0, binary: str | None = None):
        self.scrape_interval = scrape_interval
        self.binary = binary
        self.dir: Path | None = None
        self.port = 0
        self._proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def targets_file(self) -> Path:
        assert self.dir is not None
        return self.dir / "targets" / "pods.json"

    def config(self) -> dict[str, Any]:
        interval = f"{int(self.scrape_interval * 1000)}ms"
        return {"global": {"scrape_interval": interval, "scrape_timeout": interval,
                           "evaluation_interval": interval},
                "scrape_configs": [{"job_name": "kubernetes-pods", "honor_labels": False,
                                    # each target carries __metrics_path__ (its prometheus.io/path)
                                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "5s"}]}]}

    def start(self, timeout: float = 30.0) -> None:
        binary = self.binary or find_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="sim-prometheus-"))
        self.targets_file.parent.mkdir()
        self.write_targets([])
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(self.config(), sort_keys=False))
        self.port = _free_port()
        log = (self.dir / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=2h", "--log.level=warn"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        tail = self.log_tail()
        self.stop()
        raise GradingError(f"Prometheus ({binary}) did not become ready within {timeout:.0f}s:\n{tail}",
                           fix="run it by hand with the same flags to see why: prometheus --config.file=...")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join((self.dir / "prometheus.log").read_text(errors="replace").splitlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # ---- discovery -------------------------------------------------------------------
    def write_targets(self, groups: list[dict[str, Any]]) -> None:
        """Replace the file-SD targets atomically (Prometheus never reads half a file)."""
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(groups, sort_keys=True))
        os.replace(tmp, self.targets_file)

    # ---- HTTP API ----------------------------------------------------------------------
    def query(self, promql: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """An instant query: ``[{"metric": {...}, "value": [ts, "1.5"]}, ...]``.
        Raises ``OSError`` (unreachable) or ``ValueError`` (bad query)."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as exc:   # 400/422: the query itself is wrong
            body = json.loads(exc.read() or b"{}")
            raise ValueError(body.get("error") or str(exc)) from None
        if body.get("status") != "success":
            raise ValueError(body.get("error") or "query failed")
        return body["data"]["result"]

    def active_targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets?state=active", timeout=5) as r:
            return json.loads(r.read())["data"]["activeTargets"]


class PodTargets:
    """Writes the scrape targets for the Ready, annotated pods (a controller sync)."""

    def __init__(self, store, runtime, server: PrometheusServer):
        self.store, self.runtime, self.server = store, runtime, server
        self._last: str | None = None

    @staticmethod
    def scrape_port(pod: dict[str, Any]) -> tuple[int, str, str] | None:
        """(port, path, container id) of an annotated pod, or None if it is not scraped."""
        ann = pod["metadata"].get("annotations") or {}
        if ann.get(SCRAPE) != "true":
            return None
        containers = pod["spec"].get("containers") or []
        statuses = {c["name"]: c.get("containerID", "").split("://")[-1]
                    for c in (pod.get("status") or {}).get("containerStatuses") or []}
        wanted = ann.get(PORT, "")
        for c in containers:
            for cp in c.get("ports") or []:
                if str(cp.get("containerPort")) == wanted or (not wanted and cp.get("name") in ("metrics", "http")):
                    return cp["containerPort"], ann.get(PATH) or "/metrics", statuses.get(c["name"], "")
        if wanted.isdigit() and containers:   # a port no container declares: Prometheus scrapes it anyway
            return int(wanted), ann.get(PATH) or "/metrics", statuses.get(containers[0]["name"], "")
        return None

    def groups(self) -> list[dict[str, Any]]:
        out = []
        for pod in self.store.list("Pod", record=False):
            st = pod.get("status") or {}
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
            if not ready or pod["metadata"].get("deletionTimestamp"):
                continue
            found = self.scrape_port(pod)
            if not found or not found[2]:
                continue
            port, path, cid = found
            addr = self.runtime.address(cid, port)
            if addr is None:
                continue
            out.append({"targets": [f"{addr[0]}:{addr[1]}"],
                        "labels": {"namespace": pod["metadata"]["namespace"], "pod": pod["metadata"]["name"],
                                   "__metrics_path__": path}})
        return sorted(out, key=lambda g: (g["labels"]["namespace"], g["labels"]["pod"]))

    def sync(self) -> None:
        if not self.server.running:
            return
        groups = self.groups()
        text = json.dumps(groups, sort_keys=True)
        if text != self._last:
            self.server.write_targets(groups)
            self._last = text
