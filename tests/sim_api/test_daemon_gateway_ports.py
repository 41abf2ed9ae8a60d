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


def _free_node_port(taken: set[int]) -> int:
    """A free port in the NodePort range (30000-32767), as the API server validates it."""
    import random
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(31000, 32767)
        if port in taken:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in the NodePort range")


def _listening(port: int) -> bool:
    """Something accepts connections on the port. A NodePort proxy with no endpoints resets each
    connection, sometimes before connect() returns (ECONNRESET): that is still a listener."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except ConnectionRefusedError:
        return False
    except OSError:
        return True


def _closed(port: int, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while _listening(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _listening(port)


def test_a_listener_moves_when_its_port_changes():
    """Blind spot: `kubectl patch service x -p '{"spec":{"ports":[{"port":80,"nodePort":30080}]}}'` after
    `kubectl expose --type=NodePort` (a random nodePort) kept listening on the old port only, so
    curl 127.0.0.1:30080 was refused. The same for a Gateway listener whose port is edited."""
    from harness.cluster.sim.daemon import NodePorts

    clock = FakeClock()
    sim = SimCluster(runtime=FakeRuntime(clock, images=("app:v1",), default=FakeApp()), clock=clock, namespace="default")
    sim.start()
    nodeports, gateways = NodePorts(sim), GatewayPorts(sim)
    sim.store.watch(nodeports.sync)
    sim.store.watch(gateways.sync)
    taken: set[int] = set()
    first, second = _free_node_port(taken), _free_node_port(taken)
    gw1, gw2 = _free_port(), _free_port()
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np", "namespace": "default"},
           "spec": {"type": "NodePort", "selector": {"app": "x"}, "ports": [{"port": 80, "nodePort": first}]}}
    gw = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": "default"},
          "spec": {"gatewayClassName": "mlops-labs", "listeners": [{"name": "http", "protocol": "HTTP", "port": gw1}]}}
    try:
        sim.apply([svc, gw])
        assert _listening(first) and _listening(gw1)
        sim.patch("Service", "np", {"spec": {"ports": [{"port": 80, "nodePort": second}]}}, "default")
        gw["spec"]["listeners"][0]["port"] = gw2
        sim.apply([gw])
        assert _listening(second) and _closed(first)
        assert _listening(gw2) and _closed(gw1)
        assert nodeports.errors == gateways.errors == []
    finally:
        nodeports.proxies.stop()
        sim.stop()
