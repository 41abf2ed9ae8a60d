"""The addons: upstream's pinned release manifests online, the bundled copies offline, and the
bundled copies valid for a real API server (issue 9, items 1 and 2)."""
from __future__ import annotations

import json

import pytest
import yaml

from harness.cluster.kind.addons import (ADDONS, GATEWAY_API, INSECURE_TLS_PATCH, METRICS_SERVER,
                                         METRICS_SERVER_URL, bundled_errors, install)
from harness.cluster.kind.cli import Kubectl, Runner
from harness.cluster.kind.diagnostics import Stuck
from harness.crds import CRD_DIR
from harness.crds.validate import api_approval_error, protected_group
from harness.errors import CommandError

from .fakeapi import recorded
from .test_gateway import crds_land, traefik_available

OFFLINE = ('error: unable to recognize "{url}": Get "{url}": dial tcp: lookup github.com on 127.0.0.53:53: '
           "no such host\n")


def kubectl() -> Kubectl:
    return Kubectl(Runner())


class Log:
    def __init__(self) -> None:
        self.infos: list[str] = []
        self.warns: list[str] = []

    def info(self, msg: str) -> None:
        self.infos.append(msg)

    def warn(self, msg: str) -> None:
        self.warns.append(msg)


# ---- item 2: every object of every addon through the project's own validators --------------------------
@pytest.mark.parametrize("name", sorted(ADDONS))
def test_every_object_of_every_addon_passes_the_projects_validators(name):
    """Blind spot of the old test (tests/kind/test_gateway.py): it validated the core kinds with
    kubernetes-validate and *skipped the GatewayClass*, whose 65-character ``spec.description``
    the CRD refuses (``maxLength: 64``). Here no object is skipped: core kinds go through
    ``harness.manifests.validate``, custom ones through ``harness.crds.validate.validate_custom``."""
    addon = ADDONS[name]
    count, errors = bundled_errors(addon)
    assert errors == []
    docs = [d for p in addon.files for d in yaml.safe_load_all(p.read_text()) if d]
    assert count == len(docs) > 0


def test_the_gatewayclass_is_among_the_validated_objects_and_a_long_description_is_caught(tmp_path, monkeypatch):
    from harness.crds.validate import validate_custom

    gc = next(d for d in yaml.safe_load_all(GATEWAY_API.path.read_text()) if d and d["kind"] == "GatewayClass")
    assert len(gc["spec"]["description"]) <= 64 and validate_custom(gc) == []
    gc["spec"]["description"] = "Traefik v3.5.0 installed by the mlops-labs harness (kind backend)"   # the old one
    assert validate_custom(gc) == ["spec.description: Too long: may not be more than 64 bytes"]


# ---- item 1: the bundled CRDs are what a real API server accepts ---------------------------------------
def test_every_bundled_crd_in_a_protected_group_is_api_approved():
    """Blind spot: the bundled Gateway API CRDs carried ``api-approved.kubernetes.io`` only in a
    header comment. ``gateway.networking.k8s.io`` ends in ``.k8s.io``, so apiextensions'
    ``validateAPIApproval`` refuses such a CRD outright."""
    protected = 0
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        assert api_approval_error(crd) is None, path.name
        if protected_group(crd["spec"]["group"]):
            protected += 1
            assert crd["metadata"]["annotations"]["api-approved.kubernetes.io"] == \
                "https://github.com/kubernetes-sigs/gateway-api/pull/3328", path.name
    assert protected == 5


@pytest.mark.parametrize("group, value, ok", [
    ("gateway.networking.k8s.io", "", False),
    ("gateway.networking.k8s.io", "not a url", False),
    ("gateway.networking.k8s.io", "unapproved, experimental-only", True),
    ("gateway.networking.k8s.io", "https://github.com/kubernetes-sigs/gateway-api/pull/3328", True),
    ("k8s.io", "", False), ("metrics.kubernetes.io", "", False),
    ("networking.istio.io", "", True), ("example.com", "", True),
])
def test_api_approval_follows_apiextensions(group, value, ok):
    crd = {"metadata": {"annotations": {"api-approved.kubernetes.io": value} if value else {}},
           "spec": {"group": group}}
    err = api_approval_error(crd)
    assert (err is None) == ok
    if not value and not ok:
        assert "Required value: protected groups must have approval annotation" in err


# ---- item 1: online, upstream; offline, the bundled copy, announced -----------------------------------
def metrics_server_lands(apiserver, *, before: bool) -> None:
    """Absent before the install (``before``), then Available with the flag."""
    apiserver.on("GET", "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server",
                 *([(404, "status-deploy-notfound.json")] if before else []), "deployment-metrics-server-ready.json")


