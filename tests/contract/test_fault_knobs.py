"""The Flask server's knobs that practice incidents (and Lab 05) use, on the host.

``DOWNSTREAM_LATENCY_MS`` waits without CPU, ``PREDICT_ERROR_RATE`` fails an exact fraction,
and ``inference_requests_in_flight`` counts the requests being served. (The BentoML server
does not have these knobs yet; Lab 05 adds them there.)
"""
from __future__ import annotations

import concurrent.futures as cf
import re
import time

from . import servers

SENT = {"text": "I love this, it is wonderful"}


def _in_flight(s) -> float:
    m = re.search(r"^inference_requests_in_flight\s+([0-9.e+]+)$", s.get("/metrics").text, re.M)
    assert m, "no inference_requests_in_flight gauge on /metrics"
    return float(m.group(1))


def test_downstream_latency_error_rate_and_in_flight_gauge():
    s = servers.start("flask-host", {"DOWNSTREAM_LATENCY_MS": "400", "PREDICT_ERROR_RATE": "0.25",
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
    finally:
        s.stop()
