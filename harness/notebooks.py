"""Generate each lab's notebooks from its README: ``make notebooks``.

The README stays the single source of truth: every ``##`` section becomes a
markdown cell (its text and the commands it shows), and after some sections the
cells that run those steps are inserted (:data:`STEPS`): build and run the
image, ``kubectl apply/get/describe``, ``hey``, Helm (the ``helm`` CLI, or the same engine
through ``python -m harness.helm``), and grading through ``./grade``.

Two files per lab, in the lab folder:

* ``lab.ipynb`` - the learner's notebook;
* ``lab.instructor.ipynb`` - the same plus cells tagged ``solution`` (the diff to
  the reference solution, and grading it); the learner file is this one with the
  ``solution`` cells stripped.

Execution rules the cells keep:

* the kernel's working folder is the lab folder; nothing is written outside it,
  and nothing inside it either: reports go to a temporary folder, cluster objects
  to a namespace of the notebook's own, deleted by the last cell;
* a cell that needs a cluster skips with one line when ``kubectl`` has no
  reachable context (``make cluster-up`` or ``make cluster-up BACKEND=sim`` first);
* the expensive cells (an image build, a load test) skip when
  ``LABS_NOTEBOOK_HEAVY=0`` (CI's run of the instructor variants sets it); grading runs unless
  ``LABS_NOTEBOOK_GRADE=0``. A cell never fails for "some checks failed" (exit 1);
  it fails when the lab could not be graded (exit 2).

Cell ids are derived from the lab, the section and the step (stable across runs),
and every notebook is checked with ``nbformat.validate`` before it is written.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .labs import LABS, Lab

LEARNER, INSTRUCTOR = "lab.ipynb", "lab.instructor.ipynb"
NAMESPACE = "lab-{n:02d}-notebook"

# Shell preambles the code cells start with.
NEEDS_CLUSTER = ('if ! kubectl get --raw /version --request-timeout=5s >/dev/null 2>&1; then\n'
                 '  echo "skipped: kubectl has no reachable cluster (make cluster-up, or make cluster-up BACKEND=sim)"\n'
                 '  exit 0\nfi\n')
NEEDS_DOCKER = ('if ! docker info >/dev/null 2>&1; then echo "skipped: no Docker engine (docker info failed)"; '
                'exit 0; fi\n')
HEAVY = ('if [ "${LABS_NOTEBOOK_HEAVY:-1}" = 0 ]; then echo "skipped: LABS_NOTEBOOK_HEAVY=0 '
         '(run this cell yourself to do the step)"; exit 0; fi\n')
GRADED = ('if [ "${LABS_NOTEBOOK_GRADE:-1}" = 0 ]; then echo "skipped: LABS_NOTEBOOK_GRADE=0"; exit 0; fi\n'
          'report="$(mktemp -d)/report.json"\n')
# ./grade exits 1 when some checks failed: that is a result, not a cell error.
GRADE_OK = 'rc=$?; echo "exit $rc (0 all passed, 1 some failed, 2 could not grade); report: $report"; [ $rc -le 1 ]\n'


@dataclass(frozen=True)
class Step:
    key: str
    source: str
    solution: bool = False   # instructor only (tagged `solution`)


def bash(*parts: str) -> str:
    return "%%bash\n" + "".join(parts).rstrip("\n")


def _namespace_cells(n: int, what: str) -> list[Step]:
    ns = NAMESPACE.format(n=n)
    return [
        Step("apply", bash(NEEDS_CLUSTER, f"kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -\n",
                           f"kubectl apply -n {ns} -f manifests/\n")),
        Step("get", bash(NEEDS_CLUSTER, f"kubectl get {what} -n {ns} -o wide\n")),
        Step("describe", bash(NEEDS_CLUSTER, f"kubectl describe deployments -n {ns} | head -60\n",
                              f"kubectl get events -n {ns} --sort-by=.lastTimestamp | tail -20\n")),
    ]


def _cleanup(n: int) -> Step:
    return Step("cleanup", bash(NEEDS_CLUSTER, f"kubectl delete namespace {NAMESPACE.format(n=n)} "
                                               "--ignore-not-found --wait=false\n"))


def _grade(n: int) -> list[Step]:
    return [
        Step("grade", bash(GRADED, f'../../grade {n} --submission . --backend "${{BACKEND:-sim}}" --report "$report"\n',
                           GRADE_OK)),
        Step("solution-grade", bash(GRADED, f'../../grade {n} --solution --backend "${{BACKEND:-sim}}" '
                                            '--report "$report"\n', GRADE_OK), solution=True),
    ]


def _diff(slug: str, *paths: str) -> Step:
    diffs = "".join(f"diff -ru {p} ../../solutions/{slug}/{p} || true\n" for p in paths)
    return Step("solution-diff", bash("# what the reference solution changes\n", diffs), solution=True)


def _hey(n: int) -> Step:
    ns = NAMESPACE.format(n=n)
    return Step("hey", bash(NEEDS_CLUSTER, HEAVY,
                            'command -v hey >/dev/null || { echo "skipped: hey is not installed (make doctor)"; exit 0; }\n',
                            f"kubectl rollout status deployment/sentiment -n {ns} --timeout=90s || exit 0\n",
                            f"kubectl port-forward -n {ns} svc/sentiment 18080:80 >/dev/null 2>&1 &\npf=$!\n",
                            "trap 'kill $pf' EXIT\nsleep 2\n",
                            "hey -z 10s -c 4 -m POST -T application/json -d '{\"text\":\"I love it\"}' "
                            "http://127.0.0.1:18080/predict | head -20\n",
                            f"kubectl get hpa -n {ns}\n"))


# Lab 05: the helm CLI when the learner has it, else the same engine through the project's venv
HELM = 'HELM=helm; command -v helm >/dev/null || HELM="../../.venv/bin/python -m harness.helm"\n'


def _chart_cells(n: int) -> list[Step]:
    ns = NAMESPACE.format(n=n)
    return [
        Step("lint", bash(HELM, "for env in dev prod; do\n",
                          "  $HELM lint --strict chart -f chart/values-$env.yaml || echo \"lint: fix the findings above\"\n",
                          "done\n")),
        Step("template", bash(HELM, "# what dev renders (prod adds the HPA and the PDB)\n",
                              "$HELM template sentiment chart -f chart/values-dev.yaml | head -60\n")),
        Step("apply", bash(NEEDS_CLUSTER, HELM,
                           f"kubectl create namespace {ns} --dry-run=client -o yaml | kubectl apply -f -\n",
                           f"kubectl create secret generic sentiment-api-key -n {ns} "
                           "--from-literal=API_KEY=\"$(python3 -c 'import secrets; print(secrets.token_hex(12))')\" "
                           "--dry-run=client -o yaml | kubectl apply -f -\n",
                           "# helm template | kubectl apply: what `helm install` would create, without a release\n",
                           f"$HELM template sentiment chart -f chart/values-prod.yaml -n {ns} | kubectl apply -n {ns} -f -\n")),
        Step("get", bash(NEEDS_CLUSTER, f"kubectl get deployments,pods,services,hpa -n {ns} -o wide\n")),
        Step("describe", bash(NEEDS_CLUSTER, f"kubectl describe hpa -n {ns} | head -40\n",
                              f"kubectl describe service sentiment -n {ns} | head -20\n",
                              f"kubectl get events -n {ns} --sort-by=.lastTimestamp | tail -20\n")),
    ]


STEPS: dict[int, dict[str, list[Step]]] = {
    1: {"Tasks": [
            Step("build", bash(NEEDS_DOCKER, HEAVY, "docker build -t sentiment:dev .\n")),
            Step("run", bash(NEEDS_DOCKER, HEAVY,
                             "docker run -d --rm --name lab01-notebook -p 127.0.0.1:18000:8000 sentiment:dev\n",
                             "trap 'docker stop lab01-notebook >/dev/null' EXIT\n",
                             "for i in $(seq 30); do curl -sf localhost:18000/readyz && break; sleep 1; done; echo\n",
                             "curl -s -XPOST localhost:18000/predict -H 'Content-Type: application/json' "
                             "-d '{\"text\":\"I love it\"}'; echo\n")),
            _diff("01-docker", "Dockerfile", "app")],
        "How to grade": _grade(1)},
    2: {"Tasks": [*_namespace_cells(2, "deployments,pods,services,endpoints"), _diff("02-k8s-basics", "manifests")],
        "How to grade": [_cleanup(2), *_grade(2)]},
    3: {"Tasks": [*_namespace_cells(3, "deployments,pods,hpa"), _hey(3), _diff("03-autoscaling", "manifests")],
        "How to grade": [_cleanup(3), *_grade(3)]},
    4: {"Tasks": [*_namespace_cells(4, "deployments,pods,httproutes"), _diff("04-gpu-canary", "manifests")],
        "How to grade": [_cleanup(4), *_grade(4)]},
    5: {"Tasks": [*_chart_cells(5), _diff("05-helm-autoscaling", "chart")],
        "How to grade": [_cleanup(5), *_grade(5)]},
}


def sections(readme: str) -> list[tuple[str, str]]:
    """(heading, text) per ``##`` section; the first is the title block (heading "")."""
    out: list[tuple[str, list[str]]] = [("", [])]
    fence = False
    for line in readme.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        if not fence and line.startswith("## "):
            out.append((line[3:].strip(), [line]))
        else:
            out[-1][1].append(line)
    return [(h, "\n".join(lines).strip()) for h, lines in out if "\n".join(lines).strip()]


