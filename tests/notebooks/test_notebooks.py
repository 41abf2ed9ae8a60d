"""The lab notebooks: generated from the READMEs, valid, and executable headless.

The execution test runs each learner notebook with nbclient in its lab folder, every
cell: Lab 01's image build and run, Lab 03's ``hey`` load test, and each lab's grade
cell (the starter, graded through ./grade on sim: exit 1 is a result, not a cell
error). The cluster labs run their kubectl cells (apply, get, describe, cleanup)
against a sim cluster serving the Kubernetes API, started in this process; a learner
without a cluster sees them skip with one line. The instructor variant, the same cells
plus the solution's, runs with ``LABS_NOTEBOOK_HEAVY=0`` and ``LABS_NOTEBOOK_GRADE=0``
(the solutions are graded by tests/calibration).
"""
from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from harness import notebooks
from harness.labs import LABS, REPO_ROOT

LABS_ = [lab for lab in LABS.values() if lab.available]


def _tree(*roots: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file() and "__pycache__" not in p.parts:
                st = p.stat()
                out[str(p.relative_to(REPO_ROOT))] = (st.st_size, st.st_mtime_ns)
    return out


def test_notebooks_are_what_the_readmes_generate():
    assert notebooks.generate(check=True) == [], "run `make notebooks` and commit the result"


@pytest.mark.parametrize("lab", LABS_, ids=[lab.slug for lab in LABS_])
def test_valid_stable_ids_and_solution_cells(lab):
    instructor = nbformat.read(lab.starter / notebooks.INSTRUCTOR, as_version=4)
    learner = nbformat.read(lab.starter / notebooks.LEARNER, as_version=4)
    for nb in (instructor, learner):
        nbformat.validate(nb)
        ids = [c.id for c in nb.cells]
        assert len(ids) == len(set(ids))
    assert notebooks.render(notebooks.build(lab, instructor=True)) == notebooks.render(notebooks.build(lab, True))
    tagged = [c for c in instructor.cells if "solution" in c.metadata.get("tags", [])]
    assert tagged and all(c.cell_type == "code" for c in tagged)
    assert not [c for c in learner.cells if "solution" in c.metadata.get("tags", [])]
    assert [c.id for c in learner.cells] == [c.id for c in instructor.cells if c not in tagged]
    readme = (lab.starter / "README.md").read_text()
    markdown = "\n".join(c.source for c in learner.cells if c.cell_type == "markdown")
    for heading, text in notebooks.sections(readme):
        assert text in markdown, f"README section {heading!r} is missing from the notebook"
    code = "\n".join(c.source for c in learner.cells if c.cell_type == "code")
    assert f"../../grade {lab.number} --submission ." in code
    if lab.needs_cluster:
        assert "kubectl apply" in code and "kubectl describe" in code


@pytest.fixture(scope="module")
def sim_cluster_kubeconfig(tmp_path_factory):
    """The sim cluster that ``make cluster-up BACKEND=sim`` runs, in this process (started on first
    use): the notebooks' kubectl cells run against its API, as a learner's would."""
    from harness.cluster.sim import daemon
    from harness.cluster.sim.docker_runtime import available
    if not available():
        yield None
        return
    sim, server, nodeports = daemon.start_cluster()
    try:
        kc = tmp_path_factory.mktemp("notebooks") / "kubeconfig"
        daemon.write_context(server.url, kc)
        yield str(kc)
    finally:
        daemon.stop_cluster(sim, server, nodeports)


@pytest.mark.parametrize("lab", [pytest.param(lab, marks=[pytest.mark.docker])
                                 for lab in LABS_], ids=[lab.slug for lab in LABS_])
@pytest.mark.parametrize("variant", [notebooks.LEARNER, notebooks.INSTRUCTOR])
def test_notebook_executes_headless(lab, variant, monkeypatch, request):
    """The learner variant runs every cell; the instructor variant skips the heavy and grade cells.
    Cluster labs run their kubectl cells (apply, get, describe, cleanup) against a sim cluster."""
    learner = variant == notebooks.LEARNER
    kubeconfig = request.getfixturevalue("sim_cluster_kubeconfig") if lab.needs_cluster else None
    if kubeconfig:
        monkeypatch.setenv("KUBECONFIG", kubeconfig)
    monkeypatch.setenv("LABS_NOTEBOOK_HEAVY", "1" if learner else "0")
    monkeypatch.setenv("LABS_NOTEBOOK_GRADE", "1" if learner else "0")
    monkeypatch.setenv("BACKEND", "sim")
    nb = nbformat.read(lab.starter / variant, as_version=4)
    before = _tree(REPO_ROOT / "labs", REPO_ROOT / "solutions")
    start = time.monotonic()
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(lab.starter)}}).execute()   # raises on a cell error
    took = time.monotonic() - start
    print(f"\n{lab.slug}: {variant} executed in {took:.1f}s")
    outputs = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "skipped" in outputs or "exit" in outputs, outputs
    if learner:   # every cell ran: none was skipped
        skipped = [line for line in outputs.splitlines() if line.startswith("skipped:")]
        assert not skipped, skipped
        if lab.number == 1:   # the starter image was built, run, and answered /predict
            assert '"label"' in outputs, outputs[-3000:]
        if lab.number == 3:   # hey's summary of the load through the port-forward
            assert "Requests/sec:" in outputs, outputs[-3000:]
    if kubeconfig:   # the cluster cells ran for real, against the sim cluster's API
        assert "kubectl has no reachable cluster" not in outputs, outputs[-2000:]
        assert f"namespace/{notebooks.NAMESPACE.format(n=lab.number)}" in outputs, outputs[-2000:]
        assert "deployment.apps/" in outputs, outputs[-2000:]
    if learner:
        assert "exit 1 (0 all passed" in outputs, outputs[-2000:]   # the starter was graded: some checks fail
    assert _tree(REPO_ROOT / "labs", REPO_ROOT / "solutions") == before, "the notebook changed files"
