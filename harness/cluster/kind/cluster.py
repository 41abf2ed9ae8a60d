"""The kind cluster's lifecycle: one cluster per course, created once and reused.

The cluster is made from ``harness/cluster/kind-config.yaml`` (one control
plane, two workers; NodePorts 30080-30089 published on 127.0.0.1; the second
worker labelled ``nvidia.com/gpu.present=true`` and tainted
``nvidia.com/gpu=present:NoSchedule``). After create (or on reuse) it waits
for every node Ready and makes sure the GPU worker has its label, its taint
and fake ``nvidia.com/gpu`` capacity, which kind cannot set from its config
because capacity lives in node status (the upstream "advertise extended
resources for a node" recipe: a JSON patch of ``/status/capacity``).

The harness talks to the cluster through its own kubeconfig file (from ``kind
get kubeconfig``) and an explicit context, never the user's current context.
Creation is serialised with a file lock, so two grading runs started at once
do not both create the cluster.

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
from pathlib import Path
from typing import Callable, Iterator

import yaml

from harness.cluster.base import ApiError, Obj
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


def ready(node: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


class KindLifecycle:
    def __init__(self, name: str = DEFAULT_NAME, *, runner: Runner | None = None, state_dir: Path,
                 config: Path = CONFIG, node_image: str | None = None, timeouts: Timeouts = DEFAULT_TIMEOUTS,
                 log: Logger | None = None):
        self.name, self.config, self.node_image, self.timeouts = name, Path(config), node_image, timeouts
        self.log = log or NoopLogger()
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
        """Create the cluster unless it exists; write the harness's kubeconfig. True when created."""
        with self._lock():
            created = False
            if not self.exists():
                argv = ["kind", "create", "cluster", "--name", self.name, "--config", str(self.config)]
                if self.node_image:
                    argv += ["--image", self.node_image]
                self.log.info(f"creating kind cluster {self.name} (a few minutes the first time)")
                self.runner.run(argv, verb=f"create kind cluster {self.name}", timeout=self.timeouts.nodes_ready * 2)
                created = True
            else:
                self.log.info(f"reusing kind cluster {self.name} (KEEP_CLUSTER; `make cluster-down` removes it)")
            text = self.runner.run(["kind", "get", "kubeconfig", "--name", self.name],
                                   verb=f"get the kubeconfig of kind cluster {self.name}").stdout
            fd = os.open(self.kubeconfig, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            return created

    def delete(self) -> None:
        with self._lock():
            self.runner.run(["kind", "delete", "cluster", "--name", self.name],
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
        if GPU_RESOURCE not in ((node.get("status") or {}).get("capacity") or {}):
            patch = [{"op": "add", "path": "/status/capacity/" + GPU_RESOURCE.replace("/", "~1"), "value": GPU_COUNT}]
            kubectl("patch", "node", name, "--subresource=status", "--type=json", "-p", json.dumps(patch),
                    verb=f"give node {name} fake GPU capacity")

        def allocatable() -> Obj | bool:
            n = api.get("Node", name, None)
            return n if GPU_RESOURCE in ((n.get("status") or {}).get("allocatable") or {}) else False

        try:
            return wait_for(allocatable, f"node {name} allocatable {GPU_RESOURCE}", self.timeouts.nodes_ready,
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
