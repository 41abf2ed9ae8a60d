"""``pods/x/log`` and ``metrics.k8s.io``: what the kubelet and metrics-server serve on a real cluster.

Why: ``kubectl logs`` (``container``, ``previous``, ``tailLines``, ``sinceSeconds``, ``follow``,
``timestamps``) and ``kubectl top pod|node``. Log text comes from the sim's runtime (Docker's
log of the container the kubelet started, so a restarted container's ``previous`` log is the
old container's). ``follow`` streams Docker's own follow stream in a thread; with the fake
runtime it re-reads the log once a second. NodeMetrics are the sums of the node's PodMetrics
(metrics-server reads the node's cgroup; the sim has no node-level figure).
"""
from __future__ import annotations

import asyncio
import threading
import time
from decimal import Decimal

from aiohttp import web

from harness.cluster.base import ApiError, NotFound, Obj

from ..apiserver import BadRequest
from ..clock import parse_rfc3339, rfc3339
from ..metrics import binary_quantity
from ..quantity import parse_quantity


def _container(sim, pod: Obj, name: str | None, previous: bool):
    """(cid, runtime) of the container whose log is asked for, with the API's errors otherwise."""
    pname = pod["metadata"]["name"]
    names = [c["name"] for c in pod["spec"]["containers"]]
    if not name:
        if len(names) > 1:
            raise BadRequest(f"a container name must be specified for pod {pname}, choose one of: [{' '.join(names)}]")
        name = names[0]
    if name not in names:
        raise BadRequest(f"container {name} is not valid for pod {pname}")
    w = sim.kubelet.worker(pod["metadata"]["uid"])
    cw = next((c for c in w.containers if c.name == name), None) if w else None
    if previous:
        if cw is None or not cw.old_cids:
            raise BadRequest(f'previous terminated container "{name}" in pod "{pname}" not found')
        return cw.old_cids[-1]
    if cw is None or cw.cid is None:
        reason = (cw.waiting or ("ContainerCreating",))[0] if cw else "ContainerCreating"
        raise BadRequest(f'container "{name}" in pod "{pname}" is waiting to start: {reason}')
    return cw.cid


def _docker_container(sim, cid: str):
    client = getattr(sim.runtime, "client", None)
    if client is None:
        return None
    try:
        return client.containers.get(cid)
    except Exception:  # noqa: BLE001 - gone: fall back to the runtime's logs
        return None


def _read(sim, cid: str, tail: int | None, since: float | None, timestamps: bool) -> str:
    c = _docker_container(sim, cid)
    if c is not None:
        kw = {"tail": tail if tail is not None else "all", "timestamps": timestamps}
        if since is not None:
            kw["since"] = int(since)
        return c.logs(stdout=True, stderr=True, **kw).decode(errors="replace")
    text = sim.runtime.logs(cid, tail if tail is not None else 10 ** 9)
    return text


async def serve_log(request: web.Request, sim, ns: str, name: str) -> web.StreamResponse:
    q = request.query
    pod = sim.store.get("Pod", ns, name)
    cid = _container(sim, pod, q.get("container"), q.get("previous") == "true")
    tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "") else None
    since = None
    if q.get("sinceSeconds"):
        since = time.time() - int(q["sinceSeconds"])
    elif q.get("sinceTime"):
        since = parse_rfc3339(q["sinceTime"])
    timestamps = q.get("timestamps") == "true"
    loop = asyncio.get_running_loop()
    if q.get("follow") != "true":
        text = await loop.run_in_executor(None, _read, sim, cid, tail, since, timestamps)
        return web.Response(text=text, content_type="text/plain")
    resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def pump() -> None:
        c = _docker_container(sim, cid)
        try:
            if c is not None:
                kw = {"tail": tail if tail is not None else "all", "timestamps": timestamps, "stream": True,
                      "follow": True}
                if since is not None:
                    kw["since"] = int(since)
                for chunk in c.logs(stdout=True, stderr=True, **kw):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            else:
                sent = ""
                while not stop.is_set():
                    text = sim.runtime.logs(cid, 10 ** 9)
                    if text.startswith(sent) and len(text) > len(sent):
                        loop.call_soon_threadsafe(queue.put_nowait, text[len(sent):].encode())
                        sent = text
                    stop.wait(1.0)
        except Exception:  # noqa: BLE001 - the container went away: end the stream
            pass
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=pump, name="sim-api-logs", daemon=True).start()
    try:
        while True:
            try:
                chunk = await asyncio.wait_for(queue.get(), timeout=5)
            except asyncio.TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    break
                continue
            if chunk is None:
                break
            await resp.write(chunk)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        stop.set()
    try:
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError, RuntimeError):
        pass
    return resp


# ---- metrics.k8s.io ---------------------------------------------------------------------------------
def pod_metrics(sim, ns: str | None, name: str | None = None, label_selector: str | None = None) -> list[Obj]:
    from ..labels import parse_selector
    match = parse_selector(label_selector)
    items = [m for m in sim.metrics.list(ns) if match(m["metadata"].get("labels") or {})]
    if name is not None:
        items = [m for m in items if m["metadata"]["name"] == name]
        if not items:
            raise NotFound(f'podmetrics.metrics.k8s.io "{ns}/{name}" not found', kind="pods", name=name)
    for m in items:
        m.setdefault("apiVersion", "metrics.k8s.io/v1beta1")
        m.setdefault("kind", "PodMetrics")
    return items


def node_metrics(sim, name: str | None = None) -> list[Obj]:
    pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): (p.get("spec") or {}).get("nodeName")
            for p in sim.store.list("Pod", None, record=False)}
    sums: dict[str, list[Decimal]] = {}
    for m in sim.metrics.list(None):
        node = pods.get((m["metadata"]["namespace"], m["metadata"]["name"]))
        if not node:
            continue
        acc = sums.setdefault(node, [Decimal(0), Decimal(0)])
        for c in m.get("containers") or []:
            acc[0] += parse_quantity(c["usage"].get("cpu", "0"))
            acc[1] += parse_quantity(c["usage"].get("memory", "0"))
    now = rfc3339(sim.clock.now())
    out = []
    for n in sim.store.list("Node", None, record=False):
        nn = n["metadata"]["name"]
        if name is not None and nn != name:
            continue
        cpu, mem = sums.get(nn, [Decimal(0), Decimal(0)])
        out.append({"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1",
                    "metadata": {"name": nn, "creationTimestamp": now, "labels": n["metadata"].get("labels") or {}},
                    "timestamp": now, "window": "20.05s",
                    "usage": {"cpu": f"{int(cpu * 10 ** 9)}n", "memory": binary_quantity(int(mem))}})
    if name is not None and not out:
        raise NotFound(f'nodemetrics.metrics.k8s.io "{name}" not found', kind="nodes", name=name)
    return out


__all__ = ["serve_log", "pod_metrics", "node_metrics", "ApiError"]
