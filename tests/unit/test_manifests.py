"""harness/manifests.py: bounded YAML loading (issue 16 item 2), scope (issue 16 item 8), and
messages that point at the offending line (issue 10 item 6).

Blind spots before: no test loaded hostile YAML (aliases, thousands of documents, deep
nesting), so a 600-byte "billion laughs" file took the grader past 3 GiB; schema errors were
only checked for "some error", not for the line they name; nothing refused objects outside
the grading namespace.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import manifests as mf
from harness.errors import GradingError
from harness.manifests import load_dir, refuse_out_of_scope, validate


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    """A ConfigMap with ``levels`` anchors of ``width`` aliases each: width**levels strings once expanded."""
    rows = ['  a0: &a0 ["lol"]']
    rows += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\nlol:\n" + "\n".join(rows) + "\n"


def folder(tmp_path: Path, **files: str | bytes) -> Path:
    (tmp_path / "manifests").mkdir(exist_ok=True)
    for name, text in files.items():
        p = tmp_path / "manifests" / name.replace("__", ".")
        p.write_bytes(text if isinstance(text, bytes) else textwrap.dedent(text).encode())
    return tmp_path


def refusal(tmp_path: Path, **files) -> GradingError:
    with pytest.raises(GradingError) as err:
        load_dir(folder(tmp_path, **files))
    return err.value


# --- bounded YAML ------------------------------------------------------------------------
LOAD_AND_MEASURE = """
import json, resource, sys, time
from pathlib import Path
from harness.errors import GradingError
from harness.manifests import load_dir
start = time.perf_counter()
try:
    load_dir(Path(sys.argv[1]))
    out = {"refused": None}
except GradingError as exc:
    out = {"refused": str(exc), "where": exc.where}
