"""Fixtures for the kind and kubeconfig backends' tests.

* ``tools``: fake ``kind``/``kubectl``/``docker`` executables (``fakes/fake_tool.py``)
  alone on PATH: the real /usr/bin/kubectl is never reached. Rules say what
  each invocation prints; every argv is recorded.
* ``apiserver``: a fake API server on 127.0.0.1 serving recorded API objects
  (``responses/``) to the real ``kubernetes`` client.
* ``fast``: named timeouts shrunk so waits poll every 10 ms.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from harness.waiting import Timeouts

from .fakeapi import FakeApiServer

FAKES = Path(__file__).parent / "fakes"
RESPONSES = Path(__file__).parent / "responses"


class Tools:
    def __init__(self, root: Path):
        self.bin = root / "bin"
        self.state = root / "state"
        self.bin.mkdir(parents=True)
        self.state.mkdir()
        self._rules: list[dict] = []
        self.write()

    def install(self, *names: str) -> None:
        for name in names:
            p = self.bin / name
            p.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKES / "fake_tool.py"}" {name} "$@"\n')
            p.chmod(0o755)

    def rule(self, tool: str, match: str = "", stdout: str = "", *, rc: int = 0, stderr: str = "",
             times: int | None = None, stdout_file: str | None = None, linger: float = 0) -> None:
        r: dict = {"tool": tool, "match": match, "stdout": stdout, "rc": rc, "stderr": stderr}
        if times is not None:
            r["times"] = times
        if stdout_file:
            r["stdout_file"] = str(RESPONSES / stdout_file)
        if linger:
            r["linger"] = linger
        self._rules.append(r)
        self.write()

    def reset(self) -> None:
        """Forget every rule, how often each was used, and the calls recorded so far."""
        self._rules.clear()
        (self.state / "calls.jsonl").unlink(missing_ok=True)
        (self.state / "counts.json").unlink(missing_ok=True)
        self.write()

    def drop(self, tool: str, match: str) -> None:
        self._rules = [r for r in self._rules if (r["tool"], r["match"]) != (tool, match)]
        (self.state / "counts.json").unlink(missing_ok=True)
        self.write()

    def write(self) -> None:
        (self.state / "rules.json").write_text(json.dumps(self._rules))

    def calls(self, tool: str | None = None) -> list[dict]:
        p = self.state / "calls.jsonl"
        rows = [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []
        return [r for r in rows if tool is None or r["tool"] == tool]

    def argvs(self, tool: str | None = None) -> list[list[str]]:
        return [r["argv"] for r in self.calls(tool)]


@pytest.fixture
def tools(tmp_path, monkeypatch) -> Tools:
    t = Tools(tmp_path / "tools")
    t.install("kind", "kubectl", "docker")
    monkeypatch.setenv("PATH", str(t.bin))
    monkeypatch.setenv("FAKE_TOOLS_DIR", str(t.state))
    for var in ("KEEP_CLUSTER", "KIND_CLUSTER_NAME", "KIND_NODE_IMAGE", "CONTEXT", "NAMESPACE", "KUBECONFIG"):
        monkeypatch.delenv(var, raising=False)
    return t


@pytest.fixture
def apiserver():
    srv = FakeApiServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def api(apiserver):
    from kubernetes.client import ApiClient, Configuration

    from harness.cluster.kind.api import Api

    cfg = Configuration(host=apiserver.url)
    a = Api(ApiClient(cfg), request_timeout=5)
    yield a
    a.close()


@pytest.fixture
def fast() -> Timeouts:
    return Timeouts(poll=0.01, nodes_ready=0.3, rollout=0.3, pod_start=0.5, container_ready=5.0, image_build=30.0)


@pytest.fixture
def kubeconfig_file(tmp_path, apiserver) -> Path:
    p = tmp_path / "kubeconfig"
    p.write_text(f"""apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {{server: "{apiserver.url}"}}
users:
- name: student
  user: {{token: "fake-token"}}
contexts:
- name: lab
  context: {{cluster: lab, user: student}}
- name: other
  context: {{cluster: lab, user: student}}
current-context: other
""")
    os.chmod(p, 0o600)
    return p
