"""``pods/x/exec`` and ``pods/x/portforward`` over WebSocket, as kubectl 1.32 and the Python client speak them.

exec: subprotocols ``v5.channel.k8s.io`` / ``v4.channel.k8s.io``; each binary message starts with a
channel byte: 0 stdin, 1 stdout, 2 stderr, 3 a ``Status`` (``NonZeroExitCode`` with the code as cause
``ExitCode``, which kubectl turns into its own exit code), 4 a terminal resize, 255 (v5) the end of
stdin. The command runs as ``docker exec`` on the pod's container: without ``-i``/``-t`` it runs to
the end and its output is sent; with them it is attached through docker's hijacked socket, stdin
and resizes go in and output streams out as it comes (``kubectl exec -it POD -- sh`` is a shell).
The fake runtime (tests) refuses ``-i``/``-t`` with a Status saying so; ``attach`` is not served.

port-forward: kubectl's ``SPDY/3.1+portforward.k8s.io`` (a SPDY/3.1 connection tunnelled in binary
messages, :mod:`.spdy`): per forwarded connection the client opens an ``error`` and a ``data`` stream
with the same ``requestID``; the data stream is piped to the pod's port (the runtime's address for it),
a failure is written to the error stream with the kubelet's wording. The Python client's framing
(``v4.channel.k8s.io`` with ``?ports=``: channels 2i data / 2i+1 error, each opened by a 2-byte
little-endian port) is served too. The SPDY-over-HTTP-upgrade fallback (pre-1.31 kubectl) is not.
"""
from __future__ import annotations

import asyncio
import json
import socket
import struct
import time

from aiohttp import WSMsgType, web

from harness.cluster.base import ApiError

from ..apiserver import BadRequest
from . import spdy
from .podlogs import _container

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
PF_SPDY = "SPDY/3.1+portforward.k8s.io"
PF_CHANNEL = ("v4.channel.k8s.io",)
EXEC_TIMEOUT = 3600.0


class NotServed(ApiError):
    code, reason = 400, "BadRequest"


async def serve(request: web.Request, sim, ns: str, name: str, sub: str) -> web.StreamResponse:
    pod = sim.store.get("Pod", ns, name)   # NotFound first, as upstream
    if sub == "exec":
        return await _exec(request, sim, pod)
    if sub == "portforward":
        return await _portforward(request, sim, pod)
    raise NotServed(f"pods/{sub} is not served by the sim's API server: use `kubectl logs -f` to follow output, "
                    "or `kubectl exec` for a command")


def _upgrade_wanted(request: web.Request) -> None:
    if request.headers.get("Upgrade", "").lower() != "websocket":
        raise NotServed("the sim's API server serves exec and port-forward over WebSocket only (kubectl 1.31 or "
                        "newer; SPDY upgrades are not served)")


# ---- exec ---------------------------------------------------------------------------------------------
def _status(code: int, cmd: list[str], message: str | None = None) -> bytes:
    if code == 0 and message is None:
        st = {"metadata": {}, "status": "Success"}
    elif message is not None:
        st = {"metadata": {}, "status": "Failure", "message": message, "reason": "BadRequest", "code": 400}
    else:
        st = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
              "message": f"command terminated with non-zero exit code: error executing command "
                         f"[{' '.join(cmd)}], exit code {code}",
              "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]}}
    return b"\x03" + json.dumps(st).encode()


def _run(sim, cid: str, cmd: list[str]) -> tuple[int, bytes, bytes]:
    client = getattr(sim.runtime, "client", None)
    if client is None:            # the fake runtime: one combined output
        code, out = sim.runtime.exec(cid, cmd, EXEC_TIMEOUT)
        return code, out.encode(), b""
    try:
        ex = client.api.exec_create(cid, cmd, stdout=True, stderr=True, stdin=False, tty=False)
        out, err = client.api.exec_start(ex["Id"], demux=True)
        code = client.api.exec_inspect(ex["Id"]).get("ExitCode")
    except Exception as exc:  # noqa: BLE001 - what docker says (no such executable, container gone)
        return 126, b"", f"{exc}\n".encode()
    return (code if code is not None else 1), out or b"", err or b""


