"""Real containers: the sim with DockerRuntime, real clock and real Service proxies.

Marked ``docker``: skipped when Docker or the ``python:3.11-slim`` image is
missing, unless ``REQUIRE_DOCKER=1``, which turns the skip into a failure.
Traffic only ever goes to 127.0.0.1.
"""
from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request

import pytest

from harness.waiting import wait_for

from .helpers import IMAGE, docker_required

pytestmark = pytest.mark.docker
LABEL = "io.mlops-labs.sim"


def _docker_client():
    try:
        import docker
        client = docker.from_env(timeout=10)
        client.ping()
        client.images.get(IMAGE)
        return client
    except Exception as exc:  # noqa: BLE001
        msg = f"Docker with the local image {IMAGE} is needed: {exc}"
        if docker_required():
            pytest.fail(msg + " (REQUIRE_DOCKER=1)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def real():
    client = _docker_client()
    from harness.cluster.sim import SimCluster
    sim = SimCluster(namespace="lab", propagation_delay=0.5)
    sim.start()
    yield sim
    sim.stop()
    assert client.containers.list(all=True, filters={"label": f"{LABEL}.cluster={sim.runtime.cluster_id}"}) == []


def server_pod(name, **extra):
    c = {"name": "web", "image": IMAGE, "command": ["python", "-u", "-m", "http.server", "8000"],
         "ports": [{"containerPort": 8000, "name": "http"}],
         "resources": {"limits": {"cpu": "250m", "memory": "64Mi"}},
         "readinessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1}}
    c.update(extra.pop("container", {}))
    return {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c], **extra}}


def test_deployment_behind_a_service_proxy(real):
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": server_pod("web")}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]}}
    real.apply([d, svc])
    wait_for(lambda: real.get("Deployment", "web")["status"].get("availableReplicas") == 2,
             "deployment web available", 60)
    wait_for(lambda: len(real.service_backends("web", 80)) == 2, "2 programmed backends", 10)
    url = real.service_url("web", 80)
    assert url.startswith("http://127.0.0.1:")
    for _ in range(6):
        with urllib.request.urlopen(url + "/?via=svc", timeout=5) as r:
            assert r.status == 200
    pods = [p["metadata"]["name"] for p in real.list("Pod", label_selector="app=web")]
    # one connection per request, round robin over both pods
    wait_for(lambda: [real.logs(p, tail=200).count("GET /?via=svc ") for p in pods] == [3, 3],
             "3 proxied requests in each pod's log", 10)
    st = real.get("Pod", pods[0])["status"]
    assert st["phase"] == "Running" and st["containerStatuses"][0]["ready"] is True
    real.delete("Service", "web")
    real.delete("Deployment", "web")


def test_service_without_endpoints_resets_connections(real):
    real.apply([{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "empty"},
                 "spec": {"selector": {"app": "nobody"}, "ports": [{"port": 80}]}}])
    url = real.service_url("empty", 80)
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected, urllib.error.URLError)):
        urllib.request.urlopen(url, timeout=5)
    real.delete("Service", "empty")


def test_oom_killed_is_real(real):
    p = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog"},
         "spec": {"restartPolicy": "Never", "containers": [{
             "name": "hog", "image": IMAGE, "command": ["python", "-c", "b = bytearray(256 * 1024 * 1024)"],
             "resources": {"limits": {"memory": "32Mi"}}}]}}
    real.apply([p])
    term = wait_for(lambda: real.get("Pod", "hog")["status"]["containerStatuses"][0]["state"].get("terminated"),
                    "hog terminated", 30)
    assert term["reason"] == "OOMKilled" and term["exitCode"] == 137
    assert real.get("Pod", "hog")["status"]["phase"] == "Failed"
    real.delete("Pod", "hog")


def test_graceful_termination_timing(real):
    # python as PID 1 ignores SIGTERM (as in a real pod): killed when the 2 s grace period ends
    stubborn = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stubborn"},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [
                    {"name": "c", "image": IMAGE, "command": ["python", "-c", "import time; time.sleep(600)"]}]}}
    polite = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "polite"},
              "spec": {"containers": [{"name": "c", "image": IMAGE, "command": [
                  "python", "-c", "import signal, sys, time\n"
                  "signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\ntime.sleep(600)"],
                  "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}]}}
    real.apply([stubborn, polite])
    for name in ("stubborn", "polite"):
        wait_for(lambda n=name: "running" in real.get("Pod", n)["status"]["containerStatuses"][0]["state"],
                 f"{name} running", 30)
    gone: dict[str, float] = {}
    t0 = time.monotonic()
    real.delete("Pod", "stubborn")
    real.delete("Pod", "polite")

    def both_gone():
        present = {p["metadata"]["name"] for p in real.list("Pod")}
        for n in ("stubborn", "polite"):
            if n not in gone and n not in present:
                gone[n] = time.monotonic() - t0
        return len(gone) == 2
    wait_for(both_gone, "both pods deleted", 20, poll=0.05)
    assert 1.9 <= gone["stubborn"] < 5.0, gone
    assert 0.9 <= gone["polite"] < 3.0, gone


def test_teardown_leaves_nothing_behind():
    client = _docker_client()
    from harness.cluster.sim import SimCluster
    before = set(threading.enumerate())
    sim = SimCluster(namespace="lab2")
    sim.start()
    try:
        pod = {"apiVersion": "v1", "kind": "Pod", **server_pod("p")}
        pod["metadata"]["name"] = "p"
        sim.apply([pod,
                   {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "p"},
                    "spec": {"selector": {"app": "p"}, "ports": [{"port": 80, "targetPort": 8000}]}}])
        sim.service_url("p", 80)
        wait_for(lambda: client.containers.list(filters={"label": f"{LABEL}.cluster={sim.runtime.cluster_id}"}),
                 "a container running", 30)
    finally:
        sim.stop()
    sim.stop()   # idempotent
    assert client.containers.list(all=True, filters={"label": f"{LABEL}.cluster={sim.runtime.cluster_id}"}) == []
    leftover = [t for t in set(threading.enumerate()) - before
                if t.is_alive() and t.name.startswith(("sim-controllers", "sim-service-proxy"))]
    assert leftover == []
