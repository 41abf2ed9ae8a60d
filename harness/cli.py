"""What the Makefile calls.

    python -m harness grade --lab 1 [--submission DIR] [--backend B] [--report PATH]
    python -m harness grade --lab 1 --solution
    python -m harness doctor

Exit codes: 0 all checks passed, 1 some failed, 2 could not grade.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from .errors import GradingError, write_traceback
from .labs import LABS, lab as get_lab
from .report import EXIT_UNGRADABLE, CheckResult
from .waiting import DEFAULT_TIMEOUTS, is_progress

console = Console(stderr=False, highlight=False)


def _backend_for(lab_number: int, asked: str) -> str:
    lab = get_lab(lab_number)
    if not lab.needs_cluster:
        if asked not in ("auto", "docker", "", "sim", "kind", "kubeconfig"):
            raise GradingError(f"unknown backend {asked!r}")
        return lab.context   # Docker- and file-graded labs ignore the cluster backend
    if asked not in ("auto", "sim", "kind", "kubeconfig"):
        raise GradingError(f"unknown backend {asked!r}", fix="use BACKEND=auto, sim, kind or kubeconfig")
    return asked


def cmd_grade(args: argparse.Namespace) -> int:
    from .grading import grade

    lab = get_lab(args.lab)
    if not lab.available and os.environ.get("HARNESS_PREVIEW_LABS") != "1":
        console.print(f"[yellow]Lab {lab.slug} ({lab.title}) is not available yet.[/] "
                      "See README.md for the labs you can grade today "
                      "(HARNESS_PREVIEW_LABS=1 grades a lab in preview).")
        return EXIT_UNGRADABLE
    submission = lab.solution if args.solution else args.submission
    backend = _backend_for(lab.number, args.backend)
    timeouts = DEFAULT_TIMEOUTS.scaled(float(os.environ.get("HARNESS_TIMEOUT_SCALE", "1")))
    verbose = args.verbose

    def log(line: str) -> None:
        if line.startswith("Step ") or line.startswith(" ---> "):
            line = "build | " + line          # the build log, labelled; shown once, as it streams
        if verbose or line.startswith("build | Step ") or "NOTICE" in line or "error" in line.lower() or is_progress(line):
            console.print(line, style=None if verbose else "dim", markup=False, highlight=False, soft_wrap=True)

    def on_result(r: CheckResult) -> None:
        mark = "[green]✔[/]" if r.passed else "[red]✖[/]"
        console.print(f"{mark} {r.id} ({r.points}/{r.max_points}) {r.message}", highlight=False)

    what = "the reference solution" if args.solution else (submission or "labs/" + lab.slug)
    console.rule(f"Lab {lab.slug}: grading {what}" + ("" if backend == "auto" else f" on {backend}"))
    with console.status("grading...", spinner="dots"):
        report = grade(lab, submission, backend=backend, timeouts=timeouts, log=log, on_result=on_result)
    console.print(report.rich_table())
    for c in report.checks:                  # links in full: a narrow table cuts them
        if not c.passed and c.doc:
            console.print(f"  {c.id}: {c.doc}", highlight=False, soft_wrap=True)
    console.print(f"[bold]{report.score}/{report.max_score}[/] on {report.backend} in {report.duration_s:.1f}s")
    if args.report:
        for p in report.write_all(Path(args.report)):
            console.print(f"report: {p}")
    return report.exit_code


def _cluster_reachable() -> tuple[bool, str]:
    """Whether kubectl's current context answers (not only whether kubectl is installed)."""
    import subprocess

    if not hasattr(_cluster_reachable, "cached"):
        try:
            ctx = subprocess.run(["kubectl", "config", "current-context"], capture_output=True, text=True, timeout=10)
            name = ctx.stdout.strip()
            if ctx.returncode != 0 or not name:
                _cluster_reachable.cached = (False, "no current context → `make cluster-up` (kind) or "
                                                    "`make cluster-up BACKEND=sim` (offline)")
            else:
                v = subprocess.run(["kubectl", "get", "--raw", "/version", "--request-timeout=5s"],
                                   capture_output=True, text=True, timeout=20)
                _cluster_reachable.cached = (
                    (True, f"context {name} answers") if v.returncode == 0 else
                    (False, f"context {name} does not answer → start it (`make cluster-up`) or pick another "
                            "with `kubectl config use-context`"))
        except (OSError, subprocess.TimeoutExpired) as exc:
            _cluster_reachable.cached = (False, f"kubectl failed: {exc}")
    return _cluster_reachable.cached