def _id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "-", "-".join(parts)).strip("-").lower()[:64]


def build(lab: Lab, instructor: bool):
    import nbformat
    from nbformat import v4

    nb = v4.new_notebook()
    nb.metadata.update({"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                        "language_info": {"name": "python"},
                        "mlops_labs": {"lab": lab.number, "variant": "instructor" if instructor else "learner",
                                       "generated_from": "README.md (make notebooks)"}})
    readme = (lab.starter / "README.md").read_text(encoding="utf-8")
    cells = [v4.new_markdown_cell(
        f"*Generated from this lab's `README.md` by `make notebooks`: edit the README, not this file.* "
        f"Run it from the lab folder (`labs/{lab.slug}/`); cells that need a cluster skip without one.",
        id=_id(f"lab{lab.number:02d}", "about"))]
    steps = STEPS.get(lab.number, {})
    for heading, text in sections(readme):
        sec = _id(f"lab{lab.number:02d}", heading or "title")
        cells.append(v4.new_markdown_cell(text, id=sec))
        for i, step in enumerate(steps.get(heading, [])):
            if step.solution and not instructor:
                continue
            cell = v4.new_code_cell(step.source, id=_id(sec, step.key))
            if step.solution:
                cell.metadata["tags"] = ["solution"]
            cells.append(cell)
    nb.cells = cells
    nbformat.validate(nb)
    return nb


