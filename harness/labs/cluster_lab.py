"""The context of a cluster lab (02-04): manifests, image, cluster, scenarios.

Grading a cluster lab:
1. load the manifests as data (file:line kept) - YAML errors are exit 2;
2. build the Lab 01 reference image (``mlops-labs/sentiment:v1``) and load it
   into the cluster - labs 02+ grade manifests, not the image;
3. start the backend (a namespace of its own) and apply the manifests in
   dependency order (config and Services before workloads);
4. checks read objects through the Cluster protocol and drive scenarios
   (scale-ups under load, a hung pod) whose observations they share.
"""
from __future__ import annotations

import base64
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import budget, images
from ..cluster.base import ApiError, Cluster
from ..errors import GradingError
from ..manifests import Manifest, load_dir, refuse_out_of_scope
from ..submission import Submission
from ..waiting import DEFAULT_TIMEOUTS, Timeouts
from . import REPO_ROOT
from . import lab as get_lab

# Image tags the checks name; each lab module declares which images its lab runs.
from .lab02 import IMAGE_V1  # noqa: E402
from .lab03 import IMAGE_V2, IMAGE_V3_BROKEN  # noqa: E402
from .lab04 import VISION_V1, VISION_V2  # noqa: E402
from .lab04 import VISION_SRC as _VISION_SRC  # noqa: E402

VISION_SRC = REPO_ROOT / _VISION_SRC


# On a cluster with real NVIDIA GPUs (docs/real-gpu.md), VISION_GPU_IMAGE=1 builds the canary
# from Dockerfile.gpu (onnxruntime-gpu on a CUDA base pulled from Docker Hub), so it runs on the
# CUDA execution provider. Off by default: the base image is several GB and needs a registry.
VISION_GPU = "mlops-labs/vision:gpu"
GPU_IMAGE_ENV = "VISION_GPU_IMAGE"


def gpu_image_wanted() -> bool:
    return os.environ.get(GPU_IMAGE_ENV, "").strip() == "1"


def build_lab_images(lab_number: int, log: Callable[[str], None] = print) -> list[str]:
    """Build the images the lab's module declares (``Lab.images``); returns their tags."""
    plan = get_lab(lab_number).images
    if not plan:
        return []
    first = plan[0]
    src = REPO_ROOT / first.src if first.src else None
    gpu = src == VISION_SRC and gpu_image_wanted()
    if gpu:
        log(f"{GPU_IMAGE_ENV}=1: building the canary {VISION_V2} from {VISION_SRC / 'Dockerfile.gpu'}")
        build_reference_image(VISION_GPU, log=log, src=VISION_SRC, models="vision-v*", dockerfile="Dockerfile.gpu")
    for image in plan:
        if image.how == "ref":
            build_reference_image(image.tag, log=log, src=REPO_ROOT / image.src if image.src else None,
                                  models=image.models)
        else:
            build_version_image(image.tag, image.how, base=VISION_GPU if gpu else first.tag)
    return [image.tag for image in plan]


APPLY_ORDER = ["Namespace", "ConfigMap", "Secret", "Service", "Deployment", "HorizontalPodAutoscaler"]


