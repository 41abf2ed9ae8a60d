"""The table's refusals: submissions that cannot be graded exit 2 with what failed and where.

Graded through ``python -m harness grade`` (in-process, backend sim): staging
refuses symlinks and oversized folders (cases that held before issue 16), the
manifest loader refuses hostile YAML (issue 16 item 2), and ``ClusterLab.prepare``
refuses objects outside the grading namespace before anything is applied, images
built or cluster started (issue 16 item 8). None of these needs Docker.

Blind spot before: the YAML and scope cases were not tested at all; a billion-laughs
file took the grader past 3 GiB, and a kube-system pod ran as a real container.
"""
from __future__ import annotations

import pytest

from harness.labs import cluster_lab
from harness.cli import main as harness_main
from harness.manifests import load_dir, refuse_out_of_scope

from .cases import MANIFESTS, SAME_GRADE, STAGING, UNGRADABLE

REFUSED = [c for c in STAGING + MANIFESTS if c.expect == UNGRADABLE]


@pytest.fixture
def no_images(monkeypatch):
    """A refusal must come before any image is built: building one fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("an image build was started for a submission that should be refused")
    monkeypatch.setattr(cluster_lab, "build_lab_images", refuse)


@pytest.mark.parametrize("case", REFUSED, ids=[c.name for c in REFUSED])
def test_refused_with_exit_2_and_where(case, make_case, capsys, no_images):
    folder, markers = make_case(case)
    code = harness_main(["grade", "--lab", str(case.lab), "--submission", str(folder), "--backend", "sim"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 2, out
    assert "cannot grade:" in out and case.message in out and case.where in out, out
    assert "Traceback" not in out


def test_namespace_default_is_graded_in_the_grading_namespace(make_case):
    [case] = [c for c in MANIFESTS if c.name == "namespace-default"]
    assert case.expect == SAME_GRADE
    folder, _ = make_case(case)
    manifests = load_dir(folder)
    notices = refuse_out_of_scope(manifests, "grade-02-k8s-basics-abcde")
    assert len(notices) == 1 and case.notice in notices[0]
    assert all("namespace" not in m.obj["metadata"] for m in manifests)
