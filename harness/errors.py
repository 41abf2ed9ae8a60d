"""Errors that stop grading before any check runs (exit code 2)."""
from __future__ import annotations


class GradingError(Exception):
    """The submission cannot be graded at all: missing files, bad YAML, no
    Docker daemon. ``where`` is ``file:line`` or ``object/field``; ``fix`` says
    what to do next."""

    def __init__(self, message: str, *, where: str = "", fix: str = ""):
        super().__init__(message)
        self.message, self.where, self.fix = message, where, fix

    def __str__(self) -> str:
        s = f"{self.where}: {self.message}" if self.where else self.message
        return f"{s}\n  -> {self.fix}" if self.fix else s


class ScenarioFailed(Exception):
    """A scenario could not produce its observation (no Deployment, apply refused,
    no answer through the Service). The grader records it as the failure of the
    check that asked for the observation, with this message and details."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message, self.details = message, details


class CommandError(Exception):
    """A CLI (kind, kubectl, hey) failed: carries its argv and captured output."""

    def __init__(self, verb: str, argv: list[str], returncode: int, output: str):
        self.verb, self.argv, self.returncode, self.output = verb, argv, returncode, output
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(f"failed to {verb}: `{' '.join(argv)}` exited {returncode}\n{tail}")


def write_traceback(exc: BaseException) -> "Path":
    """Keep a grader bug's traceback out of the learner's terminal: write it to a
    log file (``$HARNESS_LOG_DIR`` or the temp dir) and return its path."""
    import os
    import tempfile
    import time
    import traceback
    from pathlib import Path

    folder = Path(os.environ.get("HARNESS_LOG_DIR") or Path(tempfile.gettempdir()) / "mlops-labs-logs")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"grader-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{id(exc):x}.log"
    path.write_text("".join(traceback.format_exception(exc)))
    return path
