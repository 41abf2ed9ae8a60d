"""One lab, one place: a lab module alone makes a lab (issue: a lab's definition was
spread over six places: the catalogue, grading's tables of check modules, sim options
and kind options, cluster_lab's table of images, the Makefile's list and targets, and
the CLI's choices).

A throwaway lab module in a folder of its own (HARNESS_EXTRA_LABS) is seen by the
CLI, by `make help` and by grading, with no other file touched.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harness.labs import LABS, REPO_ROOT, discover

THROWAWAY = textwrap.dedent('''
    from harness.checks.registry import CheckFailed, check
    from harness.labs import Lab

    LAB = Lab(99, "99-throwaway", "A throwaway lab", context="files", checks=__name__)


    @check("files.has-deployment", lab="99-throwaway", points=2, hint="add a Deployment to manifests/",
           doc="https://kubernetes.io/docs/concepts/workloads/controllers/deployment/")
    def has_deployment(ctx):
        """the manifests hold a Deployment"""
        if not any(m.kind == "Deployment" for m in ctx.manifests):
            raise CheckFailed("no Deployment in manifests/")
        return "a Deployment is there"
''')

DEPLOYMENT = textwrap.dedent('''
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec: {containers: [{name: web, image: "nginx:1.27"}]}
''')


def _env(extra: Path) -> dict:
    return {**os.environ, "HARNESS_EXTRA_LABS": str(extra)}


def _throwaway(tmp_path: Path) -> Path:
    extra = tmp_path / "course-labs"
    extra.mkdir()
    (extra / "lab99.py").write_text(THROWAWAY)
    return extra


def test_the_registry_finds_every_lab_module():
    assert sorted(LABS) == [1, 2, 3, 4, 5]
    assert all(lab.checks.startswith("harness.checks.lab") for lab in LABS.values())


def test_a_throwaway_lab_is_seen_by_the_cli_make_help_and_grading(tmp_path):
    extra = _throwaway(tmp_path)
    assert 99 in discover(str(extra))

    listed = subprocess.run([sys.executable, "-m", "harness", "labs"], env=_env(extra),
                            capture_output=True, text=True, check=True).stdout
    assert "make lab-99" in listed and "A throwaway lab" in listed

    helped = subprocess.run(["make", "-s", "help"], cwd=REPO_ROOT, env=_env(extra),
                            capture_output=True, text=True, check=True).stdout
    assert "99-throwaway" in helped

    sub = tmp_path / "99-throwaway"
    (sub / "manifests").mkdir(parents=True)
    (sub / "manifests" / "deployment.yaml").write_text(DEPLOYMENT)
    report = tmp_path / "r.json"
    graded = subprocess.run([str(REPO_ROOT / "grade"), "99", "--submission", str(sub), "--report", str(report)],
                            env=_env(extra), capture_output=True, text=True)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    data = json.loads(report.read_text())
    assert data["lab"] == "99-throwaway" and [c["id"] for c in data["checks"]] == ["files.has-deployment"]

    (sub / "manifests" / "deployment.yaml").write_text(DEPLOYMENT.replace("kind: Deployment", "kind: ConfigMap"))
    again = subprocess.run([str(REPO_ROOT / "grade"), "99", "--submission", str(sub)], env=_env(extra),
                           capture_output=True, text=True)
    assert again.returncode == 1, again.stdout


def test_two_modules_for_one_lab_number_are_refused(tmp_path):
    extra = tmp_path / "dup"
    extra.mkdir()
    (extra / "lab02.py").write_text("from harness.labs import Lab\nLAB = Lab(2, '02-other', 'x')\n")
    try:
        discover(str(extra))
    except ValueError as exc:
        assert "two lab modules declare lab 2" in str(exc)
    else:
        raise AssertionError("a duplicate lab number was accepted")
