"""The kind cluster's lifecycle: one cluster per course, created once and reused.

The cluster is made from ``harness/cluster/kind-config.yaml`` (one control
plane, two workers; NodePorts 30080-30089 published on 127.0.0.1; the second
worker labelled ``nvidia.com/gpu.present=true`` and tainted
``nvidia.com/gpu=present:NoSchedule``). After create (or on reuse) it waits
for every node Ready and makes sure the GPU worker has its label, its taint
and fake ``nvidia.com/gpu`` capacity, which kind cannot set from its config
because capacity lives in node status (the upstream "advertise extended
resources for a node" recipe: a JSON patch of ``/status/capacity``).

The learner's kubeconfig is never touched (a deliberate choice): ``kind create
cluster --kubeconfig <state dir>/<name>.kubeconfig`` writes the cluster's
credentials to a file of the harness's own instead of merging them into
``~/.kube/config`` and switching its current context. The harness talks to the
cluster through that file and the explicit context ``kind-<name>``; ``make
cluster-up`` prints ``export KUBECONFIG=...`` for a learner's own ``kubectl``.
Creation is serialised with a file lock, so two grading runs started at once
do not both create the cluster.

Creating has no short timeout (the first node-image pull can take many minutes):
kind's progress lines are shown as they come instead. A create that fails or is
interrupted is followed by ``kind delete cluster``, so no half-made cluster is
left to be "reused". Reuse is decided by more than the name: every node
container must be running (else: the ``docker start ...`` to run) and the API
server must answer (:meth:`KindLifecycle.check_api`; else: delete and recreate).

Real GPUs: on a cluster made with nvkind (``harness/cluster/nvkind-config.yaml.tmpl``)
and running the NVIDIA device plugin, the GPU worker's ``nvidia.com/gpu`` comes from
the plugin. ``ensure_gpu_node`` detects that (a ready ``*nvidia-device-plugin*``
DaemonSet and a labelled node with allocatable GPUs), never patches fake capacity
there, and reports ``gpu_source = "nvidia-device-plugin"`` instead of ``"fake"``.
See ``docs/real-gpu.md``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import yaml

from harness.cluster.base import ApiError, BackendUnavailable, Obj
from harness.errors import CommandError
from harness.waiting import DEFAULT_TIMEOUTS, Timeouts, WaitTimeout, wait_for

from .api import Api
from .cli import Kubectl, Logger, NoopLogger, Runner
from .diagnostics import Stuck

CONFIG = Path(__file__).resolve().parent.parent / "kind-config.yaml"
DEFAULT_NAME = "mlops-labs"
GPU_LABEL_KEY, GPU_LABEL_VALUE = "nvidia.com/gpu.present", "true"
GPU_TAINT_KEY, GPU_TAINT_VALUE, GPU_TAINT_EFFECT = "nvidia.com/gpu", "present", "NoSchedule"
GPU_RESOURCE, GPU_COUNT = "nvidia.com/gpu", "1"
DEVICE_PLUGIN = "nvidia-device-plugin"   # in the DaemonSet's name: static manifest and Helm chart alike
GATEWAY_NODE_PORT = 30090   # the Gateway implementation's NodePort (addons/gateway-traefik.yaml)


def published_ports(config: Path = CONFIG) -> list[int]:
    """Every NodePort the config publishes on 127.0.0.1 (containerPort == hostPort)."""
    cfg = yaml.safe_load(config.read_text())
    ports = []
    for node in cfg.get("nodes") or []:
        for m in node.get("extraPortMappings") or []:
            if m.get("listenAddress") == "127.0.0.1" and m["containerPort"] == m["hostPort"]:
                ports.append(int(m["containerPort"]))
    return sorted(ports)


def node_ports(config: Path = CONFIG) -> list[int]:
    """The published NodePorts the grader may give its companion Services (not the Gateway's)."""
    return [p for p in published_ports(config) if p != GATEWAY_NODE_PORT]


def node_count(config: Path = CONFIG) -> int:
    return len(yaml.safe_load(config.read_text()).get("nodes") or [{}])


def gpu_count(value: object) -> int:
    """An extended resource's count (``"1"``; missing or unparsable: 0)."""
    try:
        return int(str(value or "0"))
    except ValueError:
        return 0


def _stderr_progress(line: str) -> None:
    print(f"kind: {line}", file=sys.stderr, flush=True)


def ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


class KindLifecycle:
    def __init__(self, name: str = DEFAULT_NAME, *, runner: Runner | None = None, state_dir: Path,
                 config: Path = CONFIG, node_image: str | None = None, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 log: Logger | None = None, progress: Callable[[str], None] | None = None):
        self.name, self.config, self.node_image, self.timeouts = name, Path(config), node_image, timeouts
        self.log = log or NoopLogger()
        self.progress = progress or _stderr_progress   # kind's own progress lines, as kind shows them
        self.runner = runner or Runner(log=self.log)
        self.state_dir = Path(state_dir)
        self.kubeconfig = str(self.state_dir / f"{name}.kubeconfig")
        self.context = f"kind-{name}"

    # ---- create / reuse / delete ---------------------------------------------------------
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.state_dir / f"{self.name}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def exists(self) -> bool:
        out = self.runner.run(["kind", "get", "clusters"], verb="list kind clusters").stdout
        return self.name in [line.strip() for line in out.splitlines()]

    def ensure(self) -> bool:
        """Create the cluster unless it exists (and can be reused); write the harness's kubeconfig.
        True when created."""
        with self._lock():
            created = not self.exists()
            if created:
                self._create()
            else:
                self._check_nodes_running()
                self.log.info(f"reusing kind cluster {self.name} (KEEP_CLUSTER; `make cluster-down` removes it)")
            try:
                text = self.runner.run(["kind", "get", "kubeconfig", "--name", self.name],
                                       verb=f"get the kubeconfig of kind cluster {self.name}").stdout
            except CommandError as exc:
                raise BackendUnavailable(
                    f"kind cluster {self.name} exists but kind cannot read its kubeconfig ({exc.output.strip()}): "
                    f"it is half-made or broken. {self._recreate_hint()}") from None
            fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            return created

    def _recreate_hint(self) -> str:
        return (f"Run `kind delete cluster --name {self.name} --kubeconfig {self.kubeconfig}` "
                "(or `make cluster-down`), then grade again to recreate it")

    def _create(self) -> None:
        argv = ["kind", "create", "cluster", "--name", self.name, "--config", str(self.config),
                "--kubeconfig", self.kubeconfig]
        if self.node_image:
            argv += ["--image", self.node_image]
        self.log.info(f"creating kind cluster {self.name} (a few minutes the first time)")
        self.progress(f"creating cluster {self.name}; the first node image pull can take several minutes")
        try:   # no timeout: kind reports progress and fails by itself
            self.runner.stream(argv, verb=f"create kind cluster {self.name}", on_line=self.progress)
        except BaseException as exc:   # a failure or an interrupt: leave no half-made cluster behind
            if not (isinstance(exc, CommandError) and "already exist" in exc.output):
                self.progress(f"create failed: deleting the half-made cluster {self.name}")
                self.runner.run(["kind", "delete", "cluster", "--name", self.name, "--kubeconfig", self.kubeconfig],
                                verb=f"delete the half-made kind cluster {self.name}", check=False)
            raise
        self.progress(f"cluster {self.name} created; for kubectl: export KUBECONFIG={self.kubeconfig} "
                      f"(context {self.context})")

    def _check_nodes_running(self) -> None:
        """Every node container of the cluster runs (after a Docker or laptop restart they may not)."""
        names = self.runner.run(["kind", "get", "nodes", "--name", self.name],
                                verb=f"list the nodes of kind cluster {self.name}").stdout.split()
        if not names:
            raise BackendUnavailable(f"kind cluster {self.name} has no node containers: it is half-made. "
                                     + self._recreate_hint())
        res = self.runner.run(["docker", "inspect", "--format", "{{.Name}} {{.State.Status}}", *names],
                              verb=f"inspect the node containers of kind cluster {self.name}", check=False)
        status = dict(line.strip().lstrip("/").split(" ", 1) for line in res.stdout.splitlines() if " " in line)
        stopped = [f"{n} ({status.get(n, 'missing')})" for n in names if status.get(n) != "running"]
        if stopped:
            raise BackendUnavailable(
                f"kind cluster {self.name} exists but not all its node containers run: {', '.join(stopped)}. "
                f"Start them with `docker start {' '.join(names)}` and grade again. Or: " + self._recreate_hint())

    def check_api(self, api: Api) -> None:
        """The API server answers ``/version`` (a half-made cluster's never does)."""
        try:
            wait_for(lambda: api.request("GET", "/version"), f"the API server of kind cluster {self.name}",
                     self.timeouts.container_ready, poll=self.timeouts.poll)
        except WaitTimeout as exc:
            raise BackendUnavailable(f"kind cluster {self.name} exists but its API server does not answer "
                                     f"({exc}). {self._recreate_hint()}") from None

    def delete(self) -> None:
        with self._lock():
            self.runner.run(["kind", "delete", "cluster", "--name", self.name, "--kubeconfig", self.kubeconfig],
                            verb=f"delete kind cluster {self.name}")
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.kubeconfig)

    # ---- readiness -------------------------------------------------------------------------
    def wait_nodes_ready(self, api: Api, explain: Callable[[], str]) -> list[Obj]:
        want = node_count(self.config)

        def all_ready() -> list[Obj] | bool:
            nodes = api.list("Node", None)
            return nodes if len(nodes) >= want and all(ready(n) for n in nodes) else False

        try:
            return wait_for(all_ready, f"{want} nodes of kind cluster {self.name} Ready", self.timeouts.nodes_ready,
                            poll=self.timeouts.poll)
        except WaitTimeout as exc:
            raise Stuck(f"failed to wait for nodes Ready: {exc}\n{self._node_report(api)}\n{explain()}") from exc

    def _node_report(self, api: Api) -> str:
        try:
            nodes = api.list("Node", None)
        except Exception as exc:  # noqa: BLE001 - part of an error message
            return f"(could not list nodes: {exc})"
        lines = ["nodes:"]
        for n in nodes:
            cond = next((c for c in n.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), {})
            lines.append(f'  {n["metadata"]["name"]}: Ready={cond.get("status", "Unknown")} '
                         f'{cond.get("reason", "")} {cond.get("message", "")}'.rstrip())
        return "\n".join(lines)

    # ---- the GPU worker: real (device plugin) or fake ---------------------------------------
    gpu_source = "fake"

    def ensure_gpu_node(self, api: Api, kubectl: Kubectl) -> Obj:
        """Idempotent: label, taint and (unless a device plugin serves it) fake capacity on the GPU
        worker; returns the node."""
        sel = f"{GPU_LABEL_KEY}={GPU_LABEL_VALUE}"
        nodes = api.list("Node", None, label_selector=sel)
        real = real_gpu_nodes(api, nodes)
        if real:
            for n in real:
                self._taint(kubectl, n)
            self.gpu_source = DEVICE_PLUGIN
            self.log.info("real GPUs (NVIDIA device plugin): " + ", ".join(
                f'{n["metadata"]["name"]}={n["status"]["allocatable"][GPU_RESOURCE]}' for n in real))
            return real[0]
        if nodes:
            node = nodes[0]
        else:   # a cluster made from an older config: label the second worker
            name = f"{self.name}-worker2"
            kubectl("label", "node", name, f"{sel}", "--overwrite", verb=f"label node {name}")
            node = api.get("Node", name, None)
        name = node["metadata"]["name"]
        self._taint(kubectl, node)
        # Missing, or "0": a kubelet that restarted (Docker or laptop restart) with no device-plugin
        # checkpoint resets unmanaged extended resources to 0. ("add" replaces an existing value.)
        if gpu_count(((node.get("status") or {}).get("capacity") or {}).get(GPU_RESOURCE)) < 1:
            patch = [{"op": "add", "path": "/status/capacity/" + GPU_RESOURCE.replace("/", "~1"), "value": GPU_COUNT}]
            kubectl("patch", "node", name, "--subresource=status", "--type=json", "-p", json.dumps(patch),
                    verb=f"give node {name} fake GPU capacity")

        def allocatable() -> Obj | bool:
            n = api.get("Node", name, None)
            return n if gpu_count(((n.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE)) >= 1 else False

        try:
            return wait_for(allocatable, f"node {name} allocatable {GPU_RESOURCE} >= 1", self.timeouts.nodes_ready,
                            poll=self.timeouts.poll)
        except WaitTimeout as exc:
            raise Stuck(f"failed to give node {name} fake GPU capacity: {exc}") from exc

    @staticmethod
    def _taint(kubectl: Kubectl, node: Obj) -> None:
        name = node["metadata"]["name"]
        taints = (node.get("spec") or {}).get("taints") or []
        if not any(t.get("key") == GPU_TAINT_KEY and t.get("effect") == GPU_TAINT_EFFECT for t in taints):
            kubectl("taint", "node", name, f"{GPU_TAINT_KEY}={GPU_TAINT_VALUE}:{GPU_TAINT_EFFECT}", "--overwrite",
                    verb=f"taint node {name}")


def real_gpu_nodes(api: Api, gpu_nodes: list[Obj]) -> list[Obj]:
    """The labelled GPU nodes whose ``nvidia.com/gpu`` a running NVIDIA device plugin serves:
    empty unless some DaemonSet named ``*nvidia-device-plugin*`` (any namespace) has a ready pod."""
    try:
        daemonsets = api.list("DaemonSet", None)
    except ApiError:   # not allowed to list cluster-wide, or no such API: treat as no plugin
        return []
    plugins = [d for d in daemonsets if DEVICE_PLUGIN in d["metadata"]["name"]
               and ((d.get("status") or {}).get("numberReady") or 0) > 0]
    if not plugins:
        return []
    return [n for n in gpu_nodes
            if int(((n.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, "0") or 0) > 0]
