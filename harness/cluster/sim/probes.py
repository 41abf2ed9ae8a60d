"""Probe workers (k/k ``pkg/kubelet/prober/worker.go``) and the real HTTP/TCP checks.

Why: readiness gates traffic and liveness restarts containers; learners tune
``initialDelaySeconds``/``periodSeconds``/``failureThreshold`` and graders
check the timing. A worker probes at ``startedAt + initialDelaySeconds`` and
then every ``periodSeconds``; a result flips only after ``failureThreshold``
consecutive failures or ``successThreshold`` consecutive successes. Initial
results: readiness Failure, liveness Success, startup Unknown. A liveness or
startup failure puts the worker on hold until the container is replaced.

Difference: upstream's ticker starts when the pod is added (with a random
offset), so the first probe lands somewhere in ``[delay, delay + period)``;
here it lands exactly at ``delay`` (deterministic timing for tests).
"""
from __future__ import annotations

import http.client
import socket
from concurrent.futures import Future
from typing import Any

KINDS = {"startupProbe": "Startup", "livenessProbe": "Liveness", "readinessProbe": "Readiness"}


def resolve_port(port: Any, container: dict[str, Any]) -> int | None:
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p["containerPort"]
    return None


def http_get(host: str, port: int, path: str, scheme: str = "HTTP", headers: dict[str, str] | None = None,
             timeout: float = 1.0) -> tuple[int | None, str]:
    """One probe request to 127.0.0.1 (redirects are not followed: 3xx counts as success)."""
    cls = http.client.HTTPSConnection if scheme == "HTTPS" else http.client.HTTPConnection
    kw: dict[str, Any] = {"timeout": timeout}
    if scheme == "HTTPS":
        import ssl
        kw["context"] = ssl._create_unverified_context()  # noqa: S323 - kubelet skips verification too
    conn = cls(host, port, **kw)
    try:
        conn.request("GET", path or "/", headers={"User-Agent": "kube-probe/1.31", "Accept": "*/*",
                                                  **(headers or {})})
        return conn.getresponse().status, ""
    except socket.timeout:
        return None, "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    except (ConnectionRefusedError, ConnectionResetError, http.client.RemoteDisconnected):
        # a reset before any response is Docker's userland proxy finding nothing listening inside
        return None, "connect: connection refused"
    except (OSError, http.client.HTTPException) as exc:
        return None, str(exc) or type(exc).__name__
    finally:
        conn.close()


def tcp_connect(host: str, port: int, timeout: float = 1.0) -> str | None:
    """Connect, then peek briefly: Docker's userland proxy accepts on a published
    port even when nothing listens inside and closes at once, which a bare
    connect would count as success."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(min(0.1, timeout))
            try:
                if s.recv(1, socket.MSG_PEEK) == b"":
                    return "connect: connection refused"
            except socket.timeout:
                pass
            return None
    except socket.timeout:
        return "i/o timeout"
    except (ConnectionRefusedError, ConnectionResetError):
        return "connect: connection refused"
    except OSError as exc:
        return str(exc)


def run_probe(runtime, cid: str, probe: dict[str, Any], container: dict[str, Any], pod_ip: str) -> tuple[bool, str]:
    """Execute one probe through the runtime; ``(success, output)`` with kubelet-style output."""
    timeout = float(probe.get("timeoutSeconds", 1))
    if "exec" in probe:
        cmd = probe["exec"].get("command") or []
        try:
            code, out = runtime.exec(cid, cmd, timeout)
        except TimeoutError:
            return False, f"command {' '.join(cmd)!r} timed out"
        return code == 0, out.strip()
    if "httpGet" in probe:
        h = probe["httpGet"]
        port = resolve_port(h.get("port"), container)
        path = h.get("path", "/")
        scheme = h.get("scheme", "HTTP")
        url = f"{scheme.lower()}://{pod_ip}:{port}{path}"
        if port is None:
            return False, f"unable to resolve port {h.get('port')!r}"
        headers = {x["name"]: x["value"] for x in h.get("httpHeaders") or []}
        code, err = runtime.http_get(cid, port, path, scheme, headers, timeout)
        if code is None:
            if "refused" in err:
                return False, f'Get "{url}": dial tcp {pod_ip}:{port}: {err}'
            return False, f'Get "{url}": {err}'
        if 200 <= code < 400:
            return True, ""
        return False, f"HTTP probe failed with statuscode: {code}"
    if "tcpSocket" in probe:
        port = resolve_port(probe["tcpSocket"].get("port"), container)
        if port is None:
            return False, f"unable to resolve port {probe['tcpSocket'].get('port')!r}"
        err = runtime.tcp_connect(cid, port, timeout)
        return (True, "") if err is None else (False, f"dial tcp {pod_ip}:{port}: {err}")
    if "grpc" in probe:
        return False, "grpc probes are not supported by the sim"
    return False, "no probe handler"


class ProbeWorker:
    """One probe of one container instance."""

    def __init__(self, kind: str, probe: dict[str, Any], started_at: float):
        self.kind, self.probe = kind, probe
        self.next_due = started_at + probe.get("initialDelaySeconds", 0)
        self.result: bool | None = {"readinessProbe": False, "livenessProbe": True}.get(kind)
        self._last: bool | None = None
        self._run = 0
        self.on_hold = False
        self.pending: Future | None = None

    @property
    def label(self) -> str:
        return KINDS[self.kind]

    def due(self, now: float) -> bool:
        return not self.on_hold and self.pending is None and now >= self.next_due

    def record(self, ok: bool, now: float) -> bool:
        """Fold one probe result in; True when the worker's result flipped to failure (liveness/startup)."""
        period = self.probe.get("periodSeconds", 10)
        while self.next_due <= now:
            self.next_due += period
        if ok == self._last:
            self._run += 1
        else:
            self._last, self._run = ok, 1
        threshold = self.probe.get("successThreshold", 1) if ok else self.probe.get("failureThreshold", 3)
        if self._run < threshold:
            return False
        self.result = ok
        if not ok and self.kind in ("livenessProbe", "startupProbe"):
            self.on_hold = True
            self._run = 0
            return True
        return False
