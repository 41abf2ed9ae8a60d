"""The running practice scenario: which one, where, since when, and the hints used.

One scenario runs at a time per user; its state lives next to the sim cluster's
(``~/.local/state/mlops-labs/practice.json``, or under ``$XDG_STATE_HOME``). Nothing in it is
secret: the scenario id is hidden from the screen in interview mode, not from the file.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.errors import GradingError


def state_path() -> Path:
    base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "mlops-labs"
    return base / "practice.json"


@dataclass
class Session:
    scenario: str
    context: str | None
    kubeconfig: str | None
    namespace: str
    started: float
    minutes: int | None = None          # interview mode: the time box
    hidden: bool = False                # interview mode: the scenario's name is not shown
    hints_used: int = 0
    checks: int = 0
    solved_at: float | None = None
    history: list[dict] = field(default_factory=list)   # one entry per practice-check

    @property
    def elapsed_s(self) -> float:
        return (self.solved_at or time.time()) - self.started

    @property
    def label(self) -> str:
        return "the incident" if self.hidden else self.scenario

    def timer(self) -> str:
        used = _mmss(self.elapsed_s)
        if self.minutes:
            left = self.minutes * 60 - self.elapsed_s
            return f"{used} of {self.minutes}:00" + (" (time is up)" if left < 0 else f", {_mmss(left)} left")
        return used

    def save(self) -> None:
        p = state_path()
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(asdict(self), indent=1))


def _mmss(s: float) -> str:
    s = max(int(s), 0)
    return f"{s // 60}:{s % 60:02d}"


def current() -> Session:
    p = state_path()
    try:
        return Session(**json.loads(p.read_text()))
    except FileNotFoundError:
        raise GradingError("no practice scenario is running",
                           fix="start one: `make practice SCENARIO=<id>` (`make practice` lists them)") from None
    except (ValueError, TypeError) as exc:
        raise GradingError(f"{p} is not a practice session ({exc})",
                           fix=f"remove it (`rm {p}`) and start again with `make practice SCENARIO=<id>`") from exc


def running() -> Session | None:
    try:
        return current()
    except GradingError:
        return None


def clear() -> None:
    state_path().unlink(missing_ok=True)
