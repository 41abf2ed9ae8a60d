"""``KindCluster`` end to end against fake tools and a fake API server."""
from __future__ import annotations

import json

import pytest

from harness.cluster.base import Cluster, Forbidden, Invalid, NotFound
from harness.cluster.kind import KindCluster
from harness.cluster.kind.addons import METRICS_SERVER_URL
from harness.cluster.kind.cluster import CONFIG
from harness.cluster.kind.diagnostics import Stuck
from harness.errors import CommandError

from .fakeapi import recorded

NS = "grade-test"


def healthy(tools, apiserver, *, top_fails: int = 1) -> None:
    """Rules and routes for a cluster that exists and comes up cleanly."""
    tools.rule("kind", "get clusters", "mlops-labs\n")
    tools.rule("kind", "get nodes", "mlops-labs-control-plane\nmlops-labs-worker\nmlops-labs-worker2\n")
    tools.rule("docker", "inspect --format", "/mlops-labs-control-plane running\n/mlops-labs-worker running\n"
                                             "/mlops-labs-worker2 running\n")
    tools.rule("kind", "get kubeconfig", "apiVersion: v1\nkind: Config\n")
    apiserver.on("GET", "/version", "version.json")
    apiserver.on("GET", "/api/v1/namespaces", {"kind": "NamespaceList", "apiVersion": "v1", "items": []})
    tools.rule("kubectl", "top nodes", stderr="error: metrics not available yet\n", rc=1, times=top_fails)
    tools.rule("kubectl", "top nodes", "mlops-labs-control-plane 120m 6% 700Mi 9%\n")
    apiserver.on("GET", "/api/v1/nodes", "nodes-ready.json")
    apiserver.on("GET", "/api/v1/nodes?labelSelector=nvidia.com/gpu.present=true",   # reused: capacity already set
                 {"kind": "NodeList", "apiVersion": "v1", "items": [recorded("node-worker2-gpu.json")]})
    apiserver.on("GET", "/api/v1/nodes/mlops-labs-worker2", "node-worker2-gpu.json")
    apiserver.on("GET", "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server",
                 "deployment-metrics-server-progressing.json", "deployment-metrics-server-ready.json")
    apiserver.on("POST", "/api/v1/namespaces", (201, "namespace-created.json"))
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/serviceaccounts/default", (404, "status-sa-notfound.json"),
                 "serviceaccount-default.json")
    apiserver.on("DELETE", f"/api/v1/namespaces/{NS}", "namespace-terminating.json")


@pytest.fixture
def kc(tools, apiserver, api, tmp_path, fast):
    c = KindCluster(namespace=NS, state_dir=tmp_path / "state", timeouts=fast, api=api)
    yield c
    c.stop()


def test_is_a_cluster(kc):
    assert isinstance(kc, Cluster) and kc.name == "kind" and kc.cluster_name == "mlops-labs"


def test_start_reuses_waits_sets_up_gpu_and_metrics_server_then_creates_the_namespace(kc, tools, apiserver):
    healthy(tools, apiserver)
    kc.start()
    kcfg = str(kc.lifecycle.kubeconfig)
    pinned = ["--kubeconfig", kcfg, "--context", "kind-mlops-labs"]
    # metrics-server v0.7.2 with its flag is in place already: not re-applied (that would drop the flag)
    assert tools.argvs("kubectl") == [pinned + ["top", "nodes", "--no-headers"],
                                      pinned + ["top", "nodes", "--no-headers"]]
    assert kc.addon_sources == {"metrics-server v0.7.2": f"already installed ({METRICS_SERVER_URL})"}
    assert not [a for a in tools.argvs("kind") if a[0] == "create"]
    ns = apiserver.calls("POST", "/api/v1/namespaces")[0]["body"]
    assert ns["metadata"]["name"] == NS
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert len(apiserver.calls("GET", f"/api/v1/namespaces/{NS}/serviceaccounts/default")) == 2
    kc.start()   # idempotent
    assert len(apiserver.calls("POST", "/api/v1/namespaces")) == 1


def test_stop_deletes_the_namespace_and_keeps_the_cluster(kc, tools, apiserver):
    healthy(tools, apiserver)
    kc.start()
    kc.stop()
    kc.stop()   # idempotent
    assert len(apiserver.calls("DELETE", f"/api/v1/namespaces/{NS}")) == 1
    assert not [a for a in tools.argvs("kind") if a[0] == "delete"]


