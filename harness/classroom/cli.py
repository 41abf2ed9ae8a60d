"""``python -m harness.classroom --lab N --submissions DIR|CSV [--jobs 2] [--backend B] [--force]``.

Exit codes: 0 the class was graded (every submission has a row, whatever its
score or status), 2 the class could not be graded (no roster, bad arguments),
130 interrupted (every grading stopped; what finished is kept for the next run).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ..errors import GradingError
from ..labs import LABS, REPO_ROOT, lab as get_lab
from . import gradebook, roster, state
from .fingerprint import content_hash
from .runner import GRADED, Job, Outcome, Runner

# Per-submission limits: a full grading of the reference solution takes a few
# minutes on a 2-core laptop; a grading over this is a hang, reported as `timeout`.
DEFAULT_TIMEOUT_S = {1: 900, 2: 600, 3: 900, 4: 900, 5: 900}


def out_dir_for(lab_number: int) -> Path:
    return REPO_ROOT / "reports" / f"class-{lab_number}"


def known_checks(lab_number: int) -> list[tuple[str, int]]:
    from ..grading import checks_for
    return [(c.id, c.points) for c in checks_for(get_lab(lab_number))]


def plan(students: list[roster.Student], lab_number: int, backend: str, out: Path, previous: dict[str, dict],
         force: bool) -> tuple[list[Job], list[Outcome]]:
    """Split the roster into gradings to run and outcomes reused from an earlier run."""
    lab = get_lab(lab_number)
    jobs, reused = [], []
    for s in students:
        fp = content_hash(lab, s.path)
        report = out / "students" / f"{s.name}.json"
        prev = previous.get(s.name)
        if (not force and prev and prev.get("fingerprint") == fp and prev.get("backend") == backend
                and (prev.get("status") != GRADED or report.is_file())):
            rep = None
            if prev["status"] == GRADED:
                import json
                rep = json.loads(report.read_text())
            reused.append(Outcome(s.name, prev["status"], prev.get("exit_code"), float(prev.get("duration_s", 0)),
                                  fp, rep, skipped=True))
        else:
            jobs.append(Job(s, lab_number, backend, report, out / "students" / f"{s.name}.log", fp))
    return jobs, reused


def line_for(o: Outcome) -> str:
    if o.status == GRADED and o.report:
        mark = "[green]✔[/]" if o.report.get("passed") else "[yellow]●[/]"
        what = f"{o.report['score']}/{o.report['max_score']}"
    else:
        mark, what = "[red]✖[/]", o.status
    return f"{mark} {o.student}: {what} ({'unchanged, skipped' if o.skipped else f'{o.duration_s:.1f}s'})"


def grade_class(lab_number: int, submissions: str, *, jobs: int = 2, backend: str = "auto", force: bool = False,
                timeout_s: float | None = None, out: Path | None = None, console: Console | None = None,
                runner: Runner | None = None, plots: bool = True) -> tuple[list[Outcome], dict[str, Path], float]:
    """Grade a class; returns the outcomes (roster order), the class files and the wall time."""
    console = console or Console(stderr=True, highlight=False)
    out = Path(out or out_dir_for(lab_number)).resolve()
    students = roster.find(submissions)
    state_path = out / "state.json"
    previous = state.load(state_path)
    start = time.monotonic()
    jobs_to_run, reused = plan(students, lab_number, backend, out, previous, force)
    runner = runner or Runner(timeout_s=timeout_s or DEFAULT_TIMEOUT_S.get(lab_number, 900), jobs=jobs)
    current = {s.name for s in students}
    saved = {k: v for k, v in previous.items() if k in current}
    for o in reused:
        console.print(line_for(o), highlight=False)
    with Progress(SpinnerColumn(), TextColumn("[bold]Lab {task.fields[lab]}[/] {task.description}"), BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("", total=len(students), completed=len(reused), lab=lab_number)
        running: set[str] = set()

        def describe() -> None:
            progress.update(task, description="grading " + ", ".join(sorted(running)) if running else "")

        def on_start(job: Job) -> None:
            running.add(job.student.name)
            describe()

        def on_done(job: Job, o: Outcome) -> None:
            running.discard(job.student.name)
            saved[o.student] = {**o.to_state(), "backend": backend}
            state.save(state_path, saved)
            progress.console.print(line_for(o), highlight=False)
            progress.advance(task)
            describe()

        outcomes = reused + runner.run(jobs_to_run, on_start, on_done)
    wall = time.monotonic() - start
    order = {s.name: i for i, s in enumerate(students)}
    outcomes.sort(key=lambda o: order[o.student])
    paths = gradebook.write(out, get_lab(lab_number).slug, outcomes, known_checks(lab_number), wall, plots=plots)
    return outcomes, paths, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.classroom", description="Grade a whole class.")
    ap.add_argument("--lab", required=True, type=int, choices=sorted(LABS))
    ap.add_argument("--submissions", required=True, help="a folder of student folders / fork roots, or a CSV of student,path")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("JOBS") or 2), help="gradings at a time (default 2)")
    ap.add_argument("--backend", default=os.environ.get("BACKEND", "auto"))
    ap.add_argument("--force", action="store_true", help="re-grade submissions whose content is unchanged")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per submission (default: per lab)")
    ap.add_argument("--out", type=Path, default=None, help="report folder (default reports/class-N)")
    args = ap.parse_args(argv)
    console = Console(stderr=True, highlight=False)
    if args.jobs < 1:
        console.print("[red]cannot grade the class:[/] --jobs must be at least 1")
        return 2
    try:
        outcomes, paths, wall = grade_class(args.lab, args.submissions, jobs=args.jobs, backend=args.backend,
                                            force=args.force, timeout_s=args.timeout, out=args.out, console=console)
    except GradingError as exc:
        console.print(f"[red]cannot grade the class:[/] {exc}", highlight=False)
        return 2
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: every grading was stopped and its containers removed; "
                      "run the same command again to resume")
        return 130
    ran = sum(1 for o in outcomes if not o.skipped)
    console.print(f"{len(outcomes)} submissions ({ran} run now, {len(outcomes) - ran} unchanged and skipped) "
                  f"in {wall:.1f}s", highlight=False)
    for name, p in paths.items():
        console.print(f"{name}: {p}", highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
