"""``KindCluster``: the learner's default backend, a local kind cluster.

Part of the ``Cluster`` protocol (``harness/cluster/base.py``); what it adds
to :class:`.real.RealCluster`:

* ``start``: create the course's cluster or reuse it (:mod:`.cluster`), wait
  for nodes Ready, set up the fake GPU worker, install addons
  (:mod:`.addons`), then create this run's namespace.
* ``stop``: delete the namespace; delete the cluster only when
  ``KEEP_CLUSTER=0`` (kept by default: creating one takes minutes).
* ``service_url``: a companion NodePort Service ``<svc>-grader`` selecting the
  same pods, with a nodePort from the range kind-config.yaml publishes on
  127.0.0.1, so load goes through kube-proxy and spreads over the endpoints.
  It is labelled ``app.kubernetes.io/managed-by=mlops-labs-harness``; checks
  that count Services should skip that label.
* ``load_image``: ``docker save`` + ``kind load image-archive`` (:mod:`.images`).
* ``gateway_url``: with the ``gateway-api`` addon (Lab 04), every Gateway of
  class ``mlops-labs`` is served by Traefik's ``web`` entrypoint, published as
  NodePort 30090 on 127.0.0.1. The URL is given once the Gateway is
  ``Programmed``; a wrong class, a listener port other than 80, an Istio-only
  route or an old cluster without the port mapping each get their own message.

Why not pytest-kind(-ng)'s ``KindCluster``: its lifecycle is a few ``kind``
calls we make anyway, while it would bring a download path (forbidden here),
``load_docker_image`` (the ``kind load docker-image`` path that breaks with
Docker's containerd image store) and a ``port_forward`` that keeps retrying
after success and pins one pod. Our own lifecycle also adds what it lacks: a
creation lock, the GPU worker, addons, and waits with diagnostics.
"""
from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
from pathlib import Path
from typing import Any

from harness.cluster.base import ApiError, BackendUnavailable, Invalid, NotFound, Obj
from harness.waiting import DEFAULT_TIMEOUTS, Timeouts, WaitTimeout, wait_for

from . import addons as addons_mod
from . import images, stale
from .cli import INSTALL, Logger, Runner, WarnLogger, require, which
from .cluster import CONFIG, DEFAULT_NAME, GATEWAY_NODE_PORT, KindLifecycle, node_ports
from .diagnostics import summary
from .real import MANAGED_BY, RealCluster



def _env_flag(name: str, default: bool) -> bool:
    v = os.environ.get(name)
    return default if v is None or v == "" else v.strip().lower() not in ("0", "false", "no", "off")


def default_state_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mlops-labs" / "kind"


