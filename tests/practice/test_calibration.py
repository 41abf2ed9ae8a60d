"""Calibration of every practice scenario on a sim cluster that serves the Kubernetes API.

For each scenario (practice/<id>/), through real kubectl and the kubeconfig backend:
1. the broken state shows the incident's symptom (measured: the 504s and the low CPU, the
   OOMKilled reason, the ``<unknown>`` metric ...);
2. ``practice-check``'s criteria fail on it;
3. the first of its wrong fixes (a plausible one) still fails them;
4. the reference fix, applied with kubectl on top, passes them.

The scenarios run side by side, each in a namespace of its own, on one sim cluster (most of a
scenario's time is waiting for pods and probes); the two that publish a Gateway on port 80 take
turns. A table of setup and check times is printed (pytest -s, and in the failure message).
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.practice import catalog, run, target, verify

pytestmark = [pytest.mark.docker, pytest.mark.slow]
GATEWAY_PORT = threading.Lock()


def _calibrate(sc: catalog.Scenario, context: str, kubeconfig: str) -> dict:
    ns = f"practice-{sc.id}"[:63]
    out = {"id": sc.id, "problems": []}

    def commands(lines):
        return [line.replace("-n practice ", f"-n {ns} ") for line in lines]

    lock = GATEWAY_PORT if "gateway" in sc.entry else None
    if lock:
        lock.acquire()
    try:
        t0 = time.monotonic()
        cluster = target.connect(context, kubeconfig, namespace=ns, create=True)
        try:
            target.build_images(sc.images, cluster, log=lambda m: None)
            run.setup(cluster, sc, log=lambda m: None)
            out["setup_s"] = round(time.monotonic() - t0, 1)
            for s in sc.symptom:
                facts, bad = verify.symptom(cluster, sc.entry, s)
                if bad:
                    out["problems"].append(f"symptom {s['observe']}: {'; '.join(bad)} (facts {facts})")
            t1 = time.monotonic()
            broken = verify.check(cluster, sc.entry, sc.verify, log=lambda m: None)
            out["check_broken_s"] = round(time.monotonic() - t1, 1)
            if all(r.met for r in broken):
                out["problems"].append("practice-check passes on the broken state: "
                                       + "; ".join(r.detail for r in broken))
            name, wrong = next(iter(sc.wrong_fixes.items()))
            run.kubectl_commands(commands(wrong), context, kubeconfig)
            after_wrong = verify.check(cluster, sc.entry, sc.verify, log=lambda m: None)
            if all(r.met for r in after_wrong):
                out["problems"].append(f"the wrong fix {name!r} passes: " + "; ".join(r.detail for r in after_wrong))
            run.kubectl_commands(commands(sc.fix), context, kubeconfig)
            t2 = time.monotonic()
            fixed = verify.check(cluster, sc.entry, sc.verify, log=lambda m: None)
            out["check_fixed_s"] = round(time.monotonic() - t2, 1)
            for r in fixed:
                if not r.met:
                    out["problems"].append(f"the reference fix fails {r.criterion}: {r.detail}")
            out["wrong_fix"] = name
        finally:
            try:
                target.delete_namespace(cluster, ns, wait_s=60)
            finally:
                cluster.stop()
    except Exception as exc:  # noqa: BLE001 - reported in the table, with the scenario's id
        out["problems"].append(f"{type(exc).__name__}: {exc}")
    finally:
        if lock:
            lock.release()
    out["total_s"] = round(time.monotonic() - t0, 1)
    return out


def test_every_scenario_shows_its_symptom_fails_broken_and_on_a_wrong_fix_and_passes_fixed(sim_api_kubeconfig):
    context, kubeconfig = sim_api_kubeconfig
    scenarios = catalog.all_scenarios()
    assert len(scenarios) >= 10
    only = [i for i in os.environ.get("PRACTICE_ONLY", "").split(",") if i]   # a scenario author's quick run
    if only:
        scenarios = [s for s in scenarios if s.id in only]
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda sc: _calibrate(sc, context, kubeconfig), scenarios))
    table = "\n".join(f"  {r['id']:<28} setup {r.get('setup_s', '-'):>5} s  check broken {r.get('check_broken_s', '-'):>5} s"
                      f"  check fixed {r.get('check_fixed_s', '-'):>5} s  total {r['total_s']:>6} s"
                      f"  wrong fix {r.get('wrong_fix', '-')}" for r in results)
    print(f"\npractice calibration on sim, {len(results)} scenarios in {time.monotonic() - start:.0f} s:\n{table}")
    problems = [f"{r['id']}: {p}" for r in results for p in r["problems"]]
    assert not problems, "\n".join(problems) + "\n" + table
