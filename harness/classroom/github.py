"""GitHub Classroom points from a grading's JSON report.

``python -m harness.classroom.github REPORT.json`` appends ``result=<base64 JSON>``
to ``$GITHUB_OUTPUT`` (or prints it). That is the shape GitHub Classroom's
grading reporter (classroom-resources/autograding-grading-reporter) reads from
``<RUNNER>_RESULTS``: ``{"version": 1, "status": "pass"|"fail"|"error",
"max_score": N, "tests": [{"name", "status", "score", "message"}, ...]}``, one
test per check, scored with the check's points (not pass/fail by exit code).

A missing or unreadable report (the lab could not be graded) becomes one test
with status ``error``, 0 points of the lab's maximum, and the grader's message.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path


def results(report: dict | None, *, max_score: int = 0, reason: str = "") -> dict:
    if not report:
        return {"version": 1, "status": "error", "max_score": max_score,
                "tests": [{"name": "grading", "status": "error", "score": 0, "max_score": max_score,
                           "message": reason or "the lab could not be graded: see the grading step's log"}]}
    tests = [{"name": f"{c['id']} ({c['max_points']} pts)", "status": "pass" if c["passed"] else "fail",
              "score": c["points"], "max_score": c["max_points"],
              "message": c["message"] if c["passed"] else f"{c['message']} - hint: {c['hint']} ({c['doc']})"}
             for c in report.get("checks", [])]
    return {"version": 1, "status": "pass" if report.get("passed") else "fail",
            "max_score": report.get("max_score", 0), "tests": tests}


def encode(res: dict) -> str:
    return base64.b64encode(json.dumps(res).encode()).decode()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.classroom.github")
    ap.add_argument("report", type=Path)
    ap.add_argument("--lab", type=int, default=None, help="the lab's number, for its maximum when there is no report")
    args = ap.parse_args(argv)
    try:
        report = json.loads(args.report.read_text())
        reason = ""
    except (OSError, ValueError) as exc:
        report, reason = None, f"no grading report at {args.report} ({type(exc).__name__}): the lab could not be graded"
    max_score = 0
    if report is None and args.lab:
        from ..grading import checks_for
        from ..labs import lab
        max_score = sum(c.points for c in checks_for(lab(args.lab)))
    res = results(report, max_score=max_score, reason=reason)
    line = f"result={encode(res)}\n"
    out = os.environ.get("GITHUB_OUTPUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line)
    else:
        sys.stdout.write(line)
    total = sum(t["score"] for t in res["tests"])
    print(f"points: {total}/{res['max_score']} ({res['status']})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
