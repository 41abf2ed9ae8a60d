"""Helm releases on the sim's API: ``helm install``, ``upgrade`` and ``rollback`` through Helm's own
engine (harness.helm.Releases), as a learner with ``make cluster-up BACKEND=sim`` would run them.

Lab 05's reference chart is installed with prod's values, upgraded with ``activeColor=green`` (the
blue/green switch), then rolled back to revision 1: the Service selects blue again, the rollback is
revision 3 with revision 1's manifest, and Helm's release records are Secrets the real kubectl lists.
"""
from __future__ import annotations

import json

import pytest

from harness import helm
from harness.errors import GradingError
from harness.labs import REPO_ROOT

CHART = REPO_ROOT / "solutions" / "05-helm-autoscaling" / "chart"


def _selector(env) -> dict:
    svc = json.loads(env.kubectl("get", "service", "-l", "app.kubernetes.io/instance=sentiment", "-o", "json").stdout)
    assert len(svc["items"]) == 1, svc
    return svc["items"][0]["spec"]["selector"]


def test_install_upgrade_rollback_restores_the_previous_revision(api_env):
    prod = helm.load_values(CHART / "values-prod.yaml", "chart/values-prod.yaml")
    with helm.Releases(api_env.kubeconfig, "default", timeout_s=60) as rel:
        first = rel.install(CHART, "sentiment", prod)
        assert (first.revision, first.status) == (1, "deployed")
        assert _selector(api_env)["color"] == "blue"
        deployments = api_env.kubectl("get", "deployments", "-o", "name").stdout.split()
        assert {"deployment.apps/sentiment-blue", "deployment.apps/sentiment-green"} <= set(deployments), deployments

        second = rel.upgrade(CHART, "sentiment", {**prod, "activeColor": "green"})
        assert second.revision == 2 and _selector(api_env)["color"] == "green"

        rel.rollback("sentiment", 1)
        history = rel.history("sentiment")
        assert [(r.revision, r.status) for r in history] == [(1, "superseded"), (2, "superseded"), (3, "deployed")]
        assert _selector(api_env)["color"] == "blue"
        assert rel.manifest("sentiment", 3) == rel.manifest("sentiment", 1)
        assert rel.manifest("sentiment", 2) != rel.manifest("sentiment", 1)

    records = api_env.kubectl("get", "secrets", "-l", "owner=helm,name=sentiment", "-o", "name").stdout.split()
    assert sorted(records) == [f"secret/sh.helm.release.v1.sentiment.v{n}" for n in (1, 2, 3)], records


def test_helm_errors_say_what_failed(api_env):
    with helm.Releases(api_env.kubeconfig, "default", timeout_s=30) as rel:
        rel.install(CHART, "sentiment", {})
        with pytest.raises(GradingError, match="helm install failed: .*(re-use|in use)"):
            rel.install(CHART, "sentiment", {})
        with pytest.raises(GradingError, match="helm rollback failed"):
            rel.rollback("sentiment", 7)


def test_helm_adopts_objects_that_carry_its_ownership_metadata(api_env):
    """What release.rollback relies on: objects applied before (helm template | kubectl apply) carrying
    Helm's managed-by label and release annotations become revision 1; without them Helm refuses."""
    from harness.scenarios.release import _owned_by_release

    prod = helm.load_values(CHART / "values-prod.yaml", "chart/values-prod.yaml")
    rendered = helm.render(CHART, prod, release="sentiment", namespace="default")
    bare = next(m for m in rendered if m.kind == "ConfigMap")
    api_env.kubectl("apply", "-f", "-", input=json.dumps(bare.obj))
    with helm.Releases(api_env.kubeconfig, "default", timeout_s=60) as rel:
        with pytest.raises(GradingError, match="exists and cannot be imported into the current release"):
            rel.install(CHART, "sentiment", prod)
        for m in rendered:
            api_env.kubectl("apply", "-f", "-", input=json.dumps(_owned_by_release(m, "default")))
        first = rel.install(CHART, "sentiment", prod)
    assert (first.revision, first.status) == (1, "deployed")
    cm = json.loads(api_env.kubectl("get", "configmap", bare.name, "-o", "json").stdout)
    assert cm["metadata"]["annotations"]["meta.helm.sh/release-name"] == "sentiment"


def test_write_kubeconfig_reaches_the_same_cluster_from_sim_and_from_a_kubeconfig_context(api_env, tmp_path):
    """Cluster.write_kubeconfig: the sim starts its REST API; a real cluster's context is flattened
    into one file (Helm's engine reads one file, KUBECONFIG may list several)."""
    import subprocess

    from harness.cluster.kubeconfig import KubeconfigCluster

    path, context = api_env.sim.write_kubeconfig(tmp_path / "sim")
    flat, flat_context = KubeconfigCluster(kubeconfig=str(path)).write_kubeconfig(tmp_path / "real")
    assert flat_context == context == "sim"
    for kc in (path, flat):
        out = subprocess.run(["kubectl", "--kubeconfig", str(kc), "--cache-dir", str(tmp_path / "cache"),
                              "get", "namespace", "default", "-o", "name"], capture_output=True, text=True, timeout=60)
        assert out.stdout.strip() == "namespace/default", out.stderr
