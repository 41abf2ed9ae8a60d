"""The tool runner, kubectl error mapping and the REST layer over the kubernetes client."""
from __future__ import annotations

import pytest

from harness.cluster.base import AlreadyExists, BackendUnavailable, Forbidden, Invalid, NotFound
from harness.cluster.kind.api import kind_of
from harness.cluster.kind.cli import BadRequest, Kubectl, Runner, api_error_from_kubectl, require
from harness.errors import CommandError


def test_failed_command_carries_argv_output_and_verb(tools):
    tools.rule("kind", "get clusters", stderr="ERROR: failed to list clusters: docker: permission denied\n", rc=1)
    with pytest.raises(CommandError) as ei:
        Runner().run(["kind", "get", "clusters"], verb="list kind clusters")
    err = ei.value
    assert str(err).startswith("failed to list kind clusters: ")
    assert err.argv[0] == str(tools.bin / "kind") and err.argv[1:] == ["get", "clusters"]
    assert err.returncode == 1 and "permission denied" in err.output


def test_missing_tool_says_how_to_install(tools):
    (tools.bin / "kind").unlink()
    with pytest.raises(BackendUnavailable, match=r"kind is not installed .*kind.sigs.k8s.io"):
        require("kind")
    with pytest.raises(BackendUnavailable, match="kind is not installed"):
        Runner().run(["kind", "version"], verb="ask kind its version")


def test_timeout_is_a_command_error(tools):
    tools.rule("kind", "version", stdout="kind v0.29.0\n", linger=5)
    with pytest.raises(CommandError, match="timed out after"):
        Runner().run(["kind", "version"], verb="ask kind its version", timeout=0.5)


def test_kubectl_is_pinned_to_kubeconfig_and_context(tools):
    tools.rule("kubectl", "get ns", stdout="ok")
    Kubectl(Runner(), kubeconfig="/tmp/kc", context="kind-x")("get", "ns", verb="list namespaces")
    assert tools.argvs("kubectl") == [["--kubeconfig", "/tmp/kc", "--context", "kind-x", "get", "ns"]]


@pytest.mark.parametrize("stderr, cls, msg", [
    ('Error from server (Invalid): error when creating "STDIN": Deployment.apps "web" is invalid: '
     'spec.template.spec.containers[0].image: Required value', Invalid,
     'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value'),
    ('Error from server (Forbidden): error when creating "STDIN": pods "p" is forbidden: violates PodSecurity '
     '"baseline:latest": privileged (container "c" must not set securityContext.privileged=true)', Forbidden,
     'pods "p" is forbidden: violates PodSecurity "baseline:latest"'),
    ('Error from server (NotFound): deployments.apps "nope" not found', NotFound, 'deployments.apps "nope" not found'),
    ('Error from server (AlreadyExists): services "web" already exists', AlreadyExists, "already exists"),
    ('Error from server (BadRequest): error when creating "STDIN": Deployment in version "v1" cannot be handled as '
     'a Deployment: strict decoding error: unknown field "spec.replica"', BadRequest, 'unknown field "spec.replica"'),
    ('error: the namespace from the provided object "other" does not match the namespace "grade-x". You must pass '
     "'--namespace=other' to perform this operation.", BadRequest, "does not match the namespace"),
    ("error: no rollout history found for deployment \"web\"", NotFound, "no rollout history"),
])
def test_kubectl_stderr_maps_to_api_errors(stderr, cls, msg):
    err = api_error_from_kubectl(stderr, kind="Deployment", name="web")
    assert type(err) is cls and msg in err.message and err.kind == "Deployment"
    assert 'error when creating "STDIN"' not in err.message


def test_unrecognised_kubectl_failure_stays_a_command_error(tools):
    tools.rule("kubectl", "apply", stderr="Unable to connect to the server: dial tcp 127.0.0.1:1: refused\n", rc=1)
    with pytest.raises(CommandError, match="failed to apply Deployment/web"):
        Kubectl(Runner()).api_call("apply", "-f", "-", verb="apply Deployment/web", input="{}")


