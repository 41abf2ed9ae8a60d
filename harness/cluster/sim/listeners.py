"""TCP listeners on 127.0.0.1, one per key, all served by one asyncio loop in one daemon thread.

The base of the sim's two data planes: the Service proxies (``proxy.py``, L4, a backend per
connection) and the Gateway router (``routing.py``, L7, a backend per request). A subclass
implements ``_handle(key, reader, writer)`` and may hook ``_listening(key)`` (a listener was
opened) and ``_before_shutdown()`` (on the loop, before its tasks are cancelled).
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any


class Listeners:
    thread_name = "sim-listeners"

    def __init__(self, host: str = "127.0.0.1"):
        self._host = host
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._servers: dict[tuple, Any] = {}
        self._ports: dict[tuple, int] = {}
        self._lock = threading.Lock()

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name=self.thread_name, daemon=True)
            self._thread.start()
        return self._loop

    def ensure(self, key: tuple, port: int = 0) -> int:
        """Start (once) the listener for ``key``; return its local port (``port``, or a free one when 0;
        a fixed port already in use raises OSError)."""
        with self._lock:
            if key in self._ports:
                return self._ports[key]
            loop = self._ensure_loop()
            fut = asyncio.run_coroutine_threadsafe(
                asyncio.start_server(lambda r, w: self._handle(key, r, w), self._host, port, backlog=512), loop)
            server = fut.result(timeout=10)
            self._servers[key] = server
            self._ports[key] = server.sockets[0].getsockname()[1]
            self._listening(key)
            return self._ports[key]

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._ports)

    def close(self, key: tuple) -> None:
        with self._lock:
            server = self._servers.pop(key, None)
            self._ports.pop(key, None)
        if server is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(server.close)

    def cpu_seconds(self) -> float:
        """CPU time the loop's thread has used: it competes with the pods being measured."""
        if self._loop is None or self._thread is None or not self._thread.is_alive():
            return 0.0

        async def _cpu() -> float:
            return time.thread_time()
        return asyncio.run_coroutine_threadsafe(_cpu(), self._loop).result(timeout=5)

    def stop(self) -> None:
        with self._lock:
            servers, self._servers, self._ports = list(self._servers.values()), {}, {}
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def _shutdown() -> None:
            for s in servers:
                s.close()
            await self._before_shutdown()
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

    # ---- for subclasses ---------------------------------------------------------------------
    def _listening(self, key: tuple) -> None:
        pass

    async def _before_shutdown(self) -> None:
        pass

    async def _handle(self, key: tuple, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError
