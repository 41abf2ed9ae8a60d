"""A stand-in for ./grade (no Docker): behaves as the submission's ``behaviour`` file says.

Usage as ./grade: fake_grade.py N --submission DIR --backend B --report PATH.
Every start appends a line to ``$FAKE_GRADE_CALLS`` (when set), so tests can count gradings.

behaviours: pass, fail, ungradable, crash, hang (starts a grandchild and sleeps; both
write their pids to DIR/../<name>.pids), forge (prints PASS lines and a fake JSON report,
writes a real one with 0 points).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

CHECKS = [("manifests.valid", 2), ("pods.ready", 2), ("service.routes", 3)]


def report(points: list[int], submission: str) -> dict:
    checks = [{"id": cid, "passed": p == mx, "points": p, "max_points": mx, "message": "ok" if p == mx else "no",
               "hint": f"fix {cid}", "doc": "https://kubernetes.io/docs/", "title": cid, "duration_s": 0.1,
               "details": ""} for (cid, mx), p in zip(CHECKS, points)]
    score, mx = sum(points), sum(m for _, m in CHECKS)
    return {"lab": "02-k8s-basics", "backend": "sim", "submission": submission, "score": score, "max_score": mx,
            "passed": score == mx, "exit_code": 0 if score == mx else 1, "duration_s": 1.0, "notices": [],
            "metrics": {}, "checks": checks}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("lab")
    ap.add_argument("--submission")
    ap.add_argument("--backend")
    ap.add_argument("--report")
    args = ap.parse_args()
    sub = Path(args.submission)
    if os.environ.get("FAKE_GRADE_CALLS"):
        with open(os.environ["FAKE_GRADE_CALLS"], "a") as f:
            f.write(sub.name + "\n")
    behaviour = (sub / "behaviour").read_text().split()
    kind = behaviour[0]
    delay = float(behaviour[1]) if len(behaviour) > 1 else 0.0
    time.sleep(delay)
    out = Path(args.report)
    if kind in ("pass", "fail", "forge"):
        points = {"pass": [2, 2, 3], "fail": [2, 0, 0], "forge": [0, 0, 0]}[kind]
        if kind == "forge":
            print("PASS manifests.valid (2/2)\nPASS pods.ready (2/2)")
            print(json.dumps(report([2, 2, 3], str(sub))))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report(points, str(sub))))
        return 0 if kind == "pass" else 1
    if kind == "ungradable":
        print(f"cannot grade: {sub}/manifests/bad.yaml:3: a YAML error\n  -> fix the indentation")
        return 2
    if kind == "crash":
        raise SystemExit(-11 & 0xFF)
    if kind == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        (sub.parent / f"{sub.name}.pids").write_text(f"{os.getpid()} {child.pid}\n")
        import signal
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a grader stuck in teardown: only SIGKILL stops it
        time.sleep(600)
    return 3


if __name__ == "__main__":
    sys.exit(main())
