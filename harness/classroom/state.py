"""What earlier runs of this class graded: ``state.json`` in the report folder.

One entry per student: the content hash, the backend, and the outcome. It is
rewritten (atomically) after every finished submission, so an interrupted run
resumes where it stopped.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

VERSION = 1


def load(path: Path) -> dict[str, dict]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != VERSION:
        return {}
    return dict(data.get("students") or {})


def save(path: Path, students: dict[str, dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"version": VERSION, "students": dict(sorted(students.items()))}, indent=2) + "\n")
    os.replace(tmp, path)
