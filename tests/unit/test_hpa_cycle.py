"""The HPA scenario's scale-down watch, on a fake cluster and a fake clock.

Upstream's HPA scales down to the highest recommendation of the last
``behavior.scaleDown.stabilizationWindowSeconds`` (300 s by default), so a window
longer than the watch can show no scale-down: the scenario then watches two sync
periods (still sampling the bounds) instead of waiting out its whole watch.
"""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from harness.errors import ScenarioFailed
from harness.scenarios import hpa as hs


class Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    def sleep(self, s):
        self.now += s


class FakeCluster:
    """Replicas: minReplicas until ``up_at``, then 3; back to 2 ``down_after`` s after the load stops."""
    hpa_sync_period = 5.0

    def __init__(self, clock, window_s):
        self.clock, self.window_s = clock, window_s
        self.load_stopped_at = None

    def get(self, kind, name):
        if kind == "HorizontalPodAutoscaler":
            return {"status": {"conditions": []}}
        stopped = self.load_stopped_at
        down = stopped is not None and self.clock.now - stopped >= self.window_s
        return {"metadata": {"name": name}, "spec": {"replicas": 2 if down else 3}}


def _ctx(clock, window_s, behavior):
    hpa = {"spec": {"minReplicas": 2, "maxReplicas": 4, **({"behavior": behavior} if behavior else {})}}
    dep = {"metadata": {"name": "sentiment"}, "spec": {}}
    cluster = FakeCluster(clock, window_s)
    ctx = SimpleNamespace(observations={}, cluster=cluster, applied=[dep],
                          one=lambda kind: SimpleNamespace(obj=hpa, name="sentiment"),
                          objects=lambda kind: [SimpleNamespace(obj=dep, name="sentiment")])
    return ctx, cluster


@pytest.fixture
def run(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(hs.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(hs.time, "sleep", clock.sleep)

    def no_traffic(ctx):
        raise ScenarioFailed("no Service")
    monkeypatch.setattr(hs, "traffic", no_traffic)

    def go(window_s, behavior):
        ctx, cluster = _ctx(clock, window_s, behavior)
        orig_get = cluster.get

        def get(kind, name):
            # replicas are 3 from the start (a scale-up at 0 s), so the load runs extra_load_s (15 s) more
            if cluster.load_stopped_at is None and clock.now - 1000.0 >= 15.0:
                cluster.load_stopped_at = clock.now
            return orig_get(kind, name)
        cluster.get = get
        return hs.hpa_cycle(ctx, max_down_s=120)
    return go


@pytest.mark.parametrize("behavior, window, watched_at_most, scaled_down", [
    # (spec.behavior, when the fake scales down after the load, the watch's bound, a scale-down seen)
    ({"scaleDown": {"stabilizationWindowSeconds": 30}}, 30, 120, True),
    # window - sync <= watch: wait (the last high recommendation came up to a sync before the load stopped)
    ({"scaleDown": {"stabilizationWindowSeconds": 120}}, 115, 120, True),
    ({"scaleDown": {"stabilizationWindowSeconds": 200}}, 200, 2 * 5.0 + 1, False),
    (None, 300, 2 * 5.0 + 1, False),                                          # upstream's default: 300 s
])
def test_the_scale_down_watch_follows_the_stabilization_window(run, behavior, window, watched_at_most, scaled_down):
    obs = run(window, behavior)
    assert obs.first_scale_up_s == 0
    assert obs.load_s >= 15          # a scale-up at 0 s still gets extra_load_s more load (0.0 is not "none")
    assert (obs.first_scale_down_s is not None) is scaled_down
    assert obs.watch_down_s <= watched_at_most
    if not scaled_down:
        assert obs.watch_down_s >= 2 * 5.0          # two syncs sampled after the load
