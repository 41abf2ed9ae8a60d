"""The kubeconfig backend (any existing context) and backend detection."""
from __future__ import annotations

import time

import pytest

from harness.cluster.base import BackendUnavailable, Cluster, NotFound
from harness.cluster.detect import choose_backend
from harness.cluster.kind import KindCluster
from harness.cluster.kubeconfig import KubeconfigCluster
from harness.cluster.sim.cluster import SimCluster
from harness.errors import GradingError

NS = "grade-test"


# ---- kubeconfig --------------------------------------------------------------------------------
def test_available_checks_kubectl_and_the_context_without_network(tools, kubeconfig_file, monkeypatch):
    assert KubeconfigCluster.available(context="lab", kubeconfig=str(kubeconfig_file)) == (True, "context lab")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_file))
    assert KubeconfigCluster.available() == (True, "context other")   # the current context
    ok, why = KubeconfigCluster.available(context="prod")
    assert not ok and "'prod' is not in the kubeconfig (have: lab, other)" in why
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_file.parent / "missing"))
    ok, why = KubeconfigCluster.available()
    assert not ok and "no usable kubeconfig" in why
    (tools.bin / "kubectl").unlink()
    ok, why = KubeconfigCluster.available(context="lab", kubeconfig=str(kubeconfig_file))
    assert not ok and "kubectl is not installed" in why


def kcluster(kubeconfig_file, fast, **kw) -> KubeconfigCluster:
    return KubeconfigCluster(context="lab", kubeconfig=str(kubeconfig_file), timeouts=fast, **kw)


