"""Service proxies: one asyncio TCP listener per Service port on 127.0.0.1.

Why: checks send real traffic (``hey``, ``requests``) through a Service and
read measured figures, so the Service has to be a real data plane. Like
kube-proxy, each *connection* goes to one backend (round-robin over the
programmed ready endpoints; kube-proxy's iptables mode picks at random); a
connection that finds no backend, or whose backend refuses, is reset (RST),
which is what a client of a Service without endpoints sees.

All proxies share one event loop in one daemon thread. ``stats()`` reports
connections, resets and the CPU time the proxy thread itself used, since on
a 2-core machine it competes with the pods being measured.
"""
from __future__ import annotations

import asyncio
import itertools
import socket
import struct
from typing import Callable

from .listeners import Listeners

Resolver = Callable[[tuple], list[tuple[str, int]]]


class ProxyManager(Listeners):
    thread_name = "sim-service-proxy"

    def __init__(self, resolve: Resolver, host: str = "127.0.0.1"):
        super().__init__(host)
        self._resolve = resolve
        self._rr: dict[tuple, itertools.count] = {}
        self._handlers: set[asyncio.Task] = set()   # strong references, see _handle
        self.connections = 0
        self.resets = 0

    def _listening(self, key: tuple) -> None:
        self._rr[key] = itertools.count()

    def stats(self) -> dict[str, float]:
        return {"connections": self.connections, "resets": self.resets, "cpu_seconds": self.cpu_seconds()}

    # ---- data path -----------------------------------------------------------------
    def _reset(self, writer: asyncio.StreamWriter) -> None:
        self.resets += 1
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()

    async def _handle(self, key: tuple, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Python 3.11's start_server callback calls task.exception() on a
        # cancelled handler and logs a CancelledError traceback at shutdown:
        # end the handler normally when it is cancelled.
        # asyncio keeps only weak references to tasks, and a handler whose client
        # went away can lose its last strong one: it would be collected while
        # pending ("Task was destroyed but it is pending!"). Hold it until done.
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            await self._serve(key, reader, writer)
        except asyncio.CancelledError:
            writer.transport.abort()
        finally:
            self._handlers.discard(task)

    async def _serve(self, key: tuple, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        backends = self._resolve(key)
        if not backends:
            return self._reset(writer)
        host, port = backends[next(self._rr[key]) % len(backends)]
        try:
            br, bw = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=5)
        except (OSError, asyncio.TimeoutError):
            return self._reset(writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
                if dst.can_write_eof():
                    dst.write_eof()
            except (OSError, ConnectionError):
                pass

        try:
            await asyncio.gather(pipe(reader, bw), pipe(br, writer))
        finally:
            for w in (writer, bw):
                w.close()
