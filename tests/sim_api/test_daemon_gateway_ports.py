"""The sim cluster daemon listens on 127.0.0.1:<listener port> for each Gateway API HTTP listener.

Blind spot before: the sim writes ``status.addresses: 127.0.0.1`` into a Gateway, and the
kubeconfig backend's ``gateway_url`` sends traffic to that address and the listener's port, but
nothing listened there, so Lab 04 could not be graded through the sim cluster's API.
"""
from __future__ import annotations

import socket
import time

from harness.cluster.sim import FakeApp
from harness.cluster.sim.clock import FakeClock
from harness.cluster.sim.cluster import SimCluster
from harness.cluster.sim.daemon import GatewayPorts
from harness.cluster.sim.runtime import FakeRuntime


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def test_gateway_listener_port_opens_and_closes_with_the_gateway():
    clock = FakeClock()
    sim = SimCluster(runtime=FakeRuntime(clock, images=("app:v1",), default=FakeApp()), clock=clock, namespace="default")
    sim.start()
    ports = GatewayPorts(sim)
    sim.store.watch(ports.sync)
    port = _free_port()
    try:
        sim.apply([{"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                    "metadata": {"name": "gw", "namespace": "default"},
                    "spec": {"gatewayClassName": "mlops-labs",
                             "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]}}])
        assert _answers(port) and ports.errors == []
        sim.delete("Gateway", "gw", "default")
        deadline = time.monotonic() + 5          # the listener is closed on the router's loop
        while _answers(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _answers(port)
    finally:
        sim.stop()
