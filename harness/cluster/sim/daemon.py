"""A persistent offline cluster: ``make cluster-up BACKEND=sim`` (``python -m harness.cluster.sim.daemon up``).

Why: so a learner without kind can use kubectl for real, and the grader's real-cluster path
(``BACKEND=kubeconfig CONTEXT=mlops-labs-sim``) can run against the sim. ``up`` starts a
background process that runs a :class:`SimCluster` on Docker (controllers, kubelet, Service
proxies, NodePorts on ``127.0.0.1:<nodePort>``) plus its HTTP API on 127.0.0.1, and writes a
kubeconfig context ``mlops-labs-sim`` into ``$KUBECONFIG`` (default ``~/.kube/config``), merged
the way kind merges (clusters/users/contexts entries replaced by name). Unlike kind it switches
``current-context`` only when the kubeconfig has none, so it never silently redirects a learner's
kubectl away from a real cluster. ``down`` stops it, removes its containers and the context;
``status`` says whether it runs. A killed daemon leaves containers labelled with its dead pid,
which the next ``up`` sweeps (``docker_runtime.sweep_stale``), and a stale state file.

Nothing is preloaded: the sim's pods run on the host's Docker, where images built with
``make`` already are (nodes are labelled ``mlops-labs.io/shares-host-docker=true``).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

CONTEXT = "mlops-labs-sim"
STATE_DIR = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "mlops-labs"
STATE = STATE_DIR / "sim-cluster.json"
LOG = STATE_DIR / "sim-cluster.log"
# the daemon's own kubeconfig (just its context), for BACKEND=auto: independent of the learner's $KUBECONFIG
OWN_KUBECONFIG = STATE_DIR / "sim-cluster.kubeconfig"


def kubeconfig_path() -> Path:
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


# ---- kubeconfig ---------------------------------------------------------------------------------
def _upsert(entries: list, name: str, key: str, value: dict) -> list:
    entries = [e for e in entries or [] if e.get("name") != name]
    return entries + [{"name": name, key: value}]


def write_context(url: str, path: Path | None = None) -> bool:
    """Add or replace the ``mlops-labs-sim`` cluster, user and context; returns whether it became current."""
    path = path or kubeconfig_path()
    cfg = yaml.safe_load(path.read_text()) if path.exists() else None
    cfg = cfg or {"apiVersion": "v1", "kind": "Config", "preferences": {}}
    cfg["clusters"] = _upsert(cfg.get("clusters"), CONTEXT, "cluster", {"server": url})
    cfg["users"] = _upsert(cfg.get("users"), CONTEXT, "user", {})
    cfg["contexts"] = _upsert(cfg.get("contexts"), CONTEXT, "context",
                              {"cluster": CONTEXT, "user": CONTEXT, "namespace": "default"})
    switched = not cfg.get("current-context")
    if switched:
        cfg["current-context"] = CONTEXT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    path.chmod(0o600)
    return switched


def remove_context(path: Path | None = None) -> None:
    path = path or kubeconfig_path()
    if not path.exists():
        return
    cfg = yaml.safe_load(path.read_text()) or {}
    for section in ("clusters", "users", "contexts"):
        cfg[section] = [e for e in cfg.get(section) or [] if e.get("name") != CONTEXT]
    if cfg.get("current-context") == CONTEXT:
        cfg["current-context"] = ""
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))


# ---- state ----------------------------------------------------------------------------------------
def read_state() -> dict | None:
    try:
        st = json.loads(STATE.read_text())
    except (OSError, ValueError):
        return None
    try:
        os.kill(int(st["pid"]), 0)
    except (OSError, KeyError, ValueError):
        return None
    return st


def running_url() -> str | None:
    """The API URL of a running sim cluster, or None (used by ``BACKEND=auto``)."""
    st = read_state()
    return st.get("url") if st else None


def running_kubeconfig() -> tuple[str, str] | None:
    """(API URL, a kubeconfig file whose context ``mlops-labs-sim`` reaches it) of a running sim
    cluster, or None: what ``BACKEND=auto`` grades through."""
    st = read_state()
    if not st or not st.get("url") or not Path(st.get("kubeconfig") or OWN_KUBECONFIG).exists():
        return None
    return st["url"], st.get("kubeconfig") or str(OWN_KUBECONFIG)


# ---- the daemon itself ------------------------------------------------------------------------------
class NodePorts:
    """Listens on 127.0.0.1:<nodePort> for every NodePort/LoadBalancer Service port, as the course
    kind cluster's port mappings (30080-30090) do; connections go through the Service proxy."""

    def __init__(self, sim):
        from .proxy import ProxyManager
        self.sim = sim
        self.proxies = ProxyManager(sim._resolve)   # noqa: SLF001 - the Service resolver the sim's proxies use
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._ports: dict[tuple, int] = {}      # (namespace, service, port) -> the nodePort it listens on

    def sync(self, _ev: str = "", obj: dict | None = None) -> None:
        if obj is not None and obj.get("kind") != "Service":
            return
        with self._lock:
            want = {}
            for svc in self.sim.store.list("Service", None, record=False):
                if (svc.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer"):
                    for p in svc["spec"].get("ports") or []:
                        if p.get("nodePort"):
                            want[(svc["metadata"]["namespace"], svc["metadata"]["name"], p["port"])] = p["nodePort"]
            for key in self.proxies.keys():
                if want.get(key) != self._ports.get(key):     # deleted, or its nodePort changed
                    self.proxies.close(key)
                    self._ports.pop(key, None)
            for key, port in want.items():
                if key not in self.proxies.keys():
                    try:
                        self.proxies.ensure(key, port)
                        self._ports[key] = port
                    except OSError as exc:
                        msg = f"nodePort {port} of service {key[0]}/{key[1]}: {exc}"
                        if msg not in self.errors[-5:]:
                            self.errors.append(msg)


class GatewayPorts:
    """Listens on 127.0.0.1:<listener port> for every HTTP listener of a Gateway API Gateway: the
    address (127.0.0.1) the sim writes into ``status.addresses``, where a real-cluster client
    (the kubeconfig backend's ``gateway_url``) sends traffic. Requests go through the sim's router."""

    def __init__(self, sim):
        self.sim = sim
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._open: dict[tuple, int] = {}       # (gateway, namespace, name, listener) -> its port

    def sync(self, _ev: str = "", obj: dict | None = None) -> None:
        if obj is not None and obj.get("kind") != "Gateway":
            return
        from .routing import GW_GROUP
        server = self.sim.routing.server
        with self._lock:
            want = {}
            for gw in self.sim.store.list("Gateway", None, record=False):
                if not str(gw.get("apiVersion", "")).startswith(GW_GROUP):
                    continue
                for lst in (gw.get("spec") or {}).get("listeners") or []:
                    if lst.get("protocol") == "HTTP" and lst.get("port"):
                        want[("gateway", gw["metadata"]["namespace"], gw["metadata"]["name"], lst["name"])] = \
                            lst["port"]
            for key in list(self._open):
                if want.get(key) != self._open[key]:         # deleted, or its port changed
                    server.close(key)
                    del self._open[key]
            for key, port in want.items():
                if key not in self._open:
                    try:
                        server.ensure(key, port)
                        self._open[key] = port
                    except OSError as exc:
                        msg = f"gateway {key[1]}/{key[2]} listener {key[3]} on port {port}: {exc}"
                        if msg not in self.errors[-5:]:
                            self.errors.append(msg)


RESYNC_S = 2.0


def start_cluster(port: int = 0):
    """The daemon's cluster, in this process: a Docker-backed :class:`SimCluster` with kind's system
    namespaces and default ServiceAccounts, NodePorts on 127.0.0.1 and its API server. Returns
    ``(sim, server, nodeports)``; :func:`stop_cluster` undoes it (tests use both directly)."""
    from .api import ApiHttpServer
    from .cluster import SimCluster
    sim = SimCluster(namespace="default", tick=0.5)
    sim.start()
    default = sim.store.get("Namespace", None, "default")
    default["metadata"]["labels"] = {"kubernetes.io/metadata.name": "default"}   # as kind's: no PSA label
    sim.store.update(default)
    for ns in ("kube-system", "kube-public", "kube-node-lease"):
        sim.store.create({"apiVersion": "v1", "kind": "Namespace", "status": {"phase": "Active"},
                          "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}})
    from .api.rest import ensure_default_service_account
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        ensure_default_service_account(sim.store, ns)
    nodeports = NodePorts(sim)
    gateways = GatewayPorts(sim)
    sim.store.watch(nodeports.sync)
    sim.store.watch(gateways.sync)
    # Level-triggered as well, like a controller's resync: a port that was still held by a Gateway
    # or Service just deleted (in another namespace) is opened on the next pass.
    stop = threading.Event()

    def resync() -> None:
        while not stop.wait(RESYNC_S):
            for sync in (nodeports.sync, gateways.sync):
                try:
                    sync()
                except Exception:  # noqa: BLE001 - never kill the resync thread; the next pass retries
                    pass
    threading.Thread(target=resync, name="ports-resync", daemon=True).start()
    nodeports.stop_resync = stop.set
    server = ApiHttpServer(sim, port=port)
    server.start()
    return sim, server, nodeports


def stop_cluster(sim, server, nodeports) -> None:
    getattr(nodeports, "stop_resync", lambda: None)()
    try:
        server.stop()
        nodeports.proxies.stop()
    finally:
        sim.stop()


def serve(port: int) -> None:
    sim, server, nodeports = start_cluster(port)
    url = server.url
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    write_context(url, OWN_KUBECONFIG)
    STATE.write_text(json.dumps({"pid": os.getpid(), "url": url, "started": time.time(),
                                 "kubeconfig": str(OWN_KUBECONFIG)}))
    print(f"sim cluster API on {url}", flush=True)
    done.wait()
    try:
        stop_cluster(sim, server, nodeports)
    finally:
        STATE.unlink(missing_ok=True)
        OWN_KUBECONFIG.unlink(missing_ok=True)


# ---- commands ------------------------------------------------------------------------------------------
def up(port: int = 0, timeout: float = 60) -> int:
    st = read_state()
    if st is None:
        from .docker_runtime import available, sweep_stale
        if not available():
            print("error: the sim cluster needs a running Docker daemon (start dockerd, then retry)", file=sys.stderr)
            return 2
        swept = sweep_stale()
        if swept:
            print(f"removed {swept} container(s) left by a sim cluster that was killed")
        STATE.unlink(missing_ok=True)
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(LOG, "ab") as log:
            subprocess.Popen([sys.executable, "-m", "harness.cluster.sim.daemon", "serve", "--port", str(port)],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.time() + timeout
        while (st := read_state()) is None:
            if time.time() > deadline:
                print(f"error: the sim cluster did not start within {timeout:.0f} s; see {LOG}", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"sim cluster started (pid {st['pid']}, API {st['url']}, log {LOG})")
    else:
        print(f"sim cluster already running (pid {st['pid']}, API {st['url']})")
    switched = write_context(st["url"])
    where = kubeconfig_path()
    print(f"kubeconfig: context {CONTEXT!r} written to {where}"
          + (" and made current" if switched else " (current-context left as it was)"))
    print(f"use it:  kubectl --context {CONTEXT} get nodes     (or: kubectl config use-context {CONTEXT})")
    print(f"grade through it:  make lab-2 BACKEND=kubeconfig CONTEXT={CONTEXT}")
    return 0


def down(timeout: float = 30) -> int:
    st = read_state()
    if st is not None:
        os.kill(int(st["pid"]), signal.SIGTERM)
        deadline = time.time() + timeout
        while read_state() is not None and time.time() < deadline:
            time.sleep(0.2)
        if read_state() is not None:
            os.kill(int(st["pid"]), signal.SIGKILL)
            time.sleep(0.5)
        print(f"sim cluster (pid {st['pid']}) stopped")
    else:
        print("no sim cluster was running")
    try:
        from .docker_runtime import available, sweep_stale
        if available():
            sweep_stale()
    finally:
        STATE.unlink(missing_ok=True)
        OWN_KUBECONFIG.unlink(missing_ok=True)
        remove_context()
        print(f"context {CONTEXT!r} removed from {kubeconfig_path()}")
    return 0


def status() -> int:
    st = read_state()
    if st is None:
        print("sim cluster: not running (make cluster-up BACKEND=sim)")
        return 1
    import requests
    try:
        nodes = requests.get(st["url"] + "/api/v1/nodes", timeout=5).json().get("items", [])
        pods = requests.get(st["url"] + "/api/v1/pods", timeout=5).json().get("items", [])
    except (requests.RequestException, ValueError) as exc:
        print(f"sim cluster: pid {st['pid']} runs but its API at {st['url']} does not answer: {exc}")
        return 1
    print(f"sim cluster: running (pid {st['pid']}, API {st['url']}, context {CONTEXT}), "
          f"{len(nodes)} nodes, {len(pods)} pods, up {time.time() - st['started']:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.cluster.sim.daemon")
    ap.add_argument("command", choices=("up", "down", "status", "serve"))
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args(argv)
    if a.command == "serve":
        serve(a.port)
        return 0
    return {"up": lambda: up(a.port), "down": down, "status": status}[a.command]()


if __name__ == "__main__":
    sys.exit(main())
