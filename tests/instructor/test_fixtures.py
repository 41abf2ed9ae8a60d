"""harness.instructor_fixtures: the ``kind_cluster`` fixture's surface, with a fake kubectl/kind.

What pytest-kind gets wrong and these check: one port-forward process per call,
the port is only handed out once it accepts connections, and the process is
gone after the block (also when the block raises, also when kubectl fails).
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import CommandError
from harness.instructor_fixtures import ClusterHandle, _port_open

FAKE = Path(__file__).with_name("fake_kubectl.py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def handle(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_DIR", str(tmp_path))
    return ClusterHandle(str(tmp_path / "kc.yaml"), "ctx-a", kubectl_bin=str(FAKE))


def _pids(tmp_path: Path) -> list[int]:
    f = tmp_path / "pf.pids"
    return [int(p) for p in f.read_text().split()] if f.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_kubectl_uses_the_clusters_kubeconfig_and_context(handle, tmp_path):
    assert json.loads(handle.kubectl("get", "pods", "-n", "x")) == [
        "--kubeconfig", str(tmp_path / "kc.yaml"), "--context", "ctx-a", "get", "pods", "-n", "x"]
    with pytest.raises(CommandError) as e:
        handle.kubectl("get", "fail")
    assert "doesn't have a resource type" in str(e.value) and e.value.returncode == 1


def test_port_forward_waits_for_the_port_and_ends_its_one_process(handle, tmp_path):
    with handle.port_forward("svc/web", 80, namespace="course") as port:
        assert _port_open(port)
        pids = _pids(tmp_path)
        assert len(pids) == 1 and _alive(pids[0])
    assert not _alive(pids[0])


def test_port_forward_cleans_up_when_the_block_raises(handle, tmp_path):
    with pytest.raises(RuntimeError), handle.port_forward("svc/web", 80):
        raise RuntimeError("the test failed")
    assert [p for p in _pids(tmp_path) if _alive(p)] == []


def test_port_forward_failure_says_what_kubectl_said(handle, tmp_path):
    with pytest.raises(CommandError) as e, handle.port_forward("svc/broken", 80, timeout=10):
        pass
    assert 'services "broken" not found' in str(e.value)
    assert len(_pids(tmp_path)) == 1


def test_load_docker_image_uses_kind_load(tmp_path):
    kind = tmp_path / "kind"
    kind.write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path}/kind.args\n")
    kind.chmod(kind.stat().st_mode | stat.S_IEXEC)
    ClusterHandle(None, "kind-course", kind_name="course", kind_bin=str(kind)).load_docker_image("me/app:v1")
    assert (tmp_path / "kind.args").read_text().split() == ["load", "docker-image", "me/app:v1", "--name", "course"]


def test_the_harness_plugin_offers_kind_cluster_to_a_course_test(tmp_path):
    """A course's own test file, run by plain pytest: the fixture comes from the installed plugin."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl").symlink_to(FAKE)
    kc = tmp_path / "kubeconfig"
    kc.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
        users: [{name: u, user: {}}]
        contexts: [{name: course-sim, context: {cluster: c, user: u}}]
        current-context: course-sim
        """))
    course = tmp_path / "course"
    course.mkdir()
    (course / "test_extra.py").write_text(textwrap.dedent("""\
        import json

        def test_extra(kind_cluster):
            args = json.loads(kind_cluster.kubectl("get", "endpoints", "sentiment"))
            assert args[-3:] == ["get", "endpoints", "sentiment"] and "course-sim" in args
            with kind_cluster.port_forward("svc/sentiment", 80) as port:
                assert port > 0
        """))
    env = {**os.environ, "KIND_CLUSTER": "kubeconfig", "KUBECONFIG": str(kc), "FAKE_DIR": str(tmp_path),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    cp = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_extra.py"],
                        cwd=course, env=env, capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert [p for p in _pids(tmp_path) if _alive(p)] == []
