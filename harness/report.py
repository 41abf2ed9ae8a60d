"""The grading report: one stable JSON shape, rendered as JSON, JUnit XML,
Markdown and a rich table.

Exit codes (``Report.exit_code``): 0 every check passed, 1 some failed,
2 the submission could not be graded at all (see :class:`harness.errors.GradingError`).
"""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path

EXIT_PASSED, EXIT_FAILED, EXIT_UNGRADABLE = 0, 1, 2


@dataclass
class CheckResult:
    id: str
    passed: bool
    points: int
    max_points: int
    message: str
    hint: str
    doc: str
    title: str = ""
    duration_s: float = 0.0
    details: str = ""

    def to_dict(self) -> dict:
        d = asdict(self)
        d["duration_s"] = round(self.duration_s, 2)
        return d


@dataclass
class Report:
    lab: str
    backend: str
    submission: str
    checks: list[CheckResult] = field(default_factory=list)
    duration_s: float = 0.0
    notices: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    plots: dict = field(default_factory=dict)      # name -> spec (harness/plots.py), drawn by write_all
    figures: dict = field(default_factory=dict)    # name -> PNG file name, once drawn

    @property
    def score(self) -> int:
        return sum(c.points for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.checks)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(c.passed for c in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_PASSED if self.passed else EXIT_FAILED

    def failed_ids(self) -> list[str]:
        return [c.id for c in self.checks if not c.passed]

    def to_dict(self) -> dict:
        return {"lab": self.lab, "backend": self.backend, "submission": self.submission,
                "score": self.score, "max_score": self.max_score, "passed": self.passed, "exit_code": self.exit_code,
                "duration_s": round(self.duration_s, 1), "notices": self.notices,
                "metrics": self.metrics, "figures": self.figures, "checks": [c.to_dict() for c in self.checks]}

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def to_junit(self) -> str:
        suite = ET.Element("testsuite", name=f"lab-{self.lab}", tests=str(len(self.checks)),
                           failures=str(len(self.failed_ids())), errors="0",
                           time=f"{self.duration_s:.2f}")
        props = ET.SubElement(suite, "properties")
        for k, v in (("backend", self.backend), ("submission", self.submission),
                     ("score", self.score), ("max_score", self.max_score)):
            ET.SubElement(props, "property", name=k, value=str(v))
        for c in self.checks:
            case = ET.SubElement(suite, "testcase", classname=f"lab-{self.lab}", name=c.id,
                                 time=f"{c.duration_s:.2f}")
            cprops = ET.SubElement(case, "properties")
            ET.SubElement(cprops, "property", name="points", value=f"{c.points}/{c.max_points}")
            if not c.passed:
                fail = ET.SubElement(case, "failure", message=c.message)
                fail.text = f"{c.message}\nhint: {c.hint}\ndoc: {c.doc}\n{c.details}".rstrip()
        return ET.tostring(suite, encoding="unicode")

    def to_markdown(self) -> str:
        lines = [f"# Lab {self.lab}: {self.score}/{self.max_score}"
                 f" ({'passed' if self.passed else 'not yet'})", "",
                 f"Backend: `{self.backend}` · submission: `{self.submission}` · {self.duration_s:.1f}s", ""]
        lines += [f"> {n}" for n in self.notices]
        lines += ["", "| check | points | result | hint |", "|---|---:|---|---|"]
        for c in self.checks:
            mark = "✔" if c.passed else "✖"
            hint = "" if c.passed else f"{c.hint} ([doc]({c.doc}))"
            msg = c.message.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{c.id}` | {c.points}/{c.max_points} | {mark} {msg} | {hint} |")
        for name, file in self.figures.items():
            lines += ["", f"![{name}]({file})"]
        return "\n".join(lines) + "\n"

    def write_all(self, json_path: Path) -> list[Path]:
        """Write JSON at ``json_path`` plus ``.xml`` (JUnit) and ``.md`` next to it."""
        written = []
        for name, spec in self.plots.items():
            from .plots import draw

            png = json_path.with_name(f"{json_path.stem}.{name}.png")
            try:
                written.append(draw(spec, png))
                self.figures[name] = png.name
            except Exception as exc:  # noqa: BLE001 - a plot never costs the report
                self.notices.append(f"the {name} plot could not be drawn: {type(exc).__name__}: {exc}")
        self.write_json(json_path)
        junit = json_path.with_suffix(".xml")
        md = json_path.with_suffix(".md")
        junit.write_text(self.to_junit())
        md.write_text(self.to_markdown())
        return [json_path, junit, md, *written]

    def rich_table(self):
        from rich.table import Table

        t = Table(title=f"Lab {self.lab} on {self.backend}: {self.score}/{self.max_score}",
                  show_lines=False, expand=False)
        t.add_column("check")
        t.add_column("pts", justify="right")
        t.add_column("result")
        for c in self.checks:
            result = f"[green]✔[/] {c.message}" if c.passed else (
                f"[red]✖[/] {c.message}\n[yellow]hint:[/] {c.hint}\n[dim]{c.doc}[/]")
            t.add_row(c.id, f"{c.points}/{c.max_points}", result)
        return t
