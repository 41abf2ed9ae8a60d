"""The gradebook, the runner and resuming, with a fake grader (fake_grade.py; no Docker)."""
from __future__ import annotations

import csv
import os
import signal
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from harness.classroom import gradebook
from harness.classroom.cli import grade_class
from harness.classroom.runner import Outcome, cannot_grade_reason

from .conftest import fake_runner, make_submission
from .fake_grade import CHECKS, report

KNOWN = list(CHECKS)


def _class(root, **behaviours):
    for name, b in behaviours.items():
        make_submission(root, name, b)
    return root


def _read(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_gradebook_columns_rows_and_feedback(tmp_path):
    outcomes = [Outcome("bob", "graded", 1, 3.25, report=report([2, 0, 3], "b")),
                Outcome("ann", "graded", 0, 2.0, report=report([2, 2, 3], "a")),
                Outcome("cy", "ungradable: manifests/x.yaml:3: bad YAML", 2, 0.5),
                Outcome("dee", "timeout", None, 30.0)]
    paths = gradebook.write(tmp_path, "02-k8s-basics", outcomes, KNOWN)
    rows = _read(paths["gradebook"])
    assert list(rows[0]) == ["student", "score", "max", "manifests.valid", "pods.ready", "service.routes",
                             "duration_s", "status"]
    assert [(r["student"], r["score"], r["max"], r["pods.ready"], r["status"]) for r in rows] == [
        ("ann", "7", "7", "2", "graded"), ("bob", "5", "7", "0", "graded"),
        ("cy", "0", "7", "", "ungradable: manifests/x.yaml:3: bad YAML"), ("dee", "0", "7", "", "timeout")]
    assert rows[1]["duration_s"] == "3.2" or rows[1]["duration_s"] == "3.3"
    md = (tmp_path / "students" / "bob.md").read_text()
    assert "fix pods.ready" in md and "5/7" in md                      # hints reach the learner
    assert "bad YAML" in (tmp_path / "students" / "cy.md").read_text()
    suite = ET.parse(tmp_path / "students" / "bob.xml").getroot()
    assert suite.get("failures") == "1" and suite.get("tests") == "3"
    assert ET.parse(tmp_path / "students" / "dee.xml").getroot().get("errors") == "1"
    summary = paths["summary"].read_text()
    assert "4 submissions: 2 graded, 1 ungradable, 1 timed out" in summary
    assert "| `pods.ready` | 2 | 1/2 | 50 % |" in summary
    assert summary.index("`pods.ready`") < summary.index("`manifests.valid`")   # least passed first
    for png in ("pass_rates", "scores"):
        assert paths[png].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cannot_grade_reason_keeps_the_fix_line():
    log = "Lab 02...\ncannot grade: manifests/a.yaml:3: bad\n  -> fix it\nresult: could not grade\n"
    assert cannot_grade_reason(log) == "manifests/a.yaml:3: bad -> fix it"


def test_class_outcomes_come_from_the_json_reports_only(tmp_path, calls):
    """A grading that prints PASS lines and a JSON report of its own gets the points of its real report."""
    subs = _class(tmp_path / "subs", ann="pass", bob="fail", cy="ungradable", dee="crash", eve="forge")
    outcomes, paths, _ = grade_class(2, subs, backend="sim", out=tmp_path / "out", runner=fake_runner(), plots=False)
    got = {o.student: (o.status, o.report["score"] if o.report else None) for o in outcomes}
    assert got == {"ann": ("graded", 7), "bob": ("graded", 2), "eve": ("graded", 0),
                   "cy": ("ungradable: " + str(subs / "cy") + "/manifests/bad.yaml:3: a YAML error "
                          "-> fix the indentation", None),
                   "dee": ("ungradable: the grader exited with code 245 (see dee.log)", None)}
    assert "PASS pods.ready" in (tmp_path / "out" / "students" / "eve.log").read_text()


def test_hang_hits_the_timeout_and_its_process_group_is_killed(tmp_path, calls):
    """SIGINT is ignored by the fake (a stuck teardown): SIGKILL after the grace period
    stops it and its grandchild; the next submission is still graded."""
    subs = _class(tmp_path / "subs", ann="pass", hung="hang")
    start = time.monotonic()
    outcomes, _, _ = grade_class(2, subs, backend="sim", out=tmp_path / "out",
                                 runner=fake_runner(timeout_s=2, grace_s=1), plots=False)
    assert time.monotonic() - start < 15
    assert {o.student: o.status for o in outcomes} == {"ann": "graded", "hung": "timeout"}
    pids = [int(p) for p in (subs / "hung.pids").read_text().split()]
    time.sleep(0.2)
    assert not any(_pid_alive(p) for p in pids), pids
    assert "timeout" in (tmp_path / "out" / "gradebook.csv").read_text()


def test_at_most_jobs_gradings_at_a_time(tmp_path, calls):
    subs = _class(tmp_path / "subs", **{f"s{i}": "pass 0.6" for i in range(6)})
    r = fake_runner(jobs=2)
    peak = []
    live = set()
    lock = threading.Lock()
    orig = r.run_one

    def counting(job):
        with lock:
            live.add(job.student.name)
            peak.append(len(live))
        try:
            return orig(job)
        finally:
            with lock:
                live.discard(job.student.name)

    r.run_one = counting
    start = time.monotonic()
    grade_class(2, subs, backend="sim", out=tmp_path / "out", runner=r, plots=False)
    assert max(peak) == 2
    assert time.monotonic() - start >= 3 * 0.6


def test_second_run_is_a_no_op_and_force_regrades(tmp_path, calls):
    subs = _class(tmp_path / "subs", ann="pass", bob="fail", cy="ungradable")
    out = tmp_path / "out"
    first, _, _ = grade_class(2, subs, backend="sim", out=out, runner=fake_runner(), plots=False)
    book1 = (out / "gradebook.csv").read_text()
    assert len(calls.read_text().split()) == 3
    second, _, _ = grade_class(2, subs, backend="sim", out=out, runner=fake_runner(), plots=False)
    assert len(calls.read_text().split()) == 3, "a second run graded again"
    assert all(o.skipped for o in second)
    assert (out / "gradebook.csv").read_text() == book1
    (subs / "bob" / "manifests" / "deployment.yaml").write_text("kind: Deployment\nreplicas: 2\n")
    grade_class(2, subs, backend="sim", out=out, runner=fake_runner(), plots=False)
    assert calls.read_text().split()[3:] == ["bob"]
    grade_class(2, subs, backend="sim", out=out, runner=fake_runner(), plots=False, force=True)
    assert sorted(calls.read_text().split()[4:]) == ["ann", "bob", "cy"]
    grade_class(2, subs, backend="kind", out=out, runner=fake_runner(), plots=False)
    assert len(calls.read_text().split()) == 10, "another backend must re-grade"


def test_same_class_twice_gives_the_same_gradebook_apart_from_timings(tmp_path, calls):
    subs = _class(tmp_path / "subs", ann="pass", bob="fail 0.2", cy="ungradable")

    def book(out):
        grade_class(2, subs, backend="sim", out=out, runner=fake_runner(), plots=False)
        return [{k: v for k, v in r.items() if k != "duration_s"} for r in _read(out / "gradebook.csv")]

    assert book(tmp_path / "a") == book(tmp_path / "b")


def test_ctrl_c_stops_every_grading_and_keeps_what_finished(tmp_path, calls):
    subs = _class(tmp_path / "subs", aaa="pass", hung1="hang", hung2="hang", zzz="pass")
    out = tmp_path / "out"
    timer = threading.Timer(2.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        grade_class(2, subs, backend="sim", out=out, runner=fake_runner(timeout_s=60, jobs=2, grace_s=1), plots=False)
    pids = [int(p) for f in subs.glob("*.pids") for p in f.read_text().split()]
    assert pids, "no hanging grading had started"
    time.sleep(0.2)
    assert not any(_pid_alive(p) for p in pids), pids
    import json
    saved = json.loads((out / "state.json").read_text())["students"]
    assert "aaa" in saved and "zzz" not in saved     # finished kept, queued never started
    assert not {"hung1", "hung2"} & set(saved), "a stopped grading must be graded again on resume"
