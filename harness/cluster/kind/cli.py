"""Running ``kind``, ``kubectl`` and ``docker`` from PATH.

Why a module of its own: every failure of a CLI must carry its argv and its
captured output (:class:`harness.errors.CommandError`, "failed to <verb>"),
and a missing tool must say how to install it. Nothing here downloads a
binary: the tools come from PATH, or not at all.

``kubectl``'s stderr carries the API server's own message (``Error from server
(Invalid): ...``); :func:`api_error_from_kubectl` turns it back into the
protocol's :class:`~harness.cluster.base.ApiError` subclasses.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Protocol

from harness.cluster.base import AlreadyExists, ApiError, BackendUnavailable, Conflict, Forbidden, Invalid, NotFound
from harness.errors import CommandError

INSTALL = {
    "kind": "install kind (https://kind.sigs.k8s.io/docs/user/quick-start/#installation): "
            "`go install sigs.k8s.io/kind@v0.29.0`, or the release binary for your OS, then put it on PATH",
    "kubectl": "install kubectl (https://kubernetes.io/docs/tasks/tools/): on Debian/Ubuntu add the "
               "pkgs.k8s.io apt repository and `sudo apt-get install kubectl`, then put it on PATH",
    "docker": "install Docker (https://docs.docker.com/engine/install/; Debian/Ubuntu: "
              "`sudo apt-get install docker.io`) and start the daemon (`sudo systemctl start docker`)",
}


class Logger(Protocol):
    """The tiny logging interface backends take (kind's pkg/log, reduced)."""

    def info(self, msg: str) -> None: ...
    def warn(self, msg: str) -> None: ...


class NoopLogger:
    def info(self, msg: str) -> None:
        pass

    def warn(self, msg: str) -> None:
        pass


class WarnLogger:
    """The kind backend's default: warnings (an offline fallback, say) reach the learner on stderr."""

    def info(self, msg: str) -> None:
        pass

    def warn(self, msg: str) -> None:
        print(f"warning: {msg}", file=sys.stderr, flush=True)


class BadRequest(ApiError):
    """HTTP 400 (a bad log request, an unknown field under strict validation).

    Duplicated from the sim backend on purpose; see the package docstring."""

    code, reason = 400, "BadRequest"


_REASONS: dict[str, type[ApiError]] = {c.reason: c for c in (NotFound, AlreadyExists, Conflict, Invalid,
                                                              Forbidden, BadRequest)}
_FROM_SERVER = re.compile(r"Error from server \((\w+)\):\s*(.*)", re.S)
_WHEN = re.compile(r'^error when [a-z]+ "[^"]*": ')


def which(tool: str) -> str | None:
    return shutil.which(tool)


def require(tool: str) -> str:
    """The absolute path of ``tool``, or :class:`BackendUnavailable` with install instructions."""
    path = which(tool)
    if path is None:
        raise BackendUnavailable(f"{tool} is not installed (not on PATH): {INSTALL.get(tool, '')}")
    return path


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" if self.stdout and self.stderr else "") + self.stderr).strip()


@dataclass
class Runner:
    """Runs one tool invocation and wraps its failure. ``timeout`` in seconds."""

    log: Logger = field(default_factory=NoopLogger)
    timeout: float = 600.0
    env: dict[str, str] | None = None

    def run(self, argv: list[str], *, verb: str, input: str | bytes | None = None,
            timeout: float | None = None, check: bool = True) -> Result:
        argv = [require(argv[0]) if os.sep not in argv[0] else argv[0], *argv[1:]]
        self.log.info("running: " + " ".join(argv))
        text = not isinstance(input, bytes)
        try:
            cp = subprocess.run(argv, input=input, capture_output=True, text=text,
                                timeout=timeout or self.timeout, env=self.env, check=False)
        except subprocess.TimeoutExpired as exc:
            out = _s(exc.stdout) + _s(exc.stderr)
            raise CommandError(verb, argv, -1, f"timed out after {exc.timeout:.0f}s\n{out}") from None
        except OSError as exc:
            raise CommandError(verb, argv, -1, str(exc)) from None
        res = Result(argv, cp.returncode, _s(cp.stdout), _s(cp.stderr))
        if check and cp.returncode != 0:
            raise CommandError(verb, argv, cp.returncode, res.output)
        return res


    def stream(self, argv: list[str], *, verb: str, on_line: Callable[[str], None]) -> Result:
        """Run without a timeout, passing each output line (stdout and stderr) to ``on_line`` as it
        comes; the process is ended if this is interrupted. Failure: :class:`CommandError`."""
        argv = [require(argv[0]) if os.sep not in argv[0] else argv[0], *argv[1:]]
        self.log.info("running: " + " ".join(argv))
        lines: list[str] = []
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    errors="replace", env=self.env)
        except OSError as exc:
            raise CommandError(verb, argv, -1, str(exc)) from None
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if line.strip():
                    on_line(line.rstrip())
            rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if rc != 0:
            raise CommandError(verb, argv, rc, "".join(lines))
        return Result(argv, rc, "".join(lines), "")


def _s(b: str | bytes | None) -> str:
    if b is None:
        return ""
    return b.decode("utf-8", "replace") if isinstance(b, bytes) else b


@dataclass
class Kubectl:
    """``kubectl`` pinned to one kubeconfig file and context (never the user's current one)."""

    runner: Runner
    kubeconfig: str | None = None
    context: str | None = None

    def base(self) -> list[str]:
        argv = ["kubectl"]
        if self.kubeconfig:
            argv += ["--kubeconfig", self.kubeconfig]
        if self.context:
            argv += ["--context", self.context]
        return argv

    def __call__(self, *args: str, verb: str, input: str | None = None, check: bool = True,
                 timeout: float | None = None) -> Result:
        return self.runner.run(self.base() + list(args), verb=verb, input=input, check=check, timeout=timeout)

    def api_call(self, *args: str, verb: str, input: str | None = None, kind: str = "",
                 name: str = "") -> Result:
        """Like calling, but an ``Error from server (Reason)`` becomes that :class:`ApiError`."""
        res = self(*args, verb=verb, input=input, check=False)
        if res.returncode != 0:
            err = api_error_from_kubectl(res.stderr or res.stdout, kind=kind, name=name)
            if err is not None:
                raise err
            raise CommandError(verb, res.argv, res.returncode, res.output)
        return res


def api_error_from_kubectl(stderr: str, *, kind: str = "", name: str = "") -> ApiError | None:
    """Map kubectl's ``Error from server (Reason): message`` back to the API error it reports.

    ``error when creating "STDIN": `` is kubectl's prefix, not the server's, and
    is dropped, so the message reads as the API server wrote it."""
    m = _FROM_SERVER.search(stderr)
    if m:
        cls = _REASONS.get(m.group(1), ApiError)
        msg = _WHEN.sub("", m.group(2).strip())
        return cls(msg, kind=kind, name=name)
    for line in stderr.splitlines():
        if line.startswith("error: ") and ("does not match the namespace" in line or "unknown field" in line):
            return BadRequest(line[len("error: "):], kind=kind, name=name)
        if line.startswith("error: ") and ("not found" in line or "no rollout history" in line):
            return NotFound(line[len("error: "):], kind=kind, name=name)
    return None