def test_a_metrics_server_without_the_flag_is_reinstalled(tools, api, apiserver, fast):
    plain = recorded("deployment-metrics-server-ready.json")
    plain["spec"]["template"]["spec"]["containers"][0]["args"].remove("--kubelet-insecure-tls")
    apiserver.on("GET", "/apis/apps/v1/namespaces/kube-system/deployments/metrics-server", plain,
                 "deployment-metrics-server-ready.json")
    tools.rule("kubectl", "apply --validate=strict -f https://", "deployment.apps/metrics-server configured\n")
    tools.rule("kubectl", "patch deployment metrics-server", "deployment.apps/metrics-server patched\n")
    tools.rule("kubectl", "top nodes", "mlops-labs-control-plane 120m 6% 700Mi 9%\n")
    install(METRICS_SERVER, kubectl(), api, fast)
    assert [a[0] for a in tools.argvs("kubectl")] == ["apply", "patch", "top"]


def test_metrics_server_online_is_upstreams_release_plus_the_documented_patch(tools, api, apiserver, fast):
    tools.rule("kubectl", "apply --validate=strict -f https://", "deployment.apps/metrics-server created\n")
    tools.rule("kubectl", "patch deployment metrics-server", "deployment.apps/metrics-server patched\n")
    tools.rule("kubectl", "top nodes", "mlops-labs-control-plane 120m 6% 700Mi 9%\n")
    metrics_server_lands(apiserver, before=True)
    log = Log()
    sources = install(METRICS_SERVER, kubectl(), api, fast, log=log)
    assert METRICS_SERVER_URL == ("https://github.com/kubernetes-sigs/metrics-server/releases/download/v0.7.2/"
                                  "components.yaml")
    argvs = tools.argvs("kubectl")
    assert argvs[0] == ["apply", "--validate=strict", "-f", METRICS_SERVER_URL]
    assert argvs[1] == ["patch", "deployment", "metrics-server", "-n", "kube-system", "--type=json", "-p",
                        json.dumps(INSECURE_TLS_PATCH)]
    assert json.loads(argvs[1][-1]) == [{"op": "add", "path": "/spec/template/spec/containers/0/args/-",
                                         "value": "--kubelet-insecure-tls"}]
    assert sources == {"metrics-server v0.7.2": f"upstream {METRICS_SERVER_URL}"} and log.warns == []


def test_offline_the_bundled_copy_is_installed_and_that_is_said(tools, api, apiserver, fast):
    tools.rule("kubectl", "apply --validate=strict -f https://", stderr=OFFLINE.format(url=METRICS_SERVER_URL), rc=1)
    tools.rule("kubectl", "apply --validate=strict -f .*metrics-server.yaml", "deployment.apps/metrics-server created\n")
    tools.rule("kubectl", "top nodes", "mlops-labs-control-plane 120m 6% 700Mi 9%\n")
    metrics_server_lands(apiserver, before=True)
    log = Log()
    sources = install(METRICS_SERVER, kubectl(), api, fast, log=log)
    argvs = tools.argvs("kubectl")
    assert argvs[1] == ["apply", "--validate=strict", "-f", str(METRICS_SERVER.path)]
    assert not [a for a in argvs if a[0] == "patch"]          # the bundled copy has the flag already
    (source,) = sources.values()
    assert source.startswith("bundled harness/cluster/addons/metrics-server.yaml (offline: could not fetch "
                             f"{METRICS_SERVER_URL}: error: unable to recognize")
    assert len(log.warns) == 1 and "installing the bundled copy instead" in log.warns[0]


def test_gateway_api_offline_falls_back_to_the_bundled_crds(tools, api, apiserver, fast):
    tools.rule("kubectl", "apply --validate=strict -f https://", rc=1,
               stderr='error: unable to read URL "https://github.com/...", server reported 503 Service Unavailable, '
                      "status code=503\n")
    tools.rule("kubectl", "apply --validate=strict -f .*gateway.networking.k8s.io_gatewayclasses.yaml", "created\n")
    tools.rule("kubectl", "wait --for=condition=Established", "condition met\n")
    tools.rule("kubectl", "apply --validate=strict -f .*gateway-traefik.yaml", "created\n")
    tools.rule("kubectl", "get gatewayclass", "True")
    traefik_available(apiserver)
    crds_land(apiserver, before=True)
    log = Log()
    sources = install(GATEWAY_API, kubectl(), api, fast, log=log)
    bundled = tools.argvs("kubectl")[1]
    assert bundled[:2] == ["apply", "--validate=strict"] and bundled[2::2] == ["-f"] * 5
    assert "(offline: could not fetch" in sources["Gateway API v1.3.0 CRDs (standard channel)"]
    assert "Gateway API v1.3.0 CRDs" in log.warns[0]


