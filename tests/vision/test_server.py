"""The vision server's contract (lab 01's, plus images and FAIL_RATE), on the
host (gunicorn subprocess on 127.0.0.1) and in the CPU container image."""
from __future__ import annotations

import base64
import http.client
import io
import json
import random
import re
import time

import pytest
import requests

from . import vision_servers as vs

RAW_JPEG = {"Content-Type": "image/jpeg"}
RAW_PNG = {"Content-Type": "image/png"}


def _is_json_error(r: requests.Response) -> bool:
    try:
        body = r.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body and r.headers["Content-Type"].startswith("application/json")


def _top_ids(body: dict, k: int = 3) -> list[int]:
    return [p["class_id"] for p in body["predictions"][:k]]


def providers(variant: str) -> set[str]:
    return vs.host_providers() if variant == "host" else {"CPUExecutionProvider"}


def check_photos(s, variant: str, version: str) -> None:
    r = s.post("/predict", data=vs.photo("coffee"), headers=RAW_JPEG, timeout=10)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model_version"] == version
    assert body["provider"] in providers(variant)
    assert body["provider"] == s.get("/readyz").json()["provider"]
    preds = body["predictions"]
    assert len(preds) == 5 and all(set(p) == {"label", "class_id", "score"} for p in preds)
    assert all(0 <= p["score"] <= 1 for p in preds) and preds == sorted(preds, key=lambda p: -p["score"])
    assert vs.ESPRESSO in _top_ids(body), preds
    assert preds[0]["label"] == "espresso"

    r = s.post("/predict", data=vs.photo("chelsea"), headers=RAW_PNG, timeout=10)
    assert r.status_code == 200, r.text
    assert vs.CAT_CLASSES & set(_top_ids(r.json())), r.json()["predictions"]
    b64 = base64.b64encode(vs.photo("chelsea")).decode()
    r2 = s.post("/predict", json={"image_b64": b64}, timeout=10)
    assert r2.status_code == 200, r2.text
    assert r2.json()["predictions"] == r.json()["predictions"]   # same bytes, same answer


def test_probes_metrics_and_predict_v1(shared_server, variant):
    s = shared_server(variant)
    assert s.get("/livez").status_code == 200
    assert s.get("/healthz").status_code == 200
    ready = s.get("/readyz")
    assert ready.status_code == 200
    provider = ready.json()["provider"]
    assert provider in providers(variant)
    check_photos(s, variant, "v1")
    m = s.get("/metrics")
    assert m.status_code == 200 and "text/plain" in m.headers["Content-Type"]
    assert re.search(rf'^model_info\{{model_version="v1",provider="{provider}"\}} 1\.0$', m.text, re.M), m.text
    assert re.search(rf'^inference_latency_seconds_count\{{provider="{provider}"\}} [1-9]', m.text, re.M)
    assert re.search(r'^predict_requests_total\{status="200"\} [1-9]', m.text, re.M)
    assert "predict_latency_seconds_bucket" in m.text


def test_canary_model_v2(launch, variant):
    s = launch(MODEL_VERSION="v2")
    s.wait_ready(timeout=60)
    assert s.get("/readyz").json()["model_version"] == "v2"
    check_photos(s, variant, "v2")