def test_keep_cluster_0_deletes_the_cluster(tools, apiserver, api, tmp_path, fast, monkeypatch):
    monkeypatch.setenv("KEEP_CLUSTER", "0")
    healthy(tools, apiserver)
    tools.rule("kind", "delete cluster", "Deleted nodes: [...]\n")
    with KindCluster(namespace=NS, state_dir=tmp_path / "s", timeouts=fast, api=api) as kc:
        assert kc.keep_cluster is False
    assert ["delete", "cluster", "--name", "mlops-labs", "--kubeconfig", kc.lifecycle.kubeconfig] in tools.argvs("kind")


def test_metrics_server_that_never_answers_is_stuck_with_events(kc, tools, apiserver):
    healthy(tools, apiserver, top_fails=10_000)
    apiserver.on("GET", "/api/v1/namespaces/kube-system/pods", {"kind": "PodList", "items": []})
    apiserver.on("GET", "/api/v1/namespaces/kube-system/events", "events.json")
    with pytest.raises(Stuck) as ei:
        kc.start()
    msg = str(ei.value)
    assert "failed to install addon metrics-server" in msg and "metrics not available yet" in msg
    assert "BackOff" in msg   # events of kube-system are part of the message


def test_missing_kind_is_backend_unavailable_with_instructions(kc, tools):
    (tools.bin / "kind").unlink()
    with pytest.raises(Exception, match="kind is not installed.*install kind"):
        kc.start()
    assert KindCluster.available() == (False, KindCluster.available()[1])
    assert "kind is not installed" in KindCluster.available()[1]


def test_available_needs_a_docker_daemon(tools):
    tools.rule("docker", "info", stderr="Cannot connect to the Docker daemon at unix:///var/run/docker.sock\n", rc=1)
    ok, why = KindCluster.available()
    assert not ok and "Docker daemon does not answer" in why and "Cannot connect" in why
    tools.reset()
    tools.rule("docker", "info", "28.3.3\n")
    assert KindCluster.available() == (True, "kind, kubectl and Docker 28.3.3 found")


# ---- the protocol's object methods (cluster already started) ---------------------------------
@pytest.fixture
def started(kc, tools, apiserver):
    healthy(tools, apiserver, top_fails=0)
    kc.start()
    tools.reset()
    return kc


def test_apply_uses_kubectl_with_strict_server_validation(started, tools):
    tools.rule("kubectl", "apply", stdout_file="kubectl-apply-deployment.json",
               stderr='Warning: would violate PodSecurity "restricted:latest": runAsNonRoot != true\n')
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {}}
    out = started.apply([dep])
    assert out[0]["status"]["readyReplicas"] == 2
    call = tools.calls("kubectl")[-1]
    assert call["argv"][4:] == ["apply", "--validate=strict", "-n", NS, "-o", "json", "-f", "-"]
    assert json.loads(call["stdin"]) == dep
    assert started.warnings == ['Warning: would violate PodSecurity "restricted:latest": runAsNonRoot != true']


def test_apply_maps_server_errors_and_stops_at_the_first(started, tools):
    tools.rule("kubectl", "apply", rc=1, stderr='Error from server (Invalid): error when creating "STDIN": '
               'Deployment.apps "web" is invalid: spec.template.spec.containers[0].image: Required value\n', times=1)
    tools.rule("kubectl", "apply", rc=1, stderr='Error from server (Forbidden): error when creating "STDIN": pods '
               '"p" is forbidden: violates PodSecurity "baseline:latest": privileged\n')
    objs = [{"kind": "Deployment", "metadata": {"name": "web"}}, {"kind": "Pod", "metadata": {"name": "p"}}]
    with pytest.raises(Invalid) as ei:
        started.apply(objs)
    assert ei.value.message.startswith('Deployment.apps "web" is invalid') and ei.value.name == "web"
    assert len(tools.calls("kubectl")) == 1
    with pytest.raises(Forbidden, match="violates PodSecurity"):
        started.apply(objs[1:])


