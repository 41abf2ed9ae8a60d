"""``python -m harness.practice``: the front door behind ``make practice*``.

Exit codes: 0 done (``check``: every criterion met), 1 ``check`` with a criterion unmet,
2 could not run (unknown scenario, none running, the cluster went away), with one line
saying why and what to run.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

from harness.errors import GradingError

from . import catalog, run, session, target, verify

REPORTS = Path("reports") / "practice"


def say(msg: str = "") -> None:
    print(msg, flush=True)


def cmd_list(_a) -> int:
    say("practice scenarios (make practice SCENARIO=<id>; SCENARIO=random MINUTES=20 for a mock interview):")
    for s in catalog.all_scenarios():
        say(f"  {s.id:<28} {s.title}")
    return 0


def _banner(s: session.Session, sc: catalog.Scenario) -> None:
    say("")
    say(f"=== incident{'' if s.hidden else ': ' + sc.id} (namespace {s.namespace}, context "
        f"{s.context or '(current)'}) ===")
    say(sc.incident)
    say("")
    say(f"kubectl -n {s.namespace} ...   is where to look.  make practice-check  when you think it is fixed; "
        "make practice-hint  for a hint.")
    if s.minutes:
        say(f"timer: {s.minutes} minutes, started now.")


def cmd_start(a) -> int:
    ids = catalog.ids()
    hidden = a.scenario == "random"
    sid = random.Random(a.seed).choice(ids) if hidden else a.scenario
    sc = catalog.load(sid)
    old = session.running()
    context, kubeconfig = target.resolve()
    if old is not None:
        say(f"ending the running scenario first ({old.label})")
    say(f"setting up {'a random incident' if hidden else sid} ...")
    cluster = _set_up(sc, context, kubeconfig, target.NAMESPACE)
    s = session.Session(scenario=sid, context=cluster.kubectl.context, kubeconfig=kubeconfig,
                        namespace=target.NAMESPACE, started=time.time(), minutes=a.minutes or None, hidden=hidden)
    s.save()
    _banner(s, sc)
    return 0


def _set_up(sc: catalog.Scenario, context: str | None, kubeconfig: str | None, namespace: str):
    """A fresh namespace with the scenario's broken state; returns the (stopped) backend used."""
    from harness.cluster.kubeconfig import KubeconfigCluster
    target.delete_namespace(KubeconfigCluster(context=context, kubeconfig=kubeconfig, existing_namespace=namespace),
                            namespace)
    cluster = target.connect(context, kubeconfig, namespace=namespace, create=True)
    try:
        target.build_images(sc.images, cluster, log=lambda m: say(f"  {m}"))
        run.setup(cluster, sc, log=lambda m: say(f"  {m}"))
    finally:
        cluster.stop()
    return cluster


def cmd_check(_a) -> int:
    s = session.current()
    sc = catalog.load(s.scenario)
    cluster = target.connect(s.context, s.kubeconfig, namespace=s.namespace)
    try:
        results = verify.check(cluster, sc.entry, sc.verify, log=lambda m: say(f"  {m}"))
    finally:
        cluster.stop()
    s.checks += 1
    solved = all(r.met for r in results)
    s.history.append({"at": round(s.elapsed_s, 1), "met": [r.met for r in results]})
    say("")
    for r in results:
        say(f"  {'PASS' if r.met else 'FAIL'}  {verify.MET[r.criterion] if r.met else r.unmet}")
        say(f"        measured: {r.detail}")
    if solved and s.solved_at is None:
        s.solved_at = time.time()
    s.save()
    say("")
    if solved:
        say(f"solved in {s.timer()} with {s.hints_used} hint(s) and {s.checks} check(s).")
        _write_report(s, sc, results)
        return 0
    say(f"not yet: {sum(not r.met for r in results)} of {len(results)} still as users reported. "
        f"time: {s.timer()}. `make practice-hint` for a hint.")
    return 1


def cmd_hint(_a) -> int:
    s = session.current()
    sc = catalog.load(s.scenario)
    if s.hints_used >= len(sc.hints):
        say(f"no more hints ({len(sc.hints)} given). `make practice-end` shows the debrief.")
        return 0
    s.hints_used += 1
    s.save()
    say(f"hint {s.hints_used} of {len(sc.hints)}: {sc.hints[s.hints_used - 1]}")
    return 0


def cmd_reset(_a) -> int:
    s = session.current()
    sc = catalog.load(s.scenario)
    say(f"setting {s.label} up again (the timer keeps running) ...")
    _set_up(sc, s.context, s.kubeconfig, s.namespace)
    _banner(s, sc)
    return 0


def cmd_end(_a) -> int:
    s = session.current()
    sc = catalog.load(s.scenario)
    paths = _write_report(s, sc, None)
    from harness.cluster.kubeconfig import KubeconfigCluster
    try:
        target.delete_namespace(KubeconfigCluster(context=s.context, kubeconfig=s.kubeconfig,
                                                  existing_namespace=s.namespace), s.namespace, wait_s=30)
        say(f"namespace {s.namespace} deleted")
    except Exception as exc:  # noqa: BLE001 - a cluster that went away: nothing left to clean
        say(f"namespace {s.namespace} not deleted ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
    session.clear()
    say(f"scenario {sc.id}: {'solved in ' + s.timer() if s.solved_at else 'not solved (' + s.timer() + ')'}, "
        f"{s.hints_used} hint(s). Report: {paths[0]}, debrief: {paths[1]}")
    return 0


def _write_report(s: session.Session, sc: catalog.Scenario, results) -> tuple[Path, Path]:
    REPORTS.mkdir(parents=True, exist_ok=True)
    stem = REPORTS / f"{sc.id}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(s.started))}"
    report = {"scenario": sc.id, "title": sc.title, "solved": s.solved_at is not None,
              "time_s": round(s.elapsed_s, 1), "minutes": s.minutes, "in_time": (s.solved_at is not None and (
                  not s.minutes or s.elapsed_s <= s.minutes * 60)), "hints_used": s.hints_used,
              "hints_total": len(sc.hints), "checks": s.checks, "history": s.history}
    if results is not None:
        report["criteria"] = [{"criterion": r.criterion, "met": r.met, "unmet": r.unmet, "measured": r.detail}
                              for r in results]
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    md = [f"# Debrief: {sc.title} (`{sc.id}`)", "",
          f"- result: {'solved' if report['solved'] else 'not solved'} in {s.timer()}"
          + (" (in time)" if report["in_time"] and s.minutes else ""),
          f"- hints used: {s.hints_used} of {len(sc.hints)}; checks run: {s.checks}", "",
          "## The incident", "", sc.incident, "", sc.debrief]
    stem.with_suffix(".md").write_text("\n".join(md) + "\n")
    return stem.with_suffix(".json"), stem.with_suffix(".md")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m harness.practice", description="break-fix interview practice")
    sub = ap.add_subparsers(dest="cmd")
    sub.add_parser("list")
    st = sub.add_parser("start")
    st.add_argument("scenario")
    st.add_argument("--minutes", type=int, default=0)
    st.add_argument("--seed", type=int, default=None)
    for name in ("check", "hint", "reset", "end"):
        sub.add_parser(name)
    a = ap.parse_args(argv)
    handlers = {"list": cmd_list, "start": cmd_start, "check": cmd_check, "hint": cmd_hint, "reset": cmd_reset,
                "end": cmd_end, None: cmd_list}
    try:
        return handlers[a.cmd](a)
    except GradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        print(f"error: {type(exc).__name__}: {first}\n  -> is the cluster still running? "
              f"`{'make cluster-status' }`; then `make practice-reset`", file=sys.stderr)
        return 2