def _bomb_png() -> bytes:
    """A tiny PNG of 50 megapixels: refused before it is decoded."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("1", (10_000, 5_000)).save(buf, format="PNG")
    return buf.getvalue()


def _tiny_png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (2, 2)).save(buf, format="PNG")
    return buf.getvalue()


BAD_INPUTS = [
    ("non-image bytes", {"data": b"this is not an image", "headers": RAW_JPEG}, 400),
    ("truncated jpeg", {"data": b"\xff\xd8\xff\xe0" + b"\0" * 100, "headers": RAW_JPEG}, 400),
    ("empty body", {"data": b"", "headers": RAW_JPEG}, 400),
    ("empty b64", {"json": {"image_b64": ""}}, 400),
    ("huge body", {"data": b"\xff" * 1_500_000, "headers": RAW_JPEG}, 413),
    ("decompression bomb", {"data": "bomb", "headers": RAW_PNG}, 413),
    ("image too small", {"data": "tiny", "headers": RAW_PNG}, 400),
    ("not json", {"data": b"{nope", "headers": {"Content-Type": "application/json"}}, 400),
    ("json array", {"json": ["abc"]}, 400),
    ("wrong field", {"json": {"image": "abc"}}, 400),
    ("b64 not a string", {"json": {"image_b64": 123}}, 400),
    ("bad base64", {"json": {"image_b64": "%%% not base64 %%%"}}, 400),
    ("b64 of text", {"json": {"image_b64": base64.b64encode(b"hello").decode()}}, 400),
    ("form body", {"data": {"image": "x"}}, 415),
    ("text/plain", {"data": b"hello", "headers": {"Content-Type": "text/plain"}}, 415),
]


@pytest.mark.parametrize("kind, kwargs, status", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_4xx_json(shared_server, variant, kind, kwargs, status):
    s = shared_server(variant)
    if kwargs.get("data") == "bomb":
        kwargs = {**kwargs, "data": _bomb_png()}
    elif kwargs.get("data") == "tiny":
        kwargs = {**kwargs, "data": _tiny_png()}
    r = s.post("/predict", timeout=10, **kwargs)
    assert r.status_code == status, f"{kind}: {r.status_code} {r.text[:200]}"
    assert _is_json_error(r), f"{kind}: not a JSON error: {r.text[:200]}"


def test_corrupted_images_never_get_a_500(shared_server, variant):
    """Truncated and bit-flipped JPEGs and PNGs: a 200 or a 4xx JSON error, never a 500."""
    rng = random.Random(4)
    s = shared_server(variant)
    for name, headers in (("coffee", RAW_JPEG), ("chelsea", RAW_PNG)):
        good = vs.photo(name)
        for i in range(12):
            data = bytearray(good)
            if i % 2:
                data = data[: rng.randrange(16, len(data) - 1)]
            else:
                for _ in range(20):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            r = s.post("/predict", data=bytes(data), headers=headers, timeout=10)
            assert r.status_code == 200 or (400 <= r.status_code < 500 and _is_json_error(r)), (
                name, i, r.status_code, r.text[:200])


def test_wrong_method_and_still_serving(shared_server, variant):
    s = shared_server(variant)
    r = s.get("/predict")
    assert r.status_code == 405 and _is_json_error(r)
    assert s.post("/predict", data=vs.photo("coffee"), headers=RAW_JPEG, timeout=10).status_code == 200
    assert 'status="500"' not in s.get("/metrics").text   # no bad input ever became a 500


def test_api_key(launch, variant):
    key = "k3y-do-not-log-me-8d2f"
    s = launch(API_KEY=key)
    s.wait_ready(timeout=60)
    img = {"data": vs.photo("coffee"), "headers": RAW_JPEG}
    r = s.post("/predict", **img)
    assert r.status_code == 401 and _is_json_error(r) and r.headers["WWW-Authenticate"] == "Bearer"
    r = s.post("/predict", data=img["data"], headers={**RAW_JPEG, "Authorization": "Bearer wrong"})
    assert r.status_code == 401 and _is_json_error(r)
    r = s.post("/predict", data=img["data"], headers={**RAW_JPEG, "Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert s.get("/readyz").status_code == 200 and s.get("/metrics").status_code == 200  # probes: no key
    assert key not in s.logs()


def test_readyz_503_until_model_loaded(launch, variant):
    s = launch(MODEL_LOAD_DELAY_SECONDS=3)
    s.wait_live()
    r = s.get("/readyz")
    assert r.status_code == 503 and _is_json_error(r)
    r = s.post("/predict", data=vs.photo("coffee"), headers=RAW_JPEG)
    assert r.status_code == 503 and _is_json_error(r)
    waited = s.wait_ready(timeout=60)
    assert waited > 0.5
    assert s.post("/predict", data=vs.photo("coffee"), headers=RAW_JPEG, timeout=10).status_code == 200


def test_fail_rate_makes_a_bad_canary(launch, variant):
    s = launch(FAIL_RATE=0.5)
    s.wait_ready(timeout=60)
    codes = [s.post("/predict", data=vs.photo("coffee"), headers=RAW_JPEG, timeout=10) for _ in range(40)]
    failed = [r for r in codes if r.status_code == 500]
    ok = [r for r in codes if r.status_code == 200]
    assert len(failed) + len(ok) == 40
    assert 15 <= len(failed) <= 25, [r.status_code for r in codes]
    assert all(_is_json_error(r) for r in failed)
    # bad input is still a 4xx, not one of the injected 500s
    assert s.post("/predict", data=b"nope", headers=RAW_JPEG).status_code == 400
    m = s.get("/metrics").text
    assert re.search(r'^predict_requests_total\{status="500"\} (1[5-9]|2[0-5])\.0$', m, re.M), m


def test_sigterm_finishes_in_flight_requests(launch, variant):
    """Requests that are in flight when SIGTERM comes still get their 200, and
    the server then exits 0. Deterministic on a busy machine: each connection
    is first known to be accepted (one full request on it), then a second
    request is half sent, SIGTERM goes out, and the rest of the body follows."""
    s = launch()
    s.wait_ready(timeout=60)
    host, port = s.base_url.rsplit("/", 1)[-1].split(":")
    body = vs.photo("chelsea")
    conns = []
    for _ in range(4):
        c = http.client.HTTPConnection(host, int(port), timeout=20)
        c.request("POST", "/predict", body=body, headers=RAW_PNG)
        r = c.getresponse()
        r.read()
        assert r.status == 200
        c.putrequest("POST", "/predict")
        c.putheader("Content-Type", "image/png")
        c.putheader("Content-Length", str(len(body)))
        c.endheaders()
        c.send(body[: len(body) // 2])
        conns.append(c)
    time.sleep(0.3)
    s.terminate()
    time.sleep(0.3)
    statuses = []
    for c in conns:
        c.send(body[len(body) // 2:])
        r = c.getresponse()
        statuses.append(r.status)
        assert r.status != 200 or vs.CAT_CLASSES & set(_top_ids(json.loads(r.read())))
        c.close()
    assert statuses == [200] * 4, statuses
    started = time.monotonic()
    assert s.wait_exit(timeout=30) == 0
    assert time.monotonic() - started < 25


def test_hang_after_seconds():
    """Host only (the image runs the same code): after HANG_AFTER_SECONDS nothing
    answers. GRACEFUL_TIMEOUT=2: the hung request never ends, so the stop waits that long."""
    s = vs.start("host", {"HANG_AFTER_SECONDS": 3, "GRACEFUL_TIMEOUT": 2})
    try:
        s.wait_ready(timeout=60)
        assert s.get("/livez").status_code == 200
        time.sleep(3.5)
        with pytest.raises(requests.RequestException):
            s.get("/livez", timeout=1.5)
    finally:
        s.stop()


def test_cuda_required_without_a_gpu_is_not_ready():
    """Host only: EXECUTION_PROVIDER=cuda on a machine without onnxruntime-gpu (or
    without a GPU) is a readiness failure that says why, not a silent CPU fallback."""
    if "CUDAExecutionProvider" in vs.host_providers():
        pytest.skip("this venv has onnxruntime-gpu: CUDA may well be there")
    s = vs.start("host", {"EXECUTION_PROVIDER": "cuda"})
    try:
        s.wait_live()
        r = vs.readyz_until(s, "EXECUTION_PROVIDER=cuda")
        assert r.status_code == 503 and _is_json_error(r)
        assert "EXECUTION_PROVIDER=cuda" in r.json()["error"], r.text
        assert s.get("/livez").status_code == 200
    finally:
        s.stop()
