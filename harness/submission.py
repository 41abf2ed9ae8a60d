"""Find a submission's lab folder and copy it, as data only, into a staging dir.

``SUBMISSION`` may be the lab folder itself or the root of a copy of this
repository (a student's fork); then ``labs/0N-*/`` inside it is used.

The copy is the only thing grading reads or builds. It enforces limits (file
count, total size), skips anything that is not a regular file or directory,
and refuses symlinks, so nothing outside the submission can be reached. No
file of the submission is ever imported or executed on the host.
"""
from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from .errors import GradingError
from .labs import Lab

MAX_FILES = 2_000
MAX_BYTES = 50 * 1024 * 1024
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", "node_modules", ".pytest_cache"}


@dataclass(frozen=True)
class Submission:
    lab: Lab
    path: Path     # the lab folder as given (for messages)
    staged: Path   # the copy that grading uses


def locate(lab: Lab, submission: Path | str | None) -> Path:
    """The lab folder inside ``submission`` (default: the repo's own labs/ folder)."""
    if submission is None:
        return lab.starter
    root = Path(submission).expanduser().resolve()
    if not root.is_dir():
        raise GradingError("submission folder not found", where=str(submission),
                           fix="pass SUBMISSION=path/to/your/lab-folder (or the root of your fork)")
    if (root / "labs" / lab.slug).is_dir():
        return root / "labs" / lab.slug
    if root.name == lab.slug or any((root / n).exists() for n in ("Dockerfile", "manifests")):
        return root
    raise GradingError(f"no {lab.slug} lab found", where=str(root),
                       fix=f"point SUBMISSION at your labs/{lab.slug}/ folder or at your fork's root")


def stage(lab: Lab, source: Path, dest: Path, *, keep_ignored: bool = True) -> Submission:
    """Copy ``source`` to ``dest`` safely. ``keep_ignored`` keeps .git/.venv style
    folders out of the file budget but does not copy them."""
    files = 0
    total = 0
    dest.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(source, followlinks=False):
        rel = Path(dirpath).relative_to(source)
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for d in list(dirnames):
            if (Path(dirpath) / d).is_symlink():
                raise GradingError("symlinks are not allowed in a submission",
                                   where=str(rel / d), fix="replace the link with the real folder")
            (dest / rel / d).mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            src = Path(dirpath) / name
            st = src.lstat()
            if stat.S_ISLNK(st.st_mode):
                raise GradingError("symlinks are not allowed in a submission",
                                   where=str(rel / name), fix="replace the link with the real file")
            if not stat.S_ISREG(st.st_mode):
                continue
            files += 1
            total += st.st_size
            if files > MAX_FILES or total > MAX_BYTES:
                raise GradingError(
                    f"submission is too large (over {MAX_FILES} files or {MAX_BYTES // 2**20} MiB)",
                    where=str(source), fix="remove build outputs, datasets and virtualenvs from the lab folder")
            shutil.copyfile(src, dest / rel / name)
    return Submission(lab, source, dest)
