"""Checks and the registry that holds them.

A check is a small function plus metadata, registered with a decorator::

    @check("image.builds", points=2, lab="01-docker",
           hint="Fix the Dockerfile line named in the build log",
           doc="https://docs.docker.com/reference/dockerfile/")
    def image_builds(ctx) -> str: ...

The function gets the lab's context (observations and handles), returns a
one-line message on success, and raises :class:`CheckFailed` (or returns a
:class:`Partial`) otherwise. ``requires`` names checks that must pass first;
when one did not, this one fails with "not run" instead of running.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


class CheckFailed(AssertionError):
    """The check ran and the submission did not meet it. ``details`` (log lines,
    events) go to the report next to the message."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details


@dataclass(frozen=True)
class Partial:
    """Some of the points, with a warning (e.g. spec.replicas set under an HPA)."""

    points: int
    message: str


@dataclass(frozen=True)
class Check:
    id: str
    lab: str
    points: int
    title: str
    hint: str
    doc: str
    fn: Callable[[Any], "str | Partial"] = field(compare=False, repr=False)
    requires: tuple[str, ...] = ()


class Registry:
    """Checks in registration order, keyed by (lab, id): labs may reuse an id
    (``manifests.valid``). A check registered again replaces the earlier one."""

    def __init__(self) -> None:
        self._checks: dict[tuple[str, str], Check] = {}

    def add(self, c: Check) -> None:
        for r in c.requires:
            if (c.lab, r) not in self._checks:
                raise ValueError(f"check {c.id!r} requires unknown or later check {r!r}")
        self._checks[(c.lab, c.id)] = c

    def for_lab(self, lab: str) -> list[Check]:
        return [c for c in self._checks.values() if c.lab == lab]

    def get(self, check_id: str, lab: str | None = None) -> Check:
        if lab is not None:
            return self._checks[(lab, check_id)]
        found = [c for (_, i), c in self._checks.items() if i == check_id]
        if len(found) != 1:
            raise KeyError(f"{check_id!r} is {'ambiguous' if found else 'unknown'}: name the lab")
        return found[0]

    def __iter__(self):
        return iter(self._checks.values())

    def __len__(self) -> int:
        return len(self._checks)


_default = Registry()


def default_registry() -> Registry:
    return _default


def set_default_registry(reg: Registry) -> Registry:
    """Swap the default registry (tests use a fresh one); returns the old one."""
    global _default
    old, _default = _default, reg
    return old


def check(check_id: str, *, lab: str, points: int, hint: str, doc: str,
          title: str = "", requires: tuple[str, ...] = (),
          registry: Registry | None = None):
    """Register the decorated function as a check; returns it unchanged."""
    if points <= 0:
        raise ValueError(f"check {check_id!r}: points must be positive")
    if not hint or not doc.startswith("https://"):
        raise ValueError(f"check {check_id!r}: a hint and an https doc link are required")

    def deco(fn):
        doc_title = title or (fn.__doc__ or check_id).strip().splitlines()[0]
        (registry if registry is not None else _default).add(Check(check_id, lab, points, doc_title, hint, doc, fn, tuple(requires)))
        return fn

    return deco
