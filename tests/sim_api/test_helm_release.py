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
