#!/usr/bin/env python3
"""What the sim cluster's API costs a learner, measured side by side in one run.

    .venv/bin/python benchmarks/sim_api_cost.py [--runs 20] [--idle 30]

1. ``make cluster-up BACKEND=sim`` (the daemon, with a temporary state folder and kubeconfig);
2. ``kubectl get pods -A`` against it and ``kubectl version --client`` (no server at all),
   alternated, ``--runs`` times each: the medians and their ratio (the target is at most 1.5);
3. the daemon's CPU while idle over ``--idle`` seconds, from /proc (utime + stime), as a
   percentage of one core (the target is under 2 %);
4. ``make cluster-down BACKEND=sim``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _timed(argv: list[str], env: dict) -> float:
    t = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - t


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")    # utime + stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle", type=float, default=30.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_STATE_HOME": f"{tmp}/state", "KUBECONFIG": f"{tmp}/config"}
        daemon = [PY, "-m", "harness.cluster.sim.daemon"]
        subprocess.run(daemon + ["up"], env=env, check=True, cwd=ROOT, capture_output=True, timeout=120)
        try:
            state = json.loads(Path(f"{tmp}/state/mlops-labs/sim-cluster.json").read_text())
            kubectl = ["kubectl", "--context", "mlops-labs-sim", "--cache-dir", f"{tmp}/cache"]
            subprocess.run(kubectl + ["get", "pods", "-A"], env=env, check=True, capture_output=True)  # discovery
            server, client = [], []
            for _ in range(args.runs):
                server.append(_timed(kubectl + ["get", "pods", "-A"], env))
                client.append(_timed(["kubectl", "version", "--client"], env))
            time.sleep(2)
            pid = int(state["pid"])
            c0, t0 = _cpu_seconds(pid), time.monotonic()
            time.sleep(args.idle)
            idle = 100 * (_cpu_seconds(pid) - c0) / (time.monotonic() - t0)
        finally:
            subprocess.run(daemon + ["down"], env=env, cwd=ROOT, capture_output=True, timeout=120)
    s, c = statistics.median(server), statistics.median(client)
    print(f"kubectl get pods -A (sim API)   median {s * 1000:6.1f} ms over {args.runs}")
    print(f"kubectl version --client        median {c * 1000:6.1f} ms over {args.runs}")
    print(f"ratio                           {s / c:6.2f}  (target <= 1.5)")
    print(f"daemon CPU while idle           {idle:6.2f} % of a core over {args.idle:.0f} s  (target < 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
