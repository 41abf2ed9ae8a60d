"""A table of adversarial submissions: each case is a reference solution plus a patch.

The grader's tests grade them here (tests/adversarial/test_*.py), and class
grading can grade the same table: ``write_case(case, dest, markers)`` writes
one case into ``dest`` and returns the lab folder to grade.

Files that would run code on the host (conftest.py, sitecustomize.py, a .pth,
an ``__init__.py``, a plugin named by a pytest ini file) write a marker file
into ``markers`` when they run; a case holds when that folder stays empty. The
same code inside the learner's container is harmless (a write there stays in
the container), so every trap swallows its own errors and the graded app
keeps working.

Expectations (``Case.expect``):

* ``SAME_GRADE`` - graded as the unpatched solution, no marker written;
* ``UNGRADABLE`` - exit 2 with ``Case.message`` (and ``Case.where`` when set) in the error;
* ``REFUSED_PODS`` - the manifests load, but Pod Security refuses every pod: no container starts.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from harness.labs import lab as get_lab

SAME_GRADE, UNGRADABLE, REFUSED_PODS = "same grade", "ungradable", "refused pods"

Patch = Callable[[Path, Path], None]   # (lab folder, marker folder)


@dataclass(frozen=True)
class Case:
    name: str
    lab: int
    patch: Patch
    expect: str
    message: str = ""      # UNGRADABLE: a substring of the error; REFUSED_PODS: of the FailedCreate event
    where: str = ""        # UNGRADABLE: a substring of the error's file:line
    docker: bool = False   # grading it for real needs a Docker engine
    note: str = ""
    notice: str = ""       # SAME_GRADE: a substring of a notice the report must carry


def write_case(case: Case, dest: Path, markers: Path) -> Path:
    """Copy the case's lab solution to ``dest/<slug>``, apply the patch, return that folder."""
    lab = get_lab(case.lab)
    folder = dest / lab.slug
    shutil.copytree(lab.solution, folder, ignore=shutil.ignore_patterns("model", "__pycache__"))
    markers.mkdir(parents=True, exist_ok=True)
    case.patch(folder, markers)
    return folder


# --- host code execution (issue 16 item 1 and the cases that held) ------------
def trap_code(markers: Path, name: str) -> str:
    """Python that writes ``markers/name`` when run, and never fails."""
    return (f"try:\n    open({str(markers / name)!r}, 'w').write('ran on the host')\n"
            "except Exception:\n    pass\n")


# A pytest plugin that would also turn every failed check into a pass.
PLUGIN_EXTRA = '''
try:
    import pytest

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(item, call):
        outcome = yield
        outcome.get_result().outcome = "passed"
except Exception:
    pass
'''


def pytest_plugin_module(folder: Path, markers: Path, config: str) -> None:
    (folder / "evilmark.py").write_text(trap_code(markers, f"plugin-from-{config}") + PLUGIN_EXTRA)


PYTEST_CONFIGS = {   # file name -> text making pytest import evilmark.py from the submission
    "pytest.ini": "[pytest]\npythonpath = .\naddopts = -p evilmark\n",
    "pytest.toml": '[pytest]\npythonpath = ["."]\naddopts = ["-p", "evilmark"]\n',
    "tox.ini": "[pytest]\npythonpath = .\naddopts = -p evilmark\n",
    "setup.cfg": "[tool:pytest]\npythonpath = .\naddopts = -p evilmark\n",
    "pyproject.toml": '[tool.pytest.ini_options]\npythonpath = ["."]\naddopts = "-p evilmark"\n',
}


def pytest_config(name: str) -> Patch:
    def patch(folder: Path, markers: Path) -> None:
        (folder / name).write_text(PYTEST_CONFIGS[name])
        pytest_plugin_module(folder, markers, name)
    return patch


def conftest(folder: Path, markers: Path) -> None:
    (folder / "conftest.py").write_text(trap_code(markers, "conftest") + PLUGIN_EXTRA)
    (folder / "tests").mkdir(exist_ok=True)
    (folder / "tests" / "conftest.py").write_text(trap_code(markers, "tests-conftest"))


def sitecustomize(folder: Path, markers: Path) -> None:
    (folder / "sitecustomize.py").write_text(trap_code(markers, "sitecustomize"))
    (folder / "usercustomize.py").write_text(trap_code(markers, "usercustomize"))


def pth_file(folder: Path, markers: Path) -> None:
    # site.py runs a .pth line that starts with "import" (if the folder were a site dir)
    (folder / "evil.pth").write_text(f"import os; exec({trap_code(markers, 'pth')!r})\n")


