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
        kcluster(kubeconfig_file, fast, namespace=NS).start()


def test_service_url_prefers_a_load_balancer(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web-lb.json")
    c = kcluster(kubeconfig_file, fast, namespace=NS)
    assert c.service_url("web", 80) == "http://127.0.0.1:80"
    assert c.warnings == [] and tools.calls() == []


def test_service_url_falls_back_to_port_forward_with_a_warning(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", "/version", "version.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}", "namespace-created.json")
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web.json")
    tools.rule("kubectl", "port-forward", "Forwarding from 127.0.0.1:54321 -> 8080\n", linger=30)
    c = kcluster(kubeconfig_file, fast, namespace=NS)
    c.start()
    try:
        assert c.service_url("web", "http") == "http://127.0.0.1:54321"
        assert c.service_url("web", 80) == "http://127.0.0.1:54321"   # one forward per service port
        assert len(tools.calls("kubectl")) == 1
        assert tools.argvs("kubectl")[0] == ["--kubeconfig", str(kubeconfig_file), "--context", "lab",
                                             "port-forward", "--address", "127.0.0.1", "-n", NS, "svc/web", ":80"]
        assert "does not spread load" in c.warnings[0]
        proc = next(iter(c._forwards.values()))[0]
    finally:
        t0 = time.monotonic()
        c.stop()
    assert proc.poll() is not None and time.monotonic() - t0 < 5   # the forward is ended by stop()


def test_port_forward_that_dies_is_a_command_error(tools, apiserver, kubeconfig_file, fast):
    apiserver.on("GET", f"/api/v1/namespaces/{NS}/services/web", "service-web.json")
    tools.rule("kubectl", "port-forward", stderr='error: unable to forward port because pod is not running. '
               'Current status=Pending\n', rc=1)
    with pytest.raises(Exception, match="(?s)failed to port-forward service web.*pod is not running"):
        kcluster(kubeconfig_file, fast, namespace=NS).service_url("web", 80)


def test_load_image_explains_registries(kubeconfig_file, fast):
    with pytest.raises(NotImplementedError, match="push it to a registry"):
        kcluster(kubeconfig_file, fast).load_image("sentiment:v1")


def test_missing_service(tools, apiserver, kubeconfig_file, fast):
    with pytest.raises(NotFound):
        kcluster(kubeconfig_file, fast, namespace=NS).service_url("nope", 80)


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
