"""``pods/x/exec`` and ``pods/x/portforward`` over WebSocket, as kubectl 1.32 and the Python client speak them.

exec (non-interactive): subprotocols ``v5.channel.k8s.io`` / ``v4.channel.k8s.io``; each binary
message starts with a channel byte: 1 stdout, 2 stderr, 3 a ``Status`` (``NonZeroExitCode`` with
the code as cause ``ExitCode``, which kubectl turns into its own exit code). The command runs through
the sim runtime (``docker exec`` on the pod's container). ``-i``/``-t`` are refused with a Status
saying so; ``attach`` is not served.

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
import struct

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
            await ws.send_bytes(_status(1, cmd, "the sim's API server runs non-interactive commands only: drop -i "
                                                "and -t (kubectl exec POD -- CMD ARGS...)"))
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
