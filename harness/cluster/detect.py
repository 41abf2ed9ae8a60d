"""Choosing a backend: explicit first, detection second (kind's DetectNodeProvider).

``choose_backend(asked)`` with ``asked`` in ``auto``, ``kind``, ``kubeconfig``,
``sim``:

* ``sim``: always available (the offline simulator).
* ``kind`` / ``kubeconfig`` asked explicitly: used if ``available()``, else
  :class:`~harness.errors.GradingError` (the CLI exits 2) with the install
  instructions. An explicit choice never falls back silently.
* ``auto``: kind when ``kind``, ``kubectl`` and a Docker daemon are there;
  otherwise sim, with a loud notice. The notice is returned (the report records
  it) and passed to ``console_notice`` so the learner sees it.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

from harness.errors import GradingError

NAMES = ("auto", "kind", "kubeconfig", "sim")


class BackendChoice(NamedTuple):
    name: str                        # "kind", "kubeconfig" or "sim"
    factory: Callable[..., Any]      # the backend's class; call it (with keyword options) to get a Cluster
    notice: str | None               # set when auto fell back to sim: record it in the report


def _kind():
    from harness.cluster.kind import KindCluster
    return KindCluster


def _kubeconfig():
    from harness.cluster.kubeconfig import KubeconfigCluster
    return KubeconfigCluster


def _sim():
    from harness.cluster.sim.cluster import SimCluster
    return SimCluster


def choose_backend(asked: str, *, console_notice: Callable[[str], None] | None = None) -> BackendChoice:
    asked = (asked or "auto").strip().lower()
    if asked not in NAMES:
        raise GradingError(f"unknown backend {asked!r}", fix=f"use one of: {', '.join(NAMES)}")
    if asked == "sim":
        return BackendChoice("sim", _sim(), None)
    if asked in ("kind", "kubeconfig"):
        cls = _kind() if asked == "kind" else _kubeconfig()
        ok, reason = cls.available()
        if not ok:
            raise GradingError(f"BACKEND={asked} was asked for, but {reason}",
                               fix="install what is missing, or grade offline with BACKEND=sim")
        return BackendChoice(asked, cls, None)
    cls = _kind()
    ok, reason = cls.available()
    if ok:
        return BackendChoice("kind", cls, None)
    notice = f"{reason}: grading on the offline simulator (sim) instead. Set BACKEND=kind to require kind."
    if console_notice is not None:
        console_notice(notice)
    return BackendChoice("sim", _sim(), notice)
