#!/usr/bin/env python3
"""Grade a lab's reference solution several times in a row and count passes,
per check: the evidence that sampled checks (HPA timing, traffic split) do
not flake.

    .venv/bin/python benchmarks/flake_runs.py --lab 3 --runs 5
    .venv/bin/python benchmarks/flake_runs.py --lab 4 --runs 10 --only manifests.valid route.split
    .venv/bin/python benchmarks/flake_runs.py --lab 2 --runs 10 --variant startup-10x30-docs --only probes

--variant NAME grades a correct variant of the solution (tests/calibration/mutants.py,
LAB0N_VARIANTS) instead of the solution itself; --only takes check ids, or a
prefix ending in no dot ("probes" selects every probes.* check and what they
require: manifests.valid and pods.ready).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.grading import checks_for, grade  # noqa: E402
from harness.labs import lab  # noqa: E402


def variant_copy(the_lab, name: str, tmp: Path) -> Path:
    """A copy of the lab's solution with one named variant applied."""
    from tests.calibration import mutants

    variants = {v.name: v for v in getattr(mutants, f"LAB0{the_lab.number}_VARIANTS", [])}
    if name not in variants:
        raise SystemExit(f"no variant {name!r} for lab {the_lab.number}; known: {', '.join(variants) or 'none'}")
    dest = tmp / the_lab.slug
    shutil.copytree(the_lab.solution, dest)
    variants[name].patch(dest)
    return dest


def expand_only(the_lab, only: list[str] | None) -> list[str] | None:
    """Check ids; a bare prefix ("probes") selects its checks; each brings what it requires."""
    if not only:
        return only
    checks = {c.id: c for c in checks_for(the_lab)}
    picked: list[str] = []

    def add(cid: str) -> None:
        for r in checks[cid].requires if cid in checks else ():
            add(r)
        if cid not in picked:
            picked.append(cid)

    for o in only:
        for cid in ([o] if o in checks or "." in o else [c for c in checks if c.startswith(o + ".")]):
            add(cid)
    return [c for c in checks if c in picked] + [c for c in picked if c not in checks]

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lab", type=int, required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backend", default="sim")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--variant", default=None, help="a named correct variant of the solution")
    args = ap.parse_args()
    the_lab = lab(args.lab)
    tmp = Path(tempfile.mkdtemp(prefix="flake-"))
    submission = variant_copy(the_lab, args.variant, tmp) if args.variant else the_lab.solution
    only = expand_only(the_lab, args.only)
    print(f"grading {args.variant or 'the solution'} of lab {args.lab} on {args.backend}"
          + (f", checks: {' '.join(only)}" if only else ""), flush=True)
    passes: Counter[str] = Counter()
    full = 0
    for i in range(1, args.runs + 1):
        t = time.monotonic()
        r = grade(the_lab, submission, backend=args.backend, log=lambda line: None, only=only)
        full += r.passed
        for c in r.checks:
            passes[c.id] += c.passed
        msgs = {c.id: c.message for c in r.checks}
        print(f"run {i}: {r.score}/{r.max_score} in {time.monotonic() - t:.0f}s; failed: {r.failed_ids() or 'none'}",
              flush=True)
        for key in ("probes.startup", "probes.liveness-heals", "hpa.scales-up", "hpa.scales-down", "rollout.zero-downtime", "rollout.rollback", "route.split",
                    "route.progressive", "route.bad-canary-rollback"):
            if key in msgs:
                print(f"    {key}: {msgs[key]}", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{full}/{args.runs} runs scored 100%")
    for cid, n in passes.items():
        print(f"  {cid}: {n}/{args.runs}")
    return 0 if full == args.runs else 1


if __name__ == "__main__":
    raise SystemExit(main())
