#!/usr/bin/env python3
"""Grade a lab's reference solution several times in a row and count passes,
per check: the evidence that sampled checks (HPA timing, traffic split) do
not flake.

    .venv/bin/python benchmarks/flake_runs.py --lab 3 --runs 5
    .venv/bin/python benchmarks/flake_runs.py --lab 4 --runs 10 --only manifests.valid route.split
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.grading import grade  # noqa: E402
from harness.labs import lab  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", type=int, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backend", default="sim")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    the_lab = lab(args.lab)
    passes: Counter[str] = Counter()
    full = 0
    for i in range(1, args.runs + 1):
        t = time.monotonic()
        r = grade(the_lab, the_lab.solution, backend=args.backend, log=lambda line: None, only=args.only)
        full += r.passed
        for c in r.checks:
            passes[c.id] += c.passed
        msgs = {c.id: c.message for c in r.checks}
        print(f"run {i}: {r.score}/{r.max_score} in {time.monotonic() - t:.0f}s; failed: {r.failed_ids() or 'none'}",
              flush=True)
        for key in ("hpa.scales-up", "hpa.scales-down", "rollout.zero-downtime", "rollout.rollback", "route.split",
                    "route.progressive", "route.bad-canary-rollback"):
            if key in msgs:
                print(f"    {key}: {msgs[key]}", flush=True)
    print(f"\n{full}/{args.runs} runs scored 100%")
    for cid, n in passes.items():
        print(f"  {cid}: {n}/{args.runs}")
    return 0 if full == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