def test_get_list_delete_patch(started, apiserver):
    apiserver.on("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web", "deployment-web.json")
    apiserver.on("GET", "/apis/apps/v1/namespaces/other/deployments/nope", (404, "status-deploy-notfound.json"))
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/pods", "pods.json")
    apiserver.on("DELETE", f"/apis/apps/v1/namespaces/{NS}/deployments/web", {"kind": "Status", "status": "Success"})
    apiserver.on("PATCH", "/api/v1/nodes/mlops-labs-worker2/status", "node-worker2-gpu.json")
    assert started.get("deployment", "web")["metadata"]["name"] == "web"
    with pytest.raises(NotFound):
        started.get("Deployment", "nope", "other")
    assert [p["metadata"]["name"] for p in started.list("Pod")] == ["web-7d9c6b8f5-abcde", "web-7d9c6b8f5-zzzzz"]
    assert started.list("Node")[0]["kind"] == "Node"   # cluster-scoped: no namespace in the path
    started.delete("Deployment", "web")
    assert apiserver.calls("DELETE")[-1]["body"] == {"propagationPolicy": "Background"}
    started.patch("Node", "mlops-labs-worker2", [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu",
                                                  "value": "1"}], patch_type="json")
    assert apiserver.calls("PATCH", "/api/v1/nodes/mlops-labs-worker2/status")


def test_logs_events_and_top(started, apiserver):
    pod = "web-7d9c6b8f5-zzzzz"
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/pods/{pod}/log", "Traceback...\nMemoryError\n")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/pods/{pod}/log?tailLines=5&container=web&previous=true",
                 (400, "status-log-previous.json"))
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/events", "events.json")
    apiserver.on("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods", "podmetrics.json")
    assert started.logs(pod) == "Traceback...\nMemoryError\n"
    from harness.cluster.kind.cli import BadRequest
    with pytest.raises(BadRequest, match="previous terminated container"):
        started.logs(pod, "web", previous=True, tail=5)
    evs = started.events(involved_kind="pod", involved_name=pod)
    assert [e["reason"] for e in evs] == ["Scheduled", "ScalingReplicaSet", "BackOff"]   # oldest first
    assert apiserver.calls("GET", f"/api/v1/namespaces/{NS}/events")[-1]["query"] == \
        {"fieldSelector": [f"involvedObject.kind=Pod,involvedObject.name={pod}"]}
    top = started.top_pods()
    assert [(m["metadata"]["name"], m["containers"][0]["usage"]["cpu"]) for m in top] == \
        [("web-7d9c6b8f5-abcde", "250m"), ("web-7d9c6b8f5-zzzzz", "12m")]


def test_rollout_undo(started, tools, apiserver):
    apiserver.on("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web", "deployment-web.json")
    tools.rule("kubectl", "rollout undo deployment/web -n grade-test --to-revision=1",
               stderr='error: unable to find specified revision 1 in history\n', rc=1)
    tools.rule("kubectl", "rollout undo", "deployment.apps/web rolled back\n")
    assert started.rollout_undo("web")["metadata"]["name"] == "web"
    assert tools.argvs("kubectl")[-1][4:] == ["rollout", "undo", "deployment/web", "-n", NS]
    with pytest.raises(CommandError, match="failed to roll back deployment web"):
        started.rollout_undo("web", to_revision=1)


def test_service_url_is_a_companion_nodeport_in_the_published_range(started, apiserver):
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web-grader", (404, {"kind": "Status", "reason":
                 "NotFound", "code": 404, "message": 'services "web-grader" not found'}), "service-web-grader.json")
    apiserver.on("GET", "/api/v1/services", "services-all.json")   # 30080 is taken by another run
    apiserver.on("POST", f"/api/v1/namespaces/{NS}/services", (422, "status-port-allocated.json"),
                 (201, "service-web-grader.json"))
    url = started.service_url("web", "http")
    assert url == "http://127.0.0.1:30082"   # 30080 in use, 30081 taken meanwhile
    posts = apiserver.calls("POST", f"/api/v1/namespaces/{NS}/services")
    assert [p["body"]["spec"]["ports"][0]["nodePort"] for p in posts] == [30081, 30082]
    svc = posts[-1]["body"]
    assert svc["metadata"]["name"] == "web-grader" and svc["spec"]["type"] == "NodePort"
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "mlops-labs-harness"}
    assert started.service_url("web", 80) == url   # reused, not recreated
    assert len(apiserver.calls("POST", f"/api/v1/namespaces/{NS}/services")) == 2
    with pytest.raises(NotFound, match="has no port 9999"):
        started.service_url("web", 9999)


def test_load_image_saves_one_platform_and_loads_the_archive(started, tools):
    tools.rule("docker", "image inspect", "sha256:1234\n")
    tools.rule("docker", "image save", "")
    tools.rule("kind", "load image-archive", "")
    started.load_image("sentiment:v1")
    docker = tools.argvs("docker")
    assert docker[0] == ["image", "inspect", "--format", "{{.Id}}", "sentiment:v1"]
    assert docker[1][:3] == ["image", "save", "--platform"] and docker[1][3].startswith("linux/")
    archive = docker[1][5]
    assert tools.argvs("kind")[-1] == ["load", "image-archive", archive, "--name", "mlops-labs"]
    assert not [a for a in tools.argvs("kind") if "docker-image" in a]   # the broken path is never used


