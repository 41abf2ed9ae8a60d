"""``SimCluster``: the offline backend behind the ``Cluster`` protocol.

Why: so that every check runs for real where no cluster can, and learners get
feedback in seconds. It wires the pieces together: the store and API-server
write path, the controllers (scheduler, Deployment, ReplicaSet, kubelet,
endpoints, garbage collector, HorizontalPodAutoscaler), a metrics-server
(``top_pods``), the runtime (:class:`DockerRuntime` by
default, :class:`FakeRuntime` for unit tests) and the Service proxies.

Two modes, chosen by the runtime:

* real containers: real clock, controllers on a background thread, proxies
  forwarding real traffic. ``stop()`` (also registered with ``atexit``)
  removes every container, proxy and thread this object started; a start also
  sweeps containers left behind by dead processes.
* fake runtime: a fake clock that moves only in :meth:`step`; nothing sleeps.

What the sim does not model is listed in FIDELITY.md next to this file.
"""
from __future__ import annotations

import atexit
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from harness.cluster.base import ApiError, Invalid, NotFound, Obj

from . import rollout as ru
from .apiserver import ApiServer, BadRequest
from .clock import FakeClock, RealClock
from .deployment import DeploymentController
from .endpoints import EndpointsController
from .events import EventRecorder
from .hpa import HPAConfig, HPAController
from .kubelet import Kubelet
from .loop import Reconciler, Timers
from .metrics import MetricsScraper
from .nodes import NodeSpec, kind_like, node_object
from .patch import json_patch, merge_patch
from .podutil import controller_uid
from .proxy import ProxyManager
from .replicaset import ReplicaSetController
from .routing import GW_GROUP, RoutingController
from .scheduler import Scheduler
from .store import CLUSTER_SCOPED, ISTIO_GATEWAY, Store

log = logging.getLogger(__name__)

_ALIASES = {"deploy": "Deployment", "deployment": "Deployment", "deployments": "Deployment",
            "rs": "ReplicaSet", "replicaset": "ReplicaSet", "replicasets": "ReplicaSet",
            "po": "Pod", "pod": "Pod", "pods": "Pod", "svc": "Service", "service": "Service", "services": "Service",
            "ep": "Endpoints", "endpoints": "Endpoints", "endpointslice": "EndpointSlice",
            "endpointslices": "EndpointSlice", "no": "Node", "node": "Node", "nodes": "Node",
            "ns": "Namespace", "namespace": "Namespace", "namespaces": "Namespace", "cm": "ConfigMap",
            "configmap": "ConfigMap", "configmaps": "ConfigMap", "secret": "Secret", "secrets": "Secret",
            "ev": "Event", "event": "Event", "events": "Event", "hpa": "HorizontalPodAutoscaler",
            "horizontalpodautoscaler": "HorizontalPodAutoscaler", "horizontalpodautoscalers": "HorizontalPodAutoscaler",
            "httproute": "HTTPRoute", "httproutes": "HTTPRoute", "httproutes.gateway.networking.k8s.io": "HTTPRoute",
            "gateway": "Gateway", "gateways": "Gateway", "gtw": "Gateway", "gateways.gateway.networking.k8s.io": "Gateway",
            "gatewayclass": "GatewayClass", "gatewayclasses": "GatewayClass", "gc": "GatewayClass",
            "referencegrant": "ReferenceGrant", "referencegrants": "ReferenceGrant",
            "virtualservice": "VirtualService", "virtualservices": "VirtualService", "vs": "VirtualService",
            "virtualservices.networking.istio.io": "VirtualService", "destinationrule": "DestinationRule",
            "destinationrules": "DestinationRule", "dr": "DestinationRule",
            "gateways.networking.istio.io": ISTIO_GATEWAY, "gateway.networking.istio.io": ISTIO_GATEWAY}


def kind_of(kind: str) -> str:
    return _ALIASES.get(kind.lower(), kind) if kind and kind[0].islower() else kind