def test_kind_names():
    assert [kind_of(k) for k in ("deploy", "pods", "svc", "hpa", "Deployment", "HTTPRoute", "replicaset")] == \
        ["Deployment", "Pod", "Service", "HorizontalPodAutoscaler", "Deployment", "HTTPRoute", "ReplicaSet"]


def test_get_and_list_read_recorded_objects(apiserver, api):
    apiserver.on("GET", "/apis/apps/v1/namespaces/grade-test/deployments/web", "deployment-web.json")
    apiserver.on("GET", "/api/v1/namespaces/grade-test/pods", "pods.json")
    assert api.get("Deployment", "web", "grade-test")["status"]["readyReplicas"] == 2
    pods = api.list("Pod", "grade-test", label_selector="app=web,tier!=db")
    assert [p["metadata"]["name"] for p in pods] == ["web-7d9c6b8f5-abcde", "web-7d9c6b8f5-zzzzz"]   # by name
    assert pods[0]["kind"] == "Pod" and pods[0]["apiVersion"] == "v1"
    assert apiserver.calls("GET", "/api/v1/namespaces/grade-test/pods")[0]["query"] == \
        {"labelSelector": ["app=web,tier!=db"]}


def test_api_errors_come_from_the_status_object(apiserver, api):
    apiserver.on("GET", "/apis/apps/v1/namespaces/grade-test/deployments/nope",
                 (404, "status-deploy-notfound.json"))
    apiserver.on("POST", "/api/v1/namespaces", (403, "status-ns-forbidden.json"))
    with pytest.raises(NotFound) as ei:
        api.get("Deployment", "nope", "grade-test")
    assert ei.value.message == 'deployments.apps "nope" not found' and ei.value.name == "nope"
    with pytest.raises(Forbidden, match='cannot create resource "namespaces"'):
        api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}, None)


def test_unknown_kinds_are_found_by_discovery(apiserver, api):
    apiserver.on("GET", "/apis", "apis.json")
    apiserver.on("GET", "/api/v1", "api-v1.json")
    apiserver.on("GET", "/apis/apps/v1", "apis-apps-v1.json")
    apiserver.on("GET", "/apis/networking.istio.io/v1", "apis-istio-v1.json")
    apiserver.on("GET", "/apis/networking.istio.io/v1/namespaces/grade-test/virtualservices", "virtualservices.json")
    vs = api.list("VirtualService", "grade-test")
    assert vs[0]["spec"]["http"][0]["route"][0]["weight"] == 100
    api.list("VirtualService", "grade-test")
    assert len(apiserver.calls("GET", "/apis")) == 1   # discovery is cached
    with pytest.raises(NotFound, match="doesn't have a resource type"):
        api.resource("NoSuchKind")


def test_patch_content_types(apiserver, api):
    path = "/apis/apps/v1/namespaces/grade-test/deployments/web"
    apiserver.on("PATCH", path, "deployment-web.json")
    api.patch("Deployment", "web", {"spec": {"replicas": 3}}, "grade-test", "merge")
    api.patch("Deployment", "web", {"spec": {"replicas": 3}}, "grade-test", "strategic")
    api.patch("Deployment", "web", [{"op": "replace", "path": "/spec/replicas", "value": 3}], "grade-test", "json")
    calls = apiserver.calls("PATCH", path)
    assert [c["content_type"] for c in calls] == ["application/merge-patch+json",
                                                   "application/strategic-merge-patch+json",
                                                   "application/json-patch+json"]
    assert calls[2]["body"] == [{"op": "replace", "path": "/spec/replicas", "value": 3}]
    with pytest.raises(BadRequest, match="unknown patch type"):
        api.patch("Deployment", "web", {}, "grade-test", "apply")
