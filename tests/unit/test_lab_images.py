"""Which images a cluster lab builds: the CPU plan by default, the CUDA canary on request."""
from __future__ import annotations

import pytest

from harness.labs import cluster_lab


@pytest.fixture
def builds(monkeypatch):
    calls = []
    monkeypatch.setattr(cluster_lab, "build_reference_image",
                        lambda tag, **kw: calls.append(("ref", tag, kw.get("dockerfile", "Dockerfile"))))
    monkeypatch.setattr(cluster_lab, "build_version_image",
                        lambda tag, version, base: calls.append(("version", tag, version, base)))
    monkeypatch.delenv("VISION_GPU_IMAGE", raising=False)
    return calls


def test_lab_04_builds_cpu_images_by_default(builds):
    assert cluster_lab.build_lab_images(4, log=lambda m: None) == [cluster_lab.VISION_V1, cluster_lab.VISION_V2]
    assert builds == [("ref", cluster_lab.VISION_V1, "Dockerfile"),
                      ("version", cluster_lab.VISION_V2, "v2", cluster_lab.VISION_V1)]


def test_vision_gpu_image_builds_the_canary_on_the_cuda_image(builds, monkeypatch):
    monkeypatch.setenv("VISION_GPU_IMAGE", "1")
    said = []
    assert cluster_lab.build_lab_images(4, log=said.append) == [cluster_lab.VISION_V1, cluster_lab.VISION_V2]
    assert builds == [("ref", cluster_lab.VISION_GPU, "Dockerfile.gpu"),
                      ("ref", cluster_lab.VISION_V1, "Dockerfile"),
                      ("version", cluster_lab.VISION_V2, "v2", cluster_lab.VISION_GPU)]
    assert "Dockerfile.gpu" in said[0]
    assert (cluster_lab.VISION_SRC / "Dockerfile.gpu").is_file()


def test_the_switch_only_touches_lab_04(builds, monkeypatch):
    monkeypatch.setenv("VISION_GPU_IMAGE", "1")
    cluster_lab.build_lab_images(3, log=lambda m: None)
    assert all(c[2] == "Dockerfile" for c in builds if c[0] == "ref")
