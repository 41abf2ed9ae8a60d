"""``/api/v1/namespaces/NS/services/NAME[:PORT]/proxy/PATH``: the API server's proxy to a Service.

Why: the kubeconfig backend reaches a ClusterIP Service through ``kubectl proxy`` and this
subresource (kube-apiserver picks an endpoint per request, so load spreads and a hung pod that
left the endpoints stops getting traffic; ``kubectl port-forward svc/`` pins one pod). Here the
request goes through the sim's own Service proxy for that port (per-connection choice among ready
endpoints, as kube-proxy), one connection per request. PORT is the Service port's name or number;
without it, the Service's only port. Errors are upstream's: 404 for an unknown Service or port,
503 ``no endpoints available for service "NAME"`` when no ready endpoint takes the connection.
"""
from __future__ import annotations

import asyncio
import re

import aiohttp
from aiohttp import web

from harness.cluster.base import ApiError, NotFound

PATH = re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/services/(?:(?P<scheme>https?):)?(?P<svc>[^/:]+)"
                  r"(?::(?P<port>[^/]+))?/proxy(?P<rest>/.*)?$")
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length"}


class ServiceUnavailable(ApiError):
    code, reason = 503, "ServiceUnavailable"


def _port(svc: dict, want: str | None) -> dict:
    ports = svc["spec"].get("ports") or []
    name = svc["metadata"]["name"]
    if not want:
        if len(ports) == 1:
            return ports[0]
        raise NotFound(f'no port specified for service "{name}" with several ports: use {name}:PORT', kind="services",
                       name=name)
    for p in ports:
        if want in (p.get("name"), str(p["port"])):
            return p
    raise NotFound(f'no service port "{want}" found for service "{name}"', kind="services", name=name)


async def serve(request: web.Request, sim, m: re.Match) -> web.StreamResponse:
    ns, name = m["ns"], m["svc"]
    svc = sim.store.get("Service", ns, name)
    p = _port(svc, m["port"])
    local = await asyncio.to_thread(sim.proxies.ensure, (ns, name, p["port"]))
    url = f"http://127.0.0.1:{local}{m['rest'] or '/'}"
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
    body = await request.read()
    conn = aiohttp.TCPConnector(force_close=True)      # one connection per request: a fresh endpoint choice
    try:
        async with aiohttp.ClientSession(connector=conn, auto_decompress=False) as s:
            async with s.request(request.method, url, params=request.query, headers=headers, data=body or None,
                                 allow_redirects=False, timeout=aiohttp.ClientTimeout(total=120)) as r:
                data = await r.read()
                out = web.Response(status=r.status, body=data)
                for k, v in r.headers.items():
                    if k.lower() not in _HOP:
                        out.headers.add(k, v)
                return out
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
        raise ServiceUnavailable(f'no endpoints available for service "{name}"'
                                 if not isinstance(exc, asyncio.TimeoutError) else
                                 f'error trying to reach service: timeout awaiting response from service "{name}"',
                                 kind="services", name=name) from None
