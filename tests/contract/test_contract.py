"""The model-server contract, for both reference servers (Flask + gunicorn and
BentoML), on the host and in their container images."""
from __future__ import annotations

import concurrent.futures as cf
import time

import pytest
import requests

SENT = "I love this, it is wonderful and amazing!"


def _is_json_error(r: requests.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


def test_probes_metrics_and_predict(launch):
    s = launch()
    s.wait_ready()
    assert s.get("/livez").status_code == 200
    assert s.get("/healthz").status_code == 200
    m = s.get("/metrics")
    assert m.status_code == 200 and "text/plain" in m.headers["Content-Type"]
    assert "# TYPE" in m.text
    r = s.post("/predict", json={"text": SENT})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "positive" and 0.5 < body["score"] <= 1 and body["model_version"] == "v1"
    r = s.post("/predict", json={"texts": [SENT, "This is terrible, I hate it"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [p["label"] for p in body["predictions"]] == ["positive", "negative"]
    assert body["model_version"] == "v1"
    assert "predict" in s.get("/metrics").text


@pytest.mark.parametrize("kind, kwargs", [
    ("not json", {"data": "this is not json", "headers": {"Content-Type": "application/json"}}),
    ("form body", {"data": {"text": "hi"}}),
    ("missing field", {"json": {"txt": "hi"}}),
    ("both fields", {"json": {"text": "a", "texts": ["b"]}}),
    ("wrong type", {"json": {"text": 123}}),
    ("texts not a list", {"json": {"texts": "abc"}}),
    ("list of numbers", {"json": {"texts": [1, 2]}}),
    ("empty list", {"json": {"texts": []}}),
    ("a JSON array", {"json": ["a"]}),
    ("1 MB of text", {"json": {"text": "a" * 1_000_000}}),
])
def test_bad_input_gets_4xx_json(shared_server, variant, kind, kwargs):
    s = shared_server(variant)
    r = s.post("/predict", **kwargs)
    assert 400 <= r.status_code < 500, f"{kind}: {r.status_code} {r.text[:200]}"
    assert _is_json_error(r), f"{kind}: not a JSON error: {r.text[:200]}"
    assert s.post("/predict", json={"text": SENT}).status_code == 200  # still serving


def test_readyz_503_until_model_loaded(launch):
    s = launch(MODEL_LOAD_DELAY_SECONDS=4)
    s.wait_live()
    r = s.get("/readyz")
    assert r.status_code == 503, r.text
    assert s.get("/livez").status_code == 200
    took = s.wait_ready(timeout=60)
    assert took > 0.5


def test_model_version_knob(launch):
    s = launch(MODEL_VERSION="v2")
    s.wait_ready()
    assert s.post("/predict", json={"text": SENT}).json()["model_version"] == "v2"


def test_api_key(launch):
    key = "k3y-do-not-log-me-123456"
    s = launch(API_KEY=key)
    s.wait_ready()
    assert s.post("/predict", json={"text": SENT}).status_code == 401
    r = s.post("/predict", json={"text": SENT}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and _is_json_error(r)
    r = s.post("/predict", json={"text": SENT}, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    for path in ("/livez", "/readyz", "/healthz", "/metrics"):
        assert s.get(path).status_code == 200, path
    assert key not in s.logs()


def test_hang_after_seconds(launch):
    s = launch(HANG_AFTER_SECONDS=6)
    s.wait_ready()
    assert s.get("/livez").status_code == 200
    time.sleep(6.5)
    with pytest.raises(requests.RequestException):
        s.get("/livez", timeout=1.5)


def _hangs(s, path="/livez", tries=2) -> bool:
    """Every one of ``tries`` requests times out (two workers: a request may
    reach either, and both must hang)."""
    for _ in range(tries):
        try:
            s.get(path, timeout=1.5)
            return False
        except requests.RequestException:
            pass
    return True


def test_hang_after_ready_seconds_counts_from_ready(launch):
    """HANG_AFTER_READY_SECONDS counts from when the server became ready, not
    from process start: with a 4 s model load and a 3 s knob, the server still
    answers 1.5 s after it became ready (5.5 s after start, so a clock from
    start would already hang), and stops answering after 3 s. The Lab 02
    grader relies on this to hang a pod only once its probes have let it in."""
    s = launch(MODEL_LOAD_DELAY_SECONDS=4, HANG_AFTER_READY_SECONDS=3)
    s.wait_live()
    took = s.wait_ready(timeout=60)
    ready_at = time.monotonic()
    assert took > 2, "the model load delay did not apply"
    time.sleep(1.0)
    assert s.get("/livez", timeout=2).status_code == 200
    assert s.get("/readyz", timeout=2).status_code == 200
    time.sleep(max(0.0, ready_at + 3.6 - time.monotonic()))
    assert _hangs(s), "still answering 3.6 s after it became ready"
    assert _hangs(s, "/readyz")


def test_sigterm_finishes_in_flight_requests(launch):
    s = launch()
    s.wait_ready()
    texts = ["I love this"] * 64

    def call(_):
        return s.post("/predict", json={"texts": texts}, timeout=15).status_code

    with cf.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(call, i) for i in range(8)]
        time.sleep(0.05)
        s.terminate()
        codes = []
        for f in futures:
            try:
                codes.append(f.result())
            except requests.ConnectionError:
                codes.append("refused")   # arrived after the listener closed: never accepted
    started = time.monotonic()
    assert s.wait_exit(timeout=30) == 0
    assert time.monotonic() - started < 30
    accepted = [c for c in codes if c != "refused"]
    assert accepted and all(c == 200 for c in accepted), codes