def build_reference_image(tag: str = IMAGE_V1, log: Callable[[str], None] = print,
                          src: Path | None = None, models: str = "sentiment-v*",
                          dockerfile: str = "Dockerfile") -> None:
    """Build a reference server (the Lab 01 solution by default) as ``tag``,
    with ``models/<models>`` staged into its ``model/`` (the layer cache makes
    repeats take about a second)."""
    from .docker_lab import MODELS_DIR

    src = src or get_lab(1).solution
    arts = sorted(MODELS_DIR.glob(models)) if MODELS_DIR.is_dir() else []
    if not arts:
        raise GradingError(f"the model artifacts models/{models} are missing",
                           fix="run `make model` (sentiment) or `make vision-models` (Lab 04)")
    with tempfile.TemporaryDirectory(prefix="ref-image-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(src, ctx, ignore=shutil.ignore_patterns("model", "__pycache__"))
        (ctx / "model").mkdir(exist_ok=True)
        for a in arts:
            shutil.copy2(a, ctx / "model" / a.name)
        for base in images.from_images(ctx / dockerfile):   # python:3.11-slim: an offline stand-in if need be
            images.ensure_base_image(base, log=log)
        result = images.build(ctx, tag, dockerfile=dockerfile, limited=False)   # ours, trusted
    if not result.ok:
        raise GradingError(f"failed to build the reference image {tag}: {result.error}\n{result.log_tail()}",
                           fix=f"build it by hand to see the whole log: docker build -f {src / dockerfile} {src}")
    precompile_python(tag)


# Compiled once at build time, so that no pod start pays for it: the Lab 01 image
# ships no .pyc (its size budget), and under a 1-CPU limit compiling numpy, scipy
# and scikit-learn at import doubled the time to Ready (about 10 s -> 4 s here).
# unchecked-hash: the .pyc is used without comparing the source's mtime.
_PRECOMPILE = ("import compileall, os, sys; "
               "[compileall.compile_dir(d, quiet=1, workers=0, invalidation_mode="
               "compileall.py_compile.PycInvalidationMode.UNCHECKED_HASH) "
               "for d in sorted(set(sys.path[1:] + [os.getcwd()])) if os.path.isdir(d)]")


def precompile_python(tag: str) -> None:
    """Rebuild ``tag`` with a layer of compiled bytecode on top (same user,
    entrypoint and command); the layer cache makes repeats instant."""
    import io
    import json

    user = images.client().images.get(tag).attrs["Config"].get("User") or "root"
    dockerfile = (f"FROM {tag}\nUSER root\nRUN python -c {json.dumps(_PRECOMPILE)} >/dev/null\n"
                  f"USER {user}\nLABEL {images.LABEL}=1\n")
    try:
        images.client().images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    except Exception as exc:  # noqa: BLE001 - docker.errors.BuildError and friends
        raise GradingError(f"failed to precompile the Python bytecode of {tag}: {exc}") from exc


def build_version_image(tag: str, model_version: str, base: str = IMAGE_V1) -> None:
    """``FROM <v1 image>`` + ``ENV MODEL_VERSION=...``: the image carries both
    models, so a new tag that only switches the version builds in a second."""
    import io

    dockerfile = f"FROM {base}\nENV MODEL_VERSION={model_version}\nLABEL {images.LABEL}=1\n"
    try:
        images.client().images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    except Exception as exc:  # noqa: BLE001 - docker.errors.BuildError and friends
        raise GradingError(f"failed to build {tag}: {exc}") from exc


def namespace_budget() -> list[dict]:
    """The ResourceQuota and LimitRange of every grading namespace (harness/budget.py),
    the same objects on sim, kind and any kubeconfig cluster."""
    return [
        {"apiVersion": "v1", "kind": "ResourceQuota",
         "metadata": {"name": budget.QUOTA_NAME, "labels": {"app.kubernetes.io/managed-by": "mlops-labs-harness"}},
         "spec": {"hard": dict(budget.NAMESPACE_QUOTA)}},
        {"apiVersion": "v1", "kind": "LimitRange",
         "metadata": {"name": budget.LIMITRANGE_NAME, "labels": {"app.kubernetes.io/managed-by": "mlops-labs-harness"}},
         "spec": {"limits": [{"type": "Container", "default": dict(budget.CONTAINER_DEFAULT_LIMIT),
                              "defaultRequest": dict(budget.CONTAINER_DEFAULT_REQUEST),
                              "max": dict(budget.CONTAINER_MAX)}]}},
    ]


def apply_order(m: Manifest) -> int:
    return APPLY_ORDER.index(m.kind) if m.kind in APPLY_ORDER else len(APPLY_ORDER)


@dataclass
class ClusterLab:
    submission: Submission
    cluster: Cluster
    timeouts: Timeouts = DEFAULT_TIMEOUTS
    log: Callable[[str], None] = print
    manifests: list[Manifest] = field(default_factory=list)
    applied: list[dict] | None = None
    apply_error: str | None = None
    observations: dict = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def prepare(self, lab_number: int) -> None:
        if get_lab(lab_number).manifests_from == "dir":
            self.manifests = load_dir(self.submission.staged)
            self.notices += refuse_out_of_scope(self.manifests, self.cluster.namespace)  # before anything is applied
        # a chart lab's scenarios render the chart and call use_manifests() before applying
        tags = build_lab_images(lab_number, log=self.log)
        self.cluster.start()
        self.cluster.apply(namespace_budget())   # before the submission: it bounds what the submission may run
        for tag in tags:
            self.cluster.load_image(tag)

    def close(self) -> None:
        self.cluster.stop()

    # --- manifests -------------------------------------------------------
    def use_manifests(self, manifests: list[Manifest]) -> None:
        """The objects to apply, rendered from a chart; refused as the manifests/ YAML would be."""
        self.notices += refuse_out_of_scope(manifests, self.cluster.namespace)
        self.manifests = manifests

    def objects(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def one(self, kind: str) -> Manifest | None:
        found = self.objects(kind)
        return found[0] if found else None

    def apply(self) -> list[dict]:
        """Apply every manifest once, in dependency order; remember the error."""
        if self.applied is None and self.apply_error is None:
            ordered = sorted(self.manifests, key=apply_order)
            done = []
            try:
                for m in ordered:
                    done += self.cluster.apply([m.obj])
                self.applied = done
            except ApiError as exc:
                self.apply_error = f"{m.where()}: {m.ref}: {exc.message}"
        if self.apply_error is not None:
            raise GradingError(self.apply_error)
        return self.applied

    # --- live objects ----------------------------------------------------
    def pods(self, selector: dict | None = None) -> list[dict]:
        sel = ",".join(f"{k}={v}" for k, v in (selector or {}).items()) or None
        return [p for p in self.cluster.list("Pod", label_selector=sel)
                if not p["metadata"].get("deletionTimestamp")]

    def secret_value(self, name: str, key: str) -> str:
        s = self.cluster.get("Secret", name)
        if key in (s.get("stringData") or {}):
            return s["stringData"][key]
        return base64.b64decode((s.get("data") or {})[key]).decode()
