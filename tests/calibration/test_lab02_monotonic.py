"""Lab 02's score never goes backwards as a learner works through the tasks.

The starter is graded, then the starter with README task 1 applied, then
tasks 1-2, ... up to 1-6, each task's fields copied from the reference
solution's Deployment. Blind spot before (issue 10): probes.startup passed
while there was no probe at all ("a 8s model load finished without restarts")
and adding task 5's livenessProbe took those points away.

One test, seven gradings in a row on sim (Docker-heavy: run it alone).
"""
from __future__ import annotations

import shutil
import time

import pytest
import yaml

from harness.grading import grade
from harness.labs import lab
from harness.waiting import Timeouts

pytestmark = [pytest.mark.docker, pytest.mark.slow]

LAB = lab(2)
FAST = Timeouts(pod_start=30, service_endpoints=8)
DEP = "manifests/deployment.yaml"
# README task -> (the Deployment's fields it adds: spec-level, then container-level)
TASKS = {
    1: (("replicas",), ()),
    2: ((), ("imagePullPolicy",)),
    3: ((), ("envFrom", "env")),
    4: ((), ("resources",)),
    5: ((), ("readinessProbe", "livenessProbe")),
    6: ((), ("startupProbe",)),
}


def with_tasks(dest, n: int) -> None:
    """The starter's Deployment plus the solution's fields of tasks 1..n."""
    starter = yaml.safe_load((LAB.starter / DEP).read_text())
    solution = yaml.safe_load((LAB.solution / DEP).read_text())
    ours_c = starter["spec"]["template"]["spec"]["containers"][0]
    sol_c = solution["spec"]["template"]["spec"]["containers"][0]
    for task in range(1, n + 1):
        spec_fields, container_fields = TASKS[task]
        for f in spec_fields:
            starter["spec"][f] = solution["spec"][f]
        for f in container_fields:
            ours_c[f] = sol_c[f]
    (dest / DEP).write_text(yaml.safe_dump(starter, sort_keys=False))


def test_score_never_decreases_task_by_task(tmp_path):
    scores, lines, passed = [], [], []
    started = time.monotonic()
    for n in range(0, 7):
        dest = tmp_path / f"tasks-{n}" / LAB.slug
        shutil.copytree(LAB.starter, dest)
        with_tasks(dest, n)
        t = time.monotonic()
        report = grade(LAB, dest, backend="sim", timeouts=FAST, log=lambda line: None)
        scores.append(report.score)
        passed.append({c.id for c in report.checks if c.passed})
        lines.append(f"tasks 1-{n}: {report.score}/{report.max_score} in {time.monotonic() - t:.0f}s, "
                     f"failed: {', '.join(report.failed_ids()) or 'none'}")
    print("\n".join(lines) + f"\ntotal {time.monotonic() - started:.0f}s")
    assert all(b >= a for a, b in zip(scores, scores[1:])), "\n".join(lines)
    lost = {n + 1: sorted(a - b) for n, (a, b) in enumerate(zip(passed, passed[1:])) if a - b}
    assert not lost, f"checks that went from pass to fail, by task: {lost}\n" + "\n".join(lines)
    assert scores[-1] == report.max_score, "\n".join(lines)
    assert scores[0] < scores[-1]
