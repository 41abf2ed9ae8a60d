"""The table's Pod Security cases (they held before issue 16; kept as regression tests).

A Deployment whose pods ask for privileged mode, host namespaces, added
capabilities or the Docker socket is accepted, but sim's baseline Pod Security
refuses every pod its ReplicaSet tries to create, so no container starts. The
manifests go through what a grading does first (load, scope, apply in order);
the cheap tests run sim on its fake runtime and clock, the ``docker`` test on real
containers, where it also checks the engine.
"""
from __future__ import annotations

import time

import pytest

from harness.cluster.sim import FakeClock, FakeRuntime, SimCluster
from harness.labs.cluster_lab import IMAGE_V1, ClusterLab
from harness.labs import lab
from harness.manifests import load_dir, refuse_out_of_scope
from harness.submission import Submission

from .cases import POD_SECURITY, REFUSED_PODS, Case, write_case

NS = "grade-02-adversarial"


def apply_case(folder, cluster) -> ClusterLab:
    ctx = ClusterLab(Submission(lab(2), folder, folder), cluster)
    ctx.manifests = load_dir(folder)
    ctx.notices += refuse_out_of_scope(ctx.manifests, cluster.namespace)
    ctx.apply()
    return ctx


@pytest.fixture
def fake_sim():
    clock = FakeClock()
    runtime = FakeRuntime(clock, images=(IMAGE_V1,))
    sim = SimCluster(runtime=runtime, clock=clock, namespace=NS)
    sim.start()
    yield sim, runtime
    sim.stop()


def failed_creates(sim) -> list[str]:
    return [e["message"] for e in sim.events(involved_kind="ReplicaSet") if e["reason"] == "FailedCreate"]


def test_the_unpatched_solution_starts_containers(fake_sim, tmp_path):
    """The control: the same path with the solution as is does start its pods."""
    sim, runtime = fake_sim
    apply_case(write_case(Case("clean", 2, lambda f, m: None, "same grade"), tmp_path, tmp_path / "m"), sim)
    sim.step(5)
    assert len(runtime.started()) == 2 and failed_creates(sim) == []


@pytest.mark.parametrize("case", POD_SECURITY, ids=[c.name for c in POD_SECURITY])
def test_refused_by_pod_security_with_no_container(case, fake_sim, make_case):
    assert case.expect == REFUSED_PODS
    sim, runtime = fake_sim
    folder, _ = make_case(case)
    apply_case(folder, sim)
    sim.step(30)
    assert sim.list("Pod") == [] and runtime.started() == []
    events = failed_creates(sim)
    assert events and all('violates PodSecurity "baseline:latest"' in e and case.message in e for e in events), events


@pytest.mark.docker
@pytest.mark.slow
def test_refused_pods_start_no_real_container(tmp_path):
    """Every case at once, each Deployment under its own name, on sim with real containers."""
    import docker

    sim = SimCluster(namespace=NS)
    sim.start()
    try:
        for case in POD_SECURITY:
            folder = write_case(case, tmp_path / case.name, tmp_path / "markers")
            ctx = ClusterLab(Submission(lab(2), folder, folder), sim)
            ctx.manifests = [m for m in load_dir(folder) if m.kind == "Deployment"]
            ctx.manifests[0].obj["metadata"]["name"] = case.name
            ctx.apply()
        time.sleep(5)
        label = f"io.mlops-labs.sim.cluster={sim.runtime.cluster_id}"
        assert docker.from_env().containers.list(all=True, filters={"label": label}) == []
        assert sim.list("Pod") == []
        events = failed_creates(sim)
        for case in POD_SECURITY:
            assert any(case.message in e and f'pods "{case.name}-' in e for e in events), (case.name, events)
    finally:
        sim.stop()
