"""A class of 12 generated Lab 02 submissions, graded on sim through ``./grade`` with JOBS=2.

The class: the reference solution, the starter, three mutants (one quota-bound:
``replicas: 500``), and seven adversarial submissions from tests/adversarial/cases.py
that are refused before anything runs. A second class holds one submission that
hangs (pods never Ready), graded with a short per-submission timeout.

What the fake-grader tests (test_gradebook_and_runner.py) cannot show, and this does:
real gradings in parallel, real container cleanup after a timeout, that the
gradebook's rows are what grading each submission alone gives, and that the class
graded again on one shared sim cluster (BACKEND=kubeconfig) gives the same gradebook.
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import threading
import time
from pathlib import Path

import docker
import pytest

from harness.classroom.cli import grade_class
from harness.labs import REPO_ROOT, lab
from tests.adversarial.cases import BY_NAME, UNGRADABLE, symlink_to, write_case
from tests.calibration.mutants import LAB02, edit

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAB = lab(2)
STARTER_FAILS = {"deployment.replicas-selector", "deployment.resources", "config.configmap-secret",
                 "probes.readiness-gates-traffic", "probes.startup", "probes.liveness-heals"}
MUTANTS = {m.name: m for m in LAB02 if m.name in ("unknown-field", "privileged-pod")}
ADVERSARIAL = ["billion-laughs", "ten-thousand-documents", "deep-nesting", "namespace-kube-system",
               "cluster-admin-binding", "host-persistent-volume"]
ONE_BY_ONE = ["mutant-unknown-field", "adv-billion-laughs"]   # graded alone too, to compare rows
SIM_LABEL = "io.mlops-labs.sim"


def _copy_solution(dest: Path) -> Path:
    import shutil
    shutil.copytree(LAB.solution, dest, ignore=shutil.ignore_patterns("model", "__pycache__"))
    return dest


def build_class(root: Path) -> dict[str, dict]:
    """Write the 12 submissions under ``root``; returns what each must get."""
    expect: dict[str, dict] = {}
    _copy_solution(root / "solution")
    expect["solution"] = {"score": "max"}
    import shutil
    shutil.copytree(LAB.starter, root / "starter")
    expect["starter"] = {"fails": STARTER_FAILS}
    for name, m in MUTANTS.items():
        m.patch(_copy_solution(root / f"mutant-{name}"))
        expect[f"mutant-{name}"] = {"fails_at_least": set(m.fails)}
    edit("manifests/deployment.yaml", "replicas: 2", "replicas: 500")(_copy_solution(root / "quota-500-replicas"))
    expect["quota-500-replicas"] = {"fails_at_least": {"pods.ready"}, "says": ("pods.ready", "exceeded quota")}
    for name in ADVERSARIAL:
        case = BY_NAME[name]
        assert case.expect == UNGRADABLE and case.lab == 2
        folder = write_case(case, root / "_work" / name, root / "_markers")
        shutil.move(str(folder), root / f"adv-{name}")
        expect[f"adv-{name}"] = {"ungradable": case.message}
    symlink_to("/etc/passwd", "manifests/passwd")(_copy_solution(root / "adv-symlink-etc-passwd"), root / "_markers")
    expect["adv-symlink-etc-passwd"] = {"ungradable": "symlinks are not allowed"}
    shutil.rmtree(root / "_work")
    shutil.rmtree(root / "_markers")   # empty: nothing of these runs on the host
    assert len(expect) == 12
    return expect


def _rows(path: Path) -> dict[str, dict]:
    with path.open(newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


def _without_timings(rows: dict[str, dict]) -> dict[str, dict]:
    return {k: {c: v for c, v in r.items() if c != "duration_s"} for k, r in rows.items()}


def _sim_containers(pid_filter=None) -> list:
    cs = docker.from_env().containers.list(all=True, filters={"label": SIM_LABEL})
    return [c for c in cs if pid_filter is None or pid_filter(c.labels.get(f"{SIM_LABEL}.pid", ""))]


@pytest.fixture(scope="class")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("class02")
    subs = root / "submissions"
    subs.mkdir()
    expect = build_class(subs)
    out = root / "report"
    start = time.monotonic()
    outcomes, paths, wall = grade_class(2, str(subs), jobs=2, backend="sim", out=out)
    measured = time.monotonic() - start
    print(f"\nclass of {len(outcomes)}: wall {wall:.1f}s, sum of per-submission durations "
          f"{sum(o.duration_s for o in outcomes):.1f}s")
    for o in outcomes:
        print(f"  {o.student}: {o.status} {o.report['score'] if o.report else '-'} {o.duration_s:.1f}s")
    return {"subs": subs, "out": out, "expect": expect, "outcomes": outcomes, "paths": paths, "wall": measured}


class TestLab02Class:
    def test_every_submission_gets_its_expected_outcome(self, graded):
        by = {o.student: o for o in graded["outcomes"]}
        assert set(by) == set(graded["expect"])
        for name, exp in graded["expect"].items():
            o = by[name]
            if "ungradable" in exp:
                assert o.status.startswith("ungradable: ") and exp["ungradable"] in o.status, (name, o.status)
                continue
            assert o.status == "graded", (name, o.status)
            checks = {c["id"]: c for c in o.report["checks"]}
            failed = {cid for cid, c in checks.items() if not c["passed"]}
            assert not any("grader error" in c["message"] for c in checks.values()), (name, o.report)
            if exp.get("score") == "max":
                assert o.report["score"] == o.report["max_score"] == 21, o.report
            if "fails" in exp:
                assert failed == exp["fails"], (name, failed)
            if "fails_at_least" in exp:
                assert exp["fails_at_least"] <= failed, (name, failed)
            if "says" in exp:
                cid, text = exp["says"]
                assert text in checks[cid]["message"], checks[cid]["message"]
        assert _sim_containers() == [], "containers left behind after the class"

    def test_files_for_the_lms_and_the_instructor(self, graded):
        rows = _rows(graded["paths"]["gradebook"])
        assert len(rows) == 12 and rows["solution"]["score"] == "21" and rows["solution"]["max"] == "21"
        students = graded["out"] / "students"
        for name in rows:
            assert (students / f"{name}.md").read_text().startswith("# Lab")
            assert (students / f"{name}.xml").read_text().startswith("<testsuite")
        summary = graded["paths"]["summary"].read_text()
        assert "12 submissions: 5 graded, 7 ungradable, 0 timed out" in summary
        assert graded["paths"]["pass_rates"].stat().st_size > 1000 and graded["paths"]["scores"].stat().st_size > 1000

    def test_rows_equal_grading_one_by_one(self, graded):
        rows = _rows(graded["paths"]["gradebook"])
        for name in ONE_BY_ONE:
            report = graded["out"].parent / f"alone-{name}.json"
            start = time.monotonic()
            cp = subprocess.run([str(REPO_ROOT / "grade"), "2", "--submission", str(graded["subs"] / name),
                                 "--backend", "sim", "--report", str(report)], capture_output=True, text=True,
                                timeout=600, env={**os.environ, "COLUMNS": "200"})
            print(f"\none by one: {name} exit {cp.returncode} in {time.monotonic() - start:.1f}s")
            row = rows[name]
            if cp.returncode == 2:
                assert row["status"].startswith("ungradable: ") and row["score"] == "0"
                assert row["status"].removeprefix("ungradable: ").split(" -> ")[0][:60] in " ".join(cp.stdout.split())
                continue
            alone = json.loads(report.read_text())
            assert int(row["score"]) == alone["score"], (name, row, alone["score"])
            assert {c["id"]: str(c["points"]) for c in alone["checks"]} == \
                {c["id"]: row[c["id"]] for c in alone["checks"]}

    def test_second_run_is_a_no_op(self, graded):
        before = _rows(graded["paths"]["gradebook"])
        start = time.monotonic()
        outcomes, paths, _ = grade_class(2, str(graded["subs"]), jobs=2, backend="sim", out=graded["out"])
        took = time.monotonic() - start
        print(f"\nsecond run: {took:.1f}s, {sum(o.skipped for o in outcomes)}/{len(outcomes)} skipped")
        assert all(o.skipped for o in outcomes)
        assert _rows(paths["gradebook"]) == before
        assert took < 30

    def test_the_class_again_on_one_shared_cluster_gives_the_same_gradebook(self, graded, tmp_path, monkeypatch):
        """FORCE re-grade of the whole class through BACKEND=kubeconfig against one sim cluster serving the
        API (what ``make cluster-up BACKEND=sim`` runs): two gradings at a time share it, each in its own
        namespace under the grading quota. The gradebook equals the in-process one (timings aside): the
        grading is deterministic, the shared path scores as the per-submission clusters do, and the
        quota-bound submission is reported as over quota there too."""
        from harness.cluster.sim import daemon
        sim, server, nodeports = daemon.start_cluster()
        try:
            kc = tmp_path / "kubeconfig"
            daemon.write_context(server.url, kc)
            monkeypatch.setenv("KUBECONFIG", str(kc))
            monkeypatch.setenv("CONTEXT", daemon.CONTEXT)
            outcomes, paths, wall = grade_class(2, str(graded["subs"]), jobs=2, backend="kubeconfig",
                                                out=tmp_path / "shared", force=True)
            left = [n["metadata"]["name"] for n in sim.store.list("Namespace", None, record=False)]
        finally:
            daemon.stop_cluster(sim, server, nodeports)
        print(f"\nclass again (FORCE) on one shared sim cluster: wall {wall:.1f}s "
              f"(in-process sim per submission: {graded['wall']:.1f}s)")
        for o in outcomes:
            print(f"  {o.student}: {o.status} {o.report['score'] if o.report else '-'} {o.duration_s:.1f}s")
        assert not any(o.skipped for o in outcomes)
        assert not [n for n in left if n.startswith("grade-")], left   # every grading deleted its namespace
        assert _without_timings(_rows(paths["gradebook"])) == _without_timings(_rows(graded["paths"]["gradebook"]))
        over = next(o for o in outcomes if o.student == "quota-500-replicas")
        ready = next(c for c in over.report["checks"] if c["id"] == "pods.ready")
        assert "exceeded quota: grading-quota" in ready["message"], ready["message"]
        assert _sim_containers() == [], "containers left behind after the shared-cluster class"

    def test_a_hanging_submission_times_out_and_leaves_no_container(self, tmp_path):
        """wrong-readiness-path: the pods never become Ready (pods.ready would wait 120 s)."""
        hang = next(m for m in LAB02 if m.name == "wrong-readiness-path")
        subs = tmp_path / "subs"
        hang.patch(_copy_solution(subs / "hangs"))
        seen = []
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                seen.append(len(_sim_containers()))
                time.sleep(1)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        from harness.classroom.runner import Runner
        outcomes, paths, wall = grade_class(2, str(subs), backend="sim", out=tmp_path / "out",
                                            runner=Runner(timeout_s=35, jobs=2, grace_s=30))
        stop.set()
        t.join()
        print(f"\nhang: {outcomes[0].status} after {outcomes[0].duration_s:.1f}s, peak containers {max(seen)}")
        assert outcomes[0].status == "timeout"
        assert max(seen) > 0, "the hanging submission never started a container: the test shows nothing"
        assert _sim_containers() == []
        assert _rows(paths["gradebook"])["hangs"]["status"] == "timeout"
