"""``KubeconfigCluster``: grade on any existing cluster (``BACKEND=kubeconfig CONTEXT=...``).

For real clusters with real GPUs. It is namespaced: it creates this run's
namespace (or, with ``NAMESPACE=...``, uses an existing one and leaves it in
place), and makes no cluster-wide change: no addons, no node patches, no
cluster creation. Everything else is the shared real-cluster code in
``harness/cluster/kind/real.py``.

``service_url``: a NodePort is not reachable from here in general. A
``LoadBalancer`` Service with an ingress address is used as is. Otherwise the
URL is the API server's proxy to the Service
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy``) behind one ``kubectl proxy``
on 127.0.0.1 (it adds the kubeconfig's credentials): kube-apiserver picks a ready
endpoint per request, so load spreads and a pod that left the endpoints stops
getting traffic (``kubectl port-forward svc/`` pins one pod, which fails every
check that hangs or kills a pod).

``KUBECONFIG`` may list several files (``a:b``); they are merged as kubectl merges them
(the first file to define a context, cluster or user wins, and the first file that sets
``current-context`` decides it). kubectl gets the list through its environment (its
``--kubeconfig`` takes one file), the API client gets the same list, and both get the same
explicit context.

``load_image``: a real cluster pulls its images. Three cases:

* every node is labelled ``mlops-labs.io/shares-host-docker=true`` (the sim's API server: its
  pods are containers of this machine's Docker daemon): nothing to do, logged;
* ``IMAGE_REGISTRY=host:port/prefix`` is set: the image is tagged and pushed there
  (:mod:`.kind.registry`), and the image references this backend sends to the API server are
  rewritten to the pushed names, and mapped back on reads, so checks see the learner's names;
* otherwise :class:`BackendUnavailable` (exit 2) saying how to make the images available.
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

from harness.cluster.base import SHARES_HOST_DOCKER_LABEL, ApiError, BackendUnavailable, Obj
from harness.errors import CommandError
from harness.waiting import DEFAULT_TIMEOUTS, FinalError, Timeouts, wait_for

from .kind import registry
from .kind.cli import INSTALL, Logger, Runner, require, which
from .kind.real import RealCluster

_SERVING = re.compile(r"Starting to serve on 127\.0\.0\.1:(\d+)")


def kubeconfig_files(paths: str | None) -> list[str]:
    """The existing files of a ``KUBECONFIG``-style list, in order (kubectl skips missing ones)."""
    out = []
    for p in (paths or "").split(os.pathsep):
        p = os.path.expanduser(p)
        if p and os.path.exists(p) and p not in out:
            out.append(p)
    return out


def _current_context(paths: str | None) -> str | None:
    """kubectl's rule: the first file that sets ``current-context`` decides it (the Python client's
    merger lets the last one win)."""
    import yaml

    for p in kubeconfig_files(paths):
        with open(p) as fh:
            cur = (yaml.safe_load(fh) or {}).get("current-context")
        if cur:
            return cur
    return None


def _contexts(kubeconfig: str | None) -> tuple[list[str], str | None]:
    """Context names over every file of the list (first definition wins), and the current one."""
    import yaml

    paths = kubeconfig or "~/.kube/config"
    files = kubeconfig_files(paths)
    if not files:
        raise FileNotFoundError(f"no kubeconfig file in {paths}")
    names: list[str] = []
    for p in files:
        with open(p) as fh:
            doc = yaml.safe_load(fh) or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{p} is not a kubeconfig (not a mapping)")
        names += [c["name"] for c in doc.get("contexts") or [] if c.get("name") not in names]
    return names, _current_context(paths)


class KubeconfigCluster(RealCluster):
    """See the module docstring."""

    name = "kubeconfig"

    def __init__(self, *, context: str | None = None, kubeconfig: str | None = None, namespace: str | None = None,
                 timeouts: Timeouts = DEFAULT_TIMEOUTS, log: Logger | None = None, runner: Runner | None = None,
                 api: Any = None, existing_namespace: str | None = None):
        # ``existing_namespace`` / NAMESPACE=... name an existing namespace to use and keep; ``namespace``
        # (what the grader passes: grade-<lab>-<id>, as to kind) names the run's own, created and deleted here.
        existing = existing_namespace or os.environ.get("NAMESPACE") or None
        super().__init__(namespace=existing or namespace, timeouts=timeouts, log=log, runner=runner, api=api)
        self._own_namespace = existing is None
        paths = kubeconfig or os.environ.get("KUBECONFIG") or None
        self.api_kubeconfig = paths                       # the API client merges a list itself
        if paths and os.pathsep in paths:                 # kubectl's --kubeconfig takes one file
            self.kubectl.kubeconfig = None
            self.runner.env = {**(self.runner.env or os.environ), "KUBECONFIG": paths}
        else:
            self.kubectl.kubeconfig = paths
        self.kubectl.context = context or os.environ.get("CONTEXT") or None
        if self.kubectl.context is None and paths:
            self.kubectl.context = _current_context(paths)   # both tools then use the same context
        reg = os.environ.get(registry.ENV, "").strip()
        self.registry = registry.ImageRegistry(reg) if reg else None
        self._proxy: tuple[subprocess.Popen, int] | None = None     # `kubectl proxy` and its port
        self._stopped = False

    @staticmethod
    def available(context: str | None = None, kubeconfig: str | None = None) -> tuple[bool, str]:
        """``kubectl`` on PATH and the context present in the kubeconfig (no network)."""
        if which("kubectl") is None:
            return False, f"kubectl is not installed: {INSTALL['kubectl']}"
        context = context or os.environ.get("CONTEXT") or None
        try:
            names, current = _contexts(kubeconfig or os.environ.get("KUBECONFIG") or None)
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
            if self._proxy is not None:
                end_process(self._proxy[0])
                self._proxy = None
            with contextlib.suppress(Exception):
                self.delete_namespace()
        finally:
            self._release()

    # ---- Cluster protocol ------------------------------------------------------------------
    def load_image(self, image: str) -> None:
        if self._nodes_share_host_docker():
            self.log.info(f"load_image {image}: every node carries {SHARES_HOST_DOCKER_LABEL}=true (its containers "
                          "run on this machine's Docker daemon): the image is already there")
            return
        if self.registry is None:
            raise BackendUnavailable(
                f"the kubeconfig backend cannot copy the lab image {image} into the nodes of context "
                f"{self.kubectl.context or '(current)'}: their kubelets pull images from a registry. Set "
                f"{registry.ENV}=host:port/prefix (a registry those nodes pull from and you can push to; "
                "`docker login` first if it needs one) and grade again: the harness tags and pushes the lab images "
                f"there and points the manifests it applies at them ({image} -> host:port/prefix/{image})")
        self.registry.push(image, log=self.log.info)

    def _nodes_share_host_docker(self) -> bool:
        try:
            nodes = self.api.list("Node", None)
        except ApiError:   # not allowed to list nodes: a real, shared cluster
            return False
        return bool(nodes) and all(((n["metadata"].get("labels") or {}).get(SHARES_HOST_DOCKER_LABEL)) == "true"
                                   for n in nodes)

    # ---- image names: the registry's towards the API server, the learner's towards checks -----------
    def apply(self, objects: list[Obj]) -> list[Obj]:
        if self.registry is None:
            return super().apply(objects)
        return [self.registry.from_cluster(o) for o in super().apply([self.registry.to_cluster(o) for o in objects])]

    def patch(self, kind: str, name: str, patch, namespace: str | None = None, patch_type: str = "merge") -> Obj:
        if self.registry is None:
            return super().patch(kind, name, patch, namespace, patch_type)
        return self.registry.from_cluster(super().patch(kind, name, self.registry.to_cluster(patch), namespace,
                                                        patch_type))

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        obj = super().get(kind, name, namespace)
        return self.registry.from_cluster(obj) if self.registry else obj

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        objs = super().list(kind, namespace, label_selector)
        return [self.registry.from_cluster(o) for o in objs] if self.registry else objs

    def service_url(self, service: str, port: int | str) -> str:
        svc, sp = self.service_port(service, port)
        for ing in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            host = ing.get("ip") or ing.get("hostname")
            if svc["spec"].get("type") == "LoadBalancer" and host:
                return f"http://{host}:{sp['port']}"
        ref = sp.get("name") or sp["port"]
        return f"http://127.0.0.1:{self._api_proxy()}/api/v1/namespaces/{self.namespace}/services/{service}:{ref}/proxy"

    def _api_proxy(self) -> int:
        """The local port of this backend's ``kubectl proxy`` (started once)."""
        if self._proxy is not None and self._proxy[0].poll() is None:
            return self._proxy[1]
        argv = self.kubectl.base() + ["proxy", "--address", "127.0.0.1", "--port", "0"]
        argv[0] = require("kubectl")
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=self.runner.env)
        lines: queue.Queue[str] = queue.Queue()
        seen: list[str] = []
        threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()

        def serving() -> int | None:
            while not lines.empty():
                line = lines.get_nowait()
                seen.append(line)
                m = _SERVING.search(line)
                if m:
                    return int(m.group(1))
            if proc.poll() is not None:
                raise FinalError("".join(seen))
            return None

        try:
            self._proxy = (proc, wait_for(serving, "kubectl proxy", self.timeouts.container_ready, poll=0.05))
            return self._proxy[1]
        except Exception as exc:
            end_process(proc)
            raise CommandError("start kubectl proxy (to reach Services through the API server)", argv,
                               proc.returncode or -1, "".join(seen) or str(exc)) from exc

    def diagnostics_extra(self) -> dict:
        return {"backend": "kubeconfig", "context": self.kubectl.context, "kubeconfig": self.api_kubeconfig,
                "image_registry": self.registry.base if self.registry else None,
                "pushed_images": dict(self.registry.pushed) if self.registry else {},
                "own_namespace": self._own_namespace, "warnings": self.warnings,
                "api_proxy_port": self._proxy[1] if self._proxy else None}


def _pump(proc: subprocess.Popen, lines: "queue.Queue[str]") -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def end_process(proc: subprocess.Popen) -> None:
    """Stop a helper process (kubectl proxy / port-forward): SIGTERM, then SIGKILL after 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
