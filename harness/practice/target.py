"""Where a practice scenario runs: the current cluster, through the kubeconfig backend.

The cluster is, in this order: ``CONTEXT=<name>`` when set; a running sim cluster
(``make cluster-up BACKEND=sim``, context ``mlops-labs-sim``); otherwise the kubeconfig's
current context (kind's, after ``make cluster-up`` and the ``export KUBECONFIG=...`` it prints,
or any other). Every scenario gets the namespace ``practice`` with the course's ResourceQuota
and LimitRange (harness/budget.py), so a scenario is bounded like a grading run.
"""
from __future__ import annotations

import os
import subprocess
from typing import Callable

from harness.cluster.base import AlreadyExists, BackendUnavailable, NotFound
from harness.cluster.kubeconfig import KubeconfigCluster
from harness.errors import GradingError

NAMESPACE = "practice"
NO_CLUSTER_FIX = ("start one: `make cluster-up BACKEND=sim` (offline) or `make cluster-up` (kind), "
                  "or set CONTEXT=<kubeconfig context>")


def resolve(context: str | None = None) -> tuple[str | None, str | None]:
    """(context, kubeconfig) of the cluster to use."""
    context = context or os.environ.get("CONTEXT") or None
    if context:
        return context, os.environ.get("KUBECONFIG") or None
    from harness.cluster.sim import daemon
    found = daemon.running_kubeconfig()
    if found is not None:
        return daemon.CONTEXT, found[1]
    return None, os.environ.get("KUBECONFIG") or None


def connect(context: str | None = None, kubeconfig: str | None = None, namespace: str = NAMESPACE,
            create: bool = False) -> KubeconfigCluster:
    """A started kubeconfig backend on ``namespace`` (created with the course budget when
    ``create``); :class:`GradingError` (exit 2) when no cluster answers."""
    if context is None and kubeconfig is None:
        context, kubeconfig = resolve()
    ok, why = KubeconfigCluster.available(context=context, kubeconfig=kubeconfig)
    if not ok:
        raise GradingError(f"no cluster to practise on: {why}", fix=NO_CLUSTER_FIX)
    cluster = KubeconfigCluster(context=context, kubeconfig=kubeconfig, existing_namespace=namespace)
    if create:
        _ensure_namespace(cluster, namespace)
    try:
        cluster.start()
    except BackendUnavailable as exc:
        raise GradingError(f"the cluster does not answer: {exc}", fix=NO_CLUSTER_FIX) from exc
    except NotFound as exc:
        raise GradingError(f"namespace {namespace} is gone from context {cluster.kubectl.context}",
                           fix="run `make practice-reset` to set the scenario up again") from exc
    return cluster


def _ensure_namespace(cluster: KubeconfigCluster, namespace: str) -> None:
    from harness.labs.cluster_lab import namespace_budget
    reachable(cluster)
    try:
        cluster.api.create({"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": namespace, "labels": {
                                "pod-security.kubernetes.io/enforce": "baseline",
                                "app.kubernetes.io/managed-by": "mlops-labs-practice"}}}, None)
    except AlreadyExists:
        pass
    from harness.waiting import wait_for
    wait_for(lambda: cluster.api.get("ServiceAccount", "default", namespace),
             f"the default ServiceAccount of namespace {namespace}", 30, poll=0.2)
    cluster.apply(namespace_budget())


def reachable(cluster: KubeconfigCluster) -> None:
    try:
        cluster.api.request("GET", "/version")
    except Exception as exc:  # noqa: BLE001 - any transport error, a kubeconfig without the context
        raise GradingError(f"the cluster (context {cluster.kubectl.context or '(current)'}) does not answer: "
                           f"{str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}",
                           fix=NO_CLUSTER_FIX) from exc


def delete_namespace(cluster: KubeconfigCluster, namespace: str = NAMESPACE, wait_s: float = 60) -> None:
    """Delete the practice namespace and wait until it is gone (a new setup needs it free)."""
    from harness.waiting import wait_for
    reachable(cluster)
    try:
        cluster.api.delete("Namespace", namespace, None)
    except NotFound:
        return

    def gone() -> bool:
        try:
            cluster.api.get("Namespace", namespace, None)
            return False
        except NotFound:
            return True
    wait_for(gone, f"namespace {namespace} to be deleted", wait_s, poll=0.5)


def build_images(names: tuple[str, ...], cluster: KubeconfigCluster, log: Callable[[str], None] = print) -> None:
    """Build the sentiment images a scenario runs and make them available to the cluster's nodes."""
    from harness.labs.cluster_lab import build_reference_image, build_version_image
    from .catalog import IMAGES
    tags = []
    for name in names:
        tag = IMAGES[name]
        if name == "v1":
            build_reference_image(tag, log=log)
        else:
            build_reference_image(IMAGES["v1"], log=log)
            build_version_image(tag, name)
        tags.append(tag)
    ctx = cluster.kubectl.context or ""
    for tag in tags:
        if ctx.startswith("kind-") and not cluster._nodes_share_host_docker():   # noqa: SLF001
            res = subprocess.run(["kind", "load", "docker-image", tag, "--name", ctx[len("kind-"):]],
                                 capture_output=True, text=True)
            if res.returncode != 0:
                raise GradingError(f"kind load docker-image {tag} failed: {res.stderr.strip()[-300:]}",
                                   fix="is the kind cluster running? `make cluster-up`")
        else:
            cluster.load_image(tag)
