"""Scheduling verdicts and the exact FailedScheduling text (sheet §5)."""
from __future__ import annotations

import pytest

from harness.cluster.sim import FakeClock, FakeRuntime, NodeSpec, SimCluster
from harness.cluster.sim.scheduler import tolerates

from .helpers import IMAGE, pod

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
GPU_TOL = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def gpu_pod(name="g", n=1, **spec):
    return pod(name, resources={"limits": {"nvidia.com/gpu": n}}, pod_spec=spec)


def failed_scheduling(sim, name):
    evs = [e for e in sim.events(involved_name=name) if e["reason"] == "FailedScheduling"]
    assert evs and evs[-1]["type"] == "Warning" and evs[-1]["source"]["component"] == "default-scheduler"
    return evs[-1]["message"]


def test_canonical_gpu_message_on_three_node_kind():
    nodes = [NodeSpec("kind-control-plane", taints=[CP_TAINT], control_plane=True),
             NodeSpec("kind-worker"), NodeSpec("kind-worker2")]
    clock = FakeClock()
    sim = SimCluster(runtime=FakeRuntime(clock, images=(IMAGE,)), clock=clock, nodes=nodes)
    sim.start()
    sim.apply([gpu_pod()])
    sim.step(0)
    msg = ("0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
           "2 Insufficient nvidia.com/gpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for "
           "scheduling, 2 No preemption victims found for incoming pod..")
    assert failed_scheduling(sim, "g") == msg
    p = sim.get("Pod", "g")
    cond = next(c for c in p["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (cond["status"], cond["reason"], cond["message"]) == ("False", "Unschedulable", msg)
    assert p["status"]["phase"] == "Pending"
    sim.stop()


def test_gpu_pod_without_toleration_on_default_cluster(sim):
    sim.apply([gpu_pod()])
    sim.step(0)
    assert failed_scheduling(sim, "g") == (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, "
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "1 node(s) had untolerated taint {nvidia.com/gpu: present}. preemption: 0/3 nodes are available: "
        "1 No preemption victims found for incoming pod, 2 Preemption is not helpful for scheduling..")


def test_gpu_pod_with_toleration_and_selector_lands_on_gpu_node_once(sim):
    spec = {"tolerations": GPU_TOL, "nodeSelector": {"nvidia.com/gpu.present": "true"}}
    sim.apply([gpu_pod("g1", **spec), gpu_pod("g2", **spec)])
    sim.step(0)
    assert sim.get("Pod", "g1")["spec"]["nodeName"] == "sim-worker2"
    assert sim.get("Pod", "g1")["spec"]["containers"][0]["resources"]["requests"] == {"nvidia.com/gpu": 1}
    assert "nodeName" not in sim.get("Pod", "g2")["spec"]
    assert failed_scheduling(sim, "g2") == (
        "0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 1 node(s) didn't match Pod's node "
        "affinity/selector, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. preemption: 0/3 nodes are available: 1 No preemption victims found for incoming "
        "pod, 2 Preemption is not helpful for scheduling..")
    sim.delete("Pod", "g1")
    sim.step(2)
    assert sim.get("Pod", "g2")["spec"]["nodeName"] == "sim-worker2"   # retried when capacity was freed


def test_advertising_gpu_capacity_with_a_status_patch_unblocks_the_pod(sim):
    sim.apply([gpu_pod()])
    sim.step(0)
    sim.patch("Node", "sim-worker", [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "4"}],
              patch_type="json")
    sim.step(0)
    assert sim.get("Node", "sim-worker")["status"]["allocatable"]["nvidia.com/gpu"] == "4"
    assert sim.get("Pod", "g")["spec"]["nodeName"] == "sim-worker"


@pytest.mark.parametrize("resources,reason", [
    ({"requests": {"cpu": "5"}}, "Insufficient cpu"),
    ({"requests": {"memory": "9Gi"}}, "Insufficient memory"),
])
def test_resource_fit(sim, resources, reason):
    sim.apply([pod("big", resources=resources)])
    sim.step(0)
    msg = failed_scheduling(sim, "big")
    assert msg.startswith(f"0/3 nodes are available: 1 {reason}, ")


def test_required_node_affinity_terms_are_ored(sim):
    aff = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
        {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["sim-worker"]}]}]}}}
    sim.apply([pod("a", pod_spec={"affinity": aff})])
    sim.step(0)
    assert sim.get("Pod", "a")["spec"]["nodeName"] == "sim-worker"


def test_node_selector_mismatch(sim):
    sim.apply([pod("a", pod_spec={"nodeSelector": {"disk": "ssd"}})])
    sim.step(0)
    assert failed_scheduling(sim, "a").startswith(
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
        "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, ")


@pytest.mark.parametrize("tol,taint,want", [
    ({"key": "k", "operator": "Exists"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"operator": "Exists"}, {"key": "any", "effect": "NoExecute"}, True),
    ({"key": "k", "operator": "Exists", "effect": "NoExecute"}, {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "", "operator": "Equal"}, {"key": "k", "effect": "NoSchedule"}, False),
])
def test_tolerates(tol, taint, want):
    assert tolerates([tol], taint) is want


def test_scheduled_event(sim):
    sim.apply([pod("a")])
    sim.step(0)
    evs = [(e["reason"], e["message"]) for e in sim.events(involved_name="a")]
    assert ("Scheduled", "Successfully assigned lab/a to sim-worker") in evs