def init_py(folder: Path, markers: Path) -> None:
    (folder / "__init__.py").write_text(trap_code(markers, "root-init"))
    app_init = folder / "app" / "__init__.py"
    if app_init.parent.is_dir():   # runs inside the container too: it must not break the app
        app_init.write_text(trap_code(markers, "app-init") + app_init.read_text())


def combine(*patches: Patch) -> Patch:
    def patch(folder: Path, markers: Path) -> None:
        for p in patches:
            p(folder, markers)
    return patch


# --- output that looks like the grader's (the report must not change) ---------
FORGED_LINES = [
    "✔ container.healthy (3/3) healthy",
    "PASSED harness/pytest_grading.py::test_check[image.size]",
    '{"lab": "01-docker", "score": 99, "max_score": 21, "passed": true, "checks": []}',
    "21/21 in 1.0s",
]


def forged_output(folder: Path, markers: Path) -> None:
    server = folder / "app" / "server.py"
    prints = "".join(f"print({line!r}, flush=True)\n" for line in FORGED_LINES)
    server.write_text(server.read_text() + "\nimport sys as _sys\n" + prints   # at import: in the container log
                      + "".join(f"print({line!r}, file=_sys.stderr, flush=True)\n" for line in FORGED_LINES))


# --- what staging refuses (exit 2 with a clear message) -----------------------
def symlink_to(target: str, rel: str) -> Patch:
    def patch(folder: Path, markers: Path) -> None:
        os.symlink(target, folder / rel)
    return patch


def big_file(size: int = 60 * 2**20) -> Patch:
    def patch(folder: Path, markers: Path) -> None:
        with open(folder / "app" / "weights.bin", "wb") as f:
            f.truncate(size)   # sparse: 60 MB to the grader, no disk used
    return patch


def latin1_comment(rel: str) -> Patch:
    def patch(folder: Path, markers: Path) -> None:
        p = folder / rel
        p.write_bytes(p.read_bytes() + "# caf\u00e9 (Latin-1, not UTF-8)\n".encode("latin-1"))
    return patch


# --- Lab 02 manifests ----------------------------------------------------------------
DEPLOYMENT = "manifests/deployment.yaml"


def edit_docs(rel: str, fn: Callable[[list], None]) -> Patch:
    """Edit a manifest file as data (comments are lost): ``fn`` gets its documents."""
    def patch(folder: Path, markers: Path) -> None:
        p = folder / rel
        docs = [d for d in yaml.safe_load_all(p.read_text()) if d is not None]
        fn(docs)
        p.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return patch


def pod_spec(fn: Callable[[dict], None]) -> Patch:
    """Edit the Deployment's pod template spec."""
    def on_docs(docs: list) -> None:
        fn(next(d for d in docs if d.get("kind") == "Deployment")["spec"]["template"]["spec"])
    return edit_docs(DEPLOYMENT, on_docs)


def set_metadata(**meta) -> Patch:
    return edit_docs(DEPLOYMENT, lambda docs: docs[0].setdefault("metadata", {}).update(meta))


def add_file(rel: str, text: str | bytes) -> Patch:
    def patch(folder: Path, markers: Path) -> None:
        (folder / rel).write_bytes(text if isinstance(text, bytes) else text.encode())
    return patch


def billion_laughs(levels: int = 9, width: int = 9) -> str:
    rows = ['  a0: &a0 ["lol"]']
    rows += [f"  a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]" for i in range(1, levels + 1)]
    return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\nlol:\n" + "\n".join(rows) + "\n"


def _container(spec: dict) -> dict:
    return spec["containers"][0]


def privileged(spec: dict) -> None:
    _container(spec)["securityContext"] = {"privileged": True}


def capabilities(spec: dict) -> None:
    _container(spec)["securityContext"] = {"capabilities": {"add": ["SYS_ADMIN", "NET_ADMIN"]}}


def docker_socket(spec: dict) -> None:
    spec["volumes"] = [{"name": "docker", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}}]
    _container(spec)["volumeMounts"] = [{"name": "docker", "mountPath": "/var/run/docker.sock"}]


PRIVILEGED_NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata:
  name: mine
  labels:
    pod-security.kubernetes.io/enforce: privileged
"""
CLUSTER_ADMIN = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: everyone-is-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: default, namespace: default}]
"""
HOST_VOLUME = """\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: host-root
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  hostPath: {path: /}
"""

HOST_CODE = [
    *[Case(f"pytest-config-{n.replace('.', '-')}", 1, pytest_config(n), SAME_GRADE,
           note=f"{n} with pythonpath and addopts -p <module>: pytest must not read it")
      for n in PYTEST_CONFIGS],
    Case("conftest", 1, conftest, SAME_GRADE, note="conftest.py at the root and in tests/"),
    Case("sitecustomize", 1, sitecustomize, SAME_GRADE),
    Case("pth-file", 1, pth_file, SAME_GRADE),
    Case("init-py", 1, init_py, SAME_GRADE, note="the folder as a package; app/__init__.py runs in the container"),
]

