"""Who is in the class: a folder of student folders (or fork roots), or a CSV of ``student,path``.

A student's name becomes file names in the report folder, so it is reduced to
letters, digits, ``.``, ``_`` and ``-``; two students with the same reduced name
are an error (the message names both), not a silent overwrite.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import GradingError


@dataclass(frozen=True)
class Student:
    name: str     # safe as a file name
    path: Path    # the student's lab folder or fork root, as given


def safe_name(raw: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", raw.strip()).strip("._") or "student"
    return name[:80]


def from_folder(folder: Path) -> list[Student]:
    """Every non-hidden folder directly under ``folder`` is one student."""
    return [Student(safe_name(p.name), p) for p in sorted(folder.iterdir())
            if p.is_dir() and not p.name.startswith(".")]


def from_csv(path: Path) -> list[Student]:
    """Rows ``student,path``; a header row is optional; relative paths are relative to the CSV."""
    students = []
    with path.open(newline="", encoding="utf-8") as f:
        for lineno, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if lineno == 1 and [c.lower() for c in cells[:2]] == ["student", "path"]:
                continue
            if len(cells) < 2 or not cells[0] or not cells[1]:
                raise GradingError("a roster row needs a student and a path", where=f"{path}:{lineno}",
                                   fix="write each row as: student,path/to/their/fork")
            p = Path(cells[1]).expanduser()
            students.append(Student(safe_name(cells[0]), p if p.is_absolute() else path.parent / p))
    return students


def find(submissions: Path | str) -> list[Student]:
    """The class roster from ``SUBMISSIONS`` (a folder or a ``.csv`` file), sorted by name."""
    src = Path(submissions).expanduser().resolve()
    if src.is_file():
        students = from_csv(src)
    elif src.is_dir():
        students = from_folder(src)
    else:
        raise GradingError("SUBMISSIONS not found", where=str(src),
                           fix="pass SUBMISSIONS=a folder of student folders, or a CSV of student,path")
    if not students:
        raise GradingError("no submissions found", where=str(src),
                           fix="put one folder per student in it (or one student,path row per student)")
    seen: dict[str, Student] = {}
    for s in students:
        if s.name in seen:
            raise GradingError(f"two submissions share the name {s.name!r}",
                               where=f"{seen[s.name].path} and {s.path}",
                               fix="give each student a distinct name (folder name or CSV student column)")
        seen[s.name] = s
    return sorted(students, key=lambda s: s.name)
