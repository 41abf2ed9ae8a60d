"""The sim's metrics-server: scrape cadence, rates, PodMetrics shape, quantity formats (fake clock)."""
from __future__ import annotations

import pytest

from harness.cluster.sim import FakeApp, SimCluster
from harness.cluster.sim.clock import FAKE_EPOCH, rfc3339
from harness.cluster.sim.metrics import binary_quantity, decimal_quantity, go_duration

from .hpa_helpers import deployment, hsim, make_sim, start_order  # noqa: F401 - fixture

MI = 1024 * 1024


@pytest.mark.parametrize("value,exp,out", [
    (250_000_000, -9, "250m"), (123_456_789, -9, "123456789n"), (1_000_000_000, -9, "1"),
    (1_500_000_000, -9, "1500m"), (0, -9, "0"), (12_000, -9, "12u"), (2000, -3, "2"), (587, -3, "587m"),
    (2_000_000, -3, "2k")])
def test_decimal_quantity_is_canonical(value, exp, out):
    assert decimal_quantity(value, exp) == out


@pytest.mark.parametrize("n,out", [(64 * MI, "64Mi"), (4096, "4Ki"), (1000, "1000"), (12345678, "12345678"),
                                   (3 * 1024 ** 3, "3Gi")])
def test_binary_quantity_is_canonical(n, out):
    assert binary_quantity(n) == out


def test_go_duration():
    assert [go_duration(x) for x in (15, 2.0013, 60, 90.5, 0)] == ["15s", "2.0013s", "1m0s", "1m30.5s", "0s"]


def test_two_scrapes_before_a_pod_has_metrics(hsim):
    hsim.runtime.default = FakeApp(cpu_milli=250, memory_bytes=64 * MI)
    hsim.apply([deployment(replicas=2)])
    hsim.step(0)
    hsim.step(29.9)      # scrapes at 0 (before the pods started) and 15: one sample each
    assert hsim.top_pods() == []
    hsim.step(0.1)       # second sample at 30
    top = hsim.top_pods()
    assert [m["metadata"]["name"] for m in top] == sorted(start_order(hsim))
    m = top[0]
    assert m["kind"] == "PodMetrics" and m["apiVersion"] == "metrics.k8s.io/v1beta1"
    assert m["metadata"]["namespace"] == "lab" and m["metadata"]["labels"]["app"] == "web"
    assert m["metadata"]["creationTimestamp"] == rfc3339(FAKE_EPOCH + 30)
    assert m["timestamp"] == rfc3339(FAKE_EPOCH + 30) and m["window"] == "15s"
    assert m["containers"] == [{"name": "c1", "usage": {"cpu": "250m", "memory": "64Mi"}},
                               {"name": "c2", "usage": {"cpu": "250m", "memory": "64Mi"}}]
    assert set(m) == {"kind", "apiVersion", "metadata", "timestamp", "window", "containers"}


def test_rate_is_over_the_last_window_and_resolution_is_configurable():
    sim = make_sim(metrics_resolution=5)
    try:
        sim.apply([deployment(replicas=1)])
        sim.step(0)
        pod = start_order(sim)[0]
        sim.runtime.set_cpu(pod, 100)
        sim.step(10)
        assert sim.top_pods()[0]["containers"][0]["usage"]["cpu"] == "100m"
        assert sim.top_pods()[0]["window"] == "5s"
        sim.step(2)
        sim.runtime.set_cpu(pod, 400)      # 100m for 2 s then 400m for 3 s in the window (10, 15]
        sim.step(3)
        assert sim.top_pods()[0]["containers"][0]["usage"]["cpu"] == "280m"
        sim.runtime.set_cpu(pod, 123.456789, container="c2")
        sim.step(5)
        cs = sim.top_pods()[0]["containers"]
        assert cs[0]["usage"]["cpu"] == "400m" and cs[1]["usage"]["cpu"] == "123456789n"
    finally:
        sim.stop()


def test_restarted_container_starts_over_and_deleted_pods_disappear(hsim):
    hsim.runtime.default = FakeApp(cpu_milli=50, exit_after=40, exit_code=1)
    hsim.apply([deployment(replicas=1)])
    hsim.step(30)
    assert len(hsim.top_pods()) == 1
    hsim.step(15)        # both containers exited at 40 and restarted (first restart is immediate): 1 sample
    assert hsim.top_pods() == []
    hsim.step(15)
    assert len(hsim.top_pods()) == 1
    hsim.delete("Deployment", "web")
    hsim.step(60)
    assert hsim.top_pods() == []


def test_pod_without_stats_is_not_served(hsim):
    hsim.runtime.default = FakeApp(metrics=False)
    hsim.apply([deployment(replicas=1)])
    hsim.step(60)
    assert hsim.top_pods() == []


def test_namespace_filter_and_diagnostics(hsim, tmp_path):
    hsim.runtime.default = FakeApp(cpu_milli=10)
    hsim.apply([deployment(replicas=1)])
    hsim.step(30)
    assert len(hsim.top_pods("lab")) == 1 and hsim.top_pods("other") == []
    hsim.collect_diagnostics(tmp_path)
    assert '"scrapes": 3' in (tmp_path / "sim.json").read_text()


def test_metrics_resolution_must_be_positive():
    with pytest.raises(ValueError):
        SimCluster(metrics_resolution=0)
