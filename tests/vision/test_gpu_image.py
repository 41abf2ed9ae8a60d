"""The GPU variant (Dockerfile.gpu) builds and, without a GPU, serves on the CPU and says so.

The real base (nvidia/cuda ... cudnn-runtime-ubuntu24.04) cannot be pulled on machines without
a registry, so the image is built on the python:3.11-slim base through the Dockerfile's own
BASE_IMAGE argument: the same layers (apt python3 + venv, onnxruntime-gpu, models, app) on a
Debian base. onnxruntime-gpu without CUDA libraries falls back to CPUExecutionProvider, which is
exactly the behaviour the image documents for a node without a GPU."""
from __future__ import annotations

import pytest

from harness import images

from . import vision_servers as vs

pytestmark = [pytest.mark.docker, pytest.mark.slow]


@pytest.fixture(scope="module")
def gpu_image():
    images.ensure_base_image(log=lambda line: None)
    return vs.image(vs.IMAGE_TAG_GPU, "Dockerfile.gpu", {"BASE_IMAGE": "python:3.11-slim"})


def test_gpu_image_without_a_gpu_falls_back_to_cpu_and_reports_it(gpu_image):
    s = vs.start_container({}, tag=gpu_image)
    try:
        s.wait_ready(timeout=90)
        ready = s.get("/readyz").json()
        assert ready["provider"] == "CPUExecutionProvider", ready
        r = s.post("/predict", data=vs.photo("coffee"), headers={"Content-Type": "image/jpeg"})
        body = r.json()
        assert r.status_code == 200 and body["provider"] == "CPUExecutionProvider", body
        assert vs.ESPRESSO in [p["class_id"] for p in body["predictions"][:3]], body
        assert 'provider="CPUExecutionProvider"' in s.get("/metrics").text
    finally:
        s.stop()


def test_gpu_image_that_must_use_cuda_is_not_ready_without_one(gpu_image):
    s = vs.start_container({"EXECUTION_PROVIDER": "cuda"}, tag=gpu_image)
    try:
        s.wait_live()
        r = vs.readyz_until(s, "EXECUTION_PROVIDER=cuda", timeout=30)
        assert r.status_code == 503 and "EXECUTION_PROVIDER=cuda" in r.text, r.text
    finally:
        s.stop()
