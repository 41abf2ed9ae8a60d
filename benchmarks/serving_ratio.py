#!/usr/bin/env python3
"""Serving throughput of the reference servers against the model-only limit.

    .venv/bin/python benchmarks/serving_ratio.py [--duration 10] [--concurrency 50] [--servers flask bentoml]

In one run, on this machine:
1. the model-only limit: CPU cores / the in-process time of one single-sentence
   ``predict_proba`` (median of 5 rounds of 500 calls, same model file);
2. each reference server started on 127.0.0.1 from this venv, loaded with
   ``hey -z <duration> -c <concurrency>`` POSTing one sentence to /predict;
   only 2xx answers count (hey's own Requests/sec counts failures too);
3. a table of ok req/s, p50/p99 latency, errors and the ratio to the limit.

The goal for the reference servers is a ratio of at least 0.5 with no errors.
hey runs on the same cores as the server, as a learner's laptop would.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from contract import servers  # noqa: E402  (the same launcher as the contract tests)

from harness.load import run_load  # noqa: E402

SENTENCE = "I love this movie, the actors were great"


def model_only_limit(version: str = "v1") -> tuple[float, float]:
    import joblib

    pipe = joblib.load(ROOT / "models" / f"sentiment-{version}.joblib")
    for _ in range(200):
        pipe.predict_proba([SENTENCE])
    rounds = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(500):
            pipe.predict_proba([SENTENCE])
        rounds.append((time.perf_counter() - start) / 500)
    single = statistics.median(rounds)
    cores = len(os.sched_getaffinity(0))
    return single, cores / single


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--servers", nargs="+", default=["flask", "bentoml"])
    args = ap.parse_args()

    single, limit = model_only_limit()
    print(f"model-only: single predict {single * 1000:.3f} ms, "
          f"limit {limit:.0f} req/s on {len(os.sched_getaffinity(0))} cores")
    rows = []
    for name in args.servers:
        s = servers.start(f"{name}-host", {"WEB_CONCURRENCY": str(len(os.sched_getaffinity(0)))})
        try:
            s.wait_ready(timeout=120)
            run_load(s.base_url + "/predict", duration_s=2, concurrency=args.concurrency, method="POST",
                     body=f'{{"text": "{SENTENCE}"}}')                        # warm-up
            r = run_load(s.base_url + "/predict", duration_s=args.duration, concurrency=args.concurrency,
                         method="POST", body=f'{{"text": "{SENTENCE}"}}')
            rows.append((name, r))
        finally:
            s.stop()
    print(f"\n{'server':<10}{'ok req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'failed':>8}{'ratio':>8}  tool")
    for name, r in rows:
        print(f"{name:<10}{r.ok_rps:>10.0f}{(r.p50_ms or 0):>9.1f}{(r.p99_ms or 0):>9.1f}"
              f"{r.failed:>8}{r.ok_rps / limit:>8.2f}  {r.tool}")
    print("\nratio = ok req/s / model-only limit; goal >= 0.5 with 0 failed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
