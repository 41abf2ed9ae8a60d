"""A tiny stand-in for the Kubernetes API server, on 127.0.0.1 only.

Routes map ``(METHOD, path)`` (or ``(METHOD, path?query)``, query decoded, when
the query matters) to a queue of responses; the last response of a queue repeats. Bodies
are the recorded API objects under ``responses/`` (``Status`` objects for
errors), so the ``kubernetes`` client reads exactly what an API server sends.
Every request is recorded (method, path, query, content type, JSON body).
"""
from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

RESPONSES = Path(__file__).parent / "responses"


def recorded(name: str) -> Any:
    return json.loads((RESPONSES / name).read_text())


class FakeApiServer:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], deque] = {}
        self.requests: list[dict] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeApiServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def on(self, method: str, path: str, *responses: Any, status: int = 200) -> None:
        """Each response is a dict/list/str body, a file name under responses/, or (status, body)."""
        q = deque()
        for r in responses or ({},):
            st, body = r if isinstance(r, tuple) else (status, r)
            if isinstance(body, str) and body.endswith(".json"):
                body = recorded(body)
            q.append((st, body))
        self.routes[(method, path)] = q

    def calls(self, method: str | None = None, path: str | None = None) -> list[dict]:
        return [r for r in self.requests if (method is None or r["method"] == method)
                and (path is None or r["path"] == path)]

    def _handler(self):
        srv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _serve(self) -> None:
                u = urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n).decode() if n else ""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw
                srv.requests.append({"method": self.command, "path": u.path, "query": parse_qs(u.query),
                                     "content_type": self.headers.get("Content-Type"), "body": body})
                q = (srv.routes.get((self.command, f"{u.path}?{unquote(u.query)}"))
                     or srv.routes.get((self.command, u.path)))
                if q is None:
                    st, out = 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                    "code": 404, "message": f"fake API server: no route for {self.command} {u.path}"}
                else:
                    st, out = q.popleft() if len(q) > 1 else q[0]
                data = out.encode() if isinstance(out, str) else json.dumps(out).encode()
                self.send_response(st)
                self.send_header("Content-Type", "text/plain" if isinstance(out, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        return H
