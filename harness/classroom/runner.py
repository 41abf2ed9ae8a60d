"""Grade each submission in a process group of its own, a bounded number at a time.

Each grading is ``./grade N --submission DIR --backend B --report students/<name>.json``,
started with ``start_new_session=True``, so that:

* a submission that hangs is stopped at its timeout: SIGINT to its whole process
  group (the grader tears its cluster and containers down, as on Ctrl-C), then
  SIGKILL after a grace period, then a sweep of the containers whose owning process
  is gone: sim pods (:func:`harness.cluster.sim.docker_runtime.sweep_stale`) and Lab 01's
  runs (:func:`harness.images.sweep_orphaned_containers`);
* Ctrl-C reaches only this process: it stops every running grading the same way,
  cancels the queued ones, and sweeps;
* a crash of one grading is one row (``ungradable: ...``), never the end of the class.

The outcome is read from the JSON report only, never from what the grading printed.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..labs import REPO_ROOT
from .roster import Student

GRADE = REPO_ROOT / "grade"
STOP_GRACE_S = 30.0     # after SIGINT, how long a grading may take to tear down before SIGKILL
GRADED, TIMEOUT = "graded", "timeout"


@dataclass
class Outcome:
    student: str
    status: str                 # graded | ungradable: <reason> | timeout
    exit_code: int | None
    duration_s: float
    fingerprint: str = ""
    report: dict | None = None  # the grading's JSON report (graded only)
    skipped: bool = False       # reused from an earlier run (content unchanged)

    def to_state(self) -> dict:
        return {"status": self.status, "exit_code": self.exit_code,
                "duration_s": round(self.duration_s, 1), "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Job:
    student: Student
    lab: int
    backend: str
    report: Path     # where ./grade writes its JSON (+ .xml, .md)
    log: Path        # everything the grading printed
    fingerprint: str = ""


def cannot_grade_reason(log_text: str) -> str:
    """The grader's one-line cause from a log ("cannot grade: ..." and its "-> fix" line)."""
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        if "cannot grade:" in line:
            reason = line.split("cannot grade:", 1)[1].strip()
            if i + 1 < len(lines) and lines[i + 1].strip().startswith("->"):
                reason += " " + lines[i + 1].strip()
            return " ".join(reason.split())[:300]
    return ""


def outcome_of(job: Job, rc: int, duration: float, timed_out: bool) -> Outcome:
    base = dict(student=job.student.name, exit_code=rc, duration_s=duration, fingerprint=job.fingerprint)
    if timed_out:
        return Outcome(status=TIMEOUT, **base)
    try:
        log = job.log.read_text(errors="replace")
    except OSError:
        log = ""
    if rc in (0, 1):
        try:
            report = json.loads(job.report.read_text())
            return Outcome(status=GRADED, report=report, **base)
        except (OSError, ValueError):
            return Outcome(status=f"ungradable: grading exited {rc} without a JSON report (see {job.log.name})",
                           **base)
    reason = cannot_grade_reason(log) if rc == 2 else ""
    if not reason:
        reason = f"the grader exited with code {rc} (see {job.log.name})"
    return Outcome(status=f"ungradable: {reason}", **base)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop(proc: subprocess.Popen, grace: float = STOP_GRACE_S) -> None:
    """SIGINT the process group, SIGKILL it after ``grace``; reap it; kill what is left of the group."""
    pgid = proc.pid     # start_new_session: the child leads its own group
    if proc.poll() is None:
        _signal_group(pgid, signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            proc.wait()
    _signal_group(pgid, signal.SIGKILL)   # grandchildren (hey, kubectl) that outlived the grader


def sweep() -> int:
    """Remove the containers whose owning grading is gone (sim pods, Lab 01's runs); 0 without Docker."""
    try:
        from ..cluster.sim.docker_runtime import sweep_stale
        from ..images import sweep_orphaned_containers
        return sweep_stale() + sweep_orphaned_containers()
    except Exception:  # noqa: BLE001 - no Docker engine: nothing can be left
        return 0


@dataclass
class Runner:
    timeout_s: float
    jobs: int = 2
    grace_s: float = STOP_GRACE_S
    argv_for: Callable[[Job], list[str]] | None = None   # tests swap in a fake grader
    _live: dict[int, subprocess.Popen] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    def argv(self, job: Job) -> list[str]:
        if self.argv_for:
            return self.argv_for(job)
        return [str(GRADE), str(job.lab), "--submission", str(job.student.path),
                "--backend", job.backend, "--report", str(job.report)]

    def run_one(self, job: Job) -> Outcome:
        for stale in (job.report, job.report.with_suffix(".xml"), job.report.with_suffix(".md")):
            stale.unlink(missing_ok=True)
        job.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
        start = time.monotonic()
        with job.log.open("wb") as log:
            with self._lock:   # atomic with stop_all's snapshot: no grading starts after Ctrl-C
                if self._stopping.is_set():
                    return Outcome(job.student.name, "ungradable: interrupted before it started", None, 0.0,
                                   job.fingerprint)
                proc = subprocess.Popen(self.argv(job), stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True, env=env, cwd=REPO_ROOT)
                self._live[proc.pid] = proc
            timed_out = False
            try:
                rc = proc.wait(self.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                stop(proc, self.grace_s)
                rc = proc.returncode
            finally:
                with self._lock:
                    self._live.pop(proc.pid, None)
            _signal_group(proc.pid, signal.SIGKILL)
        if timed_out:
            sweep()
        duration = time.monotonic() - start
        if self._stopping.is_set() and not timed_out and rc not in (0, 1, 2):
            return Outcome(job.student.name, "ungradable: interrupted", rc, duration, job.fingerprint)
        return outcome_of(job, rc, duration, timed_out)

    def stop_all(self) -> None:
        """Ctrl-C: stop every running grading at once (in parallel), then sweep."""
        with self._lock:
            self._stopping.set()
            procs = list(self._live.values())
        threads = [threading.Thread(target=stop, args=(p, self.grace_s)) for p in procs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sweep()

    def run(self, jobs: list[Job], on_start: Callable[[Job], None] = lambda j: None,
            on_done: Callable[[Job, Outcome], None] = lambda j, o: None) -> list[Outcome]:
        """Grade ``jobs`` with at most ``self.jobs`` at a time. On KeyboardInterrupt every
        child is stopped and swept before the interrupt propagates."""
        outcomes: list[Outcome] = []
        pool = ThreadPoolExecutor(max_workers=max(1, self.jobs), thread_name_prefix="grade")

        def task(job: Job) -> Outcome:
            on_start(job)
            try:
                return self.run_one(job)
            except OSError as exc:   # ./grade missing or not executable, a full disk: one row, not the class
                return Outcome(job.student.name, f"ungradable: could not start the grading: {exc}", None, 0.0,
                               job.fingerprint)

        pending = {pool.submit(task, j): j for j in jobs}
        try:
            while pending:
                done, _ = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = pending.pop(fut)
                    out = fut.result()
                    outcomes.append(out)
                    on_done(job, out)
        except KeyboardInterrupt:
            for fut in pending:
                fut.cancel()
            self.stop_all()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return outcomes
