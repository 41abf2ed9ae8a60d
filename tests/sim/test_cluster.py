"""SimCluster as a ``Cluster``: protocol conformance, patches, diagnostics, injected faults."""
from __future__ import annotations

import pytest

from harness.cluster.base import Cluster, Forbidden, NotFound
from harness.cluster.sim import FakeApp

from .helpers import IMAGE, deployment, pod, service


def test_implements_the_protocol(sim):
    assert isinstance(sim, Cluster) and sim.name == "sim" and sim.namespace == "lab"
    assert sim.top_pods() == []     # no pods, no metrics (see test_hpa.py for metrics)


def test_nodes_mirror_the_course_kind_cluster(sim):
    nodes = {n["metadata"]["name"]: n for n in sim.list("Node")}
    assert list(nodes) == ["sim-control-plane", "sim-worker", "sim-worker2"]
    gpu = nodes["sim-worker2"]
    assert gpu["status"]["allocatable"]["nvidia.com/gpu"] == "1"
    assert gpu["metadata"]["labels"]["nvidia.com/gpu.present"] == "true"
    assert gpu["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]
    assert nodes["sim-worker"]["status"]["allocatable"]["cpu"] == "4"


def test_patch_types_and_aliases(sim):
    sim.apply([deployment(replicas=1)])
    sim.patch("deploy", "web", {"spec": {"replicas": 2}})
    assert sim.get("Deployment", "web")["spec"]["replicas"] == 2
    sim.patch("Deployment", "web", [{"op": "replace", "path": "/spec/replicas", "value": 3}], patch_type="json")
    sim.patch("Deployment", "web", {"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "app:v2"}]}}}}, patch_type="strategic")
    d = sim.get("Deployment", "web")
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert d["spec"]["replicas"] == 3 and c["image"] == "app:v2" and c["ports"][0]["containerPort"] == 8000
    assert d["metadata"]["generation"] == 4
    with pytest.raises(NotFound, match='deployments.apps "nope" not found'):
        sim.get("deployments", "nope")


def test_injected_failure_surfaces_as_failed_create(sim):
    sim.prepend_reactor("create", "Pod", lambda a: (True, None, Forbidden('pods "x" is forbidden: exceeded quota')))
    sim.apply([deployment(replicas=1)])
    sim.step(1)
    evs = [e["message"] for e in sim.events(involved_kind="ReplicaSet") if e["reason"] == "FailedCreate"]
    assert evs == ['Error creating: pods "x" is forbidden: exceeded quota']
    assert any(a.verb == "create" and a.kind == "Pod" for a in sim.actions)


def test_collect_diagnostics(sim, tmp_path):
    sim.runtime.set_app(IMAGE, FakeApp(logs=["hello"]))
    sim.apply([pod("a"), service("svc", selector={"app": "a"})])
    sim.step(1)
    sim.collect_diagnostics(tmp_path)
    assert "Scheduled" in (tmp_path / "events.txt").read_text()
    assert "name: a" in (tmp_path / "pods.yaml").read_text()
    assert (tmp_path / "logs" / "a_c.log").read_text() == "hello\n"
    assert (tmp_path / "nodes.yaml").exists() and (tmp_path / "sim.json").exists()


def test_service_url_without_backends_on_fake_runtime(sim):
    sim.apply([service("svc", selector={"app": "none"})])
    url = sim.service_url("svc", 80)
    assert url.startswith("http://127.0.0.1:")
    with pytest.raises(NotFound):
        sim.service_url("svc", 81)
