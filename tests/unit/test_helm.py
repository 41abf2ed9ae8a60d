"""harness/helm.py: Helm v4's engine (helm-python-sdk) on Lab 05's chart, offline.

The reference chart lints clean under --strict, renders dev and prod, and the
rendered objects validate strictly; the two environments differ where the lab
asks; a broken template, a missing required value, bad YAML in a values file
and a broken Chart.yaml each get an error that names where to look.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness import helm
from harness.errors import GradingError
from harness.labs import REPO_ROOT
from harness.manifests import validate

SOLUTION = REPO_ROOT / "solutions" / "05-helm-autoscaling" / "chart"
STARTER = REPO_ROOT / "labs" / "05-helm-autoscaling" / "chart"


def _render(chart: Path, env: str, **overrides):
    values = helm.merged_values([chart / f"values-{env}.yaml"], chart, overrides or None)
    return {(m.kind, m.name): m for m in helm.render(chart, values, release="sentiment", namespace="grade-1",
                                                      label=f"chart[{env}]")}


def test_the_engine_is_helm_v4():
    lib, sdk = helm.versions()
    assert lib == "0.2.2" and sdk.startswith("v4."), (lib, sdk)


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_solution_lints_clean_under_strict(env):
    values = helm.merged_values([SOLUTION / f"values-{env}.yaml"], SOLUTION)
    found = [m for m in helm.lint(SOLUTION, values) if m.severity in ("warning", "error")]
    assert found == []


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_solution_renders_and_validates_strictly(env):
    objs = _render(SOLUTION, env)
    assert validate(list(objs.values())) == []
    assert {("Deployment", "sentiment-blue"), ("Deployment", "sentiment-green"), ("Service", "sentiment"),
            ("ConfigMap", "sentiment-config")} <= set(objs)
    m = objs[("Deployment", "sentiment-blue")]
    assert m.file == f"chart[{env}]/templates/deployment.yaml" and m.line == 3


def test_dev_and_prod_differ_where_the_lab_asks():
    dev, prod = _render(SOLUTION, "dev"), _render(SOLUTION, "prod")
    assert ("HorizontalPodAutoscaler", "sentiment") not in dev and ("PodDisruptionBudget", "sentiment") not in dev
    assert dev[("Deployment", "sentiment-blue")].obj["spec"]["replicas"] == 1
    assert dev[("ConfigMap", "sentiment-config")].obj["data"]["LOG_LEVEL"] == "debug"
    hpa = prod[("HorizontalPodAutoscaler", "sentiment")].obj["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (2, 6)
    assert hpa["metrics"] == [{"type": "Pods", "pods": {"metric": {"name": "inference_requests_in_flight"},
                                                       "target": {"type": "AverageValue", "averageValue": "2"}}}]
    assert hpa["scaleTargetRef"]["name"] == "sentiment-blue"
    # the HPA owns the active colour's replicas; the idle colour keeps what it had (no field:
    # an upgrade that removed it would default the newly active colour to 1 replica)
    assert "replicas" not in prod[("Deployment", "sentiment-blue")].obj["spec"]
    assert "replicas" not in prod[("Deployment", "sentiment-green")].obj["spec"]
    assert prod[("Deployment", "sentiment-blue")].obj["spec"]["template"]["spec"]["containers"][0]["resources"]


def test_service_follows_active_color():
    blue = _render(SOLUTION, "prod")[("Service", "sentiment")].obj["spec"]["selector"]
    green = _render(SOLUTION, "prod", activeColor="green")
    assert blue["color"] == "blue" and green[("Service", "sentiment")].obj["spec"]["selector"]["color"] == "green"
    assert green[("HorizontalPodAutoscaler", "sentiment")].obj["spec"]["scaleTargetRef"]["name"] == "sentiment-green"


def test_the_api_key_is_only_referenced():
    prod = _render(SOLUTION, "prod")
    env = prod[("Deployment", "sentiment-blue")].obj["spec"]["template"]["spec"]["containers"][0]["env"]
    key = next(e for e in env if e["name"] == "API_KEY")
    assert key["valueFrom"]["secretKeyRef"] == {"name": "sentiment-api-key", "key": "API_KEY"}
    assert not any(m.kind == "Secret" for m in prod.values())


def test_starter_renders_but_is_incomplete():
    prod = _render(STARTER, "prod")
    assert validate(list(prod.values())) == []
    assert "color" not in prod[("Service", "sentiment")].obj["spec"]["selector"]       # both colours
    assert ("HorizontalPodAutoscaler", "sentiment") not in prod                        # autoscaling not enabled
    cpu = _render(STARTER, "prod", autoscaling={"enabled": True})
    assert cpu[("HorizontalPodAutoscaler", "sentiment")].obj["spec"]["metrics"][0]["type"] == "Resource"


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "chart"
    shutil.copytree(SOLUTION, dst)
    return dst


def test_a_template_error_names_the_template_and_line(tmp_path):
    chart = _copy(tmp_path)
    hpa = chart / "templates" / "hpa.yaml"
    hpa.write_text(hpa.read_text().replace("{{ .Values.autoscaling.maxReplicas }}",
                                           "{{ .Values.autoscaling.maxReplicas | nosuchfunction }}"))
    with pytest.raises(helm.RenderError) as e:
        helm.render(chart, helm.merged_values([chart / "values-prod.yaml"], chart), release="s", namespace="g")
    assert e.value.where == "chart/templates/hpa.yaml:14" and "nosuchfunction" in e.value.message


def test_a_required_value_names_its_line():
    with pytest.raises(helm.RenderError) as e:
        helm.render(SOLUTION, {"existingSecret": ""}, release="s", namespace="g")
    assert e.value.where.startswith("chart/templates/deployment.yaml:") and "existingSecret" in e.value.message


def test_bad_values_yaml_is_a_grading_error(tmp_path):
    chart = _copy(tmp_path)
    (chart / "values-prod.yaml").write_text("autoscaling:\n  enabled: true\n\tmaxReplicas: 6\n")
    with pytest.raises(GradingError) as e:
        helm.merged_values([chart / "values-prod.yaml"], chart)
    assert e.value.where == "chart/values-prod.yaml" and "invalid YAML" in e.value.message


def test_lint_reports_a_broken_chart_yaml(tmp_path):
    chart = _copy(tmp_path)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: sentiment\n")      # no version
    msgs = helm.lint(chart)
    assert any(m.severity == "error" and "version" in m.message for m in msgs), msgs


def test_no_chart_yaml(tmp_path):
    with pytest.raises(GradingError) as e:
        helm.lint(tmp_path)
    assert "Chart.yaml" in str(e.value)


def test_the_by_hand_cli_templates_and_lints_like_helm(capsys, tmp_path):
    """``python -m harness.helm``: what the Lab 05 notebook runs when the learner has no helm CLI."""
    import yaml

    prod = str(SOLUTION / "values-prod.yaml")
    assert helm.main(["template", "sentiment", str(SOLUTION), "-f", prod, "--set", "activeColor=green",
                      "-n", "team"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    svc = next(d for d in docs if d["kind"] == "Service")
    assert svc["spec"]["selector"]["color"] == "green" and len(docs) == 6
    assert helm.main(["lint", str(SOLUTION), "-f", prod]) == 0
    assert "0 chart(s) failed" in capsys.readouterr().out
    broken = tmp_path / "chart"
    shutil.copytree(SOLUTION, broken)
    (broken / "Chart.yaml").write_text((broken / "Chart.yaml").read_text().replace("apiVersion: v2", "apiVersion: v1"))
    assert helm.main(["lint", str(broken), "-f", prod]) == 1
    assert "1 chart(s) failed" in capsys.readouterr().out
    (broken / "templates" / "hpa.yaml").write_text("{{ .Values.nope | nosuchfunction }}\n")
    assert helm.main(["template", "x", str(broken), "-f", prod]) == 1
    assert "nosuchfunction" in capsys.readouterr().err