def cmd_doctor(args: argparse.Namespace) -> int:
    """Say what is installed and how to get what is missing."""
    import shutil

    from . import images

    ok = True
    for tool, how in (("docker", "https://docs.docker.com/engine/install/ (Debian/Ubuntu: sudo apt-get install docker.io)"),
                      ("hey", "sudo apt-get install hey, or: go install github.com/rakyll/hey@latest"),
                      ("prometheus", "Lab 05 on sim: sudo apt-get install prometheus (https://prometheus.io/download/)"),
                      ("kind", "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"),
                      ("kubectl", "https://kubernetes.io/docs/tasks/tools/"),
                      # optional: Lab 04 on a real GPU (docs/real-gpu.md)
                      ("nvidia-smi", "only for a real GPU: the NVIDIA driver (docs/real-gpu.md)"),
                      ("nvkind", "only for a real GPU: go install github.com/NVIDIA/nvkind/cmd/nvkind@latest")):
        path = shutil.which(tool)
        console.print(f"{'[green]✔[/]' if path else '[yellow]–[/]'} {tool}: {path or 'missing → ' + how}")
    if shutil.which("kubectl"):
        console.print(f"{'[green]✔[/]' if _cluster_reachable()[0] else '[yellow]–[/]'} kubectl cluster: {_cluster_reachable()[1]}")
    daemon = images.available()
    ok &= daemon
    console.print(f"{'[green]✔[/]' if daemon else '[red]✖[/]'} Docker daemon: "
                  f"{'reachable' if daemon else 'not reachable → start Docker (sudo systemctl start docker)'}")
    return 0 if ok else EXIT_UNGRADABLE


def cmd_labs(args: argparse.Namespace) -> int:
    """List the labs the registry found (the Makefile reads this)."""
    for lab in LABS.values():
        if args.available and not lab.available:
            continue
        if args.numbers:
            print(lab.number)
        else:
            print(f"  make lab-{lab.number:<3} {lab.slug:<22} {lab.title}"
                  + ("" if lab.available else "  (not available yet)"))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="harness", description="Grade the MLOps inference labs.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("grade", help="grade one lab")
    g.add_argument("--lab", required=True, type=int, choices=sorted(LABS))
    g.add_argument("--submission", default=None, help="lab folder or fork root (default: labs/0N-*)")
    g.add_argument("--solution", action="store_true", help="grade the reference solution")
    g.add_argument("--backend", default=os.environ.get("BACKEND", "auto"))
    g.add_argument("--report", default=None, help="write JSON (+ .xml JUnit, + .md) here")
    g.add_argument("-v", "--verbose", action="store_true", help="stream every build log line")
    g.set_defaults(fn=cmd_grade)
    ls = sub.add_parser("labs", help="list the labs")
    ls.add_argument("--numbers", action="store_true", help="only their numbers, one a line")
    ls.add_argument("--available", action="store_true", help="only those that can be graded")
    ls.set_defaults(fn=cmd_labs)
    d = sub.add_parser("doctor", help="check the tools the labs need")
    d.set_defaults(fn=cmd_doctor)
    args = ap.parse_args(argv)
    code = run_guarded(args.fn, args)
    if os.environ.get("HARNESS_EXIT_LINE") == "1":   # make: one clear last line instead of make's "Error 1"
        console.print(EXIT_LINES.get(code, f"exit {code}"), highlight=False)
    return code


EXIT_LINES = {0: "result: every check passed (exit 0)",
              1: "result: some checks failed (exit 1): see the hints above",
              2: "result: could not grade (exit 2): see the message above",
              130: "result: interrupted (exit 130)"}


def run_guarded(fn, args) -> int:
    """Run a command; whatever goes wrong becomes exit 2 with a one-line cause,
    never a traceback (that goes to a log file whose path is printed)."""
    from .cluster.base import BackendUnavailable
    from .errors import CommandError

    try:
        return fn(args)
    except GradingError as exc:
        console.print(f"[red]cannot grade:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_UNGRADABLE
    except KeyboardInterrupt:
        console.print("[red]interrupted[/]: containers and images of this run were removed")
        return 130
    except (BackendUnavailable, CommandError) as exc:
        console.print(f"[red]cannot grade: the cluster backend failed:[/] {exc}", highlight=False, soft_wrap=True)
        return EXIT_UNGRADABLE
    except Exception as exc:  # noqa: BLE001 - a grader bug: one line here, the traceback in a file
        log_path = write_traceback(exc)
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        console.print(f"[red]cannot grade: grader error:[/] {type(exc).__name__}: {first}\n"
                      f"  -> the traceback is in {log_path}; please report it with that file",
                      highlight=False, soft_wrap=True)
        return EXIT_UNGRADABLE




if __name__ == "__main__":
    sys.exit(main())
