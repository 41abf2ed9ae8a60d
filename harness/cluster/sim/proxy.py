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
import threading
import time
from typing import Callable

Resolver = Callable[[tuple], list[tuple[str, int]]]


class ProxyManager:
    def __init__(self, resolve: Resolver, host: str = "127.0.0.1"):
        self._resolve, self._host = resolve, host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[tuple, asyncio.base_events.Server] = {}
        self._ports: dict[tuple, int] = {}
        self._rr: dict[tuple, itertools.count] = {}
        self._handlers: set[asyncio.Task] = set()   # strong references, see _handle
        self._lock = threading.Lock()
        self.connections = 0
        self.resets = 0

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="sim-service-proxy", daemon=True)
            self._thread.start()
        return self._loop

    def ensure(self, key: tuple) -> int:
        """Start (once) the listener for ``key`` = (namespace, service, port); return its local port."""
        with self._lock:
            if key in self._ports:
                return self._ports[key]
            loop = self._ensure_loop()
            fut = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(lambda r, w: self._handle(key, r, w), self._host, 0, backlog=512), loop)
            server = fut.result(timeout=10)
            self._servers[key] = server
            self._ports[key] = server.sockets[0].getsockname()[1]
            self._rr[key] = itertools.count()
            return self._ports[key]

    def close(self, key: tuple) -> None:
        with self._lock:
            server = self._servers.pop(key, None)
            self._ports.pop(key, None)
        if server is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(server.close)

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._ports)

    def stats(self) -> dict[str, float]:
        cpu = 0.0
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            async def _cpu() -> float:
                return time.thread_time()
            cpu = asyncio.run_coroutine_threadsafe(_cpu(), self._loop).result(timeout=5)
        return {"connections": self.connections, "resets": self.resets, "cpu_seconds": cpu}

    def stop(self) -> None:
        with self._lock:
            servers, self._servers, self._ports = list(self._servers.values()), {}, {}
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def _shutdown() -> None:
            for s in servers:
                s.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            # let every connection handler finish its cancellation before the
            # loop closes (otherwise: "Task was destroyed but it is pending!")
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            asyncio.run_coroutine_threadsafe(_shutdown(), loop).result(timeout=5)
        except Exception:  # noqa: BLE001 - stopping anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if not loop.is_running():
            loop.close()

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
