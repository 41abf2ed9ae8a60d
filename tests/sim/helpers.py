"""Manifest builders and small readers shared by the sim tests."""
from __future__ import annotations

import copy
import os
from typing import Any

from harness.cluster.sim import FakeApp
from harness.cluster.sim.clock import FAKE_EPOCH

IMAGE = "python:3.11-slim"


def elapsed(sim) -> float:
    return sim.clock.now() - FAKE_EPOCH


def deployment(name: str = "web", replicas: int = 3, image: str = "app:v1", *, probe: dict | None = None,
               strategy: dict | None = None, container: dict | None = None, **spec: Any) -> dict:
    c = {"name": "app", "image": image, "ports": [{"containerPort": 8000, "name": "http"}]}
    if probe is not None:
        c["readinessProbe"] = probe
    c.update(container or {})
    d = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                  "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [c]}}, **spec}}
    if strategy is not None:
        d["spec"]["strategy"] = strategy
    return d


def service(name: str = "web", port: int = 80, target: Any = 8000, selector: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector or {"app": name}, "ports": [{"port": port, "targetPort": target}]}}


def pod(name: str = "p", image: str = IMAGE, **container: Any) -> dict:
    spec = container.pop("pod_spec", {})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"containers": [{"name": "c", "image": image, **container}], **spec}}


def with_image(d: dict, image: str) -> dict:
    d = copy.deepcopy(d)
    d["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return d


def container_status(p: dict, i: int = 0) -> dict:
    return p["status"]["containerStatuses"][i]


def docker_required() -> bool:
    return os.environ.get("REQUIRE_DOCKER") == "1"


__all__ = ["FakeApp", "deployment", "service", "pod", "with_image", "elapsed", "container_status"]