def test_start_reads_the_kubeconfig_and_owns_a_baseline_namespace(tools, apiserver, kubeconfig_file, fast,
                                                                  monkeypatch):
    monkeypatch.setattr("harness.cluster.kind.real.new_namespace_name", lambda prefix="grade": NS)
    apiserver.on("GET", "/version", "version.json")
    apiserver.on("POST", "/api/v1/namespaces", (201, "namespace-created.json"))
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/serviceaccounts/default", "serviceaccount-default.json")
    apiserver.on("DELETE", f"/api/v1/namespaces/{NS}", "namespace-terminating.json")
    with kcluster(kubeconfig_file, fast) as c:
        assert isinstance(c, Cluster) and c.name == "kubeconfig"
        body = apiserver.calls("POST", "/api/v1/namespaces")[0]["body"]
        assert body["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    assert apiserver.calls("GET", "/version")[0]["method"] == "GET"
    assert len(apiserver.calls("DELETE", f"/api/v1/namespaces/{NS}")) == 1
    # no cluster-wide change: only the namespace was written
    assert {(r["method"], r["path"]) for r in apiserver.requests if r["method"] != "GET"} == \
        {("POST", "/api/v1/namespaces"), ("DELETE", f"/api/v1/namespaces/{NS}")}
    assert tools.calls() == []


def test_an_existing_namespace_is_used_and_kept(tools, apiserver, kubeconfig_file, fast, monkeypatch):
    monkeypatch.setenv("NAMESPACE", NS)
    apiserver.on("GET", "/version", "version.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}", "namespace-created.json")
    with kcluster(kubeconfig_file, fast) as c:
        assert c.namespace == NS
    assert not [r for r in apiserver.requests if r["method"] in ("POST", "DELETE")]


def test_unreachable_api_server(tools, kubeconfig_file, fast, apiserver):
    apiserver.stop()
    with pytest.raises(BackendUnavailable, match="failed to reach the API server of context lab"):
        kcluster(kubeconfig_file, fast, existing_namespace=NS).start()


def test_service_url_prefers_a_load_balancer(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web-lb.json")
    c = kcluster(kubeconfig_file, fast, existing_namespace=NS)
    assert c.service_url("web", 80) == "http://127.0.0.1:80"
    assert c.warnings == [] and tools.calls() == []


def test_service_url_goes_through_the_api_servers_service_proxy(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", "/version", "version.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}", "namespace-created.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web.json")
    tools.rule("kubectl", "proxy", "Starting to serve on 127.0.0.1:54321\n", linger=30)
    c = kcluster(kubeconfig_file, fast, existing_namespace=NS)
    c.start()
    try:
        url = f"http://127.0.0.1:54321/api/v1/namespaces/{NS}/services/web:http/proxy"
        assert c.service_url("web", "http") == url
        assert c.service_url("web", 80) == url          # one kubectl proxy for every Service port
        assert len(tools.calls("kubectl")) == 1
        assert tools.argvs("kubectl")[0] == ["--kubeconfig", str(kubeconfig_file), "--context", "lab",
                                             "proxy", "--address", "127.0.0.1", "--port", "0"]
        proc = c._proxy[0]
    finally:
        t0 = time.monotonic()
        c.stop()
    assert proc.poll() is not None and time.monotonic() - t0 < 5   # the proxy is ended by stop()


def test_kubectl_proxy_that_dies_is_a_command_error(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web.json")
    tools.rule("kubectl", "proxy", stderr='error: listen tcp 127.0.0.1:0: bind: address already in use\n', rc=1)
    with pytest.raises(Exception, match="(?s)failed to start kubectl proxy.*address already in use"):
        kcluster(kubeconfig_file, fast, existing_namespace=NS).service_url("web", 80)


def nodes(*labels: dict) -> dict:
    return {"kind": "NodeList", "apiVersion": "v1",
            "items": [{"metadata": {"name": f"node-{i}", "labels": lab}} for i, lab in enumerate(labels)]}


SHARED = {"mlops-labs.io/shares-host-docker": "true"}


def test_load_image_without_a_registry_is_exit_2_with_how_to_make_images_available(tools, apiserver,
                                                                                  kubeconfig_file, fast):
    """Item 3. Blind spot of the old test: it *expected* NotImplementedError, which the CLI re-raised
    as a traceback; Lab 02-04 on BACKEND=kubeconfig could never be graded."""
    apiserver.on("GET", "/api/v1/nodes", nodes({}, SHARED))      # one node does not share the host's Docker
    with pytest.raises(BackendUnavailable) as ei:
        kcluster(kubeconfig_file, fast).load_image("mlops-labs/sentiment:v1")
    assert "Set IMAGE_REGISTRY=host:port/prefix" in str(ei.value) and "context lab" in str(ei.value)
    assert not isinstance(ei.value, NotImplementedError)


def test_load_image_is_a_no_op_when_every_node_shares_the_host_docker(tools, apiserver, kubeconfig_file, fast,
                                                                      monkeypatch):
    """The contract with the sim's API server: its nodes carry mlops-labs.io/shares-host-docker=true."""
    from harness.cluster.base import SHARES_HOST_DOCKER_LABEL

    assert SHARES_HOST_DOCKER_LABEL == "mlops-labs.io/shares-host-docker"
    monkeypatch.setattr("harness.images.client", lambda: pytest.fail("no Docker call expected"))
    apiserver.on("GET", "/api/v1/nodes", nodes(SHARED, SHARED))
    logged: list[str] = []
    log = type("L", (), {"info": lambda self, m: logged.append(m), "warn": lambda self, m: None})()
    kcluster(kubeconfig_file, fast, log=log).load_image("mlops-labs/sentiment:v1")
    assert "already there" in logged[0] and tools.calls() == []


def test_nodes_that_cannot_be_listed_are_not_taken_as_shared(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", "/api/v1/nodes", (403, "status-ns-forbidden.json"))
    with pytest.raises(BackendUnavailable, match="IMAGE_REGISTRY"):
        kcluster(kubeconfig_file, fast).load_image("mlops-labs/sentiment:v1")


class FakeDocker:
    """Just the Docker SDK calls a push makes: images.get(...).tag(repo, tag), api.push(...)."""

    def __init__(self, push_lines=({"status": "Pushed"},)):
        self.tags, self.pushes, self.push_lines = [], [], list(push_lines)
        outer = self

        class Img:
            def tag(self, repo, tag):
                outer.tags.append((repo, tag))
                return True

        self.images = type("Images", (), {"get": lambda _, name: Img()})()
        self.api = type("Api", (), {"push": lambda _, repo, tag, stream, decode:
                                    outer.pushes.append((repo, tag)) or iter(outer.push_lines)})()


def test_image_registry_pushes_and_rewrites_only_what_reaches_the_api_server(tools, apiserver, kubeconfig_file,
                                                                            fast, monkeypatch):
    """Item 3: with IMAGE_REGISTRY the lab images are tagged and pushed, the manifests the backend
    applies name the pushed images, and what checks read back names the learner's."""
    import json

    docker = FakeDocker()
    monkeypatch.setattr("harness.images.client", lambda: docker)
    monkeypatch.setenv("IMAGE_REGISTRY", "registry.example:5000/course")
    apiserver.on("GET", "/api/v1/nodes", nodes({}))
    c = kcluster(kubeconfig_file, fast, existing_namespace=NS)
    c.load_image("mlops-labs/sentiment:v1")
    assert docker.tags == docker.pushes == [("registry.example:5000/course/mlops-labs/sentiment", "v1")]
    pushed = "registry.example:5000/course/mlops-labs/sentiment:v1"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "mlops-labs/sentiment:v1"},
                                                         {"name": "s", "image": "busybox:1.36"}]}}}}
    stored = json.loads(json.dumps(dep))
    stored["spec"]["template"]["spec"]["containers"][0]["image"] = pushed
    tools.rule("kubectl", "apply", json.dumps(stored))
    out = c.apply([dep])
    sent = json.loads(tools.calls("kubectl")[0]["stdin"])
    assert [x["image"] for x in sent["spec"]["template"]["spec"]["containers"]] == [pushed, "busybox:1.36"]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "mlops-labs/sentiment:v1"   # untouched
    assert out[0]["spec"]["template"]["spec"]["containers"][0]["image"] == "mlops-labs/sentiment:v1"
    apiserver.on("GET", f"/apis/apps/v1/namespaces/{NS}/deployments/web", stored)
    assert c.get("Deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "mlops-labs/sentiment:v1"
    assert c.diagnostics_extra()["pushed_images"] == {"mlops-labs/sentiment:v1": pushed}


def test_a_failed_push_says_what_to_check(tools, apiserver, kubeconfig_file, fast, monkeypatch):
    monkeypatch.setattr("harness.images.client", lambda: FakeDocker([{"error": "denied: requested access"}]))
    monkeypatch.setenv("IMAGE_REGISTRY", "registry.example:5000/course")
    apiserver.on("GET", "/api/v1/nodes", nodes({}))
    with pytest.raises(BackendUnavailable, match=r"failed to push registry.example:5000/course/mlops-labs/"
                                                 r"sentiment:v1: denied.*docker login registry.example:5000"):
        kcluster(kubeconfig_file, fast).load_image("mlops-labs/sentiment:v1")


def test_a_malformed_image_registry_is_refused(kubeconfig_file, fast, monkeypatch):
    monkeypatch.setenv("IMAGE_REGISTRY", "course")
    with pytest.raises(BackendUnavailable, match="is not host\\[:port\\]\\[/prefix\\]"):
        kcluster(kubeconfig_file, fast)


# ---- item 10: KUBECONFIG lists are merged --------------------------------------------------------
def test_a_kubeconfig_list_is_merged_as_kubectl_does(tools, apiserver, kubeconfig_file, fast, tmp_path, monkeypatch):
    """Blind spot: every test set KUBECONFIG to one file. With ``a:b`` only ``a`` was read, so a
    context defined in ``b`` was "not in the kubeconfig"."""
    first = tmp_path / "first"
    first.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\n"
                     "contexts:\n- name: home\n  context: {cluster: none, user: none}\ncurrent-context: lab\n")
    second = tmp_path / "second"
    second.write_text(kubeconfig_file.read_text().replace("current-context: other", "current-context: home"))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{tmp_path / 'missing'}:{second}")
    assert KubeconfigCluster.available() == (True, "context lab")   # the first current-context wins, as kubectl
    assert KubeconfigCluster.available(context="other")[0]
    apiserver.on("GET", "/version", "version.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}", "namespace-created.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web.json")
    tools.rule("kubectl", "proxy", "Starting to serve on 127.0.0.1:54321\n", linger=30)
    c = KubeconfigCluster(timeouts=fast, existing_namespace=NS)
    c.start()   # the API client read the context from the second file
    try:
        c.service_url("web", 80)
        (call,) = tools.calls("kubectl")
        assert call["argv"][:2] == ["--context", "lab"]                  # one file only for --kubeconfig: none
    finally:
        c.stop()


