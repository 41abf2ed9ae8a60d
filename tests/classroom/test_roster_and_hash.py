"""Roster discovery and the content hash that resuming compares (no Docker)."""
from __future__ import annotations

import os

import pytest

from harness.classroom import roster
from harness.classroom.fingerprint import content_hash
from harness.errors import GradingError
from harness.labs import lab

from .conftest import make_submission

LAB2 = lab(2)


def test_folder_of_folders_sorted_hidden_and_files_skipped(tmp_path):
    for n in ("zoe", "adam", ".git"):
        (tmp_path / n).mkdir()
    (tmp_path / "notes.txt").write_text("x")
    students = roster.find(tmp_path)
    assert [s.name for s in students] == ["adam", "zoe"]
    assert students[0].path == (tmp_path / "adam").resolve()


def test_csv_with_header_relative_paths_and_comments(tmp_path):
    (tmp_path / "forks" / "b").mkdir(parents=True)
    csv = tmp_path / "roster.csv"
    csv.write_text("student,path\n# a comment\nBo Li,forks/b\n\nann@school.edu,/abs/ann\n")
    students = roster.find(csv)
    assert [(s.name, str(s.path)) for s in students] == [
        ("Bo_Li", str(tmp_path.resolve() / "forks" / "b")), ("ann_school.edu", "/abs/ann")]


def test_csv_row_without_path_names_the_line(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("student,path\nann\n")
    with pytest.raises(GradingError) as e:
        roster.find(csv)
    assert e.value.where.endswith("r.csv:2")


def test_duplicate_names_are_an_error_not_an_overwrite(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("a b,x\na_b,y\n")
    with pytest.raises(GradingError, match="share the name 'a_b'"):
        roster.find(csv)


@pytest.mark.parametrize("what", ["missing", "empty"])
def test_no_roster(tmp_path, what):
    src = tmp_path / "nothing" if what == "missing" else tmp_path
    with pytest.raises(GradingError):
        roster.find(src)


def test_hash_follows_graded_content_only(tmp_path):
    sub = make_submission(tmp_path, "ann", "pass")
    h1 = content_hash(LAB2, sub)
    assert h1.startswith("sha256:")
    (sub / ".git").mkdir()
    (sub / ".git" / "HEAD").write_text("ref: refs/heads/main\n")           # not staged
    os.utime(sub / "manifests" / "deployment.yaml", (1, 1))                 # timestamps are not content
    assert content_hash(LAB2, sub) == h1
    (sub / "manifests" / "deployment.yaml").write_text("kind: Deployment\nspec: {}\n")
    h2 = content_hash(LAB2, sub)
    assert h2 != h1
    (sub / "manifests" / "extra.yaml").write_text("")                       # a new empty file counts
    assert content_hash(LAB2, sub) not in (h1, h2)


def test_fork_root_and_lab_folder_hash_alike(tmp_path):
    folder = make_submission(tmp_path / "fork" / "labs", LAB2.slug, "pass")
    assert content_hash(LAB2, tmp_path / "fork") == content_hash(LAB2, folder)


def test_refused_submission_hash_is_stable_and_changes_when_fixed(tmp_path):
    sub = make_submission(tmp_path, "eve", "pass")
    (sub / "manifests" / "passwd").symlink_to("/etc/passwd")
    h1 = content_hash(LAB2, sub)
    assert h1.startswith("refused:") and content_hash(LAB2, sub) == h1
    (sub / "manifests" / "passwd").unlink()
    assert content_hash(LAB2, sub).startswith("sha256:")
