"""pods.ready fails at once on refused pods (harness.scenarios.common.refused_pods),
but not on the FailedCreate events that clear up by themselves."""
from __future__ import annotations

from types import SimpleNamespace

from harness.scenarios.common import refused_pods


def ctx_with(events):
    cluster = SimpleNamespace(events=lambda involved_kind=None: [e for e in events
                                                                 if e["involvedObject"]["kind"] == involved_kind])
    return SimpleNamespace(cluster=cluster)


def ev(name, msg, reason="FailedCreate", kind="ReplicaSet"):
    return {"reason": reason, "message": msg, "involvedObject": {"kind": kind, "name": name}}


def test_pod_security_refusal_is_quoted():
    c = ctx_with([ev("sentiment-5d4b9c8f6d", 'Error creating: pods "sentiment-5d4b9c8f6d-" is forbidden: '
                                            'violates PodSecurity "baseline:latest": privileged')])
    got = refused_pods(c, "sentiment")
    assert got.startswith("ReplicaSet/sentiment-5d4b9c8f6d: FailedCreate: Error creating") and "privileged" in got


def test_transient_and_foreign_events_are_ignored():
    c = ctx_with([
        ev("sentiment-5d4b9c8f6d", "Error creating: pods is forbidden: status unknown for quota: grading-quota"),
        ev("sentiment-5d4b9c8f6d", "Error creating: pods is forbidden: error looking up service account ns/default"),
        ev("sentiment-canary-7f9", "Error creating: forbidden: exceeded quota"),   # another Deployment's
        ev("sentiment-5d4b9c8f6d", "Created pod: sentiment-5d4b9c8f6d-abcde", reason="SuccessfulCreate"),
    ])
    assert refused_pods(c, "sentiment") is None


def test_quota_refusal_fails_fast():
    c = ctx_with([ev("sentiment-5d4b9c8f6d", 'Error creating: pods "sentiment-5d4b9c8f6d-x" is forbidden: '
                                            "exceeded quota: grading-quota, requested: limits.memory=2Ti")])
    assert "exceeded quota" in refused_pods(c, "sentiment")
