"""The context of a lab graded from its files alone (no image, no cluster):
checks read the staged submission, for example its manifests, as data."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..manifests import Manifest, load_dir
from ..submission import Submission


@dataclass
class FilesLab:
    submission: Submission
    log: Callable[[str], None] = print
    notices: list[str] = field(default_factory=list)
    _manifests: list[Manifest] | None = None
    observations: dict = field(default_factory=dict)   # what scenarios saw once, by name

    @property
    def manifests(self) -> list[Manifest]:
        if self._manifests is None:
            self._manifests = load_dir(self.submission.staged)
        return self._manifests