def test_missing_service(tools, apiserver, kubeconfig_file, fast):
    with pytest.raises(NotFound):
        kcluster(kubeconfig_file, fast, existing_namespace=NS).service_url("nope", 80)


# ---- detection ---------------------------------------------------------------------------------
def test_auto_falls_back_to_sim_loudly_when_kind_is_missing(tools):
    (tools.bin / "kind").unlink()
    shown: list[str] = []
    choice = choose_backend("auto", console_notice=shown.append)
    assert choice.name == "sim" and choice.factory is SimCluster
    assert shown == [choice.notice]
    assert "kind is not installed" in choice.notice and "kind.sigs.k8s.io" in choice.notice
    assert "grading on the offline simulator (sim) instead" in choice.notice


def test_auto_picks_kind_when_everything_is_there(tools):
    tools.rule("docker", "info", "28.3.3\n")
    shown: list[str] = []
    name, factory, notice = choose_backend("auto", console_notice=shown.append)
    assert (name, factory, notice, shown) == ("kind", KindCluster, None, [])


def test_explicit_kind_never_falls_back(tools):
    tools.rule("docker", "info", stderr="Cannot connect to the Docker daemon\n", rc=1)
    with pytest.raises(GradingError) as ei:
        choose_backend("kind", console_notice=print)
    assert "BACKEND=kind was asked for" in str(ei.value) and "Docker daemon" in str(ei.value)


def test_explicit_kubeconfig(tools, kubeconfig_file, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig_file))
    monkeypatch.setenv("CONTEXT", "lab")
    assert choose_backend("kubeconfig").factory is KubeconfigCluster
    monkeypatch.setenv("CONTEXT", "prod")
    with pytest.raises(GradingError, match="BACKEND=kubeconfig was asked for, but context 'prod'"):
        choose_backend("kubeconfig")


def test_sim_and_unknown_names(tools):
    assert choose_backend("sim") == ("sim", SimCluster, None)
    with pytest.raises(GradingError, match="unknown backend 'docker-swarm'"):
        choose_backend("docker-swarm")
