"""Watches: a chunked stream of ``{"type": ..., "object": ...}`` lines, as kube-apiserver sends them.

Why: ``kubectl get -w``, ``rollout status``, ``wait`` and every informer watch from a
resourceVersion. Semantics (``apiserver/pkg/storage/cacher``):

* ``resourceVersion`` unset or ``"0"``: the current objects first, as ADDED, then changes;
  ``sendInitialEvents=true`` ends those with a BOOKMARK annotated ``k8s.io/initial-events-end``;
* ``resourceVersion=N``: every change after N, from the store's ring buffer; N older than the
  buffer gives an ERROR event carrying a 410 ``Expired`` Status (the client relists);
* selectors are applied to each event; an object that stops matching is sent as DELETED;
* ``allowWatchBookmarks``: a BOOKMARK with the current resourceVersion about once a minute;
* ``timeoutSeconds`` ends the stream (default: a random 30-60 minutes, as ``--min-request-timeout``);
* aiohttp does not cancel a handler whose client went away, so the loop checks the transport
  each time it wakes (at least every :data:`CHECK_S` seconds) and unsubscribes from the store.

Nothing polls while idle: the store's watcher sets an asyncio event from the writing thread.
"""
from __future__ import annotations

import asyncio
import json
import random
import time

from aiohttp import web

from harness.cluster.base import ApiError

from ..store import Expired
from . import errors, fields
from .resources import Resource

CHECK_S = 5.0
BOOKMARK_S = 60.0


def _line(type_: str, obj: dict) -> bytes:
    return json.dumps({"type": type_, "object": obj}, separators=(",", ":")).encode() + b"\n"


async def serve(request: web.Request, rest, r: Resource, ns: str | None, render) -> web.StreamResponse:
    """``render(objs, first)`` turns objects into what each event carries (objects, or Tables)."""
    q = request.query
    store = rest.store
    from ..labels import parse_selector
    match_labels = parse_selector(q.get("labelSelector"))
    match_fields = fields.parse(q.get("fieldSelector"), r.kind)
    key_ns = ns if r.namespaced else None

    def matches(o: dict) -> bool:
        if key_ns is not None and o["metadata"].get("namespace") != key_ns:
            return False
        return match_labels(o["metadata"].get("labels") or {}) and match_fields(o)

    timeout = float(q.get("timeoutSeconds") or random.uniform(1800, 3600))
    deadline = time.monotonic() + timeout
    bookmarks = q.get("allowWatchBookmarks") == "true"
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    unsubscribe = store.watch(lambda ev, obj: loop.call_soon_threadsafe(wake.set))
    resp = web.StreamResponse(headers={"Content-Type": "application/json", "Cache-Control": "no-cache"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    first = True
    seen: set[tuple] = set()

    async def send(type_: str, obj: dict) -> None:
        nonlocal first
        await resp.write(_line(type_, render(obj, first) if type_ in ("ADDED", "MODIFIED", "DELETED") else obj))
        if type_ in ("ADDED", "MODIFIED", "DELETED"):
            first = False

    def bookmark(rv: int, initial_end: bool = False) -> dict:
        meta: dict = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {"kind": r.kind, "apiVersion": r.group_version, "metadata": meta}

    try:
        rv_param = q.get("resourceVersion") or ""
        if rv_param in ("", "0") or q.get("sendInitialEvents") == "true":
            objs, last = store.list_with_revision(r.stored, key_ns)
            for o in objs:
                if matches(o):
                    seen.add((o["metadata"].get("namespace"), o["metadata"]["name"]))
                    await send("ADDED", rest._view(r, o))
            if q.get("sendInitialEvents") == "true":
                await send("BOOKMARK", bookmark(last, True))
        else:
            try:
                last = int(rv_param)
            except ValueError:
                raise ApiError(f"resourceVersion: Invalid value: {rv_param!r}: must be an integer") from None
        last_bookmark = time.monotonic()
        while True:
            try:
                events = store.events_since(last, r.stored)
            except Expired as exc:
                await send("ERROR", errors.from_api_error(exc))
                break
            for e in events:
                last = e.rv
                key = (e.obj["metadata"].get("namespace"), e.obj["metadata"]["name"])
                if matches(e.obj):
                    type_ = e.type
                    if type_ == "MODIFIED" and key not in seen and rv_param in ("", "0"):
                        type_ = "ADDED"
                    (seen.discard if type_ == "DELETED" else seen.add)(key)
                    await send(type_, rest._view(r, e.obj))
                elif key in seen and e.type != "ADDED":
                    seen.discard(key)
                    await send("DELETED", rest._view(r, e.obj))
            if events:
                last = max(last, events[-1].rv)
            now = time.monotonic()
            if now >= deadline:
                break
            if bookmarks and now - last_bookmark >= BOOKMARK_S:
                await send("BOOKMARK", bookmark(max(last, store.revision)))
                last_bookmark = now
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            try:
                await asyncio.wait_for(wake.wait(), timeout=min(CHECK_S, deadline - now))
            except asyncio.TimeoutError:
                pass
            wake.clear()
    except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        unsubscribe()
    try:
        await resp.write_eof()
    except (ConnectionResetError, ConnectionError, RuntimeError):
        pass
    return resp
