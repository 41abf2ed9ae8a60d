"""The sim's Kubernetes API over HTTP on 127.0.0.1: routing, content negotiation, errors, lifecycle.

Why: so the real ``kubectl`` and the ``kubernetes`` client work against the offline cluster.
:class:`ApiHttpServer` serves one :class:`~harness.cluster.sim.cluster.SimCluster` (its
store, write path, kubelet and metrics) from an aiohttp application on its own event-loop
thread; ``start()`` returns the URL. Every failure becomes a ``Status`` (never a traceback);
bodies over :data:`MAX_BODY` are 413 as kube-apiserver's 3 MiB limit makes them.
What is served and how it differs from kube-apiserver: FIDELITY.md, "The API server".
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import traceback
from urllib.parse import unquote

import yaml
from aiohttp import web

from harness.cluster.base import ApiError

from . import discovery, errors, patching, podlogs, tables, watch
from .resources import lookup
from .rest import Rest

log = logging.getLogger(__name__)
MAX_BODY = 3 * 1024 * 1024
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-sim", "gitCommit": "sim", "gitTreeState": "clean",
           "buildDate": "2024-12-11T00:00:00Z", "goVersion": "go1.23.3", "compiler": "gc", "platform": "linux/amd64"}
_PATH = re.compile(r"^/(?:api/(?P<cv>v1)|apis/(?P<g>[^/]+)/(?P<v>[^/]+))"
                   r"(?:/namespaces/(?P<ns>[^/]+))?(?:/(?P<plural>[^/]+)(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?)?/?$")


def _json(obj, code: int = 200, warnings: list[str] | None = None, content_type: str = "application/json"):
    headers = {}
    resp = web.Response(body=json.dumps(obj, separators=(",", ":")).encode(), status=code, headers=headers,
                        content_type=content_type.split(";")[0])
    if ";" in content_type:
        resp.headers["Content-Type"] = content_type
    for w in warnings or []:
        resp.headers.add("Warning", '299 - "' + w.replace('"', '\\"') + '"')
    return resp


def _status(s: dict) -> web.Response:
    return _json(s, s.get("code", 500))


def _wants_table(request: web.Request) -> bool:
    for part in request.headers.get("Accept", "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


class ApiHttpServer:
    """See the module docstring. ``port=0`` picks a free port."""

    def __init__(self, sim, host: str = "127.0.0.1", port: int = 0):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the sim's API server listens on the loopback interface only")
        self.sim, self.host, self.port = sim, host, port
        self.rest = Rest(sim)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.requests = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- lifecycle ------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        return app

    def start(self) -> str:
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def _start() -> None:
            self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port, backlog=128)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]   # noqa: SLF001 - the port we got

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(_start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="sim-api", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the sim's API server did not start within 10 s")
        return self.url

    def stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def _stop() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
        try:
            asyncio.run_coroutine_threadsafe(_stop(), loop).result(timeout=10)
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    # ---- middleware -------------------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler):
        self.requests += 1
        try:
            return await handler(request)
        except ApiError as exc:
            return _status(errors.from_api_error(exc))
        except web.HTTPRequestEntityTooLarge:
            return _status(errors.status(413, "RequestEntityTooLarge",
                                         f"the request body is too large (limit is {MAX_BODY} bytes)"))
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - a bug of ours: a 500 Status, never a traceback on the wire
            log.error("sim API: %s %s failed:\n%s", request.method, request.path, traceback.format_exc())
            return _status(errors.internal(f"{type(exc).__name__}: {exc}"))

    # ---- routing ----------------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.startswith("/apis/custom.metrics.k8s.io") and getattr(self.sim, "custom_metrics", None):
            from . import custommetrics
            code, body = await asyncio.get_running_loop().run_in_executor(   # Prometheus answers over HTTP
                None, custommetrics.answer, self.sim.custom_metrics, path, request.method, request.query)
            return _json(body, code)
        if request.method == "GET":
            fixed = self._fixed(request, path)
            if fixed is not None:
                return fixed
        if "/proxy" in path:
            from . import svcproxy
            pm = svcproxy.PATH.match(path)
            if pm:
                return await svcproxy.serve(request, self.sim, pm)
        m = _PATH.match(path)
        if not m:
            return _status(errors.not_found_resource(path))
        d = {k: (unquote(v) if v else v) for k, v in m.groupdict().items()}
        group, version = ("", "v1") if d["cv"] else (d["g"], d["v"])
        ns, plural, name, sub = d["ns"], d["plural"], d["name"], d["sub"]
        if ns is not None and plural is None:       # /api/v1/namespaces/x
            plural, name, ns = "namespaces", ns, None
        elif ns is not None and plural and group == "" and name is None and plural in ("status", "finalize") \
                and lookup("", "v1", plural) is None:
            plural, name, sub, ns = "namespaces", ns, plural, None
        if plural is None:
            if request.method != "GET":
                return _status(errors.status(405, "MethodNotAllowed", "the server does not allow this method"))
            body = discovery.resource_list(group, version) if version else None
            if body is None and not d["cv"] and group and not version:
                body = discovery.api_group(group)
            return _json(body) if body is not None else _status(errors.not_found_resource(path))
        r = lookup(group, version, plural)
        if r is None:
            return _status(errors.not_found_resource(path))
        if not r.namespaced and ns is not None:
            return _status(errors.not_found_resource(path))
        return await self._resource(request, r, ns, name, sub)

    def _fixed(self, request: web.Request, path: str) -> web.StreamResponse | None:
        accept = request.headers.get("Accept", "")
        if path == "/version":
            return _json(VERSION)
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path in ("/api", "/apis"):
            from . import custommetrics
            extra = path == "/apis" and getattr(self.sim, "custom_metrics", None) is not None
            v = discovery.aggregated_version(accept)
            if v is not None:
                body = discovery.aggregated(path == "/api", v)
                if extra:
                    body["items"].append(custommetrics.aggregated_group())
                return _json(body, content_type=discovery.AGGREGATED.format(v=v))
            if path == "/api":
                return _json(discovery.api_versions(f"{self.host}:{self.port}"))
            body = discovery.api_group_list()
            if extra:
                body["groups"].append(custommetrics.group())
            return _json(body)
        if path == "/apis/" or path.startswith("/apis/") and path.count("/") == 2:
            body = discovery.api_group(path.split("/")[2])
            return _json(body) if body else _status(errors.not_found_resource(path))
        if path == "/openapi/v3":
            return _json(discovery.openapi_index())
        if path.startswith("/openapi/v3/"):
            rest = path[len("/openapi/v3/"):]
            parts = rest.split("/")
            gv = ("", parts[1]) if parts[0] == "api" and len(parts) == 2 else \
                (parts[1], parts[2]) if parts[0] == "apis" and len(parts) == 3 else None
            doc = discovery.openapi_document(*gv) if gv else None
            if doc is None:
                return _status(errors.not_found_resource(path))
            return web.Response(body=doc, content_type="application/json")
        if path == "/openapi/v2":
            return _status(errors.not_found_resource(path))
        return None

    async def _body(self, request: web.Request):
        raw = await request.read()
        ctype = request.content_type or "application/json"
        if ctype == "application/vnd.kubernetes.protobuf":
            from .protobuf import decode
            return decode(raw)
        if not raw.strip():
            raise errors_bad("the request body is empty")
        try:
            if "yaml" in ctype:
                return yaml.safe_load(raw)
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise errors_bad(f"the body of the request could not be decoded: {str(exc).splitlines()[0]}") from None

    async def _resource(self, request: web.Request, r, ns, name, sub) -> web.StreamResponse:
        q, m = request.query, request.method
        rest = self.rest
        now = self.sim.clock.now()
        table = _wants_table(request)
        include = q.get("includeObject", "Metadata")
        if r.group == "metrics.k8s.io":
            if m != "GET":
                return _status(errors.status(405, "MethodNotAllowed", "the server does not allow this method"))
            items = (podlogs.pod_metrics(self.sim, ns, name, q.get("labelSelector")) if r.plural == "pods"
                     else podlogs.node_metrics(self.sim, name))
            if name:
                return _json(items[0])
            return _json({"kind": f"{r.kind}List", "apiVersion": r.group_version, "metadata": {}, "items": items})
        if sub == "log" and r.kind == "Pod" and m == "GET":
            return await podlogs.serve_log(request, self.sim, ns, name)
        if sub in ("exec", "attach", "portforward") and r.kind == "Pod":
            from . import streams
            return await streams.serve(request, self.sim, ns, name, sub)
        if sub == "scale":
            return await self._scale(request, r, ns, name)
        if sub not in (None, "status"):
            return _status(errors.not_found_resource(request.path))
        if name is None:
            if m == "GET" and q.get("watch") in ("true", "1"):
                render = (lambda o, first: self._table_event(r, o, first, include)) if table else (lambda o, first: o)
                return await watch.serve(request, rest, r, ns, render)
            if m == "GET":
                items, rv = rest.list(r, ns, q)
                items, meta = rest.page(items, rv, q)
                if table:
                    return _json(tables.table(r.kind, items, now, resource=r, list_meta=meta, include_object=include))
                return _json({"kind": f"{r.kind}List", "apiVersion": r.group_version, "metadata": meta,
                              "items": items})
            if m == "POST":
                res = rest.create(r, ns, await self._body(request), q)
                return _json(res.obj, res.code, res.warnings)
            if m == "DELETE":
                res = rest.delete_collection(r, ns, q)
                return _json(res.obj, res.code)
            return _status(errors.status(405, "MethodNotAllowed", "the server does not allow this method"))
        if m == "GET":
            obj = rest.get(r, ns, name)
            if table:
                return _json(tables.table(r.kind, [obj], now, resource=r, include_object=include))
            return _json(obj)
        if m == "PUT":
            res = rest.update(r, ns, name, sub or "", await self._body(request), q)
        elif m == "PATCH":
            ptype = request.content_type
            if ptype not in patching.PATCH_TYPES:
                return _status(errors.status(415, "UnsupportedMediaType",
                                             f"the body of the request was in an unknown format - accepted media "
                                             f"types include: {', '.join(patching.PATCH_TYPES)}"))
            res = rest.patch(r, ns, name, sub or "", ptype, await self._body(request), q)
        elif m == "DELETE":
            raw = await request.read()
            try:
                opts = json.loads(raw) if raw.strip() else None
            except ValueError:
                opts = None
            res = rest.delete(r, ns, name, q, opts)
        else:
            return _status(errors.status(405, "MethodNotAllowed", "the server does not allow this method"))
        return _json(res.obj, res.code, res.warnings)

    def _table_event(self, r, obj, first: bool, include: str) -> dict:
        t = tables.table(r.kind, [obj], self.sim.clock.now(), resource=r, include_object=include)
        if not first:
            t["columnDefinitions"] = []
        return t

    async def _scale(self, request: web.Request, r, ns, name) -> web.StreamResponse:
        from . import convert
        if r.kind not in ("Deployment", "ReplicaSet", "StatefulSet"):
            return _status(errors.not_found_resource(request.path))
        cur = self.rest.get(r, ns, name)
        if request.method == "GET":
            return _json(convert.scale_of(cur))
        body = await self._body(request)
        if request.method == "PATCH":
            scale = patching.apply_patch(convert.scale_of(cur), request.content_type, body, None)
        elif request.method == "PUT":
            scale = body
        else:
            return _status(errors.status(405, "MethodNotAllowed", "the server does not allow this method"))
        replicas = ((scale or {}).get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiErrorInvalid(f'Scale.autoscaling "{name}" is invalid: spec.replicas: Invalid value: '
                                  f"{json.dumps(replicas)}: must be greater than or equal to 0", kind="Scale",
                                  name=name)
        res = self.rest.patch(r, ns, name, "", patching.MERGE_PATCH, {"spec": {"replicas": replicas}}, {})
        return _json(convert.scale_of(res.obj), 200, res.warnings)


def errors_bad(message: str) -> ApiError:
    from ..apiserver import BadRequest
    return BadRequest(message)


def ApiErrorInvalid(message: str, **kw) -> ApiError:  # noqa: N802 - reads as the error it builds
    from harness.cluster.base import Invalid
    return Invalid(message, **kw)