out["seconds"] = time.perf_counter() - start
# VmHWM: this process's own peak RSS. (ru_maxrss is not reset by exec on Linux: it keeps the
# peak of the forking parent, here the whole pytest process.)
hwm = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM:")]
out["peak_rss_mb"] = (int(hwm[0].split()[1]) if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024
print(json.dumps(out))
"""


def _cap_memory():   # a regression must fail this test, not take the machine down
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def test_billion_laughs_is_refused_in_under_a_second_with_bounded_memory(tmp_path):
    """9 levels of 9 aliases (9**9 strings expanded), loaded by a grader process of its own
    whose peak RSS (VmHWM) is measured."""
    lab = folder(tmp_path, lol__yaml=billion_laughs())
    proc = subprocess.run([sys.executable, "-c", LOAD_AND_MEASURE, str(lab)], capture_output=True, text=True,
                          timeout=120, preexec_fn=_cap_memory)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    print(f"billion laughs: refused in {out['seconds'] * 1000:.1f} ms, peak RSS {out['peak_rss_mb']:.0f} MB")
    assert out["refused"] and "billion laughs" in out["refused"], out
    assert out["where"] == "manifests/lol.yaml:10"   # the row of a4, whose aliases pass the bound
    assert out["seconds"] < 1.0 and out["peak_rss_mb"] < 200, out


def test_aliases_within_the_bound_still_load(tmp_path):
    lab = folder(tmp_path, cm__yaml="""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: x
          labels: &labels {app: web, tier: api}
        data: *labels
        """)
    [m] = load_dir(lab)
    assert m.obj["data"] == {"app": "web", "tier": "api"} and validate([m]) == []


def test_a_recursive_alias_is_refused(tmp_path):
    err = refusal(tmp_path, a__yaml="a: &x\n  b: *x\n")
    assert err.where == "manifests/a.yaml:2" and "loop" in err.message


def test_ten_thousand_documents_are_refused(tmp_path):
    err = refusal(tmp_path, many__yaml="---\nx: 1\n" * 10_000)
    assert err.where == f"manifests/many.yaml:{2 * mf.MAX_DOCUMENTS_PER_FILE + 1}"
    assert f"more than {mf.MAX_DOCUMENTS_PER_FILE} YAML documents" in err.message


def test_documents_are_bounded_across_files(tmp_path):
    per_file = "---\nx: 1\n" * mf.MAX_DOCUMENTS_PER_FILE
    n = mf.MAX_DOCUMENTS // mf.MAX_DOCUMENTS_PER_FILE + 1
    err = refusal(tmp_path, **{f"f{i}__yaml": per_file for i in range(n)})
    assert f"more than {mf.MAX_DOCUMENTS} YAML documents in the manifests" in err.message
    assert err.where.startswith(f"manifests/f{n - 1}.yaml:")


@pytest.mark.parametrize("text", ["a: " + "[" * 40 + "]" * 40 + "\n",
                                  "a: " + "[" * 5000 + "]" * 5000 + "\n",
                                  "".join("  " * i + f"k{i}:\n" for i in range(40)) + "  " * 40 + "v: 1\n"])
def test_deep_nesting_is_refused(tmp_path, text):
    err = refusal(tmp_path, deep__yaml=text)
    assert f"nested more than {mf.MAX_DEPTH} levels" in err.message and err.where.startswith("manifests/deep.yaml:")


def test_too_many_bytes_in_all_are_refused(tmp_path):
    chunk = "# " + "x" * (mf.MAX_MANIFEST_BYTES - 100) + "\n"
    err = refusal(tmp_path, **{f"f{i}__yaml": chunk for i in range(mf.MAX_MANIFESTS_BYTES // mf.MAX_MANIFEST_BYTES + 1)})
    assert "too large" in err.message


def test_non_utf8_text_is_refused_at_its_line(tmp_path):
    err = refusal(tmp_path, cm__yaml=b"apiVersion: v1\nkind: ConfigMap\ndata:\n  a: caf\xe9\n")
    assert (err.where, err.message) == ("manifests/cm.yaml:4", "not UTF-8 text (byte 0xe9)")


# --- YAML errors in plain language -------------------------------------------------------
def test_a_tab_is_named_in_the_yaml_error(tmp_path):
    err = refusal(tmp_path, d__yaml="a: 1\nb:\n\tc: 1\n")
    assert err.where == "manifests/d.yaml:3"
    assert err.fix == "the indentation or syntax on line 3 is wrong; YAML needs spaces, not tabs"


def test_a_syntax_error_without_a_tab_does_not_mention_tabs(tmp_path):
    err = refusal(tmp_path, d__yaml="a: [1, 2\nb: 1\n")
    assert err.where == "manifests/d.yaml:2" and err.fix == "the indentation or syntax on line 2 is wrong"


# --- schema errors at the offending key --------------------------------------------------
DEPLOYMENT = """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: web
    spec:
      replicas: 2
      selector:
        matchLabels: {app: web}
      template:
        metadata:
          labels: {app: web}
        spec:
          containers:
            - name: app
              image: nginx:1.27
              ports:
                - containerPort: 80
                  protocl: TCP
"""


def test_an_unknown_field_points_at_its_own_line(tmp_path):
    """Before: the line of the enclosing object (the port's first key, line 17)."""
    errors = validate(load_dir(folder(tmp_path, d__yaml=DEPLOYMENT)))
    assert errors == ['manifests/d.yaml:18: Deployment/web: spec.template.spec.containers[0].ports[0].protocl: '
                      'unknown field; did you mean "protocol"?']


def test_a_field_at_the_wrong_level_says_where_it_belongs(tmp_path):
    text = DEPLOYMENT.replace("        spec:\n", "        spec:\n          envFrom:\n            - configMapRef: {name: c}\n")
    errors = validate(load_dir(folder(tmp_path, d__yaml=text)))
    assert ("manifests/d.yaml:13: Deployment/web: spec.template.spec.envFrom: unknown field; "
            "envFrom belongs in spec.template.spec.containers[0]") in errors


def test_the_suggestion_comes_from_the_schema():
    """Not a table: any field valid somewhere in the kind's schema gets its place."""
    svc = {"apiVersion": "v1", "kind": "Service"}
    assert mf.unknown_field_advice(svc, (), "ports") == "ports belongs in spec"
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler"}
    assert mf.unknown_field_advice(hpa, (), "minReplicas") == "minReplicas belongs in spec"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment"}
    assert mf.unknown_field_advice(dep, ("spec",), "livenessProbe") == \
        "livenessProbe belongs in spec.template.spec.containers[0]"
    assert mf.unknown_field_advice(dep, ("spec", "template", "spec"), "labels") == \
        "labels belongs in spec.template.metadata"   # the home nearest the mistake, not metadata
    assert mf.unknown_field_advice(dep, ("spec",), "nosuchfieldanywhere") == ""


def test_line_of_names_the_key_line(tmp_path):
    [m] = load_dir(folder(tmp_path, d__yaml=DEPLOYMENT))
    assert m.line_of(("spec", "template")) == 9          # `template:`, not its first child
    assert m.line_of(("spec", "template", "spec", "containers", 0)) == 14
    assert m.line_of(("spec", "replicas")) == 6
    assert m.line_of(("spec", "nosuch")) == 5            # the deepest key that exists


# --- scope ---------------------------------------------------------------------------------
def obj(kind: str, api: str = "v1", **meta) -> str:
    lines = [f"apiVersion: {api}", f"kind: {kind}", "metadata:", "  name: x"]
    lines += [f"  {k}: {v}" for k, v in meta.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("kind,api", [
    ("ClusterRole", "rbac.authorization.k8s.io/v1"), ("ClusterRoleBinding", "rbac.authorization.k8s.io/v1"),
    ("PersistentVolume", "v1"), ("StorageClass", "storage.k8s.io/v1"), ("Node", "v1"),
    ("CustomResourceDefinition", "apiextensions.k8s.io/v1"), ("PriorityClass", "scheduling.k8s.io/v1"),
    ("ValidatingWebhookConfiguration", "admissionregistration.k8s.io/v1"),
    ("GatewayClass", "gateway.networking.k8s.io/v1"),
])
def test_cluster_scoped_kinds_are_refused(tmp_path, kind, api):
    ms = load_dir(folder(tmp_path, a__yaml=obj("ConfigMap"), b__yaml=obj(kind, api)))
    with pytest.raises(GradingError) as err:
        refuse_out_of_scope(ms, "grade-1")
    assert err.value.where == "manifests/b.yaml:1"
    assert err.value.message == (f"{kind}/x is cluster-scoped: it would change the whole cluster, "
                                 "not this lab's namespace")


@pytest.mark.parametrize("kind", ["ResourceQuota", "LimitRange"])
def test_the_namespace_budget_cannot_be_replaced_by_the_submission(tmp_path, kind):
    """A submission's own quota named like the grader's would replace it on apply."""
    ms = load_dir(folder(tmp_path, q__yaml=obj(kind)))
    with pytest.raises(GradingError) as err:
        refuse_out_of_scope(ms, "grade-1")
    assert err.value.where == "manifests/q.yaml:1" and "is the grader's" in err.value.message


def test_a_namespace_object_is_refused(tmp_path):
    ns = obj("Namespace", labels="{pod-security.kubernetes.io/enforce: privileged}")
    with pytest.raises(GradingError) as err:
        refuse_out_of_scope(load_dir(folder(tmp_path, ns__yaml=ns)), "grade-1")
    assert err.value.where == "manifests/ns.yaml:1" and "Namespace object is not allowed" in err.value.message


def test_another_namespace_is_refused_at_its_line(tmp_path):
    ms = load_dir(folder(tmp_path, d__yaml=obj("ConfigMap", namespace="kube-system"),
                         e__yaml=obj("Secret", namespace="other")))
    with pytest.raises(GradingError) as err:
        refuse_out_of_scope(ms, "grade-1")
    assert err.value.where == "manifests/d.yaml:5"
    assert err.value.message.startswith('ConfigMap/x: metadata.namespace is "kube-system"')
    assert "also manifests/e.yaml:5" in err.value.message and "metadata.namespace" in err.value.fix


def test_namespace_default_is_dropped_with_a_notice(tmp_path):
    ms = load_dir(folder(tmp_path, d__yaml=obj("ConfigMap", namespace="default"),
                         e__yaml=obj("Service", namespace="grade-1")))
    notices = refuse_out_of_scope(ms, "grade-1")
    assert "namespace" not in ms[0].obj["metadata"] and ms[1].obj["metadata"]["namespace"] == "grade-1"
    assert len(notices) == 1 and notices[0].startswith('manifests/d.yaml:5: ConfigMap/x: metadata.namespace "default"')


def test_the_scope_table_comes_from_the_api():
    scopes = mf._client_scopes()
    assert len(scopes) > 60
    assert scopes["deployment"] == scopes["rolebinding"] == scopes["horizontalpodautoscaler"] == "Namespaced"
    assert scopes["clusterrolebinding"] == scopes["namespace"] == scopes["persistentvolume"] == "Cluster"
    assert mf.api_scope({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute"}) == "Namespaced"
    assert mf.api_scope({"apiVersion": "example.com/v1", "kind": "Widget"}) is None


@pytest.mark.parametrize("lab", ["02-k8s-basics", "03-autoscaling", "04-gpu-canary"])
def test_reference_solutions_are_in_scope(lab):
    from harness.labs import REPO_ROOT

    for root in ("solutions", "labs"):
        assert refuse_out_of_scope(load_dir(REPO_ROOT / root / lab), "grade-1") == []
