"""kubectl's imperative commands, which POST protobuf bodies, against the sim's API server.

Blind spot before: every one of them failed with 415 (`kubectl create namespace` included), so a
candidate on the practice cluster could not `kubectl create configmap` a missing key, nor
`kubectl expose` or `kubectl autoscale` a Deployment. The bodies are decoded from upstream's
.proto definitions (harness/cluster/sim/api/proto, v0.32.9).
"""
from __future__ import annotations

import base64
import re

import pytest
import requests

from harness.cluster.sim.api import protobuf


def test_create_namespace_configmap_and_secret(api_env):
    out = api_env.kubectl("create", "namespace", "team-a").stdout
    assert out.strip() == "namespace/team-a created"
    api_env.kubectl("create", "configmap", "sentiment-config", "-n", "team-a", "--from-literal=MODEL_VERSION=v2",
                    "--from-literal=LOG_LEVEL=debug")
    cm = api_env.sim.store.get("ConfigMap", "team-a", "sentiment-config")
    assert cm["data"] == {"MODEL_VERSION": "v2", "LOG_LEVEL": "debug"}
    api_env.kubectl("create", "secret", "generic", "api-key", "-n", "team-a", "--from-literal=API_KEY=s3cr3t")
    sec = api_env.sim.store.get("Secret", "team-a", "api-key")
    assert base64.b64decode(sec["data"]["API_KEY"]) == b"s3cr3t" and sec["type"] == "Opaque"


def test_create_deployment_expose_and_autoscale(api_env):
    api_env.kubectl("create", "deployment", "web", "--image=app:v1", "--replicas=2", "--port=8000")
    d = api_env.sim.store.get("Deployment", "default", "web")
    assert d["spec"]["replicas"] == 2
    c = d["spec"]["template"]["spec"]["containers"][0]
    assert c["image"] == "app:v1" and c["ports"] == [{"containerPort": 8000, "protocol": "TCP"}]
    out = api_env.kubectl("rollout", "status", "deploy/web", "--timeout=60s").stdout
    assert "successfully rolled out" in out
    api_env.kubectl("expose", "deployment", "web", "--port=80", "--target-port=8000")
    svc = api_env.sim.store.get("Service", "default", "web")
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["ports"][0]["port"] == 80 and svc["spec"]["ports"][0]["targetPort"] == 8000
    api_env.kubectl("autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=60")
    hpa = api_env.kubectl("get", "hpa", "web").stdout
    assert re.search(r"^web\s+Deployment/web\s+cpu: \S+/60%\s+2\s+5\s+", hpa, re.M), hpa
    api_env.kubectl("run", "one-off", "--image=app:v1", "--restart=Never", "--labels=role=debug")
    pod = api_env.sim.store.get("Pod", "default", "one-off")
    assert pod["metadata"]["labels"] == {"role": "debug"} and pod["spec"]["restartPolicy"] == "Never"


def test_a_bad_protobuf_body_is_400_and_an_unknown_group_415(api_env):
    url = api_env.url + "/api/v1/namespaces/default/configmaps"
    hdr = {"Content-Type": "application/vnd.kubernetes.protobuf"}
    r = requests.post(url, data=b"not protobuf", headers=hdr, timeout=10)
    assert r.status_code == 400 and "k8s\\x00" in r.json()["message"]
    r = requests.post(url, data=protobuf.MAGIC + b"\xff\xff\xff", headers=hdr, timeout=10)
    assert r.status_code == 400 and r.json()["kind"] == "Status" and "Traceback" not in r.text
    unknown = protobuf._message_class("k8s.io.apimachinery.pkg.runtime.Unknown")()
    unknown.typeMeta.apiVersion, unknown.typeMeta.kind = "networking.k8s.io/v1", "NetworkPolicy"
    r = requests.post(api_env.url + "/apis/networking.k8s.io/v1/namespaces/default/networkpolicies",
                      data=protobuf.MAGIC + unknown.SerializeToString(), headers=hdr, timeout=10)
    assert r.status_code == 415 and "send it as JSON" in r.json()["message"]
    assert requests.get(api_env.url + "/version", timeout=10).status_code == 200


@pytest.mark.parametrize("ns, text", [(0, "0s"), (500_000_000, "500ms"), (90_000_000_000, "1m30s"),
                                      (3_723_000_000_000, "1h2m3s"), (1_500_000_000, "1.5s")])
def test_durations_read_as_go_prints_them(ns, text):
    assert protobuf.go_duration(ns) == text
