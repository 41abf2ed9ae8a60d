"""The `Cluster` protocol: the only way checks talk to Kubernetes.

Every backend (kind, kubeconfig, sim) implements this protocol. Objects going
in and out are plain dicts shaped exactly like Kubernetes API JSON
(``metadata.name``, ``status.readyReplicas``, ``status.conditions[]`` ...), so a
check reads the same fields on every backend.

Errors are the API's own: :class:`NotFound`, :class:`AlreadyExists`,
:class:`Conflict`, :class:`Invalid`, :class:`Forbidden` (all :class:`ApiError`,
carrying the HTTP code, the reason and the message as the API server would).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

Obj = dict[str, Any]


class ApiError(Exception):
    """An error as the Kubernetes API server reports it (a ``Status`` object)."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, *, kind: str = "", name: str = ""):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.name = name

    def status(self) -> Obj:
        return {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class Forbidden(ApiError):
    code, reason = 403, "Forbidden"


class BackendUnavailable(Exception):
    """The backend's tools or daemon are missing; the message says how to get them."""


@runtime_checkable
class Cluster(Protocol):
    """A Kubernetes cluster that one grading run works in.

    A grading run owns one namespace (``self.namespace``), created by
    :meth:`start` and deleted by :meth:`stop`. Methods that take ``namespace``
    default to that namespace. ``kind`` is the Kubernetes kind (``"Deployment"``,
    ``"Pod"``, ``"HorizontalPodAutoscaler"``, ``"HTTPRoute"`` ...).
    """

    name: str        # backend name: "kind", "kubeconfig" or "sim"
    namespace: str   # the namespace of this grading run

    def start(self) -> None:
        """Make the cluster usable (create or reuse it, wait for nodes Ready) and
        create this run's namespace, labelled
        ``pod-security.kubernetes.io/enforce=baseline``."""

    def stop(self) -> None:
        """Delete this run's namespace and release every resource this object
        started (containers, proxies, threads, port-forwards). Idempotent, and
        safe to call after a failure or from a signal handler."""

    def apply(self, objects: list[Obj]) -> list[Obj]:
        """Create or update each object (like ``kubectl apply``), in order.
        Returns the stored objects. Raises :class:`Invalid` or :class:`Forbidden`
        (admission) with the API server's message."""

    def get(self, kind: str, name: str, namespace: str | None = None) -> Obj:
        """One object; raises :class:`NotFound`."""

    def list(self, kind: str, namespace: str | None = None,
             label_selector: str | None = None) -> list[Obj]:
        """Objects of a kind, sorted by name. ``label_selector`` uses the
        ``a=b,c!=d`` syntax."""

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete an object (graceful, like ``kubectl delete --wait=false``);
        raises :class:`NotFound`."""

    def patch(self, kind: str, name: str, patch: Obj | list[Obj],
              namespace: str | None = None, patch_type: str = "merge") -> Obj:
        """Patch an object. ``patch_type`` is ``"merge"`` (RFC 7386),
        ``"strategic"`` or ``"json"`` (RFC 6902, ``patch`` is a list)."""

    def logs(self, pod: str, container: str | None = None, *,
             previous: bool = False, tail: int = 50) -> str:
        """The last ``tail`` lines of a container's log (of the previous
        instance when ``previous``)."""

    def events(self, namespace: str | None = None, *,
               involved_kind: str | None = None,
               involved_name: str | None = None) -> list[Obj]:
        """``core/v1`` Events, oldest first."""

    def service_url(self, service: str, port: int | str) -> str:
        """A ``http://127.0.0.1:PORT`` URL that reaches the Service and spreads
        connections over its ready endpoints as kube-proxy does (never a
        single-pod port-forward)."""

    def gateway_url(self, gateway: str, namespace: str | None = None) -> str:
        """A ``http://127.0.0.1:PORT`` URL of a Gateway's HTTP listener (for
        Istio, of the ingress gateway that a VirtualService names), where
        routes apply their weights per request."""

    def load_image(self, image: str) -> None:
        """Make a local Docker image available to the cluster's nodes."""

    def top_pods(self, namespace: str | None = None) -> list[Obj]:
        """``metrics.k8s.io/v1beta1`` PodMetrics objects, as metrics-server
        serves them (``containers[].usage.cpu`` like ``"250m"``)."""

    def pods_custom_metric(self, metric: str, label_selector: str | None = None,
                           namespace: str | None = None) -> dict[str, float]:
        """pod name -> value of a pods metric from ``custom.metrics.k8s.io/v1beta2``
        (prometheus-adapter on a real cluster); an unknown metric is NotFound."""

    def rollout_undo(self, deployment: str, to_revision: int | None = None,
                     namespace: str | None = None) -> Obj:
        """``kubectl rollout undo``: copy the template of an earlier revision's
        ReplicaSet (the previous one by default) into the Deployment."""

    def write_kubeconfig(self, directory: Path) -> tuple[Path, str | None]:
        """A self-contained kubeconfig file under ``directory`` (and its context) through which
        kubectl and Helm's engine reach this cluster's API: the sim starts its REST API for it."""

    def collect_diagnostics(self, directory: Path) -> None:
        """Write events (by time), pods, nodes and recent container logs of this
        run's namespace under ``directory``, for a failed check's report."""


# A node label (value "true") saying that the node's containers run on this machine's own Docker
# daemon (the sim's nodes carry it): a local image is already visible there, so the kubeconfig
# backend's ``load_image`` has nothing to do when every node carries it.
SHARES_HOST_DOCKER_LABEL = "mlops-labs.io/shares-host-docker"
