"""The sim's real Prometheus and its ``custom.metrics.k8s.io`` (Lab 05's path), with real containers.

* Prometheus (the machine's binary) is started and stopped with the cluster;
* only Ready pods annotated ``prometheus.io/scrape: "true"`` become file-SD targets,
  labelled with their namespace and pod;
* the API serves the in-flight gauge per pod from Prometheus while requests wait
  on ``DOWNSTREAM_LATENCY_MS``, through real ``kubectl get --raw``;
* an unknown metric is a 404 Status, as prometheus-adapter answers;
* an HPA on ``type: Pods`` ``inference_requests_in_flight`` scales up under held
  requests, and a misspelt metric gets upstream's FailedGetPodsMetric;
* without the binary the cluster does not start: a GradingError with the install command.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import shutil
import subprocess
import threading
import urllib.request

import pytest

from harness.errors import GradingError
from harness.waiting import wait_for

from .test_docker import _docker_client

pytestmark = [pytest.mark.docker, pytest.mark.slow]
IMAGE = "mlops-labs/sentiment:v1"
NS = "cm"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def _deployment(name: str, replicas: int, annotated: bool) -> dict:
    ann = {"prometheus.io/scrape": "true", "prometheus.io/port": "8000"} if annotated else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}, "annotations": ann},
                                  "spec": {"containers": [{
                                      "name": "server", "image": IMAGE, "ports": [{"containerPort": 8000, "name": "http"}],
                                      "env": [{"name": "DOWNSTREAM_LATENCY_MS", "value": "3000"},
                                              {"name": "WEB_CONCURRENCY", "value": "1"}],
                                      "resources": {"limits": {"cpu": "500m", "memory": "512Mi"}},
                                      "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"},
                                                         "periodSeconds": 1}}]}}}}


@pytest.fixture(scope="module")
def cm_sim(tmp_path_factory):
    client = _docker_client()
    client.images.get(IMAGE)
    from harness.cluster.sim import SimCluster
    from harness.cluster.sim.api import ApiHttpServer
    sim = SimCluster(namespace=NS, propagation_delay=0.5, custom_metrics=True, scrape_interval=1.0,
                     hpa_sync_period=2.0)
    sim.start()
    server = ApiHttpServer(sim)
    server.start()
    kc = tmp_path_factory.mktemp("kc") / "config"
    from tests.sim_api.conftest import write_kubeconfig
    write_kubeconfig(kc, server.url)
    yield sim, kc
    server.stop()
    prom = sim.prometheus
    sim.stop()
    assert not prom.running, "Prometheus outlived its cluster"


def _kubectl(kc, *args):
    p = subprocess.run([KUBECTL, "--kubeconfig", str(kc), "--cache-dir", str(kc.parent / "cache"), *args],
                       capture_output=True, text=True, timeout=60)
    return p


def test_pods_metric_from_prometheus_through_kubectl(cm_sim):
    sim, kc = cm_sim
    sim.apply([_deployment("slow", 2, True), _deployment("hidden", 1, False),
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "slow"},
                "spec": {"selector": {"app": "slow"}, "ports": [{"port": 80, "targetPort": "http"}]}}])
    wait_for(lambda: len([p for p in sim.list("Pod") if any(c["type"] == "Ready" and c["status"] == "True"
                                                                for c in p["status"].get("conditions", []))]) == 3,
             desc="3 pods Ready", timeout=90)
    groups = wait_for(lambda: (g := sim.pod_targets.groups()) and len(g) == 2 and g, "2 scrape targets", 10)
    assert {g["labels"]["pod"].rsplit("-", 2)[0] for g in groups} == {"slow"}   # not the unannotated pod
    assert all(g["labels"]["namespace"] == NS for g in groups)

    url = sim.service_url("slow", 80) + "/predict"
    body = json.dumps({"text": "fine"}).encode()

    def post():
        req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status

    def answers():
        with urllib.request.urlopen(sim.service_url("slow", 80) + "/readyz", timeout=5) as r:
            return r.status == 200

    # Ready pods are scrape targets at once; the Service's proxy follows the endpoints a
    # propagation delay later (a request before then is reset, as with no endpoints).
    wait_for(answers, "the slow Service to answer through its proxy", 30)
    path = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{NS}/pods/*/inference_requests_in_flight"
    # 8 clients keep a request each in flight (a new one as soon as one returns) until the
    # averaged gauge shows them: on a loaded machine scrapes and kubectl calls are slow, so the
    # load lasts as long as the wait does instead of a fixed few seconds.
    stop = threading.Event()

    def client():
        codes = []
        while not stop.is_set():
            codes.append(post())
        return codes

    def busy():
        p = _kubectl(kc, "get", "--raw", path + "?labelSelector=app%3Dslow")
        if p.returncode != 0:
            return None
        items = json.loads(p.stdout)["items"]
        total = sum(float(i["value"].rstrip("m")) / (1000 if i["value"].endswith("m") else 1) for i in items)
        return items if len(items) == 2 and total >= 4 else None

    with cf.ThreadPoolExecutor(8) as pool:
        futs = [pool.submit(client) for _ in range(8)]
        try:
            items = wait_for(busy, "in-flight requests visible through the custom metrics API", 60, poll=0.5)
        finally:
            stop.set()
        codes = [c for f in futs for c in f.result()]
        assert codes and set(codes) == {200}, codes
    assert {i["describedObject"]["kind"] for i in items} == {"Pod"}
    assert all(i["metric"]["name"] == "inference_requests_in_flight" and i["windowSeconds"] == 5 for i in items)

    # discovery lists the metric; a wrong name is the adapter's 404
    res = json.loads(_kubectl(kc, "get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2").stdout)
    assert "pods/inference_requests_in_flight" in {r["name"] for r in res["resources"]}
    bad = _kubectl(kc, "get", "--raw", path.replace("inference_requests_in_flight", "inference_request_in_flight"))
    assert bad.returncode != 0 and "NotFound" in bad.stderr + bad.stdout or "not find" in bad.stderr, bad.stderr
    active = sim.prometheus.active_targets()
    assert len(active) == 2 and all(t["health"] == "up" for t in active), active


def _hpa(name: str, metric: str, average: str) -> dict:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": name},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 1, "maxReplicas": 4,
                     "metrics": [{"type": "Pods", "pods": {"metric": {"name": metric},
                                                           "target": {"type": "AverageValue",
                                                                      "averageValue": average}}}]}}


def test_hpa_scales_on_the_pods_metric_from_prometheus(cm_sim):
    sim, kc = cm_sim
    dep = _deployment("queue", 1, True)
    dep["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2000"
    typo = _deployment("typo", 1, True)
    sim.apply([dep, typo, _hpa("queue", "inference_requests_in_flight", "1"),
               _hpa("typo", "inference_request_in_flight", "1"),
               {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "queue"},
                "spec": {"selector": {"app": "queue"}, "ports": [{"port": 80, "targetPort": "http"}]}}])
    wait_for(lambda: sim.pod_targets.groups() and any(g["labels"]["pod"].startswith("queue-")
                                                      for g in sim.pod_targets.groups()),
             "the queue pod scraped", 90)
    url = sim.service_url("queue", 80) + "/predict"
    body = json.dumps({"text": "fine"}).encode()
    stop = False

    def client():
        while not stop:
            req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, timeout=30) as r:
                    r.read()
            except OSError:
                pass

    with cf.ThreadPoolExecutor(4) as pool:
        futs = [pool.submit(client) for _ in range(4)]
        try:
            wait_for(lambda: sim.get("Deployment", "queue")["spec"]["replicas"] >= 3,
                     "the HPA to scale queue to >= 3 replicas on 4 requests in flight", 60, poll=0.5)
        finally:
            stop = True
            for f in futs:
                f.result()
    st = sim.get("HorizontalPodAutoscaler", "queue")["status"]
    cur = st["currentMetrics"][0]
    assert cur["type"] == "Pods" and cur["pods"]["metric"]["name"] == "inference_requests_in_flight"
    assert any(c["type"] == "ScalingActive" and c["status"] == "True" for c in st["conditions"])
    p = _kubectl(kc, "-n", NS, "get", "hpa", "queue")
    assert "queue" in p.stdout and "/1" in p.stdout, p.stderr

    typo_cond = wait_for(lambda: next((c for c in (sim.get("HorizontalPodAutoscaler", "typo").get("status") or {})
                                       .get("conditions") or [] if c["type"] == "ScalingActive"), None),
                         "the misspelt HPA's ScalingActive condition", 20)
    assert typo_cond["status"] == "False" and typo_cond["reason"] == "FailedGetPodsMetric", typo_cond
    assert "the server could not find the metric inference_request_in_flight for pods" in typo_cond["message"]


def test_missing_binary_is_an_install_hint(monkeypatch):
    from harness.cluster.sim import prometheus
    monkeypatch.setattr(prometheus.shutil, "which", lambda name: None)
    monkeypatch.setattr(prometheus.os.path, "exists", lambda p: False)
    with pytest.raises(GradingError) as e:
        prometheus.find_binary()
    assert "apt-get install -y prometheus" in str(e.value)
