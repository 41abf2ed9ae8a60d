"""``rollout.zero-downtime`` judged on recorded observations, no cluster.

With every old pod deleted at once (maxUnavailable: 100%), upstream's kube-proxy
still sends to serving-and-terminating endpoints (ProxyTerminatingEndpoints), so
a preStop sleep can hide the gap and no request fails. Whether one does depends
on how fast the new pod becomes Ready: the check must fail on the sampled
"no pod Ready" alone, or it flakes (CI saw 0 of 360 requests fail once).
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.checks import lab03
from harness.checks.registry import CheckFailed
from harness.load import LoadResult
from harness.scenarios.rollout import Rollout


def load(total=360, failed=0) -> LoadResult:
    return LoadResult(total=total, duration_s=10, rps=36, ok=total - failed, ok_rps=36 - failed / 10,
                      p10_ms=1, p25_ms=1, p50_ms=2, p75_ms=3, p90_ms=4, p95_ms=5, p99_ms=6,
                      fastest_ms=1, slowest_ms=9, average_ms=2, status_counts={200: total - failed},
                      errors={"connection refused": failed} if failed else {}, failed=failed,
                      error_rate=failed / total, tool="hey")


def ctx_with(**kw) -> SimpleNamespace:
    obs = dict(image="v2", replicas=2, surge=1, unavailable=1, load=load(), completed_after_s=6.0,
               stalled_after_s=None, max_pods=3, min_ready=1, versions={"v2": 20})
    obs.update(kw)
    return SimpleNamespace(observations={"rollout_v2": Rollout(**obs)})


def test_solution_like_rollout_passes():
    assert "0 of 360 requests failed" in lab03.zero_downtime(ctx_with())


def test_all_pods_unavailable_fails_even_when_no_request_failed():
    with pytest.raises(CheckFailed, match="no pod was Ready.*maxUnavailable"):
        lab03.zero_downtime(ctx_with(unavailable=2, min_ready=0, max_pods=2))


def test_failed_requests_fail():
    with pytest.raises(CheckFailed, match="3 of 360 requests failed"):
        lab03.zero_downtime(ctx_with(load=load(failed=3)))


def test_bounds_of_the_submissions_strategy_are_checked():
    with pytest.raises(CheckFailed, match="pods ranged up to 4"):
        lab03.zero_downtime(ctx_with(max_pods=4))


def test_a_failure_names_the_reasons_not_the_local_ports():
    r = load(failed=9)
    r.errors.clear()
    r.errors.update({
        'Post "http://127.0.0.1:38419/predict": context deadline exceeded (Client.Timeout exceeded while awaiting headers)': 4,
        'Post "http://127.0.0.1:38419/predict": read tcp 127.0.0.1:50112->127.0.0.1:38419: read: connection reset by peer': 2,
        'Post "http://127.0.0.1:38419/predict": read tcp 127.0.0.1:50113->127.0.0.1:38419: read: connection reset by peer': 2,
        'Post "http://127.0.0.1:38419/predict": EOF': 1,
    })
    r.status_counts[502] = 3
    with pytest.raises(CheckFailed) as err:
        lab03.zero_downtime(ctx_with(load=r))
    assert ("(502×3; context deadline exceeded (Client.Timeout exceeded while ... ×4; "
            "connection reset by peer ×4; 1 other)") in err.value.message
    assert "127.0.0.1" not in err.value.message
