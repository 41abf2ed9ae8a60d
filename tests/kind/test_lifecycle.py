"""The kind cluster's lifecycle: config, create/reuse/delete, nodes Ready, the fake GPU worker."""
from __future__ import annotations

import json
import os
import stat

import pytest
import yaml

from harness.cluster.base import BackendUnavailable
from harness.cluster.kind.cluster import CONFIG, KindLifecycle, node_count, node_ports
from harness.cluster.kind.cli import Kubectl, Runner
from harness.cluster.kind.diagnostics import Stuck
from harness.errors import CommandError

from .fakeapi import recorded


def test_config_shape():
    cfg = yaml.safe_load(CONFIG.read_text())
    assert cfg["kind"] == "Cluster" and cfg["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [n["role"] for n in cfg["nodes"]] == ["control-plane", "worker", "worker"] and node_count() == 3
    assert node_ports() == list(range(30080, 30090))
    maps = cfg["nodes"][0]["extraPortMappings"]
    assert {m["listenAddress"] for m in maps} == {"127.0.0.1"}   # never published on other interfaces
    gpu = cfg["nodes"][2]
    assert gpu["labels"] == {"nvidia.com/gpu.present": "true"}
    join = yaml.safe_load(gpu["kubeadmConfigPatches"][0])
    assert join["kind"] == "JoinConfiguration"
    assert join["nodeRegistration"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def lifecycle(tmp_path, fast, **kw) -> KindLifecycle:
    kw.setdefault("progress", lambda line: None)
    return KindLifecycle("mlops-labs", runner=Runner(), state_dir=tmp_path / "state", timeouts=fast, **kw)


NODES = ("mlops-labs-control-plane", "mlops-labs-worker", "mlops-labs-worker2")


def nodes_running(tools, *states: str) -> None:
    tools.rule("kind", "get nodes", "".join(n + "\n" for n in NODES))
    tools.rule("docker", "inspect --format", "".join(f"/{n} {st}\n" for n, st in zip(NODES, states or
                                                                                      ("running",) * 3)))


def test_creates_the_cluster_when_absent_and_writes_a_private_kubeconfig(tools, tmp_path, fast):
    tools.rule("kind", "get clusters", "other\n")
    tools.rule("kind", "create cluster", "")
    tools.rule("kind", "get kubeconfig", "apiVersion: v1\nkind: Config\n")
    lc = lifecycle(tmp_path, fast, node_image="kindest/node:v1.33.1")
    assert lc.ensure() is True
    assert tools.argvs("kind") == [
        ["get", "clusters"],
        ["create", "cluster", "--name", "mlops-labs", "--config", str(CONFIG), "--kubeconfig", lc.kubeconfig,
         "--image", "kindest/node:v1.33.1"],
        ["get", "kubeconfig", "--name", "mlops-labs"]]
    assert open(lc.kubeconfig).read().startswith("apiVersion: v1")
    assert stat.S_IMODE(os.stat(lc.kubeconfig).st_mode) == 0o600
    assert lc.context == "kind-mlops-labs"


def test_reuses_an_existing_cluster(tools, tmp_path, fast):
    tools.rule("kind", "get clusters", "mlops-labs\n")
    nodes_running(tools)
    tools.rule("kind", "get kubeconfig", "apiVersion: v1\n")
    assert lifecycle(tmp_path, fast).ensure() is False
    assert not [a for a in tools.argvs("kind") if a[0] == "create"]


def test_create_writes_its_own_kubeconfig_and_never_the_learners(tools, tmp_path, fast):
    """Item 9. Blind spot of the old test: it checked the argv it expected, which had no
    ``--kubeconfig``, so kind merged the cluster into ``~/.kube/config`` and switched the learner's
    current context."""
    tools.rule("kind", "get clusters", "")
    tools.rule("kind", "create cluster", "")
    tools.rule("kind", "get kubeconfig", "apiVersion: v1\n")
    shown: list[str] = []
    lc = lifecycle(tmp_path, fast, progress=shown.append)
    lc.ensure()
    create = next(a for a in tools.argvs("kind") if a[:2] == ["create", "cluster"])
    assert create[create.index("--kubeconfig") + 1] == lc.kubeconfig == str(tmp_path / "state" / "mlops-labs.kubeconfig")
    assert f"export KUBECONFIG={lc.kubeconfig}" in shown[-1] and "kind-mlops-labs" in shown[-1]


def test_create_has_no_short_timeout_and_shows_kinds_progress(tools, tmp_path, fast):
    """Item 6. Blind spot: the create ran under ``timeouts.nodes_ready * 2`` (600 s for real, 0.6 s
    here) with its output captured, so a slow first image pull was killed half way, silently."""
    tools.rule("kind", "get clusters", "")
    tools.rule("kind", "create cluster", " \u2713 Ensuring node image (kindest/node:v1.33.1)\n", linger=1.0)
    tools.rule("kind", "get kubeconfig", "apiVersion: v1\n")
    shown: list[str] = []
    assert lifecycle(tmp_path, fast, progress=shown.append).ensure() is True
    assert " \u2713 Ensuring node image (kindest/node:v1.33.1)" in shown


def test_a_failed_create_deletes_the_half_made_cluster(tools, tmp_path, fast):
    """Item 6: a create that fails leaves nothing that the next run would "reuse"."""
    tools.rule("kind", "get clusters", "")
    tools.rule("kind", "create cluster", stderr="ERROR: failed to create cluster: failed to init node with "
                                                "kubeadm: command \"docker exec ...\" failed\n", rc=1)
    tools.rule("kind", "delete cluster", "Deleting cluster \"mlops-labs\" ...\n")
    lc = lifecycle(tmp_path, fast)
    with pytest.raises(CommandError, match="(?s)failed to create kind cluster mlops-labs.*failed to init node"):
        lc.ensure()
    assert tools.argvs("kind")[-1] == ["delete", "cluster", "--name", "mlops-labs", "--kubeconfig", lc.kubeconfig]


def test_stopped_node_containers_are_not_reused_and_the_fix_is_named(tools, tmp_path, fast):
    """Item 6. Blind spot: reuse was decided by ``kind get clusters`` alone, which lists stopped
    clusters too; ``kind get kubeconfig`` then failed with an unexplained error."""
    tools.rule("kind", "get clusters", "mlops-labs\n")
    nodes_running(tools, "exited", "running", "exited")
    with pytest.raises(BackendUnavailable) as ei:
        lifecycle(tmp_path, fast).ensure()
    msg = str(ei.value)
    assert "mlops-labs-control-plane (exited), mlops-labs-worker2 (exited)" in msg
    assert "`docker start mlops-labs-control-plane mlops-labs-worker mlops-labs-worker2`" in msg
    assert not [a for a in tools.argvs("kind") if a[:2] == ["get", "kubeconfig"]]


def test_a_cluster_whose_api_never_answers_is_not_reused(tools, apiserver, api, tmp_path, fast):
    """Item 6: a half-made cluster (a create killed after the containers started) has running
    containers but an API server that never answers: say to delete it."""
    apiserver.on("GET", "/version", (503, {"kind": "Status", "message": "etcd not ready"}))
    with pytest.raises(BackendUnavailable, match=r"API server does not answer.*`kind delete cluster --name mlops-labs"):
        lifecycle(tmp_path, fast).check_api(api)
    apiserver.on("GET", "/version", "version.json")
    lifecycle(tmp_path, fast).check_api(api)   # answers: fine


def test_create_failure_carries_kinds_output(tools, tmp_path, fast):
    tools.rule("kind", "get clusters", "")
    tools.rule("kind", "create cluster", stderr="ERROR: failed to create cluster: node(s) already exist for a "
                                                "cluster with the name \"mlops-labs\"\n", rc=1)
    with pytest.raises(Exception) as ei:
        lifecycle(tmp_path, fast).ensure()
    assert "failed to create kind cluster mlops-labs" in str(ei.value) and "already exist" in str(ei.value)


def test_delete(tools, tmp_path, fast):
    tools.rule("kind", "delete cluster", "Deleting cluster \"mlops-labs\" ...\n")
    lc = lifecycle(tmp_path, fast)
    (tmp_path / "state").mkdir()
    open(lc.kubeconfig, "w").write("x")
    lc.delete()
    assert tools.argvs("kind") == [["delete", "cluster", "--name", "mlops-labs", "--kubeconfig", lc.kubeconfig]]
    assert not os.path.exists(lc.kubeconfig)


def test_waits_for_every_node_ready(apiserver, api, tmp_path, fast):
    apiserver.on("GET", "/api/v1/nodes", "nodes-two.json", "nodes-notready.json", "nodes-notready.json",
                 "nodes-ready.json")
    nodes = lifecycle(tmp_path, fast).wait_nodes_ready(api, lambda: "")
    assert len(nodes) == 3 and len(apiserver.calls("GET", "/api/v1/nodes")) == 4


def test_stuck_nodes_give_conditions_and_events(apiserver, api, tmp_path, fast):
    apiserver.on("GET", "/api/v1/nodes", "nodes-notready.json")
    with pytest.raises(Stuck) as ei:
        lifecycle(tmp_path, fast).wait_nodes_ready(api, lambda: "last events in kube-system: ...")
    msg = str(ei.value)
    assert msg.startswith("failed to wait for nodes Ready: timed out after")
    assert "mlops-labs-worker: Ready=False KubeletNotReady" in msg and "cni plugin not initialized" in msg
    assert "last events in kube-system" in msg


def test_gpu_worker_gets_fake_capacity(tools, apiserver, api, tmp_path, fast):
    apiserver.on("GET", "/api/v1/nodes?labelSelector=nvidia.com/gpu.present=true", "nodes-gpu.json")
    apiserver.on("GET", "/api/v1/nodes/mlops-labs-worker2", "node-worker2.json", "node-worker2-gpu.json")
    tools.rule("kubectl", "patch node", "node/mlops-labs-worker2 patched\n")
    node = lifecycle(tmp_path, fast).ensure_gpu_node(api, Kubectl(Runner()))
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    # exactly the upstream recipe: a JSON patch of the status subresource
    assert tools.argvs("kubectl") == [["patch", "node", "mlops-labs-worker2", "--subresource=status", "--type=json",
                                       "-p", '[{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", '
                                             '"value": "1"}]']]
    assert json.loads(tools.argvs("kubectl")[0][-1])[0]["path"] == "/status/capacity/nvidia.com~1gpu"


def test_gpu_capacity_reset_to_zero_after_a_restart_is_patched_again(tools, apiserver, api, tmp_path, fast):
    """Item 5. Blind spot of the test above: it only knew a node *without* the key. A kubelet back
    from a Docker or laptop restart, with no device-plugin checkpoint, resets the unmanaged extended
    resource to ``"0"``: the key is there, so nothing was patched and the GPU pod stayed Pending."""
    zero = recorded("node-worker2-gpu.json")
    zero["status"]["capacity"]["nvidia.com/gpu"] = zero["status"]["allocatable"]["nvidia.com/gpu"] = "0"
    apiserver.on("GET", "/api/v1/nodes?labelSelector=nvidia.com/gpu.present=true",
                 {"kind": "NodeList", "apiVersion": "v1", "items": [zero]})
    apiserver.on("GET", "/api/v1/nodes/mlops-labs-worker2", zero, zero, "node-worker2-gpu.json")
    tools.rule("kubectl", "patch node", "node/mlops-labs-worker2 patched\n")
    node = lifecycle(tmp_path, fast).ensure_gpu_node(api, Kubectl(Runner()))
    assert [a[:2] for a in tools.argvs("kubectl")] == [["patch", "node"]]
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "1"   # waited until allocatable >= 1
    assert len(apiserver.calls("GET", "/api/v1/nodes/mlops-labs-worker2")) == 3


def test_gpu_worker_is_labelled_and_tainted_when_an_old_config_made_the_cluster(tools, apiserver, api, tmp_path,
                                                                                 fast):
    bare = recorded("node-worker2-gpu.json")
    del bare["spec"]["taints"]
    apiserver.on("GET", "/api/v1/nodes", {"kind": "NodeList", "apiVersion": "v1", "items": []})
    apiserver.on("GET", "/api/v1/nodes/mlops-labs-worker2", bare)
    tools.rule("kubectl", "label node", "node/mlops-labs-worker2 labeled\n")
    tools.rule("kubectl", "taint node", "node/mlops-labs-worker2 tainted\n")
    lifecycle(tmp_path, fast).ensure_gpu_node(api, Kubectl(Runner()))
    assert tools.argvs("kubectl") == [
        ["label", "node", "mlops-labs-worker2", "nvidia.com/gpu.present=true", "--overwrite"],
        ["taint", "node", "mlops-labs-worker2", "nvidia.com/gpu=present:NoSchedule", "--overwrite"]]


def test_gpu_capacity_that_never_shows_is_a_clear_error(tools, apiserver, api, tmp_path, fast):
    apiserver.on("GET", "/api/v1/nodes", "nodes-gpu.json")
    apiserver.on("GET", "/api/v1/nodes/mlops-labs-worker2", "node-worker2.json")
    tools.rule("kubectl", "patch node", "node/mlops-labs-worker2 patched\n")
    with pytest.raises(Stuck, match="failed to give node mlops-labs-worker2 fake GPU capacity"):
        lifecycle(tmp_path, fast).ensure_gpu_node(api, Kubectl(Runner()))


# ---- real GPUs: nvkind + the NVIDIA device plugin --------------------------------------------------
def plugin_daemonset(ready: int) -> dict:
    return {"kind": "DaemonSetList", "apiVersion": "apps/v1", "items": [
        {"metadata": {"name": "nvidia-device-plugin", "namespace": "nvidia"},
         "status": {"desiredNumberScheduled": 1, "numberReady": ready}}]}


def real_gpu_node(taints: bool = True) -> dict:
    n = recorded("node-worker2-gpu.json")
    n["status"]["capacity"]["nvidia.com/gpu"] = n["status"]["allocatable"]["nvidia.com/gpu"] = "2"
    if not taints:
        del n["spec"]["taints"]
    return n


def test_a_running_device_plugin_is_used_and_no_capacity_is_faked(tools, apiserver, api, tmp_path, fast):
    apiserver.on("GET", "/api/v1/nodes?labelSelector=nvidia.com/gpu.present=true",
                 {"kind": "NodeList", "apiVersion": "v1", "items": [real_gpu_node(taints=False)]})
    apiserver.on("GET", "/apis/apps/v1/daemonsets", plugin_daemonset(ready=1))
    tools.rule("kubectl", "taint node", "node/mlops-labs-worker2 tainted\n")
    lc = lifecycle(tmp_path, fast)
    node = lc.ensure_gpu_node(api, Kubectl(Runner()))
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "2" and lc.gpu_source == "nvidia-device-plugin"
    # tainted like the fake GPU node, so the lab's scheduling rules hold; never a status patch
    assert tools.argvs("kubectl") == [["taint", "node", "mlops-labs-worker2", "nvidia.com/gpu=present:NoSchedule",
                                       "--overwrite"]]


def test_a_device_plugin_that_is_not_ready_yet_means_fake_capacity(tools, apiserver, api, tmp_path, fast):
    apiserver.on("GET", "/api/v1/nodes?labelSelector=nvidia.com/gpu.present=true", "nodes-gpu.json")
    apiserver.on("GET", "/apis/apps/v1/daemonsets", plugin_daemonset(ready=0))
    apiserver.on("GET", "/api/v1/nodes/mlops-labs-worker2", "node-worker2.json", "node-worker2-gpu.json")
    tools.rule("kubectl", "patch node", "node/mlops-labs-worker2 patched\n")
    lc = lifecycle(tmp_path, fast)
    lc.ensure_gpu_node(api, Kubectl(Runner()))
    assert lc.gpu_source == "fake" and tools.argvs("kubectl")[0][:2] == ["patch", "node"]


def test_no_permission_to_list_daemonsets_means_no_plugin(api, apiserver):
    from harness.cluster.kind.cluster import real_gpu_nodes

    apiserver.on("GET", "/apis/apps/v1/daemonsets", (403, "status-ns-forbidden.json"))
    assert real_gpu_nodes(api, [real_gpu_node()]) == []
