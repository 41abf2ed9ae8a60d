"""The sim's nodes: by default the course's 3-node kind cluster.

Why: scheduling lessons (taints, GPU capacity, affinity) only make sense on
the same topology learners have on kind: a tainted control-plane node, a
plain ``worker`` and a GPU ``worker2`` (label ``nvidia.com/gpu.present=true``,
taint ``nvidia.com/gpu=present:NoSchedule``, capacity ``nvidia.com/gpu: 1``).
Capacities are configurable with :class:`NodeSpec`.

Every node carries ``mlops-labs.io/shares-host-docker: "true"``: the sim's pods run on the
host's Docker engine, so an image built on the host is already on every node (a kubeconfig
grader skips ``kind load`` when all nodes say so).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.cluster.base import Obj


SHARES_HOST_DOCKER = "mlops-labs.io/shares-host-docker"


@dataclass
class NodeSpec:
    name: str
    cpu: str = "4"
    memory: str = "8Gi"
    pods: int = 110
    gpus: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, Any]] = field(default_factory=list)
    control_plane: bool = False


def kind_like(cluster: str = "sim", *, cpu: str = "4", memory: str = "8Gi", gpus: int = 1) -> list[NodeSpec]:
    return [
        NodeSpec(f"{cluster}-control-plane", cpu, memory, control_plane=True,
                 labels={"node-role.kubernetes.io/control-plane": ""},
                 taints=[{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]),
        NodeSpec(f"{cluster}-worker", cpu, memory),
        NodeSpec(f"{cluster}-worker2", cpu, memory, gpus=gpus,
                 labels={"nvidia.com/gpu.present": "true"},
                 taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]),
    ]


def node_object(spec: NodeSpec, index: int) -> Obj:
    capacity = {"cpu": spec.cpu, "memory": spec.memory, "pods": str(spec.pods), "ephemeral-storage": "100Gi"}
    if spec.gpus:
        capacity["nvidia.com/gpu"] = str(spec.gpus)
    labels = {"kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
              "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", SHARES_HOST_DOCKER: "true",
              **spec.labels}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": spec.name, "labels": labels},
            "spec": {"podCIDR": f"10.244.{index}.0/24", **({"taints": spec.taints} if spec.taints else {})},
            "status": {"capacity": capacity, "allocatable": dict(capacity),
                       "addresses": [{"type": "InternalIP", "address": f"172.18.0.{index + 2}"},
                                     {"type": "Hostname", "address": spec.name}],
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "message": "kubelet is posting ready status"}],
                       "nodeInfo": {"kubeletVersion": "v1.31.0-sim", "containerRuntimeVersion": "sim://docker",
                                    "operatingSystem": "linux", "architecture": "amd64"}}}
