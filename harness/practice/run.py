"""Setting a scenario up, and running kubectl commands the way a candidate types them.

``setup`` applies the scenario's steps in order into the practice namespace. ``kubectl_commands``
runs shell lines (a scenario's reference fix or a wrong fix, in the calibration tests) with
``kubectl`` bound to the session's context, so they read exactly as a candidate would type them
(``kubectl -n practice set env deploy/sentiment ...``).
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Callable

from harness.cluster.base import ApiError
from harness.cluster.kubeconfig import KubeconfigCluster
from harness.errors import GradingError
from harness.waiting import WaitTimeout, wait_for

from . import observe
from .catalog import Scenario


def setup(cluster: KubeconfigCluster, scenario: Scenario, log: Callable[[str], None] = print) -> None:
    for step in scenario.setup:
        if "apply" in step:
            objs = scenario.manifests(step["apply"])
            try:
                cluster.apply(objs)
            except ApiError as exc:
                raise GradingError(f"practice/{scenario.id}/{step['apply']}: the cluster refused it: {exc.message}",
                                   fix="the scenario's manifests must apply on every backend; fix them") from exc
        else:
            name = step["wait_available"]

            def available() -> bool:
                return observe.deployment(cluster, name)["complete"]
            try:
                wait_for(available, f"deployment {name} to become available", 120, poll=1, progress=log)
            except WaitTimeout as exc:
                raise GradingError(f"setting up {scenario.id}: {exc}",
                                   fix="`kubectl -n practice describe deployment` says why; "
                                       "`make practice-reset` tries again") from exc


def kubectl_commands(commands: tuple[str, ...] | list[str], context: str | None, kubeconfig: str | None,
                     timeout_s: float = 120) -> list[subprocess.CompletedProcess]:
    """Run each line with bash; ``kubectl`` on its PATH is the real one with ``--context`` set."""
    real = shutil.which("kubectl")
    if real is None:
        raise GradingError("kubectl is not installed", fix="install kubectl (https://kubernetes.io/docs/tasks/tools/)")
    out = []
    with tempfile.TemporaryDirectory(prefix="practice-kubectl-") as tmp:
        wrapper = Path(tmp) / "kubectl"
        ctx = f' --context "{context}"' if context else ""
        wrapper.write_text(f'#!/bin/sh\nexec "{real}"{ctx} "$@"\n')
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
        env = {**os.environ, "PATH": f"{tmp}{os.pathsep}{os.environ.get('PATH', '')}"}
        if kubeconfig:
            env["KUBECONFIG"] = kubeconfig
        for line in commands:
            res = subprocess.run(["bash", "-euo", "pipefail", "-c", line], env=env, capture_output=True, text=True,
                                 timeout=timeout_s)
            out.append(res)
            if res.returncode != 0:
                raise GradingError(f"`{line}` failed ({res.returncode}): {(res.stderr or res.stdout).strip()[-400:]}")
    return out