FORGED = [Case("forged-grader-output", 1, forged_output, SAME_GRADE, docker=True,
               note="the app prints PASS lines and a JSON report on stdout and stderr")]

# Every trap at once, with forged output: one real grading covers them all.
ALL_TRAPS = Case("all-traps", 1, combine(*(c.patch for c in HOST_CODE + FORGED)), SAME_GRADE, docker=True)

TEXT = [Case("non-utf8-dockerignore", 1, latin1_comment(".dockerignore"), SAME_GRADE,
             note="a Latin-1 byte in a comment: read as text with a replacement character")]

STAGING = [
    Case("symlink-etc-passwd", 1, symlink_to("/etc/passwd", "app/passwd"), UNGRADABLE,
         message="symlinks are not allowed", where="passwd"),
    Case("symlink-out-of-folder", 1, symlink_to("../..", "app/up"), UNGRADABLE,
         message="symlinks are not allowed", where="up"),
    Case("oversized-60mb", 1, big_file(), UNGRADABLE, message="submission is too large"),
]

POD_SECURITY = [   # baseline Pod Security on sim: the ReplicaSet's pod creations are refused
    Case("privileged", 2, pod_spec(privileged), REFUSED_PODS, docker=True,
         message='privileged (container "server" must not set securityContext.privileged=true)'),
    Case("host-network", 2, pod_spec(lambda s: s.update(hostNetwork=True)), REFUSED_PODS, docker=True,
         message="host namespaces (hostNetwork=true)"),
    Case("host-pid", 2, pod_spec(lambda s: s.update(hostPID=True)), REFUSED_PODS, docker=True,
         message="host namespaces (hostPID=true)"),
    Case("added-capabilities", 2, pod_spec(capabilities), REFUSED_PODS, docker=True,
         message='non-default capabilities (container "server" must not include "NET_ADMIN", "SYS_ADMIN"'),
    Case("docker-socket", 2, pod_spec(docker_socket), REFUSED_PODS, docker=True,
         message='hostPath volumes (volume "docker")'),
]

MANIFESTS = [   # refused while loading or before anything is applied (issue 16 items 2 and 8)
    Case("billion-laughs", 2, add_file("manifests/lol.yaml", billion_laughs()), UNGRADABLE,
         message="billion laughs", where="manifests/lol.yaml:10"),
    Case("ten-thousand-documents", 2, add_file("manifests/many.yaml", "---\nx: 1\n" * 10_000), UNGRADABLE,
         message="more than 100 YAML documents in one file", where="manifests/many.yaml:201"),
    Case("deep-nesting", 2, add_file("manifests/deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"), UNGRADABLE,
         message="nested more than 32 levels", where="manifests/deep.yaml:1"),
    Case("non-utf8-manifest", 2, add_file("manifests/cm.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                               b"  name: caf\xe9\n"),
         UNGRADABLE, message="not UTF-8", where="manifests/cm.yaml:4"),
    Case("tab-indented", 2, add_file("manifests/tab.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n\tname: t\n"),
         UNGRADABLE, message="YAML needs spaces, not tabs", where="manifests/tab.yaml:4"),
    Case("namespace-kube-system", 2, set_metadata(namespace="kube-system"), UNGRADABLE,
         message='metadata.namespace is "kube-system"', where="manifests/deployment.yaml:"),
    Case("own-privileged-namespace", 2, lambda f, m: (add_file("manifests/namespace.yaml", PRIVILEGED_NAMESPACE)(f, m),
                                                      pod_spec(privileged)(f, m), set_metadata(namespace="mine")(f, m)),
         UNGRADABLE, message="Namespace object is not allowed", where="manifests/namespace.yaml:1"),
    Case("cluster-admin-binding", 2, add_file("manifests/rbac.yaml", CLUSTER_ADMIN), UNGRADABLE,
         message="ClusterRoleBinding/everyone-is-admin is cluster-scoped", where="manifests/rbac.yaml:1"),
    Case("host-persistent-volume", 2, add_file("manifests/pv.yaml", HOST_VOLUME), UNGRADABLE,
         message="PersistentVolume/host-root is cluster-scoped", where="manifests/pv.yaml:1"),
    Case("namespace-default", 2, set_metadata(namespace="default"), SAME_GRADE, docker=True,
         notice='metadata.namespace "default" was ignored', note="tutorials write it: dropped, with a notice"),
]

CASES = [*HOST_CODE, *TEXT, *FORGED, ALL_TRAPS, *STAGING, *POD_SECURITY, *MANIFESTS]
BY_NAME = {c.name: c for c in CASES}
