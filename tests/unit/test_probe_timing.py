"""What probe settings imply (harness.probe_timing): Lab 02's liveness and
startup checks compute their bounds from these, for any correct answer."""
from __future__ import annotations

from harness.probe_timing import ContainerProbes

HTTP = {"httpGet": {"path": "/readyz", "port": "http"}}


def probes(startup=None, readiness=None, liveness=None, pod=None):
    c = {"name": "server"}
    for k, v in (("startupProbe", startup), ("readinessProbe", readiness), ("livenessProbe", liveness)):
        if v is not None:
            c[k] = {**HTTP, **v}
    return ContainerProbes.of(c, pod or {})


def test_probe_budget_uses_the_probes_own_grace_then_the_pods_then_30s():
    own = probes(liveness={"periodSeconds": 2, "failureThreshold": 3, "terminationGracePeriodSeconds": 5})
    assert own.liveness.budget == 2 * 3 + 1 + 5
    pod = probes(liveness={"periodSeconds": 2}, pod={"terminationGracePeriodSeconds": 10})
    assert pod.liveness.budget == 2 * 3 + 1 + 10 and "the pod's" in pod.liveness.grace_from
    default = probes(liveness={})
    assert default.liveness.budget == 10 * 3 + 1 + 30


def test_ready_lag_covers_one_startup_and_one_readiness_period():
    docs = probes(startup={"periodSeconds": 10, "failureThreshold": 30}, readiness={"periodSeconds": 2})
    assert docs.ready_lag() == (10 + 1) + (2 + 1)
    assert docs.startup.startup_budget == 300
    no_startup = probes(readiness={"periodSeconds": 2, "timeoutSeconds": 1})
    assert no_startup.ready_lag() == 3
    # a load that ends before the first startup attempt waits for it
    late = probes(startup={"initialDelaySeconds": 20, "periodSeconds": 5})
    assert late.ready_by(8) == 20 + 5 + 1


def test_restart_bound_once_started_waits_for_initial_delay():
    p = probes(liveness={"initialDelaySeconds": 15, "periodSeconds": 2, "failureThreshold": 3,
                         "terminationGracePeriodSeconds": 5})
    bound, why = p.restart_bound(started=True, since_start=9)
    assert bound == (15 - 9) + 12 and "initialDelaySeconds 15" in why
    bound, _ = p.restart_bound(started=True, since_start=30)
    assert bound == 12


def test_restart_bound_before_started_is_the_startup_budget():
    p = probes(startup={"periodSeconds": 2, "failureThreshold": 60}, liveness={"periodSeconds": 2})
    bound, why = p.restart_bound(started=False, since_start=10)
    assert bound == (120 - 10) + 1 + 30 and "startup probe decides" in why
    assert probes().restart_bound(started=True, since_start=0)[0] is None