async def _exec(request: web.Request, sim, pod) -> web.StreamResponse:
    q = request.query
    cmd = q.getall("command", [])
    if not cmd:
        raise BadRequest("you must specify at least 1 command")
    cid = _container(sim, pod, q.get("container"), False)
    _upgrade_wanted(request)
    ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, max_msg_size=0)
    await ws.prepare(request)
    try:
        if q.get("stdin") in ("true", "1") or q.get("tty") in ("true", "1"):
            if getattr(sim.runtime, "client", None) is None:     # the fake runtime runs no processes
                await ws.send_bytes(_status(1, cmd, "this sim runtime runs non-interactive commands only: drop -i "
                                                    "and -t (kubectl exec POD -- CMD ARGS...)"))
                return ws
            await _interactive(ws, sim, cid, cmd, stdin=q.get("stdin") in ("true", "1"),
                               tty=q.get("tty") in ("true", "1"))
            return ws
        code, out, err = await asyncio.to_thread(_run, sim, cid, cmd)
        if out and q.get("stdout", "true") in ("true", "1"):
            await ws.send_bytes(b"\x01" + out)
        if err and q.get("stderr", "true") in ("true", "1"):
            await ws.send_bytes(b"\x02" + err)
        await ws.send_bytes(_status(code, cmd))
    finally:
        await ws.close()
    return ws


# ---- interactive exec (-i, -t): a docker exec attached through a hijacked socket ----------------------
def _attach(sim, cid: str, cmd: list[str], stdin: bool, tty: bool):
    api = sim.runtime.client.api
    ex = api.exec_create(cid, cmd, stdin=stdin, stdout=True, stderr=True, tty=tty)
    sock = api.exec_start(ex["Id"], tty=tty, socket=True)
    raw = getattr(sock, "_sock", sock)          # docker's SocketIO wraps the connection's socket
    raw.setblocking(False)
    return ex["Id"], raw, sock


def _exit_code(sim, exec_id: str) -> int:
    api = sim.runtime.client.api
    for _ in range(50):                          # the exec is marked stopped a moment after its output ends
        info = api.exec_inspect(exec_id)
        if not info.get("Running"):
            return info.get("ExitCode") if info.get("ExitCode") is not None else 1
        time.sleep(0.05)
    return 1


def _frames(buf: bytearray) -> list[tuple[int, bytes]]:
    """Docker's multiplexed stream (no tty): 8-byte headers [stream, 0, 0, 0, size (big-endian)]."""
    out = []
    while len(buf) >= 8:
        size = struct.unpack(">I", bytes(buf[4:8]))[0]
        if len(buf) < 8 + size:
            break
        out.append((2 if buf[0] == 2 else 1, bytes(buf[8:8 + size])))
        del buf[:8 + size]
    return out