def test_load_image_on_old_docker_and_missing_image(started, tools):
    tools.rule("docker", "image inspect --format {{.Id}} ghost", stderr="Error: No such image: ghost\n", rc=1)
    tools.rule("docker", "image inspect", "sha256:1234\n")
    tools.rule("docker", "image save --platform", stderr="unknown flag: --platform\n", rc=125)
    tools.rule("docker", "image save -o", "")
    tools.rule("kind", "load image-archive", "")
    started.load_image("sentiment:v1")
    assert tools.argvs("docker")[-1][:3] == ["image", "save", "-o"]
    with pytest.raises(NotFound, match='image "ghost" is not present in the local Docker engine'):
        started.load_image("ghost")


def test_collect_diagnostics(started, tools, apiserver, tmp_path):
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/events", "events.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/pods", "pods.json")
    for kind, path in (("deployments", "/apis/apps/v1"), ("replicasets", "/apis/apps/v1"), ("services", "/api/v1")):
        apiserver.on("GET", f"{path}/namespaces/{NS}/{kind}", {"kind": "List", "items": []})
    for pod in ("web-7d9c6b8f5-zzzzz", "web-7d9c6b8f5-abcde"):
        apiserver.on("GET", f"/api/v1/namespaces/{NS}/pods/{pod}/log", f"log of {pod}\n")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/pods/web-7d9c6b8f5-abcde/log?tailLines=200&container=web"
                        "&previous=true", (400, "status-log-previous.json"))
    tools.rule("kubectl", "get pods -o wide", "NAME READY STATUS RESTARTS\nweb-...-zzzzz 0/1 CrashLoopBackOff 4\n")
    tools.rule("kubectl", "describe pod web-7d9c6b8f5-zzzzz", "Name: web-7d9c6b8f5-zzzzz\nEvents: ...\n")
    tools.rule("kubectl", "get nodes -o wide", "NAME STATUS\nmlops-labs-worker Ready\n")
    out = tmp_path / "diag"
    started.collect_diagnostics(out)
    events = (out / "events.txt").read_text().splitlines()
    assert [line.split()[2] for line in events] == ["Scheduled", "ScalingReplicaSet", "BackOff"]
    assert "CrashLoopBackOff" in (out / "pods-wide.txt").read_text()
    assert (out / "describe-web-7d9c6b8f5-zzzzz.txt").exists()
    assert not (out / "describe-web-7d9c6b8f5-abcde.txt").exists()   # only failing pods are described
    logs = sorted(p.name for p in (out / "logs").iterdir())
    assert logs == ["web-7d9c6b8f5-abcde_web.log", "web-7d9c6b8f5-zzzzz_web.log",
                    "web-7d9c6b8f5-zzzzz_web.previous.log"]
    assert "mlops-labs-worker" in (out / "nodes-wide.txt").read_text() and (out / "nodes.yaml").exists()
    assert "kind-mlops-labs" in (out / "kind.yaml").read_text()
    assert not (out / "errors.txt").exists()


def test_diagnostics_never_raise(started, tools, tmp_path):
    started.collect_diagnostics(tmp_path / "d")   # no routes, no rules: every part fails
    errors = (tmp_path / "d" / "errors.txt").read_text()
    assert "events.txt" in errors and "pods-wide.txt" in errors


def test_config_file_is_passed_on_create(tools, apiserver, api, tmp_path, fast):
    healthy(tools, apiserver, top_fails=0)
    tools.drop("kind", "get clusters")
    tools.rule("kind", "get clusters", "")
    tools.rule("kind", "create cluster", "")
    with KindCluster(namespace=NS, state_dir=tmp_path / "s", timeouts=fast, api=api) as kc:
        pass
    assert ["create", "cluster", "--name", "mlops-labs", "--config", str(CONFIG), "--kubeconfig",
            kc.lifecycle.kubeconfig] in tools.argvs("kind")


def test_grading_namespace_names_are_unique(tmp_path):
    a, b = KindCluster(state_dir=tmp_path), KindCluster(state_dir=tmp_path)
    assert a.namespace != b.namespace and a.namespace.startswith("grade-")
    assert recorded("namespace-created.json")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == \
        "baseline"
