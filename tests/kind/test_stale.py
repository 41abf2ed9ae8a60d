"""Namespaces of grading runs that were killed are deleted before this run (issue 9, item 7).

Blind spot of the old tests: nothing ever looked at other runs' namespaces at start; a killed
run's Gateway stayed merged onto Traefik's entrypoint and only a warning was recorded (see
``test_gateway_url_fails_with_the_cleanup_command_when_other_gateways_share_the_port``).
"""
from __future__ import annotations

import socket
import subprocess
import sys

from harness.cluster.kind import KindCluster
from harness.cluster.kind.real import RUN_HOST, RUN_PID
from harness.cluster.kind.stale import SELECTOR, why_stale

NS_PATH = "/api/v1/namespaces"


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def ns(name: str, *, pid: int | None = None, host: str | None = None, created: str = "2020-01-01T00:00:00Z") -> dict:
    meta = {"name": name, "creationTimestamp": created,
            "labels": {"app.kubernetes.io/managed-by": "mlops-labs-harness"}}
    if pid is not None:
        meta["annotations"] = {RUN_PID: str(pid), RUN_HOST: host or socket.gethostname()}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_which_namespaces_are_stale():
    import os

    gone = dead_pid()
    assert "has ended" in why_stale(ns("grade-lab04-a", pid=gone))
    assert why_stale(ns("grade-lab04-b", pid=os.getpid())) is None                 # a live run
    assert why_stale(ns("grade-lab04-c", pid=gone, host="another-host")) is None    # cannot tell: kept
    assert why_stale(ns("mlops-gateway")) is None                                    # the addon's namespace
    assert "older harness" in why_stale(ns("grade-old"))                             # unmarked, 2020
    assert why_stale(ns("grade-young", created="2999-01-01T00:00:00Z")) is None


def test_start_deletes_the_namespaces_of_ended_runs_only(tools, apiserver, api, tmp_path, fast):
    import os

    from .test_backend import NS, healthy

    healthy(tools, apiserver, top_fails=0)
    apiserver.on("GET", f"{NS_PATH}?labelSelector={SELECTOR}", {"kind": "NamespaceList", "apiVersion": "v1", "items": [
        ns("grade-lab04-dead", pid=dead_pid()), ns("grade-lab04-live", pid=os.getpid()), ns("mlops-gateway")]})
    apiserver.on("DELETE", f"{NS_PATH}/grade-lab04-dead", "namespace-terminating.json")
    warned: list[str] = []
    log = type("L", (), {"info": lambda self, m: None, "warn": lambda self, m: warned.append(m)})()
    with KindCluster(namespace=NS, state_dir=tmp_path / "s", timeouts=fast, api=api, log=log) as kc:
        assert kc.reaped_namespaces == ["grade-lab04-dead"]
    deleted = [r["path"] for r in apiserver.requests if r["method"] == "DELETE"]
    assert deleted == [f"{NS_PATH}/grade-lab04-dead", f"{NS_PATH}/{NS}"]
    assert "deleted namespace grade-lab04-dead left behind by a grading run" in warned[0]
    body = apiserver.calls("POST", NS_PATH)[0]["body"]   # this run's namespace says who made it
    assert body["metadata"]["annotations"] == {RUN_HOST: socket.gethostname(), RUN_PID: str(os.getpid())}
