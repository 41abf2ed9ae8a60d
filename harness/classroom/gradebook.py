"""The class's files: ``gradebook.csv``, feedback and JUnit per student, ``summary.md``.

Everything is rebuilt from the outcomes (and each grading's JSON report) on every
run, rows sorted by student, so two runs over the same class write the same
gradebook apart from the ``duration_s`` column.

Pass rates count graded submissions only: an ungradable or timed-out one has
no check results (the summary gives their number separately).
"""
from __future__ import annotations

import csv
import statistics
import xml.etree.ElementTree as ET
from dataclasses import fields
from pathlib import Path

from ..report import CheckResult, Report
from .runner import GRADED, Outcome

_CHECK_FIELDS = {f.name for f in fields(CheckResult)}


def report_from_dict(d: dict) -> Report:
    """A :class:`Report` back from its JSON, to reuse its JUnit and Markdown writers."""
    checks = [CheckResult(**{k: v for k, v in c.items() if k in _CHECK_FIELDS}) for c in d.get("checks", [])]
    return Report(lab=d.get("lab", ""), backend=d.get("backend", ""), submission=d.get("submission", ""),
                  checks=checks, duration_s=float(d.get("duration_s", 0.0)), notices=list(d.get("notices", [])),
                  metrics=dict(d.get("metrics", {})))


def ungraded_markdown(lab: str, o: Outcome) -> str:
    what = ("it did not finish within the time limit: look for a pod that never becomes Ready or a server "
            "that never answers, and grade it yourself with `make lab-N` to see where it waits"
            if o.status == "timeout" else o.status.removeprefix("ungradable: "))
    return f"# Lab {lab}: not graded\n\nYour submission could not be graded: {what}\n"


def ungraded_junit(lab: str, o: Outcome) -> str:
    suite = ET.Element("testsuite", name=f"lab-{lab}", tests="1", failures="0", errors="1",
                       time=f"{o.duration_s:.2f}")
    case = ET.SubElement(suite, "testcase", classname=f"lab-{lab}", name="grading", time=f"{o.duration_s:.2f}")
    ET.SubElement(case, "error", message=o.status).text = o.status
    return ET.tostring(suite, encoding="unicode")


def check_columns(outcomes: list[Outcome], known: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """(check id, max points) in the lab's order; ids only seen in reports are appended."""
    cols = list(known)
    ids = {c for c, _ in cols}
    for o in outcomes:
        for c in (o.report or {}).get("checks", []):
            if c["id"] not in ids:
                cols.append((c["id"], c["max_points"]))
                ids.add(c["id"])
    return cols


def rows(outcomes: list[Outcome], cols: list[tuple[str, int]]) -> list[dict]:
    max_score = sum(p for _, p in cols)
    out = []
    for o in sorted(outcomes, key=lambda o: o.student):
        points = {c["id"]: c["points"] for c in (o.report or {}).get("checks", [])}
        row = {"student": o.student, "score": (o.report or {}).get("score", 0),
               "max": (o.report or {}).get("max_score", max_score)}
        row.update({cid: points.get(cid, "") for cid, _ in cols})
        row.update({"duration_s": f"{o.duration_s:.1f}", "status": o.status})
        out.append(row)
    return out


def write_csv(path: Path, table: list[dict], cols: list[tuple[str, int]]) -> None:
    header = ["student", "score", "max", *[c for c, _ in cols], "duration_s", "status"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=header)
        w.writeheader()
        w.writerows(table)


def pass_rates(outcomes: list[Outcome], cols: list[tuple[str, int]]) -> list[tuple[str, int, int, int]]:
    """(check id, max points, passed, graded) per check, in column order."""
    graded = [o for o in outcomes if o.status == GRADED and o.report]
    res = []
    for cid, pts in cols:
        results = [c for o in graded for c in o.report["checks"] if c["id"] == cid]
        res.append((cid, pts, sum(1 for c in results if c["passed"]), len(results)))
    return res


def summary_markdown(lab: str, outcomes: list[Outcome], cols: list[tuple[str, int]],
                     wall_s: float | None = None) -> str:
    graded = [o for o in outcomes if o.status == GRADED]
    scores = [o.report["score"] for o in graded if o.report]
    max_score = sum(p for _, p in cols)
    timeouts = sum(1 for o in outcomes if o.status == "timeout")
    lines = [f"# Lab {lab}: class summary", "",
             f"{len(outcomes)} submissions: {len(graded)} graded, "
             f"{len(outcomes) - len(graded) - timeouts} ungradable, {timeouts} timed out.", ""]
    if scores:
        lines += [f"Scores (graded): mean {statistics.mean(scores):.1f}, median {statistics.median(scores):g}, "
                  f"min {min(scores)}, max {max(scores)} of {max_score}; "
                  f"{sum(1 for s in scores if s == max_score)} at full marks.", ""]
    if wall_s is not None:
        lines += [f"This run: {wall_s:.1f}s wall time.", ""]
    rates = pass_rates(outcomes, cols)
    lines += ["## Pass rate per check (what to re-teach first)", "",
              "| check | points | passed | pass rate |", "|---|---:|---:|---:|"]
    for cid, pts, passed, n in sorted(rates, key=lambda r: (r[2] / r[3] if r[3] else 1.0, r[0])):
        rate = f"{100 * passed / n:.0f} %" if n else "–"
        lines.append(f"| `{cid}` | {pts} | {passed}/{n} | {rate} |")
    others = [o for o in sorted(outcomes, key=lambda o: o.student) if o.status != GRADED]
    if others:
        lines += ["", "## Not graded", "", "| student | status |", "|---|---|"]
        lines += ["| {} | {} |".format(o.student, o.status.replace("|", "\\|")) for o in others]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, lab: str, outcomes: list[Outcome], known: list[tuple[str, int]],
          wall_s: float | None = None, plots: bool = True) -> dict[str, Path]:
    """Write every class file into ``out_dir``; returns the main paths by name."""
    students = out_dir / "students"
    students.mkdir(parents=True, exist_ok=True)
    cols = check_columns(outcomes, known)
    for o in outcomes:
        md, xml = students / f"{o.student}.md", students / f"{o.student}.xml"
        if o.status == GRADED and o.report:
            rep = report_from_dict(o.report)
            md.write_text(rep.to_markdown())
            xml.write_text(rep.to_junit())
        else:
            md.write_text(ungraded_markdown(lab, o))
            xml.write_text(ungraded_junit(lab, o))
    paths = {"gradebook": out_dir / "gradebook.csv", "summary": out_dir / "summary.md"}
    write_csv(paths["gradebook"], rows(outcomes, cols), cols)
    paths["summary"].write_text(summary_markdown(lab, outcomes, cols, wall_s))
    if plots:
        from .plots import pass_rate_chart, score_histogram
        paths["pass_rates"] = pass_rate_chart(out_dir / "pass_rates.png", lab, pass_rates(outcomes, cols))
        scores = [o.report["score"] for o in outcomes if o.status == GRADED and o.report]
        paths["scores"] = score_histogram(out_dir / "scores.png", lab, scores, sum(p for _, p in cols))
    return paths
