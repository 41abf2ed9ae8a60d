"""The real kubectl 1.32 against the sim's API server (fake runtime, fake clock driven by a thread).

Blind spot before: on sim no kubectl command worked at all, and the grader's real-cluster code
had only met hand-written fakes. Each test runs the command a learner or a lab README runs and
checks what kubectl printed, so a discovery, OpenAPI, Table or Status detail kubectl depends
on cannot regress silently.
"""
from __future__ import annotations

import re

LAB02 = "solutions/02-k8s-basics/manifests/"
HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: sentiment}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: sentiment}
  minReplicas: 2
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}}]
"""


def _rolled_out(env) -> None:
    env.kubectl("apply", "-f", LAB02)
    out = env.kubectl("rollout", "status", "deploy/sentiment", "--timeout=60s").stdout
    assert 'deployment "sentiment" successfully rolled out' in out


def test_version_reports_minor_32_so_the_dispatcher_runs_kubectl_1_32(api_env):
    out = api_env.kubectl("version").stdout
    assert "Server Version: v1.32.0-sim" in out


def test_get_nodes_prints_upstream_columns(api_env):
    out = api_env.kubectl("get", "nodes").stdout
    assert re.search(r"^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION$", out, re.M)
    assert re.search(r"^sim-control-plane\s+Ready\s+control-plane\s+\d+s\s+", out, re.M)
    wide = api_env.kubectl("get", "nodes", "-o", "wide").stdout
    assert "INTERNAL-IP" in wide and "CONTAINER-RUNTIME" in wide


def test_apply_lab02_solution_then_get_shows_tables(api_env):
    _rolled_out(api_env)
    out = api_env.kubectl("get", "pods,svc,deploy,rs,ep").stdout
    assert re.search(r"^pod/sentiment-\w+-\w+\s+1/1\s+Running\s+0\s+\d+s$", out, re.M), out
    assert re.search(r"^service/sentiment\s+ClusterIP\s+10\.96\.\d+\.\d+\s+<none>\s+80/TCP\s+\d+s$", out, re.M), out
    assert re.search(r"^deployment\.apps/sentiment\s+2/2\s+2\s+2\s+\d+s$", out, re.M), out
    assert re.search(r"^endpoints/sentiment\s+[\d.]+:8000,[\d.]+:8000\s+\d+s$", out, re.M), out
    again = api_env.kubectl("apply", "-f", LAB02).stdout
    assert "deployment.apps/sentiment unchanged" in again


def test_strict_field_validation_error_is_upstreams(api_env):
    bad = HPA.replace("maxReplicas: 5", "maxReplicass: 5")
    p = api_env.kubectl("apply", "-f", "-", input=bad, check=False)
    assert p.returncode == 1
    assert ('HorizontalPodAutoscaler in version "v2" cannot be handled as a HorizontalPodAutoscaler: strict decoding '
            'error: unknown field "spec.maxReplicass"') in p.stderr


def test_invalid_error_carries_kind_and_causes(api_env):
    _rolled_out(api_env)
    p = api_env.kubectl("patch", "deploy", "sentiment", "-p", '{"spec":{"replicas":-1}}', check=False)
    assert p.returncode == 1
    assert 'The Deployment "sentiment" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal ' \
           "to 0" in p.stderr


def test_hpa_targets_scale_set_image_and_undo_reuses_the_old_replicaset(api_env):
    _rolled_out(api_env)
    api_env.kubectl("apply", "-f", "-", input=HPA)
    assert re.search(r"Deployment/sentiment\s+cpu: (<unknown>|\d+%)/50%\s+2\s+5\s+", api_env.kubectl("get", "hpa").stdout)
    assert "deployment.apps/sentiment scaled" in api_env.kubectl("scale", "deploy/sentiment", "--replicas=3").stdout
    api_env.kubectl("set", "image", "deploy/sentiment", "server=mlops-labs/sentiment:v2")
    api_env.kubectl("rollout", "status", "deploy/sentiment", "--timeout=60s")
    assert "rolled back" in api_env.kubectl("rollout", "undo", "deploy/sentiment").stdout
    api_env.kubectl("rollout", "status", "deploy/sentiment", "--timeout=60s")
    rs = [line.split() for line in api_env.kubectl("get", "rs", "--no-headers").stdout.splitlines()]
    assert len(rs) == 2, rs          # undo went back to the first ReplicaSet, it did not make a third
    assert sorted(r[1] for r in rs)[0] == "0"


def test_logs_top_events_and_describe(api_env):
    _rolled_out(api_env)
    logs = api_env.kubectl("logs", "deploy/sentiment", "--tail=2")
    assert logs.stdout.splitlines() == ["line 2", "line 3"]
    top = api_env.kubectl("top", "pod").stdout
    assert re.search(r"^sentiment-\S+\s+50m\s+64Mi", top, re.M), top
    assert re.search(r"^sim-worker\s+\d+m\s+\d+%", api_env.kubectl("top", "node").stdout, re.M)
    ev = api_env.kubectl("get", "events").stdout
    assert re.search(r"Normal\s+ScalingReplicaSet\s+deployment/sentiment\s+Scaled up replica set", ev)
    desc = api_env.kubectl("describe", "deploy", "sentiment").stdout
    assert "Scaled up replica set sentiment-" in desc and "NewReplicaSet:" in desc


def test_wait_server_side_apply_and_json_patch(api_env):
    _rolled_out(api_env)
    assert "condition met" in api_env.kubectl("wait", "--for=condition=Available", "deploy/sentiment",
                                              "--timeout=20s").stdout
    assert "serverside-applied" in api_env.kubectl("apply", "--server-side", "-f", LAB02).stdout
    api_env.kubectl("patch", "deploy", "sentiment", "--type=json", "-p",
                    '[{"op":"replace","path":"/spec/replicas","value":1}]')
    assert api_env.sim.get("Deployment", "sentiment")["spec"]["replicas"] == 1


def test_unknown_resource_and_delete(api_env):
    p = api_env.kubectl("get", "foos", check=False)
    assert p.returncode == 1 and 'the server doesn\'t have a resource type "foos"' in p.stderr
    _rolled_out(api_env)
    out = api_env.kubectl("delete", "-f", LAB02, "--timeout=60s").stdout
    assert 'deployment.apps "sentiment" deleted' in out
    assert api_env.sim.list("Deployment") == []
