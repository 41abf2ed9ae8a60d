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


def test_removing_a_graded_image_keeps_its_parent_layers_as_the_build_cache(monkeypatch):
    """`docker rmi` with pruning deleted the learner's build cache with the image: every grading of
    the Lab 01 starter re-ran pip (44.5 s); keeping the untagged parents, the second grading took 15.4 s."""
    from harness import images

    calls = []

    class FakeImages:
        def remove(self, tag, **kw):
            calls.append((tag, kw))

    class FakeClient:
        images = FakeImages()

    monkeypatch.setattr(images, "client", lambda: FakeClient())
    images.remove_image("grade-01-abc:latest")
    assert calls == [("grade-01-abc:latest", {"force": True, "noprune": True})]
