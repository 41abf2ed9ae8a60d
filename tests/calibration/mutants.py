"""Mutants: small patches of a reference solution, each aimed at one check.

A mutant is (name, expected failed check ids, patch function). The patch gets
the path of a fresh copy of the solution and edits files there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable


@dataclass(frozen=True)
class Mutant:
    name: str
    fails: frozenset[str]
    patch: Callable[[Path], None]
    note: str = ""


def edit(rel: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        p = root / rel
        text = p.read_text()
        if old not in text:
            raise AssertionError(f"mutant patch target not found in {rel}: {old!r}")
        p.write_text(text.replace(old, new, count))
    return _patch


def sub(rel: str, pattern: str, new: str) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        p = root / rel
        text, n = re.subn(pattern, new, p.read_text(), flags=re.M | re.S)
        if n == 0:
            raise AssertionError(f"mutant pattern not found in {rel}: {pattern!r}")
        p.write_text(text)
    return _patch


def write(rel: str, content: str) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        (root / rel).write_text(content)
    return _patch


def both(*patches: Callable[[Path], None]) -> Callable[[Path], None]:
    def _patch(root: Path) -> None:
        for p in patches:
            p(root)
    return _patch


LAB01_BUILD_DEPENDENTS = frozenset({
    "image.builds", "image.layer-order", "image.size", "image.no-secrets", "container.healthy",
    "container.ready", "predict.labels", "container.non-root", "container.graceful-stop"})

LAB01 = [
    Mutant("dockerignore-empty", frozenset({"docker.dockerignore"}),
           write(".dockerignore", "__pycache__\n")),
    Mutant("dockerignore-keeps-tests", frozenset({"docker.dockerignore"}),
           sub(".dockerignore", r"^tests\n", "")),
    Mutant("requirements-typo", LAB01_BUILD_DEPENDENTS,
           edit("Dockerfile", "RUN pip install -r requirements.txt", "RUN pip install -r requirement.txt"),
           note="a failed build fails every check that needs the image"),
    Mutant("code-copied-before-deps", frozenset({"image.layer-order"}),
           edit("Dockerfile", "COPY requirements.txt .\n", "COPY . .\n")),
    Mutant("ballast-layer", frozenset({"image.size"}),
           edit("Dockerfile", "USER 10001\n", "RUN head -c 200000000 /dev/urandom > /srv/ballast.bin\nUSER 10001\n")),
    Mutant("api-key-in-env", frozenset({"image.no-secrets"}),
           edit("Dockerfile", "EXPOSE 8000\n", "EXPOSE 8000\nENV STRIPE_SECRET_KEY=sk-live-4f9a8b7c6d5e4f3a2b1c\n")),
    Mutant("password-in-run", frozenset({"image.no-secrets"}),
           edit("Dockerfile", "USER 10001\n", "RUN DB_PASSWORD=hunter2hunter2 true\nUSER 10001\n")),
    Mutant("no-healthcheck", frozenset({"container.healthy"}),
           sub("Dockerfile", r"^HEALTHCHECK .*?\n\n", "")),
    Mutant("model-not-copied", frozenset({"container.ready", "predict.labels"}),
           edit("Dockerfile", "COPY model/ model/\n", ""),
           note="the model never loads, so /readyz stays 503"),
    Mutant("labels-swapped", frozenset({"predict.labels"}),
           edit("app/server.py", '"label": str(classes[i])', '"label": str(classes[-1 - i])')),
    Mutant("runs-as-root", frozenset({"container.non-root"}),
           edit("Dockerfile", "USER 10001\n", "")),
    Mutant("shell-wrapper-cmd", frozenset({"container.graceful-stop"}),
           sub("Dockerfile", r'^CMD \[.*\]$',
               'CMD ["sh", "-c", "gunicorn --config app/gunicorn.conf.py --chdir /srv app.server:app; echo stopped"]')),
]
