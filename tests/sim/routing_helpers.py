"""Builders and tiny local HTTP backends for the router tests (traffic only to 127.0.0.1)."""
from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

from harness.cluster.sim import FakeRuntime

GW = "gateway.networking.k8s.io/v1"


class Backend(ThreadingHTTPServer):
    """An HTTP/1.1 keep-alive server answering ``<name>`` to every request."""

    daemon_threads = True

    def __init__(self, name: str):
        self.name = name

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # as uvicorn/gunicorn do: otherwise Nagle + delayed ACK add 40 ms per response
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _reply(self) -> None:
                n = int(self.headers.get("content-length") or 0)
                got = self.rfile.read(n) if n else b""
                body = json.dumps({"backend": name, "path": self.path, "echo": got.decode()}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _reply

            def log_message(self, *a) -> None:
                pass

        super().__init__(("127.0.0.1", 0), H)
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def addr(self) -> tuple[str, int]:
        return self.server_address[:2]

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class AddrRuntime(FakeRuntime):
    """FakeRuntime whose containers are 'reachable': each image maps to a local Backend."""

    def __init__(self, clock, backends: dict[str, Backend], **kw):
        super().__init__(clock, images=tuple(backends), **kw)
        self.backends = backends

    def address(self, cid: str, port: int):
        c = self.containers.get(cid)
        if c is None or c.finished_at is not None:
            return None
        b = self.backends.get(c.spec.image)
        return b.addr if b else None


def app(name: str, image: str, replicas: int = 1, port: int = 80) -> list[dict]:
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name, "version": name}},
                               "spec": {"containers": [{"name": "c", "image": image,
                                                        "ports": [{"containerPort": 8000}]}]}}}}
    s = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": 8000}]}}
    return [d, s]


def gateway(name: str = "gw", listeners: list | None = None) -> dict:
    return {"apiVersion": GW, "kind": "Gateway", "metadata": {"name": name},
            "spec": {"gatewayClassName": "sim",
                     "listeners": listeners or [{"name": "http", "port": 80, "protocol": "HTTP"}]}}


def route(name: str = "canary", rules: list | None = None, backends: list | None = None, gw: str = "gw") -> dict:
    if rules is None:
        rules = [{"backendRefs": backends if backends is not None else []}]
    return {"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": gw}], "rules": rules}}


def ref(name: str, weight: int | None = None, port: int = 80, **kw) -> dict:
    r = {"name": name, "port": port, **kw}
    if weight is not None:
        r["weight"] = weight
    return r


def send(url: str, n: int, path: str = "/", method: str = "GET", headers: dict | None = None) -> list:
    """``n`` requests over ONE keep-alive connection: [(status, x-sim-backend, body)]."""
    u = urlparse(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    out = []
    try:
        for _ in range(n):
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            out.append((r.status, r.getheader("x-sim-backend"), r.read()))
    finally:
        conn.close()
    return out


def tally(results: list) -> Counter:
    return Counter((s, b) for s, b, _ in results)