def test_an_api_server_error_is_not_mistaken_for_being_offline(tools, api, apiserver, fast):
    tools.rule("kubectl", "apply --validate=strict -f https://", rc=1,
               stderr='Error from server (Forbidden): error when creating "https://...": customresourcedefinitions '
                      'is forbidden: User "student" cannot create resource\n')
    crds_land(apiserver, before=True)
    with pytest.raises(CommandError, match="(?s)failed to install Gateway API v1.3.0 CRDs.*forbidden"):
        install(GATEWAY_API, kubectl(), api, fast)
    assert len(tools.argvs("kubectl")) == 1     # no fallback


def test_a_reused_cluster_keeps_its_pinned_install(tools, api, apiserver, fast):
    """Re-applying components.yaml would drop the patched flag and restart metrics-server twice."""
    tools.rule("kubectl", "top nodes", "mlops-labs-control-plane 120m 6% 700Mi 9%\n")
    metrics_server_lands(apiserver, before=False)
    assert install(METRICS_SERVER, kubectl(), api, fast) == {
        "metrics-server v0.7.2": f"already installed ({METRICS_SERVER_URL})"}
    assert [a[0] for a in tools.argvs("kubectl")] == ["top"]


def test_what_landed_is_checked_after_the_install(tools, api, apiserver, fast):
    tools.rule("kubectl", "apply", "ok\n")
    tools.rule("kubectl", "wait", "condition met\n")
    crds_land(apiserver, "v1.1.0")
    with pytest.raises(Stuck, match=r"what landed differs: CRD gatewayclasses.gateway.networking.k8s.io has "
                                    r"gateway.networking.k8s.io/bundle-version v1.1.0, not v1.3.0"):
        install(GATEWAY_API, kubectl(), api, fast)


def test_traefiks_image_tag_is_checked(tools, api, apiserver, fast):
    tools.rule("kubectl", "apply", "ok\n")
    tools.rule("kubectl", "wait", "condition met\n")
    crds_land(apiserver)
    traefik_available(apiserver, image="docker.io/library/traefik:latest")
    with pytest.raises(Stuck, match=r"deployment mlops-gateway/traefik runs image docker.io/library/traefik:latest, "
                                    r"not docker.io/library/traefik:v3.5.0"):
        install(GATEWAY_API, kubectl(), api, fast)


def test_custom_metrics_adapter_serves_the_sims_rules_and_registers_custom_metrics_only():
    """The kind addon's adapter and the sim's custom.metrics.k8s.io read the same rules
    (harness/cluster/addons/custom-metrics-rules.yaml), with <<.Window>> filled for kind; the
    APIServices are custom.metrics.k8s.io's, so metrics-server keeps metrics.k8s.io."""
    from harness.cluster.kind.addons import ADDONS_DIR, CUSTOM_METRICS, CUSTOM_METRICS_WINDOW

    docs = [d for p in CUSTOM_METRICS.files for d in yaml.safe_load_all(p.read_text()) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "adapter-config")
    rules = (ADDONS_DIR / "custom-metrics-rules.yaml").read_text().replace("<<.Window>>", CUSTOM_METRICS_WINDOW)
    assert yaml.safe_load(cm["data"]["config.yaml"]) == yaml.safe_load(rules)
    assert "<<.Window>>" not in cm["data"]["config.yaml"]
    services = sorted(d["metadata"]["name"] for d in docs if d["kind"] == "APIService")
    assert services == ["v1beta1.custom.metrics.k8s.io", "v1beta2.custom.metrics.k8s.io"]
    adapter = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "prometheus-adapter")
    args = adapter["spec"]["template"]["spec"]["containers"][0]["args"]
    prometheus = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "prometheus")
    assert f"--prometheus-url=http://{prometheus['metadata']['name']}.{prometheus['metadata']['namespace']}.svc:9090/" in args


def test_a_broken_custom_metrics_object_is_caught_by_the_validators(tmp_path, monkeypatch):
    from harness.cluster.kind import addons as mod

    bad = tmp_path / "addons" / "custom-metrics-adapter.yaml"
    bad.parent.mkdir()
    bad.write_text(mod.CUSTOM_METRICS.parts[1].bundled[0].read_text().replace("versionPriority:", "versionPriorty:", 1))
    part = mod.Part("prometheus-adapter", (bad,))
    count, errors = bundled_errors(mod.Addon("custom-metrics", "monitoring", "prometheus-adapter", parts=(part,)))
    assert count > 0 and any("versionPriorty" in e for e in errors), errors