class SimCluster:
    """See the module docstring. ``runtime=None`` means :class:`DockerRuntime`.

    ``metrics_resolution``: metrics-server's scrape interval (s). ``hpa_sync_period``:
    the HPA controller's sync period (s); ``hpa_config`` sets the other
    ``--horizontal-pod-autoscaler-*`` flags (:class:`~.hpa.HPAConfig`).
    """

    name = "sim"

    def __init__(self, *, runtime=None, clock=None, namespace: str = "lab", nodes: list[NodeSpec] | None = None,
                 propagation_delay: float = 1.0, tick: float = 0.1, seed: int = 0, probe_workers: int = 8,
                 metrics_resolution: float = 15.0, hpa_sync_period: float | None = None,
                 hpa_config: HPAConfig | None = None, router_seed: int | None = None,
                 custom_metrics: bool = False, scrape_interval: float = 2.0):
        self.namespace = namespace
        # Lab 05: a real Prometheus scraping the pods, and custom.metrics.k8s.io answered from it
        self._custom_metrics_wanted, self._scrape_interval = custom_metrics, scrape_interval
        self.prometheus = self.pod_targets = self.custom_metrics = None
        if metrics_resolution <= 0:
            raise ValueError("metrics_resolution must be positive")
        self._metrics_resolution = metrics_resolution
        self._hpa_config = HPAConfig(**{**(hpa_config or HPAConfig()).__dict__,
                                        **({"sync_period": hpa_sync_period} if hpa_sync_period else {})})
        self._runtime_arg, self._clock_arg = runtime, clock
        self._nodes = nodes if nodes is not None else kind_like()
        self._delay, self._tick, self._seed, self._probe_workers = propagation_delay, tick, seed, probe_workers
        self._router_seed = seed if router_seed is None else router_seed
        self._started = self._stopped = False
        self._api_server = None           # the REST API, started on demand (write_kubeconfig)
        if runtime is not None:
            self._build(runtime)

    # ---- wiring -----------------------------------------------------------------------
    def _build(self, runtime) -> None:
        self.runtime = runtime
        self.clock = self._clock_arg or (RealClock() if runtime.real else FakeClock())
        self.store = Store(self.clock, seed=self._seed)
        self.timers = Timers()
        self.recorder = EventRecorder(self.store, self.clock)
        self.api = ApiServer(self.store, self.clock, namespace=self.namespace)
        self.executor = ThreadPoolExecutor(self._probe_workers, thread_name_prefix="sim-probe") if runtime.real else None
        self.scheduler = Scheduler(self.store, self.recorder, self.clock, self.timers)
        self.deployments = DeploymentController(self.store, self.recorder, self.clock, self.timers)
        self.replicasets = ReplicaSetController(self.store, self.recorder, self.clock, self.timers, self.api.create_pod)
        self.kubelet = Kubelet(self.store, self.recorder, self.clock, self.timers, runtime, self.executor)
        self.endpoints = EndpointsController(self.store, self.clock, self.timers, self._delay)
        self.metrics = MetricsScraper(self.store, self.kubelet, runtime, self.clock, self.timers,
                                      resolution=self._metrics_resolution, threaded=runtime.real)
        if self._custom_metrics_wanted and runtime.real:
            from .custom_metrics import PrometheusAdapter
            from .prometheus import PodTargets, PrometheusServer
            self.prometheus = PrometheusServer(self._scrape_interval)
            self.pod_targets = PodTargets(self.store, runtime, self.prometheus)
            # the adapter's window: 5 scrapes (10 s at the default 2 s scrape interval)
            self.custom_metrics = PrometheusAdapter(self.store, self.prometheus, window_s=5 * self._scrape_interval)
        self.hpa = HPAController(self.store, self.recorder, self.clock, self.timers, self.metrics, self._hpa_config,
                                 custom_metrics=self.custom_metrics)
        self.proxies = ProxyManager(self._resolve)
        self.routing = RoutingController(self.store, self.clock, self.timers, self.endpoints, runtime,
                                         propagation_delay=self._delay, seed=self._router_seed)
        self.loop = Reconciler(self.store, self.clock, self.timers,
                               [self.metrics.sync, self.hpa.sync, self.deployments.sync, self.replicasets.sync,
                                self.scheduler.sync, self.kubelet.sync, self.endpoints.sync, self.routing.sync,
                                self.api.collect_garbage,
                                *([self.pod_targets.sync] if self.pod_targets else [])], runtime, tick=self._tick)

    def _resolve(self, key: tuple) -> list[tuple[str, int]]:
        out = []
        for b in self.endpoints.backends(*key):
            addr = self.runtime.address(b.container_id, b.port) if b.container_id else None
            if addr is not None:
                out.append(addr)
        return out

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        if self._started:
            return
        if self._runtime_arg is None:
            from .docker_runtime import DockerRuntime, sweep_stale
            rt = DockerRuntime()
            sweep_stale(rt.client)
            self._build(rt)
        self._started, self._stopped = True, False
        for i, spec in enumerate(self._nodes):
            self.store.create(node_object(spec, i))
        self.store.create({"apiVersion": "v1", "kind": "Namespace",
                           "metadata": {"name": self.namespace,
                                        "labels": {"kubernetes.io/metadata.name": self.namespace,
                                                   "pod-security.kubernetes.io/enforce": "baseline"}},
                           "status": {"phase": "Active"}})
        if self.prometheus is not None:
            self.prometheus.start()   # a missing binary: GradingError with the install command
        if self.runtime.real:
            atexit.register(self.stop)
            self.store.watch(lambda ev, obj: self.loop.poke())
            self.loop.start()

    def stop(self) -> None:
        if not self._started or self._stopped:
            return
        self._stopped = True
        try:
            if self._api_server is not None:
                self._api_server.stop()
            self.loop.stop()
        finally:
            try:
                self.proxies.stop()
                self.routing.server.stop()
            finally:
                try:
                    self.metrics.shutdown()
                    self.kubelet.shutdown()
                finally:
                    self.runtime.cleanup()
                    if self.prometheus is not None:
                        self.prometheus.stop()
                    if self.executor is not None:
                        self.executor.shutdown(wait=False, cancel_futures=True)
                    try:
                        atexit.unregister(self.stop)
                    except Exception:  # noqa: BLE001
                        pass

    def __enter__(self) -> "SimCluster":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def step(self, seconds: float = 0.0) -> None:
        """Fake-clock mode: advance time by ``seconds``, running every controller on the way."""
        self.loop.step(seconds)

    def reconcile(self) -> None:
        """Run one controller pass now (either mode)."""
        self.loop.run_pass()

    # ---- test hooks ---------------------------------------------------------------------------
    @property
    def actions(self):
        return self.store.actions

    def prepend_reactor(self, verb: str, kind: str, fn) -> None:
        self.store.prepend_reactor(verb, kind_of(kind), fn)

    @property
    def warnings(self) -> list[str]:
        return self.api.warnings

    def service_backends(self, service: str, port: int, namespace: str | None = None) -> list[str]:
        """The pods a Service port is *programmed* to send to now (after the propagation delay)."""
        return [b.pod.split("/", 1)[1] for b in self.endpoints.backends(namespace or self.namespace, service, port)]

    # ---- Cluster protocol ----------------------------------------------------------------------
    def _ns(self, kind: str, namespace: str | None) -> str | None:
        return None if kind in CLUSTER_SCOPED else (namespace or self.namespace)

    def _touch(self) -> None:
        if self.runtime.real:
            self.loop.poke()

    def apply(self, objects: list[Obj]) -> list[Obj]:
        out = [self.api.apply(o) for o in objects]
        self._touch()
        return out

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        kind = kind_of(kind)
        return self.store.get(kind, self._ns(kind, namespace), name)

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        kind = kind_of(kind)
        return self.store.list(kind, self._ns(kind, namespace), label_selector)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        kind = kind_of(kind)
        self.api.delete(kind, self._ns(kind, namespace), name)
        if kind == "Service":
            for key in self.proxies.keys():
                if key[:2] == (self._ns(kind, namespace), name):
                    self.proxies.close(key)
        if kind in ("Gateway", ISTIO_GATEWAY):
            api = "gateway" if kind == "Gateway" else "istio"
            for key in self.routing.server.keys():
                if key[:3] == (api, self._ns(kind, namespace), name):
                    self.routing.server.close(key)
        self._touch()

    def patch(self, kind: str, name: str, patch: Obj | list[Obj], namespace: str | None = None,
              patch_type: str = "merge") -> Obj:
        kind = kind_of(kind)
        cur = self.store.get(kind, self._ns(kind, namespace), name)
        if patch_type == "json":
            new = json_patch(cur, patch)
        elif patch_type in ("merge", "strategic"):
            new = merge_patch(cur, patch, strategic=patch_type == "strategic")
        else:
            raise BadRequest(f"unknown patch type {patch_type!r}")
        if kind == "Node":   # `kubectl patch node --subresource=status` for fake extended resources
            out = cur
            if new.get("status") != cur.get("status"):
                st = new.setdefault("status", {})
                cap = st.get("capacity") or {}
                # the kubelet copies capacity into allocatable on its next status update
                st["allocatable"] = {k: (st.get("allocatable") or {}).get(k, v) for k, v in cap.items()}
                new["metadata"].pop("resourceVersion", None)
                out = self.store.update(new, subresource="status")
            if new.get("spec") != cur.get("spec") or new["metadata"].get("labels") != cur["metadata"].get("labels"):
                out = self.api.update(self.api.admit(new, out), out)
        else:
            out = self.api.update(self.api.admit(new, cur), cur)
        self._touch()
        return out

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False, tail: int = 50) -> str:
        p = self.get("Pod", pod)
        names = [c["name"] for c in p["spec"]["containers"]]
        if container is None:
            if len(names) > 1:
                raise BadRequest(f"a container name must be specified for pod {pod}, choose one of: "
                                 f"[{' '.join(names)}]")
            container = names[0]
        if container not in names:
            raise BadRequest(f"container {container} is not valid for pod {pod}")
        w = self.kubelet.worker(p["metadata"]["uid"])
        cw = next((c for c in w.containers if c.name == container), None) if w else None
        if previous:
            if cw is None or not cw.old_cids:
                raise BadRequest(f'previous terminated container "{container}" in pod "{pod}" not found')
            return self.runtime.logs(cw.old_cids[-1], tail)
        if cw is None or cw.cid is None:
            raise BadRequest(f'container "{container}" in pod "{pod}" is waiting to start: '
                             f'{(cw.waiting or ("ContainerCreating",))[0] if cw else "ContainerCreating"}')
        return self.runtime.logs(cw.cid, tail)

    def events(self, namespace: str | None = None, *, involved_kind: str | None = None,
               involved_name: str | None = None) -> list[Obj]:
        return self.recorder.list(namespace or self.namespace, involved_kind=involved_kind,
                                  involved_name=involved_name)

    def service_url(self, service: str, port: int | str) -> str:
        svc = self.get("Service", service)
        for p in svc["spec"].get("ports") or []:
            if port in (p["port"], p.get("name")):
                local = self.proxies.ensure((svc["metadata"]["namespace"], service, p["port"]))
                return f"http://127.0.0.1:{local}"
        raise NotFound(f'service "{service}" has no port {port!r}', kind="Service", name=service)

    def gateway_url(self, name: str, namespace: str | None = None, *, api: str | None = None) -> str:
        """``http://127.0.0.1:PORT`` of a Gateway's first HTTP listener (Gateway API), or of an Istio
        Gateway's HTTP servers (``networking.istio.io``; VirtualServices bound to it route there).

        When both kinds exist with that name the Gateway API one wins unless ``api`` says
        ``"networking.istio.io"``. Each request is routed on its own (weighted choice per request);
        responses carry ``x-sim-backend: <service>``. Raises NotFound without such a Gateway or
        listener."""
        ns = namespace or self.namespace
        if api in (None, GW_GROUP):
            gw = self.store.try_get("Gateway", ns, name)
            if gw is not None:
                for l in gw["spec"].get("listeners") or []:
                    if l.get("protocol") == "HTTP":
                        return f"http://127.0.0.1:{self.routing.server.ensure(('gateway', ns, name, l['name']))}"
                raise NotFound(f'gateway "{name}" has no HTTP listener', kind="Gateway", name=name)
        if api in (None, "networking.istio.io"):
            ig = self.store.try_get(ISTIO_GATEWAY, ns, name)
            if ig is not None:
                if not any(str((s.get("port") or {}).get("protocol", "")).upper() in ("HTTP", "HTTP2", "GRPC")
                           for s in (ig.get("spec") or {}).get("servers") or []):
                    raise NotFound(f'gateway "{name}" has no HTTP server', kind="Gateway", name=name)
                return f"http://127.0.0.1:{self.routing.server.ensure(('istio', ns, name, 'http'))}"
        raise NotFound(f'gateways.gateway.networking.k8s.io "{name}" not found', kind="Gateway", name=name)

    def load_image(self, image: str) -> None:
        if not self.runtime.image_present(image):
            raise NotFound(f'image "{image}" is not present in the local Docker engine (the sim\'s node image '
                           "store); build it first - the sim never pulls", kind="Image", name=image)

    def top_pods(self, namespace: str | None = None) -> list[Obj]:
        """``metrics.k8s.io/v1beta1`` PodMetrics of the namespace, from the sim's metrics-server
        (empty until a pod's containers have been scraped twice; see ``metrics.py``)."""
        return self.metrics.list(namespace or self.namespace)

    def pods_custom_metric(self, metric: str, label_selector: str | None = None,
                           namespace: str | None = None) -> dict[str, float]:
        """The pods metric as ``custom.metrics.k8s.io`` serves it (custom_metrics.py), from Prometheus."""
        if self.custom_metrics is None:
            raise NotFound("the server could not find the requested resource (custom.metrics.k8s.io is not "
                           "served: this cluster runs without custom_metrics)", kind="MetricValueList")
        from .custom_metrics import MetricNotFound, MetricsUnavailable
        try:
            values = self.custom_metrics.pod_values(namespace or self.namespace, metric, label_selector)
        except (MetricNotFound, MetricsUnavailable) as exc:
            raise NotFound(str(exc), kind="MetricValueList", name=metric) from None
        return {pod: milli / 1000 for pod, (milli, _ts) in values.items()}

    def rollout_undo(self, deployment: str, to_revision: int | None = None, namespace: str | None = None) -> Obj:
        """``kubectl rollout undo`` (k/kubectl ``polymorphichelpers/rollback.go``)."""
        d = self.get("Deployment", deployment, namespace)
        if d["spec"].get("paused"):
            raise Invalid("you cannot rollback a paused deployment; resume it first with "
                          "'kubectl rollout resume' and try again", kind="Deployment", name=deployment)
        rss = [rs for rs in self.list("ReplicaSet", namespace) if controller_uid(rs) == d["metadata"]["uid"]]
        by_rev = {ru.revision(rs): rs for rs in rss}
        if not by_rev:
            raise NotFound(f'no rollout history found for deployment "{deployment}"', kind="Deployment",
                           name=deployment)
        if not to_revision:
            revs = sorted(by_rev)
            if len(revs) < 2:
                raise NotFound(f'no rollout history found for deployment "{deployment}"', kind="Deployment",
                               name=deployment)
            to_revision = revs[-2]
        if to_revision not in by_rev:
            raise NotFound(f"unable to find specified revision {to_revision} in history", kind="Deployment",
                           name=deployment)
        tmpl = json.loads(json.dumps(by_rev[to_revision]["spec"]["template"]))
        (tmpl.get("metadata") or {}).get("labels", {}).pop(ru.HASH_LABEL, None)
        if ru.equal_ignore_hash(tmpl, d["spec"]["template"]):
            self.api.warnings.append(f"skipped rollback (current template already matches revision {to_revision})")
            return d
        d["spec"]["template"] = tmpl
        ann = {k: v for k, v in (by_rev[to_revision]["metadata"].get("annotations") or {}).items()
               if k not in ru.SKIP_ANNOTATIONS}
        d["metadata"].setdefault("annotations", {}).update(ann)
        out = self.api.update(self.api.admit(d, d), d)
        self._touch()
        return out

    def write_kubeconfig(self, directory: Path) -> tuple[Path, str | None]:
        """A kubeconfig for this cluster's REST API (started on 127.0.0.1 on first use, stopped with
        the cluster), so that kubectl and Helm's engine reach the grading cluster as they would kind."""
        if self._api_server is None:
            from .api import ApiHttpServer
            self._api_server = ApiHttpServer(self)
            self._api_server.start()
        path = Path(directory) / "kubeconfig"
        cfg = {"apiVersion": "v1", "kind": "Config", "current-context": "sim",
               "clusters": [{"name": "sim", "cluster": {"server": self._api_server.url}}],
               "users": [{"name": "sim", "user": {}}],
               "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim",
                                                        "namespace": self.namespace}}]}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        path.chmod(0o600)
        return path, "sim"

    def collect_diagnostics(self, directory: Path) -> None:
        directory = Path(directory)
        (directory / "logs").mkdir(parents=True, exist_ok=True)
        evs = self.events()
        lines = [f'{e["lastTimestamp"]}  {e["type"]:<7} {e["reason"]:<20} {e["involvedObject"]["kind"]}/'
                 f'{e["involvedObject"]["name"]}  (x{e["count"]}) {e["message"]}' for e in evs]
        (directory / "events.txt").write_text("\n".join(lines) + "\n")
        for kind, fname in (("Pod", "pods.yaml"), ("Deployment", "deployments.yaml"), ("ReplicaSet", "replicasets.yaml"),
                            ("Service", "services.yaml"), ("Endpoints", "endpoints.yaml"),
                            ("HorizontalPodAutoscaler", "horizontalpodautoscalers.yaml"),
                            ("Gateway", "gateways.yaml"), ("HTTPRoute", "httproutes.yaml"),
                            ("VirtualService", "virtualservices.yaml")):
            (directory / fname).write_text(yaml.safe_dump_all(self.list(kind), sort_keys=False))
        (directory / "nodes.yaml").write_text(yaml.safe_dump_all(self.list("Node"), sort_keys=False))
        for pod in self.list("Pod"):
            for c in pod["spec"]["containers"]:
                for prev in (False, True):
                    try:
                        text = self.logs(pod["metadata"]["name"], c["name"], previous=prev, tail=200)
                    except ApiError:
                        continue
                    suffix = ".previous" if prev else ""
                    (directory / "logs" / f'{pod["metadata"]["name"]}_{c["name"]}{suffix}.log').write_text(text)
        extra = {"backend": "sim", "clock": "real" if self.clock.real else "fake", "now": self.clock.now(),
                 "propagation_delay_s": self._delay, "controller_errors": self.loop.errors,
                 "warnings": self.api.warnings, "proxy": self.proxies.stats() if self.proxies.keys() else {},
                 "router": self.routing.server.stats() if self.routing.server.keys() else {},
                 "metrics": self.metrics.stats(),
                 "fidelity": "see harness/cluster/sim/FIDELITY.md"}
        (directory / "sim.json").write_text(json.dumps(extra, indent=2))
