"""Judging a practice scenario: criteria (``verify``) and the broken state's symptoms.

A criterion is behavioural: any valid fix passes, nothing diffs manifests. Each entry of a
scenario's ``verify`` list names a criterion and its numbers, plus ``unmet``: what the
candidate reads while it is not met, in the incident's words (never the answer's).

========================  ==============================================================
criterion                 met when
========================  ==============================================================
``serves``                hey through the entry point for ``seconds`` at ``concurrency``:
                          error rate <= ``max_error_rate`` and p99 <= ``max_p99_ms``
``stable``                the pods of ``selector`` are Ready (at least ``min_ready``) and
                          none restarts for ``seconds``
``rollout_complete``      the Deployment's rollout is complete (``kubectl rollout status``)
``hpa_reads_metric``      the HPA reports a current metric and ScalingActive is True
``version_share``         of ``requests`` sequential calls, ``version`` answers a share in
                          [``min``, ``max``] and at most ``max_error_rate`` fail
``scheduled``             every pod of ``selector`` runs on a node labelled ``node_label``
========================  ==============================================================

A symptom is an observation (:data:`OBSERVATIONS`) and ``expect``: facts that must hold,
``{fact: value}`` (equal, or contained in a list fact) or ``{fact: [op, value]}`` with op
one of ``>= <= > <``. ``within`` (seconds) polls state observations until they hold.
"""
from __future__ import annotations

import operator
import time
from dataclasses import dataclass, field

from harness.cluster.base import Cluster

from . import observe


@dataclass
class Result:
    criterion: str
    met: bool
    unmet: str          # the incident's words, shown when not met
    detail: str         # what was measured
    facts: dict = field(default_factory=dict)


def _serves(c: Cluster, entry: dict, spec: dict) -> tuple[bool, str, dict]:
    f = observe.traffic(c, entry, seconds=spec.get("seconds", 15), concurrency=spec.get("concurrency", 10),
                        timeout_s=spec.get("timeout_s", 5), settle=True)
    max_err, max_p99 = spec.get("max_error_rate", 0.0), spec.get("max_p99_ms")
    ok = f["requests"] > 0 and f["error_rate"] <= max_err and (max_p99 is None or (f["p99_ms"] or 1e9) <= max_p99)
    codes = ", ".join(f"{k}: {v}" for k, v in sorted(f["status_counts"].items()))
    detail = (f"{f['requests']} requests in {spec.get('seconds', 15)} s at concurrency {spec.get('concurrency', 10)}: "
              f"error rate {100 * f['error_rate']:.1f} % (at most {100 * max_err:.1f} %), p99 {f['p99_ms']} ms"
              + (f" (at most {max_p99} ms)" if max_p99 else "") + f"; status codes {codes or 'none'}"
              + (f"; errors {f['errors']}" if f["errors"] else ""))
    return ok, detail, f


def _stable(c: Cluster, entry: dict, spec: dict) -> tuple[bool, str, dict]:
    f = observe.stable(c, spec["selector"], spec.get("seconds", 30), spec.get("min_ready", 1),
                       spec.get("settle_s", 90))
    detail = (f"{f['ready']}/{f['pods']} pods Ready, {f['restarts']} restarts"
              + (f" ({f['why']})" if f["why"] else f", none for {spec.get('seconds', 30)} s")
              + (f"; states: {', '.join(f['reasons'])}" if f["reasons"] else ""))
    return f["stable"], detail, f


