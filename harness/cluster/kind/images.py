"""Loading a local Docker image into the kind nodes.

``docker save`` then ``kind load image-archive``. Not ``kind load
docker-image``: with Docker's containerd image store (the default since Docker
Engine 29) it fails with ``ctr: content digest ...: not found``
(kubernetes-sigs/kind#3795). The workaround documented upstream is a
single-platform archive: ``docker image save --platform linux/<arch>`` (Docker
28+), then ``kind load image-archive``. Older Docker has no ``--platform`` on
save and no containerd store by default, so there the plain save is retried.
The archive goes to a private temporary directory, removed afterwards.
"""
from __future__ import annotations

import platform
import tempfile
from pathlib import Path

from harness.cluster.base import NotFound
from harness.errors import CommandError

from .cli import Runner

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


def image_id(runner: Runner, image: str) -> str:
    try:
        return runner.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                          verb=f"inspect image {image}").stdout.strip()
    except CommandError as exc:
        raise NotFound(f'image "{image}" is not present in the local Docker engine; build it first '
                       f"(the kind nodes never pull lab images): {exc.output.strip()}",
                       kind="Image", name=image) from exc


def save(runner: Runner, image: str, archive: str, *, timeout: float) -> None:
    plat = f"linux/{_ARCH.get(platform.machine().lower(), 'amd64')}"
    res = runner.run(["docker", "image", "save", "--platform", plat, "-o", archive, image],
                     verb=f"save image {image}", timeout=timeout, check=False)
    if res.returncode == 0:
        return
    if "unknown flag" in res.output or "--platform" in res.output:   # Docker < 28
        runner.run(["docker", "image", "save", "-o", archive, image], verb=f"save image {image}", timeout=timeout)
        return
    raise CommandError(f"save image {image}", res.argv, res.returncode, res.output)


def load(runner: Runner, cluster: str, image: str, *, timeout: float = 600.0) -> str:
    """Copy ``image`` into every node of kind cluster ``cluster``; returns its image ID."""
    iid = image_id(runner, image)
    with tempfile.TemporaryDirectory(prefix="harness-image-") as tmp:
        archive = str(Path(tmp) / "image.tar")
        save(runner, image, archive, timeout=timeout)
        runner.run(["kind", "load", "image-archive", archive, "--name", cluster],
                   verb=f"load image {image} into kind cluster {cluster}", timeout=timeout)
    return iid
