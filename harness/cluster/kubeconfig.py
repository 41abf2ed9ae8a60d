"""``KubeconfigCluster``: grade on any existing cluster (``BACKEND=kubeconfig CONTEXT=...``).

For real clusters with real GPUs. It is namespaced: it creates this run's
namespace (or, with ``NAMESPACE=...``, uses an existing one and leaves it in
place), and makes no cluster-wide change: no addons, no node patches, no
cluster creation. Everything else is the shared real-cluster code in
``harness/cluster/kind/real.py``.

``service_url``: a NodePort is not reachable from here in general. A
``LoadBalancer`` Service with an ingress address is used as is. Otherwise the
fallback is ``kubectl port-forward svc/<svc>``, which pins ONE pod: fine for
functional checks, but it does not spread load, so load-based results on this
backend are not meaningful without a LoadBalancer. Each fallback adds a
warning to ``self.warnings`` (recorded in diagnostics).

``load_image``: a real cluster pulls from a registry; the harness does not
push anywhere, so this raises with instructions.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import queue
import re
import subprocess
import threading
from typing import Any

from harness.cluster.base import BackendUnavailable
from harness.errors import CommandError
from harness.waiting import DEFAULT_TIMEOUTS, FinalError, Timeouts, wait_for

from .kind.cli import INSTALL, Logger, Runner, require, which
from .kind.real import RealCluster

_FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")


def _contexts(kubeconfig: str | None) -> tuple[list[str], str | None]:
    from kubernetes import config

    contexts, current = config.list_kube_config_contexts(config_file=kubeconfig)
    return [c["name"] for c in contexts], (current or {}).get("name")


class KubeconfigCluster(RealCluster):
    """See the module docstring."""

    name = "kubeconfig"

    def __init__(self, *, context: str | None = None, kubeconfig: str | None = None, namespace: str | None = None,
                 timeouts: Timeouts = DEFAULT_TIMEOUTS, log: Logger | None = None, runner: Runner | None = None,
                 api: Any = None):
        existing = namespace or os.environ.get("NAMESPACE") or None
        super().__init__(namespace=existing, timeouts=timeouts, log=log, runner=runner, api=api)
        self._own_namespace = existing is None
        self.kubectl.kubeconfig = kubeconfig or _first(os.environ.get("KUBECONFIG"))
        self.kubectl.context = context or os.environ.get("CONTEXT") or None
        self._forwards: dict[tuple[str, int], tuple[subprocess.Popen, int]] = {}
        self._stopped = False

    @staticmethod
    def available(context: str | None = None, kubeconfig: str | None = None) -> tuple[bool, str]:
        """``kubectl`` on PATH and the context present in the kubeconfig (no network)."""
        if which("kubectl") is None:
            return False, f"kubectl is not installed: {INSTALL['kubectl']}"
        context = context or os.environ.get("CONTEXT") or None
        try:
            names, current = _contexts(kubeconfig or _first(os.environ.get("KUBECONFIG")))
        except Exception as exc:  # noqa: BLE001 - ConfigException, missing file
            return False, f"no usable kubeconfig ({exc}): set KUBECONFIG, or use BACKEND=kind"
        want = context or current
        if not want:
            return False, "the kubeconfig has no current context: set CONTEXT=<name> (`kubectl config get-contexts`)"
        if want not in names:
            return False, f"context {want!r} is not in the kubeconfig (have: {', '.join(names) or 'none'})"
        return True, f"context {want}"

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        require("kubectl")
        try:
            version = self.api.request("GET", "/version")
        except Exception as exc:  # noqa: BLE001 - any transport error
            raise BackendUnavailable(f"failed to reach the API server of context "
                                     f"{self.kubectl.context or '(current)'}: {exc}") from exc
        self.log.info(f"kubeconfig backend: Kubernetes {version.get('gitVersion', '?')}")
        if self._own_namespace:
            self.create_namespace()
        else:
            self.get("Namespace", self.namespace)   # must exist; NotFound says so
        self._started, self._stopped = True, False
        atexit.register(self.stop)

    def stop(self) -> None:
        if not self._started or self._stopped:
            return
        self._stopped = True
        try:
            for proc, _ in self._forwards.values():
                _end(proc)
            self._forwards.clear()
            with contextlib.suppress(Exception):
                self.delete_namespace()
        finally:
            self._release()

    # ---- Cluster protocol ------------------------------------------------------------------
    def load_image(self, image: str) -> None:
        raise NotImplementedError(
            f"the kubeconfig backend cannot copy {image!r} into a real cluster's nodes: push it to a registry "
            "the cluster pulls from (docker tag + docker push) and use that name in the manifests")

    def service_url(self, service: str, port: int | str) -> str:
        svc, sp = self.service_port(service, port)
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = ing.get("ip") or ing.get("hostname")
            if svc["spec"].get("type") == "LoadBalancer" and host:
                return f"http://{host}:{sp['port']}"
        key = (service, int(sp["port"]))
        if key in self._forwards and self._forwards[key][0].poll() is None:
            return f"http://127.0.0.1:{self._forwards[key][1]}"
        self.warnings.append(f"service {service}:{sp['port']} reached through `kubectl port-forward`, which pins "
                             "one pod: it does not spread load (use a LoadBalancer Service for load checks)")
        proc, local = self._port_forward(service, int(sp["port"]))
        self._forwards[key] = (proc, local)
        return f"http://127.0.0.1:{local}"

    def _port_forward(self, service: str, port: int) -> tuple[subprocess.Popen, int]:
        argv = self.kubectl.base() + ["port-forward", "--address", "127.0.0.1", "-n", self.namespace,
                                      f"svc/{service}", f":{port}"]
        argv[0] = require("kubectl")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()

        def forwarding() -> int | None:
            while not lines.empty():
                line = lines.get_nowait()
                seen.append(line)
                m = _FORWARDING.search(line)
                if m:
                    return int(m.group(1))
            if proc.poll() is not None:
                raise FinalError("".join(seen))
            return None

        try:
            return proc, wait_for(forwarding, f"kubectl port-forward svc/{service}", self.timeouts.container_ready,
                                  poll=0.05)
        except Exception as exc:
            _end(proc)
            raise CommandError(f"port-forward service {service}", argv, proc.returncode or -1,
                               "".join(seen) or str(exc)) from exc

    def diagnostics_extra(self) -> dict:
        return {"backend": "kubeconfig", "context": self.kubectl.context, "kubeconfig": self.kubectl.kubeconfig,
                "own_namespace": self._own_namespace, "warnings": self.warnings,
                "port_forwards": {f"{k[0]}:{k[1]}": v[1] for k, v in self._forwards.items()}}


def _first(paths: str | None) -> str | None:
    return paths.split(os.pathsep)[0] if paths else None


def _pump(proc: subprocess.Popen, lines: "queue.Queue[str]") -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _end(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