def _rollout_complete(c: Cluster, entry: dict, spec: dict) -> tuple[bool, str, dict]:
    deadline = time.monotonic() + spec.get("settle_s", 60)
    while True:
        f = observe.deployment(c, spec["deployment"])
        if f["complete"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    detail = (f"deployment {spec['deployment']}: {f.get('updated', 0)} updated, {f.get('available', 0)} available "
              f"of {f.get('replicas', '?')}" + (f" ({f['progressing_reason']})" if f["progressing_reason"] else ""))
    return f["complete"], detail, f


def _hpa_reads_metric(c: Cluster, entry: dict, spec: dict) -> tuple[bool, str, dict]:
    deadline = time.monotonic() + spec.get("settle_s", 60)
    while True:
        f = observe.hpa(c, spec["hpa"])
        ok = f["metric"] == "known" and f["scaling_active"] == "True"
        if ok or time.monotonic() > deadline:
            break
        time.sleep(2)
    detail = f"HPA {spec['hpa']}: metric {f['metric']}, ScalingActive {f['scaling_active']} {f['reason']}".strip()
    return ok, detail, f


def _version_share(c: Cluster, entry: dict, spec: dict) -> tuple[bool, str, dict]:
    time.sleep(spec.get("settle_s", 5))   # a route change is programmed into the Gateway a moment after it is stored
    f = observe.versions(c, entry, requests_n=spec.get("requests", 600))
    share = f.get(f"share_{spec['version']}", 0.0)
    ok = spec.get("min", 0.0) <= share <= spec.get("max", 1.0) and f["error_rate"] <= spec.get("max_error_rate", 0.0)
    detail = (f"{f['requests']} requests: {spec['version']} answered {100 * share:.1f} % (wanted "
              f"{100 * spec.get('min', 0):.1f}-{100 * spec.get('max', 1):.1f} %), error rate "
              f"{100 * f['error_rate']:.1f} % (at most {100 * spec.get('max_error_rate', 0):.1f} %); versions "
              f"{f['versions']}")
    return ok, detail, f


def _scheduled(c: Cluster, entry: dict, spec: dict) -> tuple[bool, str, dict]:
    key, _, value = spec["node_label"].partition("=")
    deadline = time.monotonic() + spec.get("settle_s", 60)
    while True:
        f = observe.pod_facts(c, spec["selector"])
        labels = {n: (c.get("Node", n)["metadata"].get("labels") or {}) for n in f["nodes"]}
        on = [n for n, lab in labels.items() if key in lab and (not value or lab[key] == value)]
        ok = f["pods"] > 0 and f["ready"] == f["pods"] and len(on) == len(labels) and len(labels) > 0
        if ok or time.monotonic() > deadline:
            break
        time.sleep(1)
    detail = (f"{f['ready']}/{f['pods']} pods Ready, on node(s) {', '.join(f['nodes']) or 'none'}"
              + (f"; states: {', '.join(f['reasons'])}" if f["reasons"] else ""))
    return ok, detail, {**f, "on_labelled": on}


MET = {"serves": "the entry point answers under load", "stable": "the pods are Ready and do not restart",
       "rollout_complete": "the rollout is complete", "hpa_reads_metric": "the HPA reads its metric",
       "version_share": "the traffic split between versions is as asked",
       "scheduled": "the pods run on the nodes they need"}

CRITERIA = {"serves": _serves, "stable": _stable, "rollout_complete": _rollout_complete,
            "hpa_reads_metric": _hpa_reads_metric, "version_share": _version_share, "scheduled": _scheduled}


def check(cluster: Cluster, entry: dict, criteria: tuple[dict, ...], log=print) -> list[Result]:
    """Every criterion in order; a criterion that cannot be measured is unmet, with the reason."""
    out = []
    for spec in criteria:
        name = spec["criterion"]
        log(f"measuring: {name} ...")
        try:
            met, detail, facts = CRITERIA[name](cluster, entry, spec)
        except Exception as exc:  # noqa: BLE001 - an entry point that is gone is an unmet criterion
            met, detail, facts = False, f"could not measure: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", {}
        out.append(Result(name, met, spec["unmet"], detail, facts))
    return out


# ---- symptoms (calibration: the broken state shows what the incident says) ------------------------
def _obs_traffic(c, entry, spec):
    return observe.traffic(c, entry, seconds=spec.get("seconds", 10), concurrency=spec.get("concurrency", 10),
                           timeout_s=spec.get("timeout_s", 5), selector=spec.get("selector"))


OBSERVATIONS = {
    "traffic": (_obs_traffic, False),
    "versions": (lambda c, e, s: observe.versions(c, e, requests_n=s.get("requests", 400)), False),
    "pods": (lambda c, e, s: observe.pod_facts(c, s["selector"]), True),
    "hpa": (lambda c, e, s: observe.hpa(c, s["hpa"]), True),
    "endpoints": (lambda c, e, s: observe.endpoints(c, s["service"]), True),
    "deployment": (lambda c, e, s: observe.deployment(c, s["deployment"]), True),
}
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def unmet_expectations(facts: dict, expect: dict) -> list[str]:
    bad = []
    for key, want in expect.items():
        have = facts.get(key)
        if isinstance(want, list) and len(want) == 2 and want[0] in _OPS:
            ok = have is not None and _OPS[want[0]](have, want[1])
        elif isinstance(have, list):
            ok = want in have
        else:
            ok = have == want
        if not ok:
            bad.append(f"{key} is {have!r}, expected {want!r}")
    return bad


def symptom(cluster: Cluster, entry: dict, spec: dict) -> tuple[dict, list[str]]:
    """Observe one symptom (polling state observations up to ``within`` s); (facts, unmet)."""
    fn, is_state = OBSERVATIONS[spec["observe"]]
    deadline = time.monotonic() + (spec.get("within", 60) if is_state else 0)
    while True:
        facts = fn(cluster, entry, spec)
        bad = unmet_expectations(facts, spec["expect"])
        if not bad or time.monotonic() >= deadline:
            return facts, bad
        time.sleep(1)
