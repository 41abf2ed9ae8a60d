#!/usr/bin/env python3
"""Lab grading time through the real-cluster path against a running sim cluster, cold and warm,
side by side with the in-process sim, in one run.

    .venv/bin/python benchmarks/grade_paths.py [--lab 2] [--warm 2]

1. the daemon's cluster (``make cluster-up BACKEND=sim``) is started in this process;
2. the lab's solution is graded through ``BACKEND=kubeconfig CONTEXT=mlops-labs-sim`` once
   (cold: images built, kubectl's discovery cache empty), then ``--warm`` more times;
3. the same solution is graded on the in-process sim;
4. a table: score, seconds, and each run's ratio to the in-process grading. With ``-v`` the
   grader's log lines are printed with the seconds since the run started, to see where time goes.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.cluster.sim import daemon  # noqa: E402
from harness.grading import grade  # noqa: E402
from harness.labs import lab  # noqa: E402


def _log(verbose: bool, t0: list[float]):
    def log(line: str) -> None:
        if verbose:
            print(f"  {time.monotonic() - t0[0]:6.1f}s  {line}", flush=True)
    return log


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", type=int, default=2)
    ap.add_argument("--warm", type=int, default=2, help="warm gradings after the cold one")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    the_lab = lab(args.lab)
    rows: list[tuple[str, str, float]] = []
    t0 = [0.0]
    sim, server, nodeports = daemon.start_cluster()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            kc = Path(tmp) / "kubeconfig"
            daemon.write_context(server.url, kc)
            os.environ.update({"KUBECONFIG": str(kc), "CONTEXT": daemon.CONTEXT})
            os.environ.pop("NAMESPACE", None)
            for i in range(1 + args.warm):
                what = "kubeconfig, cold" if i == 0 else f"kubeconfig, warm {i}"
                print(f"grading lab {args.lab} ({what})", flush=True)
                t0[0] = time.monotonic()
                r = grade(the_lab, the_lab.solution, backend="kubeconfig", log=_log(args.verbose, t0))
                rows.append((what, f"{r.score}/{r.max_score}", time.monotonic() - t0[0]))
    finally:
        daemon.stop_cluster(sim, server, nodeports)
    for k in ("KUBECONFIG", "CONTEXT"):
        os.environ.pop(k, None)
    print(f"grading lab {args.lab} (in-process sim)", flush=True)
    t0[0] = time.monotonic()
    r = grade(the_lab, the_lab.solution, backend="sim", log=_log(args.verbose, t0))
    base = time.monotonic() - t0[0]
    rows.append(("in-process sim", f"{r.score}/{r.max_score}", base))
    print(f"\n{'path':<20} {'score':>7} {'seconds':>8} {'x in-process':>13}")
    for what, score, s in rows:
        print(f"{what:<20} {score:>7} {s:8.1f} {s / base:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
