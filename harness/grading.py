"""Run a lab's checks against a submission and build the report.

Data path: submission (staged copy) -> lab context (observations) -> checks
-> Report. A check that raises anything other than CheckFailed is recorded as
a failed check with a "grader error" message; grading never stops half way
and teardown always runs.
"""
from __future__ import annotations

import contextlib
import importlib
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

from .checks.registry import Check, CheckFailed, Partial, default_registry
from .errors import GradingError, ScenarioFailed, write_traceback
from .labs import Lab
from .report import CheckResult, Report
from .submission import locate, stage
from .waiting import DEFAULT_TIMEOUTS, Timeouts

def checks_for(lab: Lab) -> list[Check]:
    """The checks the lab's module points at (``Lab.checks``), in report order."""
    if not lab.checks:
        raise GradingError(f"lab {lab.slug} is not available yet",
                           fix="see the lab table in README.md for what can be graded today")
    importlib.import_module(lab.checks)
    return default_registry().for_lab(lab.slug)


def run_check(c: Check, ctx: object, results: dict[str, CheckResult]) -> CheckResult:
    start = time.monotonic()
    # a Partial (a warning with some points) does not block what depends on it
    blocked = [r for r in c.requires if r in results and not results[r].passed and results[r].points == 0]
    if blocked:
        res = CheckResult(c.id, False, 0, c.points, f"not run: {blocked[0]} did not pass", c.hint, c.doc, c.title)
        results[c.id] = res
        return res
    try:
        out = c.fn(ctx)
        if isinstance(out, Partial):
            res = CheckResult(c.id, out.points >= c.points, min(out.points, c.points), c.points,
                              out.message, c.hint, c.doc, c.title)
        else:
            res = CheckResult(c.id, True, c.points, c.points, str(out or "ok"), c.hint, c.doc, c.title)
    except (CheckFailed, ScenarioFailed) as exc:   # a scenario's failure is the asking check's
        res = CheckResult(c.id, False, 0, c.points, exc.message, c.hint, c.doc, c.title, details=exc.details)
    except GradingError as exc:
        res = CheckResult(c.id, False, 0, c.points, str(exc), c.hint, c.doc, c.title)
    except Exception as exc:  # noqa: BLE001 - a grader bug must not hide the other checks
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        res = CheckResult(c.id, False, 0, c.points, f"grader error: {type(exc).__name__}: {first}",
                          c.hint, c.doc, c.title, details=f"the traceback is in {write_traceback(exc)}")
    res.duration_s = time.monotonic() - start
    results[c.id] = res
    return res


def make_cluster(backend: str, lab: Lab, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> tuple[object, list[str]]:
    """The cluster backend for a grading run, and any notice to show loudly.
    Each run gets a namespace of its own (deleted by ``stop()``). The real-cluster
    backends get ``timeouts`` (HARNESS_TIMEOUT_SCALE); the sim runs on its own clock."""
    import uuid

    from .cluster.detect import choose_backend

    choice = choose_backend(backend)
    namespace = f"grade-{lab.slug}-{uuid.uuid4().hex[:5]}"
    notices = [choice.notice] if choice.notice else []
    options = dict({"sim": lab.sim_options, "kind": lab.kind_options}.get(choice.name, {}))
    periods = {k: v for k, v in options.items() if isinstance(v, float) and k != "scrape_interval"}
    if periods and choice.name == "sim":
        notices.append("sim controller periods for this lab: " + ", ".join(
            f"{k.replace('_', ' ')} {v:g}s" for k, v in periods.items()) + " (upstream: 15s each)")
    if options.get("custom_metrics") and choice.name == "sim":
        notices.append(f"custom metrics from the machine's Prometheus, scraping every "
                       f"{options.get('scrape_interval', 2.0):g}s; the adapter averages 5 scrapes")
    if choice.name != "sim":
        options = {**options, "timeouts": timeouts}
    return choice.factory(namespace=namespace, **options), notices


def close_quietly(ctx, log: Callable[[str], None]) -> None:
    """Tear a lab context down; a failure is logged with where its traceback went,
    so it neither hides the report nor leaves the learner a traceback."""
    try:
        ctx.close()
    except Exception as exc:  # noqa: BLE001
        log(f"error: teardown failed: {type(exc).__name__}: {exc} (traceback: {write_traceback(exc)}); "
            "`docker ps -a --filter label=io.mlops-labs.grader` lists anything left behind")


@contextlib.contextmanager
def lab_session(lab: Lab, submission: Path | str | None, *, backend: str,
                timeouts: Timeouts = DEFAULT_TIMEOUTS,
                log: Callable[[str], None] = print,
                context: str | None = None) -> Iterator[tuple[object, str]]:
    """Stage the submission and open the lab's context (``context`` overrides the lab's:
    "files" grades from the staged files alone, for checks that need no cluster);
    always tears down."""
    source = locate(lab, submission)
    with tempfile.TemporaryDirectory(prefix=f"grade-{lab.slug}-") as tmp:
        sub = stage(lab, source, Path(tmp) / "context")
        if (context or lab.context) == "files":
            from .labs.files_lab import FilesLab

            yield FilesLab(sub, log=log), str(source)
        elif lab.context == "docker":
            from .labs.docker_lab import DockerLab

            ctx = DockerLab(sub, timeouts=timeouts, log=log)
            try:
                ctx.prepare()
                yield ctx, str(source)
            finally:
                close_quietly(ctx, log)
        else:
            from .labs.cluster_lab import ClusterLab

            cluster, notices = make_cluster(backend, lab, timeouts)
            for n in notices:       # once, at the start; the report records them too
                log(f"NOTICE: {n}")
            ctx = ClusterLab(sub, cluster, timeouts=timeouts, log=log, notices=notices)
            try:
                ctx.prepare(lab.number)
                yield ctx, str(source)
            finally:
                close_quietly(ctx, log)


def grade(lab: Lab, submission: Path | str | None = None, *, backend: str = "docker",
          timeouts: Timeouts = DEFAULT_TIMEOUTS, log: Callable[[str], None] = print,
          on_result: Callable[[CheckResult], None] | None = None,
          only: list[str] | None = None, context: str | None = None) -> Report:
    """Grade one submission. Raises GradingError (exit 2) when it cannot be graded."""
    checks = checks_for(lab)
    start = time.monotonic()
    results: dict[str, CheckResult] = {}
    with lab_session(lab, submission, backend=backend, timeouts=timeouts, log=log, context=context) as (ctx, where):
        report = Report(lab=lab.slug, backend=getattr(getattr(ctx, "cluster", None), "name", backend),
                        submission=where, notices=list(getattr(ctx, "notices", [])))
        for c in checks:
            if only and c.id not in only:
                continue
            res = run_check(c, ctx, results)
            report.checks.append(res)
            if on_result:
                on_result(res)
        seen = getattr(ctx, "observations", None)
        report.plots = dict(seen.get("plots") or []) if isinstance(seen, dict) else {}
        report.notices += [n for n in getattr(ctx, "notices", []) if n not in report.notices]
    report.duration_s = time.monotonic() - start
    return report
