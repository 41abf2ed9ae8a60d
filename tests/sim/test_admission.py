"""Pod Security baseline (messages as the API server words them) and its effect on Deployments."""
from __future__ import annotations

import pytest

from harness.cluster.base import Forbidden
from harness.cluster.sim import rollout as ru

from .helpers import deployment, pod

PREFIX = 'pods "p" is forbidden: violates PodSecurity "baseline:latest": '


@pytest.mark.parametrize("container,spec,detail", [
    ({"securityContext": {"privileged": True}}, {},
     'privileged (container "c" must not set securityContext.privileged=true)'),
    ({}, {"hostNetwork": True}, "host namespaces (hostNetwork=true)"),
    ({}, {"hostPID": True, "hostNetwork": True}, "host namespaces (hostNetwork=true, hostPID=true)"),
    ({}, {"volumes": [{"name": "v", "hostPath": {"path": "/"}}]}, 'hostPath volumes (volume "v")'),
    ({"securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}, {},
     'non-default capabilities (container "c" must not include "SYS_ADMIN" in securityContext.capabilities.add)'),
    ({"ports": [{"containerPort": 80, "hostPort": 8080}]}, {}, 'hostPort (container "c" uses hostPort 8080)'),
    ({"securityContext": {"privileged": True, "capabilities": {"add": ["NET_ADMIN", "SYS_ADMIN"]}}},
     {"hostNetwork": True, "volumes": [{"name": "v", "hostPath": {"path": "/"}}]},
     'non-default capabilities (container "c" must not include "NET_ADMIN", "SYS_ADMIN" in '
     'securityContext.capabilities.add), host namespaces (hostNetwork=true), hostPath volumes (volume "v"), '
     'privileged (container "c" must not set securityContext.privileged=true)'),
])
def test_pod_security_baseline_refusals(sim, container, spec, detail):
    with pytest.raises(Forbidden) as err:
        sim.apply([pod(pod_spec=spec, **container)])
    assert err.value.message == PREFIX + detail
    assert err.value.code == 403
    assert sim.list("Pod") == []


def test_baseline_allows_default_capabilities(sim):
    sim.apply([pod(securityContext={"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}})])
    sim.step(0)
    assert sim.get("Pod", "p")["status"]["phase"] == "Running"


def test_privileged_deployment_is_accepted_but_its_pods_are_refused(sim):
    d = deployment(replicas=2, container={"securityContext": {"privileged": True}})
    sim.apply([d])
    assert any('would violate PodSecurity "baseline:latest": privileged' in w for w in sim.warnings)
    sim.step(5)
    assert sim.list("Pod") == []
    rs = sim.list("ReplicaSet")[0]
    name = rs["metadata"]["name"]
    want = (f'pods "{name}-" is forbidden: violates PodSecurity "baseline:latest": '
            'privileged (container "app" must not set securityContext.privileged=true)')
    ev = [e for e in sim.events(involved_kind="ReplicaSet") if e["reason"] == "FailedCreate"]
    assert ev and ev[0]["message"] == f"Error creating: {want}" and ev[0]["type"] == "Warning"
    assert ev[0]["source"]["component"] == "replicaset-controller" and ev[0]["count"] > 1   # retried with back-off
    fail = ru.get_condition(sim.get("Deployment", "web")["status"], "ReplicaFailure")
    assert (fail["status"], fail["reason"], fail["message"]) == ("True", "FailedCreate", want)
    av = ru.get_condition(sim.get("Deployment", "web")["status"], "Available")
    assert av["status"] == "False"


def test_namespace_is_labelled_baseline(sim):
    ns = sim.get("Namespace", "lab")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"


def test_deleting_a_namespace_uses_each_pods_current_version(sim, monkeypatch):
    """The namespace controller works from a listing; the kubelet may have written a pod's status
    since. Before: the stale copy's graceful delete raised Conflict out of DELETE namespaces/x
    (seen with `make practice-end` on the sim cluster)."""
    import copy

    sim.apply([pod()])
    sim.step(0)
    stale = copy.deepcopy(sim.store.snapshot())
    cur = sim.store.get("Pod", sim.namespace, "p")
    cur.setdefault("metadata", {}).setdefault("annotations", {})["touched"] = "by the kubelet"
    sim.store.update(cur)                                  # resourceVersion moves on
    monkeypatch.setattr(sim.store, "snapshot", lambda: stale)
    sim.api.delete("Namespace", None, sim.namespace)       # no Conflict
    left = sim.store.try_get("Pod", sim.namespace, "p")
    assert left is None or left["metadata"].get("deletionTimestamp")
