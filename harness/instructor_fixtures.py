"""pytest fixtures for instructors' own checks: ``kind_cluster``, with the surface of pytest-kind.

Registered by the harness's pytest plugin (``harness/plugin.py``), so a course's
tests get it without installing anything else. It is backed by the harness's
own cluster drivers, never by pytest-kind (which downloads kind and kubectl at
run time and starts a fresh process per port-forward attempt):

* ``KIND_CLUSTER=kind`` (default): the course's kind cluster, created once and
  kept (:class:`harness.cluster.kind.backend.KindCluster`); the kubeconfig is the
  harness's own file, never ``~/.kube/config``;
* ``KIND_CLUSTER=kubeconfig``: the context of ``KUBECONFIG``/``CONTEXT``
  (:class:`harness.cluster.kubeconfig.KubeconfigCluster`), e.g. the offline sim
  cluster of ``make cluster-up BACKEND=sim``.

The object offers ``.kubeconfig_path``, ``.kubectl(*args)``, ``.load_docker_image(image)``
and ``.port_forward(target, port, namespace=...)``: a context manager that starts
ONE ``kubectl port-forward``, waits until the local port accepts connections,
yields it, and always ends the process (terminate, then kill).
"""
from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import subprocess
import threading
from pathlib import Path
from typing import Iterator

import pytest

from .cluster.base import BackendUnavailable
from .cluster.kubeconfig import end_process
from .errors import CommandError
from .waiting import FinalError, wait_for

FORWARDING = re.compile(r"Forwarding from 127\.0\.0\.1:(\d+) ->")
PORT_FORWARD_TIMEOUT_S = 30.0


def _port_open(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


class ClusterHandle:
    """One cluster, as instructors' tests see it."""

    def __init__(self, kubeconfig_path: str | None, context: str | None, *, kind_name: str | None = None,
                 kubectl_bin: str = "kubectl", kind_bin: str = "kind", loader=None):
        self.kubeconfig_path = Path(kubeconfig_path) if kubeconfig_path else None
        self.context = context
        self.kind_name = kind_name
        self._kubectl, self._kind = kubectl_bin, kind_bin
        self._loader = loader       # load_image of a KubeconfigCluster (no kind)

    def _base(self) -> list[str]:
        argv = [self._kubectl]
        if self.kubeconfig_path:
            argv += ["--kubeconfig", str(self.kubeconfig_path)]
        if self.context:
            argv += ["--context", self.context]
        return argv

    def kubectl(self, *args: str, input: str | None = None, timeout: float = 120.0) -> str:
        """Run kubectl against this cluster; returns stdout; raises CommandError (argv + output) on failure."""
        argv = self._base() + [str(a) for a in args]
        try:
            cp = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise CommandError(f"run kubectl {' '.join(map(str, args))}", argv, -1,
                               f"no answer within {timeout:g}s") from exc
        if cp.returncode != 0:
            raise CommandError(f"run kubectl {' '.join(map(str, args))}", argv, cp.returncode, cp.stdout + cp.stderr)
        return cp.stdout

    def load_docker_image(self, image: str) -> None:
        """Make a local Docker image available to the cluster's nodes."""
        if self.kind_name:
            argv = [self._kind, "load", "docker-image", image, "--name", self.kind_name]
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
            if cp.returncode != 0:
                raise CommandError(f"load image {image} into kind cluster {self.kind_name}", argv, cp.returncode,
                                   cp.stdout + cp.stderr)
        elif self._loader:
            self._loader(image)
        else:
            raise BackendUnavailable("this cluster has no way to load a local image: use a kind cluster, "
                                     "or set IMAGE_REGISTRY for a kubeconfig cluster")

    @contextlib.contextmanager
    def port_forward(self, target: str, port: int, *, namespace: str = "default", local_port: int = 0,
                     timeout: float = PORT_FORWARD_TIMEOUT_S) -> Iterator[int]:
        """``kubectl port-forward <target> :<port>`` (target like ``svc/web`` or ``pod/x``): yields the
        local port once it accepts connections; the process is ended on exit, whatever happened."""
        argv = self._base() + ["port-forward", "--address", "127.0.0.1", "-n", namespace, target,
                               f"{local_port or ''}:{port}"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.put(line)

        threading.Thread(target=pump, daemon=True).start()
        found: list[int] = []

        def ready() -> int | None:
            while not lines.empty():
                line = lines.get_nowait()
                seen.append(line)
                m = FORWARDING.search(line)
                if m:
                    found.append(int(m.group(1)))
            if proc.poll() is not None:
                raise FinalError("".join(seen) or f"kubectl exited {proc.returncode}")
            return found[0] if found and _port_open(found[0]) else None

        try:
            try:
                local = wait_for(ready, f"kubectl port-forward {target} {port}", timeout, poll=0.05)
            except Exception as exc:
                raise CommandError(f"port-forward {target} {port}", argv, proc.returncode or -1,
                                   "".join(seen) or str(exc)) from exc
            yield local
        finally:
            end_process(proc)


def connect() -> ClusterHandle:
    """The cluster named by ``KIND_CLUSTER`` (kind | kubeconfig), made ready."""
    mode = os.environ.get("KIND_CLUSTER", "kind")
    if mode == "kubeconfig":
        from .cluster.kubeconfig import KubeconfigCluster

        ok, why = KubeconfigCluster.available()
        if not ok:
            raise BackendUnavailable(f"KIND_CLUSTER=kubeconfig: {why}")
        c = KubeconfigCluster(existing_namespace="default")
        return ClusterHandle(c.kubectl.kubeconfig or (os.environ.get("KUBECONFIG") or None), c.kubectl.context,
                             loader=c.load_image)
    if mode != "kind":
        raise BackendUnavailable(f"KIND_CLUSTER={mode!r}: use kind (default) or kubeconfig")
    from .cluster.kind.backend import KindCluster

    ok, why = KindCluster.available()
    if not ok:
        raise BackendUnavailable(f"no kind cluster: {why} (or set KIND_CLUSTER=kubeconfig)")
    c = KindCluster()
    c.ensure_cluster()
    return ClusterHandle(c.kubectl.kubeconfig, c.kubectl.context, kind_name=c.cluster_name)


@pytest.fixture(scope="session")
def kind_cluster() -> ClusterHandle:
    """The course's cluster (see the module docstring); a missing one fails the test with how to get it."""
    try:
        return connect()
    except BackendUnavailable as exc:
        pytest.fail(f"kind_cluster: {exc}", pytrace=False)
