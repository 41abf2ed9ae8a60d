"""The lab catalogue. A lab is one module, ``harness/labs/labNN.py``, that
declares a ``LAB``: number, folder, title, availability, what it runs on, its
images, its backend options and where its checks are. Nothing else holds a
per-lab table: the registry finds the modules, and grading, the lab contexts,
the CLI and the Makefile read what they need from the :class:`Lab` object.

Course authors (and this project's tests) can add lab modules from other
folders with ``HARNESS_EXTRA_LABS=dir[:dir...]``: every ``labNN.py`` there is
loaded the same way.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
_MODULE = re.compile(r"^lab(\d\d)$")


@dataclass(frozen=True)
class ImagePlan:
    """One image a cluster lab runs. ``how`` is ``"ref"`` (build a reference server
    from ``src`` with the model artifacts ``models``), or a MODEL_VERSION baked on
    top of the lab's first image."""

    tag: str
    how: str = "ref"
    src: str = ""           # relative to the repo root; "" = the Lab 01 reference solution
    models: str = "sentiment-v*"


@dataclass(frozen=True)
class Lab:
    number: int
    slug: str
    title: str
    # where the submission runs: "docker" (an image and its container), "cluster"
    # (manifests on a Kubernetes backend) or "files" (the staged files only)
    context: str = "cluster"
    available: bool = True
    checks: str = ""                                   # the module that registers its checks
    images: tuple[ImagePlan, ...] = ()
    sim_options: dict = field(default_factory=dict)    # SimCluster keyword arguments
    kind_options: dict = field(default_factory=dict)   # KindCluster keyword arguments (addons)
    # what a cluster lab applies: "dir" (the manifests/ YAML) or "chart" (a Helm chart the
    # lab's scenarios render, then apply)
    manifests_from: str = "dir"

    @property
    def needs_cluster(self) -> bool:
        return self.context == "cluster"

    @property
    def starter(self) -> Path:
        return REPO_ROOT / "labs" / self.slug

    @property
    def solution(self) -> Path:
        return REPO_ROOT / "solutions" / self.slug


def _load_file(path: Path) -> ModuleType:
    """A lab module from a course's own folder (its checks may live in it: ``checks=__name__``)."""
    import sys

    name = f"harness_extra_labs.{path.parent.name}.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def discover(extra: str | None = None) -> dict[int, Lab]:
    """Every lab module of this package, plus those in ``extra`` (``HARNESS_EXTRA_LABS``)."""
    mods: list[ModuleType] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if _MODULE.match(info.name):
            mods.append(importlib.import_module(f"{__name__}.{info.name}"))
    for folder in filter(None, (extra if extra is not None else os.environ.get("HARNESS_EXTRA_LABS", "")).split(":")):
        for path in sorted(Path(folder).glob("lab[0-9][0-9].py")):
            mods.append(_load_file(path))
    labs: dict[int, Lab] = {}
    for mod in mods:
        lab_ = getattr(mod, "LAB", None)
        if not isinstance(lab_, Lab):
            raise TypeError(f"{mod.__name__} declares no LAB = Lab(...)")
        if lab_.number in labs:
            raise ValueError(f"two lab modules declare lab {lab_.number}: {labs[lab_.number].slug} and {lab_.slug}")
        labs[lab_.number] = lab_
    return dict(sorted(labs.items()))


LABS = discover()


def lab(number: int | str) -> Lab:
    try:
        return LABS[int(str(number).lstrip("0") or 0)]
    except (KeyError, ValueError):
        raise KeyError(f"no lab {number!r}: choose one of {sorted(LABS)}") from None