class KindCluster(RealCluster):
    """See the module docstring."""

    name = "kind"
    propagation_delay = 2.0   # route edits reach Traefik's data plane through its watch: give it this long
    GATEWAY_LISTENER_PORT = 80   # Traefik's `web` entrypoint; a Gateway listener binds to the same port

    def __init__(self, *, cluster_name: str | None = None, namespace: str | None = None,
                 keep_cluster: bool | None = None, addons: tuple[str, ...] = ("metrics-server",),
                 state_dir: Path | None = None, config: Path = CONFIG, node_image: str | None = None,
                 timeouts: Timeouts = DEFAULT_TIMEOUTS, log: Logger | None = None, runner: Runner | None = None,
                 api: Any = None):
        super().__init__(namespace=namespace, timeouts=timeouts, log=log or WarnLogger(), runner=runner, api=api)
        self.cluster_name = cluster_name or os.environ.get("KIND_CLUSTER_NAME") or DEFAULT_NAME
        self.keep_cluster = _env_flag("KEEP_CLUSTER", True) if keep_cluster is None else keep_cluster
        self.addons = tuple(addons)
        self.node_ports = node_ports(config)
        self.lifecycle = KindLifecycle(self.cluster_name, runner=self.runner,
                                       state_dir=state_dir or default_state_dir(), config=config,
                                       node_image=node_image or os.environ.get("KIND_NODE_IMAGE") or None,
                                       timeouts=timeouts, log=self.log)
        self._graders: dict[tuple[str, int], int] = {}
        self._stopped = False
        self.addon_sources: dict[str, str] = {}   # what each addon part was installed from
        self.reaped_namespaces: list[str] = []

    # ---- availability -------------------------------------------------------------------
    @staticmethod
    def available() -> tuple[bool, str]:
        """``kind``, ``kubectl`` and ``docker`` on PATH, and a Docker daemon answering."""
        missing = [t for t in ("kind", "kubectl", "docker") if which(t) is None]
        if missing:
            return False, "; ".join(f"{t} is not installed: {INSTALL[t]}" for t in missing)
        try:
            cp = subprocess.run([which("docker") or "docker", "info", "--format", "{{.ServerVersion}}"],
                                capture_output=True, text=True, timeout=15, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"the Docker daemon does not answer ({exc}): {INSTALL['docker']}"
        if cp.returncode != 0:
            return False, f"the Docker daemon does not answer ({(cp.stderr or cp.stdout).strip()}): {INSTALL['docker']}"
        return True, f"kind, kubectl and Docker {cp.stdout.strip()} found"

    # ---- lifecycle ------------------------------------------------------------------------
    def ensure_cluster(self) -> None:
        """Create or reuse the cluster and make it ready (nodes, GPU worker, addons)."""
        for tool in ("kind", "kubectl", "docker"):
            require(tool)
        self.lifecycle.ensure()
        self.kubectl.kubeconfig, self.kubectl.context = self.lifecycle.kubeconfig, self.lifecycle.context
        self.lifecycle.check_api(self.api)
        self.lifecycle.wait_nodes_ready(self.api, lambda: summary(self, "kube-system"))
        self.lifecycle.ensure_gpu_node(self.api, self.kubectl)
        if "gateway-api" in self.addons:
            self._check_gateway_port()
        self.reap_stale_namespaces()
        for name in self.addons:
            self.addon_sources.update(addons_mod.install(addons_mod.ADDONS[name], self.kubectl, self.api,
                                                         self.timeouts, log=self.log))
        for what, source in self.addon_sources.items():
            if "(offline" in source:
                self.warnings.append(f"{what}: {source}")

    def reap_stale_namespaces(self) -> list[str]:
        """Delete the namespaces of grading runs that are gone (:mod:`.stale`); returns their names."""
        gone = []
        for ns in self.api.list("Namespace", None, label_selector=stale.SELECTOR):
            name = ns["metadata"]["name"]
            why = None if name == self.namespace else stale.why_stale(ns)
            if why:
                with contextlib.suppress(NotFound):
                    self.api.delete("Namespace", name, None)
                self.log.warn(f"deleted namespace {name} left behind by a grading run: {why}")
                gone.append(name)
        self.reaped_namespaces += gone
        return gone

    def _check_gateway_port(self) -> None:
        """A cluster made from an older kind-config has no mapping for the Gateway's NodePort."""
        node = f"{self.cluster_name}-control-plane"
        res = self.runner.run(["docker", "port", node, f"{GATEWAY_NODE_PORT}/tcp"],
                              verb=f"read the port mappings of {node}", check=False)
        if res.returncode != 0 or f"127.0.0.1:{GATEWAY_NODE_PORT}" not in res.stdout:
            raise BackendUnavailable(
                f"kind cluster {self.cluster_name} does not publish the Gateway's NodePort {GATEWAY_NODE_PORT} on "
                f"127.0.0.1 (`docker port {node}`: {res.output.strip() or 'nothing'}); it was made from an older "
                "harness/cluster/kind-config.yaml. Run `make cluster-down`, then grade again to recreate it")

    def start(self) -> None:
        if self._started:
            return
        self.ensure_cluster()
        self.create_namespace()
        self._started, self._stopped = True, False
        atexit.register(self.stop)

    def stop(self) -> None:
        if not self._started or self._stopped:
            return
        self._stopped = True
        try:
            with contextlib.suppress(Exception):
                self.delete_namespace()
            if not self.keep_cluster:
                self.lifecycle.delete()
        finally:
            self._release()

    # ---- Cluster protocol ----------------------------------------------------------------
    def load_image(self, image: str) -> None:
        images.load(self.runner, self.cluster_name, image, timeout=self.timeouts.image_build)

    def service_url(self, service: str, port: int | str) -> str:
        svc, sp = self.service_port(service, port)
        selector = svc["spec"].get("selector")
        if not selector:
            raise Invalid(f'service "{service}" has no selector: the grader cannot reach its pods through a '
                          "NodePort", kind="Service", name=service)
        key = (service, int(sp["port"]))
        gname = f"{service}-grader" if not any(k[0] == service for k in self._graders if k != key) \
            else f"{service}-grader-{sp['port']}"
        gport = {"name": "http", "port": sp["port"], "targetPort": sp.get("targetPort", sp["port"]),
                 "protocol": sp.get("protocol", "TCP")}
        with contextlib.suppress(NotFound):
            cur = self.get("Service", gname)
            cp = (cur["spec"].get("ports") or [{}])[0]
            if cur["spec"].get("selector") != selector or cp.get("targetPort") != gport["targetPort"]:
                self.patch("Service", gname, {"spec": {"selector": selector, "ports": [{**gport,
                           "nodePort": cp["nodePort"]}]}})
            self._graders[key] = cp["nodePort"]
            return f"http://127.0.0.1:{cp['nodePort']}"
        self._graders[key] = self._create_grader(gname, selector, gport)
        return f"http://127.0.0.1:{self._graders[key]}"

    def gateway_url(self, gateway: str, namespace: str | None = None) -> str:
        ns = namespace or self.namespace
        if "gateway-api" not in self.addons:
            raise BackendUnavailable("this kind cluster was started without the gateway-api addon: grade Lab 04 "
                                     "through `make lab-4` (it installs Gateway API v1.3.0 CRDs and Traefik)")
        try:
            gw = self.get("Gateway", gateway, ns)
        except NotFound:
            raise BackendUnavailable(
                f'no Gateway API Gateway "{gateway}" in namespace {ns}: the kind cluster routes with Gateway API '
                f"(Traefik, GatewayClass {addons_mod.GATEWAY_CLASS}) only. An Istio Gateway + VirtualService needs "
                "Istio: grade it with BACKEND=sim, or BACKEND=kubeconfig on a cluster that runs Istio") from None
        cls = (gw.get("spec") or {}).get("gatewayClassName")
        if cls != addons_mod.GATEWAY_CLASS:
            raise Invalid(f'Gateway "{gateway}": spec.gatewayClassName is {cls!r}, but the kind cluster\'s Gateway '
                          f'implementation serves class "{addons_mod.GATEWAY_CLASS}": set spec.gatewayClassName: '
                          f"{addons_mod.GATEWAY_CLASS}", kind="Gateway", name=gateway)
        ports = [l.get("port") for l in (gw.get("spec") or {}).get("listeners") or [] if l.get("protocol") == "HTTP"]
        if self.GATEWAY_LISTENER_PORT not in ports:
            raise Invalid(f'Gateway "{gateway}": no HTTP listener on port {self.GATEWAY_LISTENER_PORT} (has '
                          f"{ports or 'none'}); Traefik serves a listener only on the port of one of its entrypoints: "
                          f"set spec.listeners[].port: {self.GATEWAY_LISTENER_PORT}", kind="Gateway", name=gateway)

        def programmed() -> Obj | bool:
            g = self.get("Gateway", gateway, ns)
            conds = {c.get("type"): c for c in (g.get("status") or {}).get("conditions") or []}
            p, a = conds.get("Programmed") or {}, conds.get("Accepted") or {}
            if p.get("status") == "True" and p.get("observedGeneration", 0) >= g["metadata"].get("generation", 0):
                return g
            if a.get("status") == "False":   # Traefik writes no Programmed condition then: say why instead
                bad = [f'listener {l.get("name")}: {c.get("reason")} {c.get("message", "")}'.rstrip()
                       for l in (g.get("status") or {}).get("listeners") or []
                       for c in l.get("conditions") or [] if c.get("status") == "False"]
                raise RuntimeError(f"Accepted=False {a.get('reason', '')}: {'; '.join(bad) or a.get('message', '')}")
            raise RuntimeError(f"Programmed={p.get('status', 'Unknown')} {p.get('reason', '')}: "
                               f"{p.get('message', 'no status from the implementation yet')}")

        try:
            wait_for(programmed, f'Gateway "{gateway}" Programmed by Traefik', self.timeouts.service_endpoints,
                     poll=self.timeouts.poll)
        except WaitTimeout as exc:
            raise Invalid(f"{exc}. Is the Traefik pod running (kubectl -n mlops-gateway get pods) and the Gateway "
                          "valid (kubectl describe gateway)?", kind="Gateway", name=gateway) from None
        others = [g for g in self.api.list("Gateway", None)
                  if (g.get("spec") or {}).get("gatewayClassName") == addons_mod.GATEWAY_CLASS
                  and g["metadata"]["namespace"] != ns]
        if others:   # never just a warning: their routes would answer some of this run's requests
            names = ", ".join(f'{g["metadata"]["namespace"]}/{g["metadata"]["name"]}' for g in others)
            spaces = " ".join(sorted({g["metadata"]["namespace"] for g in others}))
            raise BackendUnavailable(
                f"other Gateways of class {addons_mod.GATEWAY_CLASS} share Traefik's port "
                f"{self.GATEWAY_LISTENER_PORT} with this run's ({names}): their routes can answer this run's "
                "requests. If no other grading run is in progress, delete them: "
                f"`kubectl --kubeconfig {self.lifecycle.kubeconfig} --context {self.lifecycle.context} delete "
                f"namespace {spaces}`, then grade again")
        return f"http://127.0.0.1:{GATEWAY_NODE_PORT}"

    def _create_grader(self, name: str, selector: dict, port: Obj) -> int:
        used = {p.get("nodePort") for s in self.api.list("Service", None) for p in s["spec"].get("ports") or []}
        last: ApiError | None = None
        for np in (n for n in self.node_ports if n not in used):
            obj = {"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": self.namespace, "labels": dict(MANAGED_BY)},
                   "spec": {"type": "NodePort", "selector": selector, "ports": [{**port, "nodePort": np}]}}
            try:
                self.api.create(obj, self.namespace)
                return np
            except Invalid as exc:   # taken meanwhile by another run: "provided port is already allocated"
                if "already allocated" not in exc.message:
                    raise
                last = exc
        raise BackendUnavailable(
            f"failed to expose service {name}: every NodePort published on 127.0.0.1 "
            f"({self.node_ports[0]}-{self.node_ports[-1]}) is in use"
            + (f" ({last.message})" if last else "")
            + "; delete namespaces of old grading runs (kubectl get ns -l app.kubernetes.io/managed-by="
              "mlops-labs-harness) or run `make cluster-down`")

    def diagnostics_extra(self) -> dict:
        return {"backend": "kind", "cluster": self.cluster_name, "context": self.lifecycle.context,
                "gpu_source": self.lifecycle.gpu_source, "addons": list(self.addons),
                "kubeconfig": self.lifecycle.kubeconfig, "keep_cluster": self.keep_cluster,
                "addon_sources": dict(self.addon_sources), "reaped_namespaces": list(self.reaped_namespaces),
                "grader_node_ports": {f"{k[0]}:{k[1]}": v for k, v in self._graders.items()},
                "warnings": self.warnings}
