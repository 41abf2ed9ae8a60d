"""What every real-cluster backend shares: the ``Cluster`` protocol over an API server.

``RealCluster`` implements the protocol methods that read and write objects
(apply through ``kubectl apply``, everything else through :mod:`.api`), the
run's namespace, logs, events, metrics, ``rollout undo`` and diagnostics.
The kind backend (:mod:`.backend`) adds cluster lifecycle, image loading and
NodePort URLs; the kubeconfig backend (``harness/cluster/kubeconfig.py``)
adds port-forward URLs. Neither needs the other.

Why ``kubectl apply`` for apply: it is what learners run, it does the
three-way merge, and with ``--validate=strict`` the API server itself rejects
unknown fields; its stderr carries the server's message, mapped back to
:class:`Invalid` / :class:`Forbidden` / ... by :func:`.cli.api_error_from_kubectl`.
Objects are applied one at a time, in order, and the first error stops.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import socket
from pathlib import Path
from typing import Any

from harness.cluster.base import BackendUnavailable, ApiError, NotFound, Obj
from harness.waiting import DEFAULT_TIMEOUTS, Timeouts, WaitTimeout, wait_for

from . import diagnostics
from .api import Api, kind_of
from .cli import Kubectl, Logger, NoopLogger, Runner
from .diagnostics import Stuck

ENFORCE = "pod-security.kubernetes.io/enforce"
MANAGED_BY = {"app.kubernetes.io/managed-by": "mlops-labs-harness"}
# Who made a run's namespace, so a later run can tell a live run from one that was killed.
RUN_HOST, RUN_PID = "mlops-labs.io/run-host", "mlops-labs.io/run-pid"


def new_namespace_name(prefix: str = "grade") -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def _event_time(e: Obj) -> str:
    return (e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp")
            or e["metadata"].get("creationTimestamp") or "")


class RealCluster:
    """The shared part of the kind and kubeconfig backends. See the module docstring."""

    name = "real"

    def __init__(self, *, namespace: str | None = None, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 log: Logger | None = None, runner: Runner | None = None, api: Api | None = None):
        self.namespace = namespace or new_namespace_name()
        self.timeouts = timeouts
        self.log: Logger = log or NoopLogger()
        self.runner = runner or Runner(log=self.log)
        self._api = api
        self.kubectl = Kubectl(self.runner)
        self.warnings: list[str] = []
        self._own_namespace = True
        self._started = False
        self.api_kubeconfig: str | None = None   # what the API client reads, when not kubectl's file


    # ---- wiring (subclasses set kubeconfig/context before start) ------------------------
    @property
    def api(self) -> Api:
        if self._api is None:
            self._api = Api.from_kubeconfig(self.api_kubeconfig or self.kubectl.kubeconfig, self.kubectl.context)
        return self._api

    def _ns(self, kind: str, namespace: str | None) -> str | None:
        return None if not self.api.resource(kind).namespaced else (namespace or self.namespace)

    # ---- lifecycle helpers (subclasses define start/stop) --------------------------------
    def __enter__(self) -> "RealCluster":
        self.start()   # type: ignore[attr-defined]
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()   # type: ignore[attr-defined]

    def _release(self) -> None:
        """The last step of ``stop``: close the API client, forget the atexit hook."""
        if self._api is not None:
            self._api.close()
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)   # type: ignore[attr-defined]

    def service_port(self, service: str, port: int | str) -> tuple[Obj, Obj]:
        """The Service and its port entry matching ``port`` (number or name); NotFound otherwise."""
        svc = self.get("Service", service)
        sp = next((p for p in svc["spec"].get("ports") or [] if port in (p["port"], p.get("name"))), None)
        if sp is None:
            raise NotFound(f'service "{service}" has no port {port!r}', kind="Service", name=service)
        return svc, sp

    # ---- namespace of this run ----------------------------------------------------------
    def create_namespace(self) -> None:
        ns = {"apiVersion": "v1", "kind": "Namespace",
              "metadata": {"name": self.namespace, "labels": {ENFORCE: "baseline", **MANAGED_BY},
                           "annotations": {RUN_HOST: socket.gethostname(), RUN_PID: str(os.getpid())}}}
        try:
            self.api.create(ns, None)
        except ApiError as exc:
            raise type(exc)(f"failed to create namespace {self.namespace}: {exc.message}",
                            kind="Namespace", name=self.namespace) from exc
        # Pods are refused until the namespace's default ServiceAccount exists.
        try:
            wait_for(lambda: self.api.get("ServiceAccount", "default", self.namespace),
                     f"the default ServiceAccount of namespace {self.namespace}", self.timeouts.pod_start,
                     poll=self.timeouts.poll)
        except WaitTimeout as exc:
            raise Stuck(f"failed to create namespace {self.namespace}: {exc}") from exc

    def delete_namespace(self) -> None:
        if not self._own_namespace:
            return
        try:
            self.api.delete("Namespace", self.namespace, None)
        except NotFound:
            pass

    # ---- Cluster protocol ---------------------------------------------------------------
    def apply(self, objects: list[Obj]) -> list[Obj]:
        out = []
        for obj in objects:
            meta = obj.get("metadata") or {}
            res = self.kubectl.api_call("apply", "--validate=strict", "-n", self.namespace, "-o", "json", "-f", "-",
                                        verb=f"apply {obj.get('kind')}/{meta.get('name')}", input=json.dumps(obj),
                                        kind=obj.get("kind", ""), name=meta.get("name", ""))
            stored = json.loads(res.stdout)
            out.extend(stored.get("items", [stored]) if stored.get("kind") == "List" else [stored])
            for line in res.stderr.splitlines():
                if line.startswith("Warning:"):
                    self.warnings.append(line)
        return out

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        return self.api.get(kind, name, self._ns(kind, namespace))

    def list(self, kind: str, namespace: str | None = None, label_selector: str | None = None) -> list[Obj]:
        return self.api.list(kind, self._ns(kind, namespace), label_selector)

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        self.api.delete(kind, name, self._ns(kind, namespace))

    def patch(self, kind: str, name: str, patch: Obj | list[Obj], namespace: str | None = None,
              patch_type: str = "merge") -> Obj:
        """A patch that touches only ``status`` goes to the ``status`` subresource (as
        ``kubectl patch --subresource=status``): that is how fake GPU capacity is set."""
        sub = None
        if patch_type == "json" and isinstance(patch, list) and patch and \
                all(str(op.get("path", "")).startswith("/status") for op in patch):
            sub = "status"
        elif isinstance(patch, dict) and set(patch) == {"status"}:
            sub = "status"
        return self.api.patch(kind, name, patch, self._ns(kind, namespace), patch_type, subresource=sub)

    def logs(self, pod: str, container: str | None = None, *, previous: bool = False, tail: int = 50) -> str:
        query: list[tuple[str, Any]] = [("tailLines", tail)]
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        path = self.api.resource("Pod").path(self.namespace, pod, "log")
        return self.api.request("GET", path, query=query, raw=True, kind="Pod", name=pod)

    def events(self, namespace: str | None = None, *, involved_kind: str | None = None,
               involved_name: str | None = None) -> list[Obj]:
        sel = [f"involvedObject.{k}={v}" for k, v in (("kind", involved_kind and kind_of(involved_kind)),
                                                      ("name", involved_name)) if v]
        evs = self.api.list("Event", namespace or self.namespace, field_selector=",".join(sel) or None)
        return sorted(evs, key=_event_time)

    def gateway_url(self, gateway: str, namespace: str | None = None) -> str:
        """The first address the Gateway's implementation published in
        ``status.addresses`` and its first HTTP listener's port. Only works where
        that address is reachable from here (a LoadBalancer on a real cluster)."""
        gw = self.get("Gateway", gateway, namespace)
        addrs = (gw.get("status") or {}).get("addresses") or []
        listeners = [l for l in (gw.get("spec") or {}).get("listeners") or [] if l.get("protocol") == "HTTP"]
        if not addrs or not listeners:
            raise BackendUnavailable(f'Gateway "{gateway}" has no address or HTTP listener yet: is a Gateway API '
                                     "implementation installed and has it programmed the Gateway?")
        return f"http://{addrs[0]['value']}:{listeners[0]['port']}"

    def top_pods(self, namespace: str | None = None) -> list[Obj]:
        """metrics.k8s.io through the client's ``CustomObjectsApi``-equivalent REST path."""
        return self.api.list("PodMetrics", namespace or self.namespace)

    def pods_custom_metric(self, metric: str, label_selector: str | None = None,
                           namespace: str | None = None) -> dict[str, float]:
        """``GET /apis/custom.metrics.k8s.io/v1beta2/namespaces/<ns>/pods/*/<metric>``."""
        from ..objects import quantity

        query = [("labelSelector", label_selector)] if label_selector else []
        out = self.api.request("GET", f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{namespace or self.namespace}"
                                      f"/pods/*/{metric}", query=query, kind="MetricValueList", name=metric)
        return {i["describedObject"]["name"]: quantity(str(i["value"])) for i in out.get("items") or []}

    def rollout_undo(self, deployment: str, to_revision: int | None = None, namespace: str | None = None) -> Obj:
        args = ["rollout", "undo", f"deployment/{deployment}", "-n", namespace or self.namespace]
        if to_revision:
            args.append(f"--to-revision={to_revision}")
        res = self.kubectl.api_call(*args, verb=f"roll back deployment {deployment}", kind="Deployment",
                                    name=deployment)
        if "skipped rollback" in res.stdout + res.stderr:
            self.warnings.append(res.output)
        return self.get("Deployment", deployment, namespace)

    def write_kubeconfig(self, directory: Path) -> tuple[Path, str | None]:
        """``kubectl config view --minify --flatten --raw``: this context alone, credentials inlined,
        in one file (Helm's engine reads one kubeconfig file; KUBECONFIG may list several)."""
        res = self.kubectl("config", "view", "--minify", "--flatten", "--raw",
                           verb="write a kubeconfig for Helm")
        path = Path(directory) / "kubeconfig"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(res.stdout)
        path.chmod(0o600)
        return path, self.kubectl.context

    def collect_diagnostics(self, directory: Path) -> None:
        diagnostics.collect(self, Path(directory))
