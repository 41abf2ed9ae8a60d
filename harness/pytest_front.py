"""The pytest front door: grade a lab with pytest, configured by the harness only.

    python -m harness.pytest_front --lab N [--submission DIR] [--backend B]
                                   [--junitxml PATH] [--grade-report PATH]

Exit code: pytest's (0 all checks passed, 1 some failed, 2-4 could not run).

Why a front door: pytest looks for its configuration (``pytest.ini``,
``pytest.toml``, ``tox.ini``, ``setup.cfg``, ``pyproject.toml``) in the common
ancestor of the paths on its command line, and a submission folder is such a
path. A ``pytest.ini`` there with ``pythonpath = .`` and ``addopts = -p mod``
made pytest import ``mod`` from the submission, on the host. Here pytest gets:

* ``-c harness/pytest-grading.ini`` and ``--rootdir`` the harness package, so
  no configuration file is searched for and none of the submission's is read;
* ``--noconftest`` and ``-p no:cacheprovider``: no conftest.py is imported and
  nothing is written next to any file;
* the harness package as its working directory, never the submission, and
  ``python -P``, so the working directory is not put on ``sys.path``;
* the submission only as an option value (``--submission=DIR``, one word),
  never as a path to collect.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

INI = Path(__file__).with_name("pytest-grading.ini")
ROOTDIR = INI.parent


def pytest_command(lab: int, submission: str | None = None, backend: str = "auto",
                   junitxml: str | None = None, grade_report: str | None = None) -> list[str]:
    """The pytest command line for grading ``lab`` (paths made absolute: it runs elsewhere)."""
    argv = [sys.executable, "-P", "-m", "pytest", "-c", str(INI), "--rootdir", str(ROOTDIR),
            "-p", "no:cacheprovider", "--noconftest", "--pyargs", "harness.pytest_grading",
            f"--lab={lab}", f"--backend={backend}"]
    if submission:
        argv.append(f"--submission={Path(submission).expanduser().resolve()}")
    if junitxml:
        argv.append(f"--junitxml={Path(junitxml).expanduser().resolve()}")
    if grade_report:
        argv.append(f"--grade-report={Path(grade_report).expanduser().resolve()}")
    return argv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.pytest_front",
                                 description="Grade one lab with pytest (JUnit XML for CI dashboards).")
    ap.add_argument("--lab", required=True, type=int)
    ap.add_argument("--submission", default=None, help="lab folder or fork root (default: the starter)")
    ap.add_argument("--backend", default="auto", help="auto, sim, kind or kubeconfig")
    ap.add_argument("--junitxml", default=None, help="write JUnit XML here")
    ap.add_argument("--grade-report", default=None, help="also write the JSON/JUnit/Markdown report here")
    args = ap.parse_args(argv)
    command = pytest_command(args.lab, args.submission, args.backend, args.junitxml, args.grade_report)
    return subprocess.run(command, cwd=ROOTDIR, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