def strip_solutions(nb):
    """The learner variant of an instructor notebook: every cell tagged ``solution`` removed."""
    import copy

    out = copy.deepcopy(nb)
    out.cells = [c for c in out.cells if "solution" not in c.get("metadata", {}).get("tags", [])]
    out.metadata["mlops_labs"]["variant"] = "learner"
    return out


def render(nb) -> str:
    import nbformat
    return nbformat.writes(nb) + "\n"


def generate(labs: list[Lab] | None = None, check: bool = False) -> list[Path]:
    """Write (or with ``check``, compare) both notebooks of every lab; returns the stale/written paths."""
    changed = []
    for lab in labs or [lab for lab in LABS.values() if lab.available]:
        instructor = build(lab, instructor=True)
        for name, nb in ((INSTRUCTOR, instructor), (LEARNER, strip_solutions(instructor))):
            path = lab.starter / name
            text = render(nb)
            if path.exists() and path.read_text(encoding="utf-8") == text:
                continue
            changed.append(path)
            if not check:
                path.write_text(text, encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.notebooks", description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a notebook is not what its README generates")
    args = ap.parse_args(argv)
    changed = generate(check=args.check)
    for p in changed:
        print(f"{'stale' if args.check else 'wrote'}: {p}")
    if args.check and changed:
        print("run `make notebooks` and commit the result")
        return 1
    if not changed:
        print("notebooks are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
