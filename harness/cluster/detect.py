"""Choosing a backend: explicit first, detection second (kind's DetectNodeProvider).

``choose_backend(asked)`` with ``asked`` in ``auto``, ``kind``, ``kubeconfig``,
``sim``:

* ``sim``: always available (the offline simulator).
* ``kind`` / ``kubeconfig`` asked explicitly: used if ``available()``, else
  :class:`~harness.errors.GradingError` (the CLI exits 2) with the install
  instructions. An explicit choice never falls back silently.
* ``auto``: kind when ``kind``, ``kubectl`` and a Docker daemon are there;
  otherwise a running sim cluster (``make cluster-up BACKEND=sim``) through the
  kubeconfig backend, i.e. real kubectl and the kubernetes client against the
  sim's API (:func:`running_sim_cluster`); otherwise the in-process sim. Every
  choice but kind comes with a loud notice: it is returned (the report records
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


def running_sim_cluster() -> tuple[Callable[..., Any], str] | None:
    """A kubeconfig-backend factory bound to the running sim cluster's context, and where it is;
    None when no sim cluster runs (``harness.cluster.sim.daemon``) or kubectl is missing."""
    from functools import partial

    from harness.cluster.sim import daemon

    found = daemon.running_kubeconfig()
    if found is None:
        return None
    url, kubeconfig = found
    cls = _kubeconfig()
    if not cls.available(context=daemon.CONTEXT, kubeconfig=kubeconfig)[0]:
        return None
    return partial(cls, context=daemon.CONTEXT, kubeconfig=kubeconfig), f"context {daemon.CONTEXT}, API {url}"


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
    running = running_sim_cluster()
    if running is not None:
        factory, where = running
        notice = (f"{reason}: grading on the running sim cluster ({where}) through the kubeconfig backend "
                  "(real kubectl against the sim's API). Set BACKEND=sim for the in-process simulator, "
                  "BACKEND=kind to require kind.")
        if console_notice is not None:
            console_notice(notice)
        return BackendChoice("kubeconfig", factory, notice)
    notice = f"{reason}: grading on the offline simulator (sim) instead. Set BACKEND=kind to require kind."
    if console_notice is not None:
        console_notice(notice)
    return BackendChoice("sim", _sim(), notice)
