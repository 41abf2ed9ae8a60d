"""The lab catalogue: number -> folder, title, and whether it can be graded yet."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Lab:
    number: int
    slug: str
    title: str
    needs_cluster: bool
    available: bool

    @property
    def starter(self) -> Path:
        return REPO_ROOT / "labs" / self.slug

    @property
    def solution(self) -> Path:
        return REPO_ROOT / "solutions" / self.slug


LABS = {
    1: Lab(1, "01-docker", "Containerize a sentiment model", needs_cluster=False, available=True),
    2: Lab(2, "02-k8s-basics", "Deployment, Service and probes", needs_cluster=True, available=True),
    3: Lab(3, "03-autoscaling", "HPA and zero-downtime rolling updates", needs_cluster=True, available=True),
    4: Lab(4, "04-gpu-canary", "GPU scheduling and a canary release", needs_cluster=True, available=True),
}


def lab(number: int | str) -> Lab:
    try:
        return LABS[int(str(number).lstrip("0") or 0)]
    except (KeyError, ValueError):
        raise KeyError(f"no lab {number!r}: choose one of {sorted(LABS)}") from None
