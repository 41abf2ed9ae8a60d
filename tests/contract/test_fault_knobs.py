"""The servers' knobs that practice incidents and Lab 05 use, on the host, for both
reference servers (Flask + gunicorn and BentoML).

``DOWNSTREAM_LATENCY_MS`` waits without CPU, ``PREDICT_ERROR_RATE`` fails an exact fraction,
``inference_requests_in_flight`` counts the requests being served (summed over workers) and
``inference_queue_length`` the texts waiting for the next model batch.
"""
from __future__ import annotations

import concurrent.futures as cf
import re
import time

import pytest

from . import servers

SENT = {"text": "I love this, it is wonderful"}


def _gauge(s, name: str = "inference_requests_in_flight") -> float:
    m = re.search(rf"^{name}(?:{{[^}}]*}})?\s+([0-9.e+-]+)$", s.get("/metrics").text, re.M)
    assert m, f"no {name} gauge on /metrics"
    return float(m.group(1))


def _in_flight(s) -> float:
    return _gauge(s)


@pytest.mark.parametrize("server_kind", ["flask-host", "bentoml-host"])
def test_downstream_latency_error_rate_and_in_flight_gauge(server_kind):
    s = servers.start(server_kind, {"DOWNSTREAM_LATENCY_MS": "400", "PREDICT_ERROR_RATE": "0.25",
                                    "WEB_CONCURRENCY": "1", "THREADS": "8"})
    try:
        s.wait_ready()
        assert _in_flight(s) == 0
        codes, took = [], []
        for _ in range(8):
            t = time.perf_counter()
            codes.append(s.post("/predict", json=SENT).status_code)
            took.append(time.perf_counter() - t)
        assert sorted(codes) == [200] * 6 + [500] * 2, codes     # exactly a quarter, not sampled
        assert min(took) >= 0.4, took                              # every request waited downstream
        with cf.ThreadPoolExecutor(4) as pool:
            futs = [pool.submit(s.post, "/predict", json=SENT) for _ in range(4)]
            time.sleep(0.2)
            during = _in_flight(s)
            [f.result() for f in futs]
        assert during == 4, during
        assert _in_flight(s) == 0
        assert _gauge(s, "inference_queue_length") == 0   # nothing waits for a batch once all answered
    finally:
        s.stop()