async def _interactive(ws: web.WebSocketResponse, sim, cid: str, cmd: list[str], *, stdin: bool, tty: bool) -> None:
    """kubectl's channels: 0 stdin, 1 stdout, 2 stderr, 3 the Status, 4 terminal resize ({"Width","Height"}),
    255 close (v5: ``[255, 0]`` is the end of stdin). With a tty, docker sends one raw stream (stdout)."""
    try:
        exec_id, raw, keep = await asyncio.to_thread(_attach, sim, cid, cmd, stdin, tty)
    except Exception as exc:  # noqa: BLE001 - what docker says (container gone, no such executable)
        await ws.send_bytes(b"\x02" + f"{exc}\n".encode())
        await ws.send_bytes(_status(126, cmd))
        return
    loop = asyncio.get_running_loop()
    api = sim.runtime.client.api

    async def from_container() -> None:
        buf = bytearray()
        while True:
            try:
                data = await loop.sock_recv(raw, 65536)
            except OSError:
                return
            if not data:
                return
            if tty:
                await ws.send_bytes(b"\x01" + data)
                continue
            buf += data
            for ch, payload in _frames(buf):
                await ws.send_bytes(bytes([ch]) + payload)

    def close_stdin() -> None:
        try:
            raw.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    async def from_client() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            ch, data = msg.data[0], msg.data[1:]
            if ch == 0 and stdin:
                await loop.sock_sendall(raw, data)
            elif ch == 4 and tty:
                try:
                    size = json.loads(data)
                    await asyncio.to_thread(api.exec_resize, exec_id, height=int(size["Height"]),
                                            width=int(size["Width"]))
                except Exception:  # noqa: BLE001 - a bad resize message or a finished exec: ignored
                    pass
            elif ch == 255 and data[:1] == b"\x00":
                close_stdin()
        close_stdin()                            # the client went away: stdin ends

    reader = asyncio.create_task(from_container())
    writer = asyncio.create_task(from_client())
    try:
        done, _ = await asyncio.wait({reader, writer}, timeout=EXEC_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
        if writer in done and reader not in done:    # the client is gone: give the process 5 s to end
            await asyncio.wait({reader}, timeout=5)
    finally:
        for t in (reader, writer):
            t.cancel()
        raw.close()
        keep.close()
    if not ws.closed:
        code = await asyncio.to_thread(_exit_code, sim, exec_id)
        await ws.send_bytes(_status(code, cmd))


# ---- port-forward ----------------------------------------------------------------------------------------
def _target(sim, pod, port: int) -> tuple[str, int] | None:
    w = sim.kubelet.worker(pod["metadata"]["uid"])
    for cw in (w.containers if w else []):
        if cw.cid:
            addr = sim.runtime.address(cw.cid, port)
            if addr is not None:
                return addr
    return None


def _forward_error(pod, port: int, why: str) -> bytes:
    return (f"error forwarding port {port} to pod {pod['metadata'].get('uid', '')}, uid : failed to connect to "
            f"localhost:{port} inside namespace \"{pod['metadata']['name']}\": {why}").encode()


async def _portforward(request: web.Request, sim, pod) -> web.StreamResponse:
    _upgrade_wanted(request)
    ws = web.WebSocketResponse(protocols=(PF_SPDY, *PF_CHANNEL), max_msg_size=0, autoping=True)
    await ws.prepare(request)
    try:
        if ws.ws_protocol == PF_SPDY:
            await _SpdyForward(ws, sim, pod).run()
        else:
            await _channel_forward(ws, sim, pod, request.query.getall("ports", []))
    finally:
        await ws.close()
    return ws


async def _open(sim, pod, port: int):
    addr = _target(sim, pod, port)
    if addr is None:
        raise ConnectionRefusedError(f"port {port} is not open in the pod (no container publishes it)")
    return await asyncio.open_connection(*addr)


async def _pump_out(reader: asyncio.StreamReader, send) -> None:
    """TCP -> client, then ``send(b"", True)`` at EOF."""
    try:
        while chunk := await reader.read(32768):
            await send(chunk, False)
    except (ConnectionError, OSError):
        pass
    await send(b"", True)


class _SpdyForward:
    """One kubectl port-forward session: streams paired by ``requestID``."""

    def __init__(self, ws: web.WebSocketResponse, sim, pod):
        self.ws, self.sim, self.pod = ws, sim, pod
        self.framer = spdy.Framer()
        self.pairs: dict[str, dict[str, int]] = {}
        self.writers: dict[int, asyncio.StreamWriter] = {}     # data stream id -> TCP writer
        self.tasks: set[asyncio.Task] = set()
        self.lock = asyncio.Lock()

    async def send(self, data: bytes) -> None:
        async with self.lock:
            if not self.ws.closed:
                await self.ws.send_bytes(data)

    async def run(self) -> None:
        try:
            async for msg in self.ws:
                if msg.type != WSMsgType.BINARY:
                    continue
                for f in self.framer.feed(msg.data):
                    await self.on_frame(f)
        except spdy.SpdyError:
            await self.send(self.framer.goaway(0, 1))
        finally:
            for t in self.tasks:
                t.cancel()
            for pending in self.writers.values():
                if pending.done() and pending.result() is not None:
                    pending.result().close()

    async def on_frame(self, f: spdy.Frame) -> None:
        if not f.control:
            pending = self.writers.get(f.stream_id)
            w = await pending if pending is not None else None     # data may come before the pod's port answers
            if w is not None:
                if f.data:
                    w.write(f.data)
                    await w.drain()
                if f.fin and w.can_write_eof():
                    w.write_eof()
            return
        if f.type == spdy.PING:
            await self.send(self.framer.ping(f.value))
        elif f.type == spdy.SYN_STREAM:
            await self.send(self.framer.syn_reply(f.stream_id))
            pair = self.pairs.setdefault(f.headers.get("requestid", str(f.stream_id)), {})
            pair[f.headers.get("streamtype", "")] = f.stream_id
            pair["port"] = int(f.headers.get("port") or 0)
            if "error" in pair and "data" in pair:
                self.writers[pair["data"]] = asyncio.get_running_loop().create_future()
                t = asyncio.ensure_future(self.connect(pair))
                self.tasks.add(t)
                t.add_done_callback(self.tasks.discard)
        elif f.type == spdy.RST_STREAM:
            pending = self.writers.pop(f.stream_id, None)
            if pending is not None and pending.done() and pending.result() is not None:
                pending.result().close()

    async def connect(self, pair: dict[str, int]) -> None:
        data_id, err_id, port = pair["data"], pair["error"], pair["port"]
        pending = self.writers[data_id]
        try:
            reader, writer = await _open(self.sim, self.pod, port)
        except OSError as exc:
            pending.set_result(None)
            await self.send(spdy.Framer.data(err_id, _forward_error(self.pod, port, str(exc)), True))
            await self.send(spdy.Framer.data(data_id, b"", True))
            return
        except Exception:
            pending.set_result(None)
            raise
        pending.set_result(writer)

        async def out(chunk: bytes, fin: bool) -> None:
            await self.send(spdy.Framer.data(data_id, chunk, fin))
        await _pump_out(reader, out)
        await self.send(spdy.Framer.data(err_id, b"", True))
        self.writers.pop(data_id, None)
        writer.close()


async def _channel_forward(ws: web.WebSocketResponse, sim, pod, ports: list[str]) -> None:
    """The Python client's framing: one TCP connection per port for the life of the WebSocket."""
    try:
        nums = [int(p) for p in ",".join(ports).split(",") if p]
    except ValueError:
        await ws.send_bytes(b"\x01" + b"invalid port in ports=")
        return
    writers: dict[int, asyncio.StreamWriter] = {}
    tasks = []
    lock = asyncio.Lock()

    async def send(data: bytes) -> None:
        async with lock:
            if not ws.closed:
                await ws.send_bytes(data)
    for i, port in enumerate(nums):
        prefix = struct.pack("<H", port)
        await send(bytes([2 * i]) + prefix)
        await send(bytes([2 * i + 1]) + prefix)
        try:
            reader, writer = await _open(sim, pod, port)
        except OSError as exc:
            await send(bytes([2 * i + 1]) + _forward_error(pod, port, str(exc)))
            continue
        writers[2 * i] = writer

        async def out(chunk: bytes, fin: bool, ch: int = 2 * i) -> None:
            if chunk:
                await send(bytes([ch]) + chunk)
        tasks.append(asyncio.ensure_future(_pump_out(reader, out)))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY and msg.data:
                w = writers.get(msg.data[0])
                if w is not None:
                    w.write(msg.data[1:])
                    await w.drain()
    finally:
        for t in tasks:
            t.cancel()
        for w in writers.values():
            w.close()
