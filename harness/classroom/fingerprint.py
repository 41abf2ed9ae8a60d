"""The content hash of a submission: what resuming compares.

It hashes what grading would read - the staged copy (:func:`harness.submission.stage`):
relative paths and bytes of the regular files, in sorted order - so a change to
``.git``/``.venv`` or a file's timestamp does not re-grade, and a change to any
graded file does. A submission that staging refuses (a symlink, too large) is
hashed from the refusal message and a listing of names and sizes, so fixing it
re-grades it.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from ..errors import GradingError
from ..labs import Lab
from ..submission import locate, stage


def tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(folder).as_posix()
            h.update(rel.encode() + b"\0" + str(p.stat().st_size).encode() + b"\0")
            with p.open("rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def _listing(folder: Path) -> str:
    lines = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=False):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            try:
                lines.append(f"{p.relative_to(folder)} {p.lstat().st_size}")
            except OSError:
                lines.append(f"{p.relative_to(folder)} ?")
    return "\n".join(lines)


def content_hash(lab: Lab, submission: Path) -> str:
    """``sha256:<hex>`` of the staged files, or ``refused:<hex>`` when staging refuses the submission."""
    try:
        source = locate(lab, submission)
        with tempfile.TemporaryDirectory(prefix="class-hash-") as tmp:
            staged = stage(lab, source, Path(tmp) / "context").staged
            return "sha256:" + tree_hash(staged)
    except GradingError as exc:
        body = str(exc) + "\n" + (_listing(Path(submission)) if Path(submission).is_dir() else "")
        return "refused:" + hashlib.sha256(body.encode()).hexdigest()
