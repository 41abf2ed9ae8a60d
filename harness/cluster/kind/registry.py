"""``IMAGE_REGISTRY=host:port/prefix``: lab images for a real cluster, pushed to a registry.

A real cluster's nodes pull images; they cannot see this machine's Docker engine. With
``IMAGE_REGISTRY`` set, the kubeconfig backend's ``load_image`` tags each lab image
``<registry>/<image>`` (``mlops-labs/sentiment:v1`` -> ``registry.example:5000/course/mlops-labs/
sentiment:v1``) and pushes it with the Docker SDK (credentials from ``docker login``, as the
docker CLI uses them).

Where the image references are rewritten, so that checks still see the learner's manifests:
only at the backend's boundary with the API server (``KubeconfigCluster.apply``/``patch``
rewrite what they send; ``get``/``list`` map what they read back). The learner's files, the
parsed manifests the checks read (``ClusterLab.manifests``) and every object a check gets
through the ``Cluster`` protocol keep the learner's names; only the API server (and ``kubectl
get`` by hand) shows the registry's. Only images that were pushed this run are rewritten, and
only under ``image`` keys.
"""
from __future__ import annotations

import copy
import re
from typing import Any, Callable

from harness.cluster.base import BackendUnavailable, NotFound

ENV = "IMAGE_REGISTRY"
_HOST = re.compile(r"^(localhost|[^/]*[.:][^/]*)(/[a-z0-9._/-]+)?$")


def split_tag(ref: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); no tag -> "latest" (a ``:`` before the last ``/`` is a port)."""
    repo, sep, tag = ref.rpartition(":")
    if not sep or "/" in tag:
        return ref, "latest"
    return repo, tag


class ImageRegistry:
    def __init__(self, base: str, client: Callable[[], Any] | None = None):
        base = base.strip().rstrip("/")
        if not _HOST.match(base):
            raise BackendUnavailable(f"{ENV}={base!r} is not host[:port][/prefix] (for example "
                                     f"{ENV}=registry.example.com:5000/mlops-labs): the first part must be a "
                                     "registry host the cluster's nodes pull from")
        self.base = base
        self._client = client
        self.pushed: dict[str, str] = {}     # learner's name -> registry name

    def ref(self, image: str) -> str:
        return f"{self.base}/{image.removeprefix('docker.io/')}"

    def push(self, image: str, log: Callable[[str], None] = lambda m: None) -> str:
        """Tag ``image`` (a local Docker image) into the registry and push it; returns the new name."""
        from harness import images

        client = (self._client or images.client)()
        target = self.ref(image)
        repo, tag = split_tag(target)
        try:
            local = client.images.get(image)
        except Exception as exc:  # noqa: BLE001 - docker.errors.ImageNotFound and friends
            raise NotFound(f'image "{image}" is not in the local Docker engine, so it cannot be pushed: build it '
                           f"first ({exc})", kind="Image", name=image) from None
        local.tag(repo, tag)
        log(f"pushing {image} as {target}")
        try:
            for line in client.api.push(repo, tag, stream=True, decode=True):
                if isinstance(line, dict) and line.get("error"):
                    raise BackendUnavailable(f"failed to push {target}: {line['error']}. Is {self.base} reachable "
                                             "from here, and are you logged in (`docker login "
                                             f"{self.base.split('/')[0]}`)?")
        except BackendUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - connection errors from the daemon
            raise BackendUnavailable(f"failed to push {target}: {exc}") from None
        self.pushed[image] = target
        return target

    # ---- the rewrite at the API boundary -----------------------------------------------------
    def to_cluster(self, obj: Any) -> Any:
        return _rewrite(obj, self.pushed)

    def from_cluster(self, obj: Any) -> Any:
        return _rewrite(obj, {v: k for k, v in self.pushed.items()})


def _rewrite(obj: Any, names: dict[str, str]) -> Any:
    """A deep copy of ``obj`` with every ``image`` value found in ``names`` replaced."""
    if not names:
        return obj
    out = copy.deepcopy(obj)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "image" and isinstance(v, str) and v in names:
                    node[k] = names[v]
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out
