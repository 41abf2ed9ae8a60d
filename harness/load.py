"""Load generation: run ``hey`` (or a pure-Python fallback) against a local URL.

``run_load(url, ...)`` returns a :class:`LoadResult`; ``start_load(url, ...)``
runs the same in a background thread so a check can do something (a rolling
update, a container restart) while load flows, then ``handle.result()``.

Things this module takes care of, because hey does not:

* hey exits 0 even when every request failed (connection refused, timeouts).
  The result counts those: ``failed`` = non-2xx responses + errors, and
  ``error_rate`` = failed / total.
* hey's ``Requests/sec`` counts failed requests too (17k req/s against a closed
  port). It is kept as ``rps``; ``ok_rps`` counts 2xx responses only.
* hey prints ``0% in 0.0000 secs`` for percentiles it has too few samples to
  reach (fewer than ~10 responses for p90). Every such percentile is the
  slowest response, so that is what the result holds.
* Load only ever goes to this machine: URLs whose host is not loopback
  (127.0.0.0/8, ``localhost``, ``::1``) are refused with ``ValueError``.
* Everything is bounded: hey runs under a subprocess timeout of its worst case
  plus a margin, and the fallback's workers stop at the same bound.

When hey is not on PATH (or ``tool="python"``) a thread-per-worker
``http.client`` fallback produces the same :class:`LoadResult`, with
``tool == "python"``; falling back is logged on ``harness.load``.
"""
from __future__ import annotations

import http.client
import ipaddress
import logging
import math
import os
import re
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

log = logging.getLogger("harness.load")

PERCENTILES: tuple[int, ...] = (10, 25, 50, 75, 90, 95, 99)
"""The percentiles hey prints, in its order."""

HEY_ENV = "HARNESS_HEY"
"""Environment variable naming the hey binary (default: ``hey`` on PATH)."""

MAX_INLINE_BODY = 32 * 1024
"""Bodies larger than this (or binary ones) go to hey through ``-D file``."""

SUBPROCESS_MARGIN_S = 15.0
"""Added to the worst-case run time to get the hard timeout."""

_TAIL_CHARS = 2000


class LoadError(RuntimeError):
    """hey (or the fallback) could not run, or its output could not be parsed."""

    def __init__(self, message: str, argv: Sequence[str] = (), output: str = ""):
        self.argv = list(argv)
        self.output = output or ""
        text = message
        if self.argv:
            text += f"\n  argv: {' '.join(self.argv)}"
        if self.output:
            tail = self.output[-_TAIL_CHARS:]
            text += "\n  output tail:\n" + "\n".join("    " + ln for ln in tail.rstrip().splitlines())
        super().__init__(text)
        self.message = message


class HeyMissing(LoadError):
    """``tool="hey"`` was asked for and no hey binary was found."""


# --------------------------------------------------------------------------- result


@dataclass(frozen=True)
class LoadResult:
    """What one load run did. Latencies are in milliseconds, None without responses.

    ``total`` is every request attempted (responses + errors). ``rps`` is the
    tool's own rate (hey's ``Requests/sec``, failures included); ``ok_rps``
    counts 2xx responses only. ``failed`` = non-2xx responses + errors.
    """

    total: int
    duration_s: float
    rps: float
    ok: int
    ok_rps: float
    p10_ms: float | None
    p25_ms: float | None
    p50_ms: float | None
    p75_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    fastest_ms: float | None
    slowest_ms: float | None
    average_ms: float | None
    status_counts: dict[int, int]
    errors: dict[str, int]
    failed: int
    error_rate: float
    tool: str
    argv: tuple[str, ...] = ()
    output: str = field(default="", repr=False, compare=False)
    """The tool's raw output (hey's stdout+stderr); empty for the fallback."""

    # -- derived ----------------------------------------------------------------
    @property
    def responses(self) -> int:
        """Requests that got an HTTP response, whatever its status."""
        return sum(self.status_counts.values())

    @property
    def error_count(self) -> int:
        """Requests that got no HTTP response (refused, reset, timed out...)."""
        return sum(self.errors.values())

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.status_counts.items() if not 200 <= code < 300)

    @property
    def percentiles_ms(self) -> dict[int, float | None]:
        return {p: getattr(self, f"p{p}_ms") for p in PERCENTILES}

    def failures(self, kinds: int = 2, width: int = 60) -> str:
        """The failed requests in a few words for a check's message: non-2xx codes with
        their counts, then the commonest error reasons. A reason is the last part of Go's
        error text (``Post "http://127.0.0.1:38419/predict": dial tcp 127.0.0.1:38419:
        connect: connection refused`` -> ``connection refused``), so the local ports the
        learner never saw do not split one reason into many."""
        codes = ", ".join(f"{c}×{n}" for c, n in sorted(self.status_counts.items()) if not 200 <= c < 300)
        reasons: Counter[str] = Counter()
        for text, n in self.errors.items():
            reasons[_clip(text.rsplit(": ", 1)[-1].strip() or text, width)] += n
        top = reasons.most_common()
        errs = "; ".join(f"{r} ×{n}" for r, n in top[:kinds])
        if len(top) > kinds:
            errs += f"; {sum(n for _, n in top[kinds:])} other"
        return "; ".join(x for x in (codes, errs) if x)

    def summary(self) -> str:
        """One line for logs and check reports."""
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}ms"

        parts = [
            f"{self.tool}: {self.total} requests in {self.duration_s:.2f}s",
            f"ok {self.ok} ({self.ok_rps:.1f}/s; tool rps {self.rps:.1f})",
            f"failed {self.failed} ({self.error_rate:.1%})",
            f"p50 {ms(self.p50_ms)} p90 {ms(self.p90_ms)} p99 {ms(self.p99_ms)} max {ms(self.slowest_ms)}",
            "status " + (", ".join(f"{c}x{n}" for c, n in sorted(self.status_counts.items())) or "none"),
        ]
        if self.errors:
            top, count = max(self.errors.items(), key=lambda kv: kv[1])
            more = f" (+{len(self.errors) - 1} other kinds)" if len(self.errors) > 1 else ""
            parts.append(f"errors {self.error_count}: {count}x {_clip(top, 160)}{more}")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (status codes become string keys); raw output left out."""
        d = asdict(self)
        d.pop("output", None)
        d["status_counts"] = {str(k): v for k, v in sorted(self.status_counts.items())}
        d["argv"] = list(self.argv)
        return d


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 3] + "..."


def _make_result(*, total: int, duration_s: float, rps: float, status_counts: Mapping[int, int],
                 errors: Mapping[str, int], percentiles_s: Mapping[int, float | None],
                 fastest_s: float | None, slowest_s: float | None, average_s: float | None,
                 tool: str, argv: Sequence[str], output: str = "") -> LoadResult:
    ok = sum(n for code, n in status_counts.items() if 200 <= code < 300)
    non_2xx = sum(n for code, n in status_counts.items() if not 200 <= code < 300)
    n_err = sum(errors.values())
    failed = non_2xx + n_err
    ok_rps = ok / duration_s if duration_s > 0 else 0.0

    def ms(v: float | None) -> float | None:
        return None if v is None else round(v * 1000.0, 3)

    return LoadResult(
        total=total,
        duration_s=round(duration_s, 6),
        rps=round(rps, 4),
        ok=ok,
        ok_rps=round(ok_rps, 4),
        **{f"p{p}_ms": ms(percentiles_s.get(p)) for p in PERCENTILES},
        fastest_ms=ms(fastest_s),
        slowest_ms=ms(slowest_s),
        average_ms=ms(average_s),
        status_counts=dict(sorted(status_counts.items())),
        errors=dict(errors),
        failed=failed,
        # A run that sent nothing at all did not work: count it as all-failed.
        error_rate=round(failed / total, 6) if total else 1.0,
        tool=tool,
        argv=tuple(argv),
        output=output,
    )


# --------------------------------------------------------------------------- parsing hey

_SECTIONS = {
    "Summary:": "summary",
    "Response time histogram:": "histogram",
    "Latency distribution:": "latency",
    "Details (average, fastest, slowest):": "details",
    "Status code distribution:": "status",
    "Error distribution:": "errors",
}
_NUM = r"([0-9.]+|NaN|[+-]?Inf)"
_SUMMARY_RE = re.compile(r"^\s*(Total|Slowest|Fastest|Average|Requests/sec):\s*" + _NUM + r"(?:\s+secs)?\s*$")
_LATENCY_RE = re.compile(r"^\s*(\d+)%\s+in\s+" + _NUM + r"\s+secs\s*$")
_STATUS_RE = re.compile(r"^\s*\[(\d+)\]\s+(\d+)\s+responses\s*$")
_ERROR_RE = re.compile(r"^\s*\[(\d+)\]\t(.*?)\s*$")


def _num(s: str) -> float | None:
    v = float(s)
    return None if math.isnan(v) or math.isinf(v) else v


def parse_hey(output: str, *, argv: Sequence[str] = (), tool: str = "hey") -> LoadResult:
    """Parse hey's default (summary) text output into a :class:`LoadResult`.

    Raises :class:`LoadError` (with the output tail) when it is not such output.
    """
    section: str | None = None
    summary: dict[str, float | None] = {}
    latency_lines: list[tuple[int, float | None]] = []
    status: dict[int, int] = {}
    errors: dict[str, int] = {}
    seen: set[str] = set()

    for raw in output.splitlines():
        line = raw.rstrip("\r\n")
        header = line.strip()
        if header in _SECTIONS and not line.startswith("  ["):
            section = _SECTIONS[header]
            seen.add(section)
            continue
        if not header:
            continue
        if section == "summary":
            m = _SUMMARY_RE.match(line)
            if m:
                summary[m.group(1)] = _num(m.group(2))
        elif section == "latency":
            m = _LATENCY_RE.match(line)
            if m:
                latency_lines.append((int(m.group(1)), _num(m.group(2))))
        elif section == "status":
            m = _STATUS_RE.match(line)
            if m:
                code = int(m.group(1))
                status[code] = status.get(code, 0) + int(m.group(2))
        elif section == "errors":
            m = _ERROR_RE.match(line)
            if m:
                msg = m.group(2)
                errors[msg] = errors.get(msg, 0) + int(m.group(1))
            else:  # keep anything unexpected rather than lose a failure
                raise LoadError(f"could not parse hey error line {line!r}", argv, output)

    if "summary" not in seen or summary.get("Total") is None or "Requests/sec" not in summary:
        raise LoadError("could not parse hey output: no Summary with Total and Requests/sec", argv, output)

    responses = sum(status.values())
    total = responses + sum(errors.values())
    duration = summary["Total"] or 0.0
    rps = summary.get("Requests/sec") or 0.0

    if responses:
        fastest, slowest, average = summary.get("Fastest"), summary.get("Slowest"), summary.get("Average")
        percentiles = _parse_latency_lines(latency_lines, slowest, argv, output)
    else:  # hey prints 0.0000 / NaN here: there is no latency to report
        fastest = slowest = average = None
        percentiles = {p: None for p in PERCENTILES}

    return _make_result(total=total, duration_s=duration, rps=rps, status_counts=status, errors=errors,
                        percentiles_s=percentiles, fastest_s=fastest, slowest_s=slowest, average_s=average,
                        tool=tool, argv=argv, output=output)


def _parse_latency_lines(lines: list[tuple[int, float | None]], slowest: float | None,
                     argv: Sequence[str], output: str) -> dict[int, float | None]:
    """Map hey's latency lines to percentiles.

    hey always prints one line per percentile in :data:`PERCENTILES` order, but
    prints ``0% in 0.0000 secs`` for the ones its loop never reached (too few
    samples); those are the slowest response (see :func:`percentiles_like_hey`).
    """
    if not lines:
        raise LoadError("could not parse hey output: responses but no latency distribution", argv, output)
    if len(lines) != len(PERCENTILES):
        raise LoadError(f"could not parse hey output: {len(lines)} latency lines, expected {len(PERCENTILES)}",
                        argv, output)
    out: dict[int, float | None] = {}
    for want, (label, value) in zip(PERCENTILES, lines):
        if label == want and value is not None:
            out[want] = value
        elif label == 0:
            out[want] = slowest
        else:
            raise LoadError(f"could not parse hey output: latency line {label}% where {want}% expected",
                            argv, output)
    return out


# --------------------------------------------------------------------------- planning


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    h = host.strip("[]").lower().rstrip(".")
    if h == "localhost":  # not *.localhost: the resolver may send those off the machine
        return True
    try:
        ip = ipaddress.ip_address(h.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def check_url(url: str) -> None:
    """Raise ValueError unless ``url`` is http(s) to a loopback host."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"load URL must be http:// or https://, got {url!r}")
    try:
        parts.port
    except ValueError as e:
        raise ValueError(f"bad port in load URL {url!r}: {e}") from None
    if not is_loopback_host(parts.hostname):
        raise ValueError(f"refusing to send load to {parts.hostname!r} ({url!r}): "
                         "load only goes to this machine (127.0.0.0/8, localhost, ::1)")


def _fmt_duration(d: float) -> str:
    """Go duration string: 10 -> '10s', 1.5 -> '1500ms', 0.25 -> '250ms'."""
    if d == int(d):
        return f"{int(d)}s"
    return f"{max(1, round(d * 1000))}ms"


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x) == int(x) else repr(float(x))


@dataclass(frozen=True)
class _Plan:
    url: str
    duration_s: float | None
    requests: int | None
    concurrency: int
    method: str
    body: bytes | None
    headers: tuple[tuple[str, str], ...]
    content_type: str
    timeout_s: int
    qps: float | None
    disable_keepalive: bool
    tool: str

    @property
    def per_worker(self) -> int | None:
        # hey gives each of its c workers n // c requests (so -n 25 -c 10 sends 20)
        return None if self.requests is None else self.requests // self.concurrency

    def worst_case_s(self) -> float:
        """How long the run may take if every request hits its timeout."""
        if self.duration_s is not None:
            return self.duration_s + self.timeout_s
        per = self.per_worker or 0
        t = per * self.timeout_s
        if self.qps:
            t += per / self.qps
        return float(t)

    def bound_s(self) -> float:
        return self.worst_case_s() + SUBPROCESS_MARGIN_S


def _plan(url: str, *, duration_s: float | None, requests: int | None, concurrency: int, method: str,
          body: str | bytes | None, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
          content_type: str, timeout_s: float, qps: float | None, disable_keepalive: bool,
          tool: str) -> _Plan:
    check_url(url)
    if tool not in ("auto", "hey", "python"):
        raise ValueError(f"tool must be 'auto', 'hey' or 'python', got {tool!r}")
    if duration_s is not None and requests is not None:
        raise ValueError("give duration_s or requests, not both")
    if duration_s is None and requests is None:
        requests = 200  # hey's own default
    if duration_s is not None and not (duration_s > 0 and math.isfinite(duration_s)):
        raise ValueError(f"duration_s must be > 0, got {duration_s!r}")
    if requests is not None and (int(requests) != requests or requests < 1):
        raise ValueError(f"requests must be a positive integer, got {requests!r}")
    if int(concurrency) != concurrency or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    concurrency = int(concurrency)
    if requests is not None:
        requests = int(requests)
        # hey refuses -n < -c ("-n cannot be less than -c"); fewer workers is what was meant.
        concurrency = min(concurrency, requests)
    if not timeout_s or not (timeout_s > 0 and math.isfinite(timeout_s)):
        raise ValueError(f"timeout_s must be > 0 (no unbounded requests), got {timeout_s!r}")
    timeout = max(1, math.ceil(timeout_s))  # hey's -t takes whole seconds
    if qps is not None and not (qps > 0 and math.isfinite(qps)):
        raise ValueError(f"qps must be > 0, got {qps!r}")
    method = method.upper()
    if method not in ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"):
        raise ValueError(f"unsupported method {method!r}")
    if isinstance(body, str):
        body_b: bytes | None = body.encode("utf-8")
    else:
        body_b = bytes(body) if body is not None else None
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
    hdrs: list[tuple[str, str]] = []
    for k, v in items:
        k, v = str(k).strip(), str(v).strip()
        if not k or ":" in k or "\n" in k + v or "\r" in k + v:
            raise ValueError(f"bad header {k!r}: {v!r}")
        hdrs.append((k, v))
    return _Plan(url=url, duration_s=float(duration_s) if duration_s is not None else None, requests=requests,
                 concurrency=concurrency, method=method, body=body_b, headers=tuple(hdrs),
                 content_type=content_type, timeout_s=timeout, qps=float(qps) if qps else None,
                 disable_keepalive=bool(disable_keepalive), tool=tool)


def _hey_argv(plan: _Plan, hey: str = "hey", body_file: str | None = None) -> list[str]:
    argv = [hey]
    if plan.duration_s is not None:
        argv += ["-z", _fmt_duration(plan.duration_s)]
    else:
        argv += ["-n", str(plan.requests)]
    argv += ["-c", str(plan.concurrency), "-m", plan.method, "-t", str(plan.timeout_s)]
    if plan.qps:
        argv += ["-q", _fmt_num(plan.qps)]
    if plan.body is not None:
        if body_file is not None:
            argv += ["-D", body_file]
        else:
            argv += ["-d", plan.body.decode("utf-8")]
        argv += ["-T", plan.content_type]
    for k, v in plan.headers:
        argv += ["-H", f"{k}: {v}"]
    if plan.disable_keepalive:
        argv.append("-disable-keepalive")
    argv.append(plan.url)
    return argv


def _needs_body_file(body: bytes | None) -> bool:
    if body is None:
        return False
    if len(body) > MAX_INLINE_BODY or b"\x00" in body:
        return True
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


def build_hey_argv(url: str, *, duration_s: float | None = None, requests: int | None = None,
                   concurrency: int = 10, method: str = "GET", body: str | bytes | None = None,
                   headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                   content_type: str = "application/json", timeout_s: float = 5, qps: float | None = None,
                   disable_keepalive: bool = False, hey: str = "hey") -> list[str]:
    """The hey command line :func:`run_load` would run (validating as it does).

    A body that is large or not UTF-8 goes through a temporary file (``-D``);
    here that shows as ``-D <body-file>``.
    """
    plan = _plan(url, duration_s=duration_s, requests=requests, concurrency=concurrency, method=method,
                 body=body, headers=headers, content_type=content_type, timeout_s=timeout_s, qps=qps,
                 disable_keepalive=disable_keepalive, tool="hey")
    return _hey_argv(plan, hey, "<body-file>" if _needs_body_file(plan.body) else None)


def find_hey() -> str | None:
    """Path of the hey binary (``$HARNESS_HEY`` or ``hey`` on PATH), or None."""
    return shutil.which(os.environ.get(HEY_ENV) or "hey")


# --------------------------------------------------------------------------- running


def run_load(url: str, *, duration_s: float | None = None, requests: int | None = None, concurrency: int = 10,
             method: str = "GET", body: str | bytes | None = None,
             headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
             content_type: str = "application/json", timeout_s: float = 5, qps: float | None = None,
             disable_keepalive: bool = False, tool: str = "auto") -> LoadResult:
    """Send load to a loopback ``url`` and return what happened.

    Exactly one of ``duration_s`` (hey ``-z``) or ``requests`` (hey ``-n``;
    default 200) bounds the run. As with hey, ``-n`` gives each of the
    ``concurrency`` workers ``requests // concurrency`` requests, and ``qps`` is
    per worker. ``timeout_s`` is per request, rounded up to whole seconds.
    ``content_type`` is sent only with a body. ``tool``: ``"auto"`` (hey when
    installed, else the Python fallback), ``"hey"`` or ``"python"``.

    Raises ValueError for bad arguments (a non-loopback URL included),
    :class:`HeyMissing` for ``tool="hey"`` without hey, :class:`LoadError` when
    the run fails or its output cannot be parsed. Failed *requests* do not
    raise: they are in the result (``failed``, ``error_rate``, ``errors``).
    """
    plan = _plan(url, duration_s=duration_s, requests=requests, concurrency=concurrency, method=method,
                 body=body, headers=headers, content_type=content_type, timeout_s=timeout_s, qps=qps,
                 disable_keepalive=disable_keepalive, tool=tool)
    return _execute(plan)


def _execute(plan: _Plan, stop: threading.Event | None = None) -> LoadResult:
    if plan.tool == "python":
        return _run_python(plan, stop)
    hey = find_hey()
    if hey is None:
        if plan.tool == "hey":
            raise HeyMissing(f"failed to run hey: no {os.environ.get(HEY_ENV) or 'hey'!r} on PATH",
                             _hey_argv(plan))
        log.warning("hey not found on PATH (set %s or install hey); using the pure-Python load fallback", HEY_ENV)
        return _run_python(plan, stop)
    return _run_hey(plan, hey, stop)


def _communicate(proc: subprocess.Popen, bound: float, stop: threading.Event | None) -> bytes:
    """proc.communicate(timeout=bound); when ``stop`` is set first, interrupt
    hey with SIGINT, which makes it stop sending and print its summary."""
    if stop is None:
        return proc.communicate(timeout=bound)[0]
    end = time.monotonic() + bound
    while proc.poll() is None and not stop.is_set() and time.monotonic() < end:
        stop.wait(0.2)
    if proc.poll() is None and stop.is_set():
        proc.send_signal(signal.SIGINT)
    return proc.communicate(timeout=max(1.0, end - time.monotonic()))[0]


def _run_hey(plan: _Plan, hey: str, stop: threading.Event | None = None) -> LoadResult:
    body_file = None
    try:
        if _needs_body_file(plan.body):
            fd, body_file = tempfile.mkstemp(prefix="harness-load-", suffix=".body")
            with os.fdopen(fd, "wb") as f:
                f.write(plan.body or b"")
        argv = _hey_argv(plan, hey, body_file)
        bound = plan.bound_s()
        try:
            # Own session, so a timeout kills hey and anything a wrapper script started.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            raise LoadError(f"failed to run hey: {e}", argv) from None
        try:
            raw = _communicate(proc, bound, stop)
        except subprocess.TimeoutExpired as e:
            partial = e.stdout or e.output
            _kill_group(proc)
            try:  # a second communicate() returns everything read so far, and the rest
                rest, _ = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                rest = None
            out = _decode(rest if rest else partial)
            raise LoadError(f"failed to run hey: no exit after {bound:.0f}s (killed)", argv, out) from None
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
    finally:
        if body_file:
            try:
                os.unlink(body_file)
            except OSError:
                pass
    out = _decode(raw)
    if proc.returncode != 0:
        why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
        raise LoadError(f"failed to run hey: {why}", argv, out)
    try:
        result = parse_hey(out, argv=argv, tool="hey")
    except LoadError as e:
        raise LoadError(f"failed to run hey: {e.message}", argv, out) from None
    if plan.per_worker is not None and result.total != plan.per_worker * plan.concurrency:
        log.warning("hey reported %d requests, expected %d: %s", result.total,
                    plan.per_worker * plan.concurrency, result.summary())
    return result


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            proc.kill()
        except ProcessLookupError:
            pass


def _decode(b: bytes | str | None) -> str:
    if b is None:
        return ""
    return b if isinstance(b, str) else b.decode("utf-8", "replace")


# --------------------------------------------------------------------------- python fallback


def percentiles_like_hey(sorted_latencies: Sequence[float]) -> dict[int, float | None]:
    """hey's percentile rule on ascending latencies, with the gaps hey leaves filled.

    A port of hey 0.1.4's loop, so both tools report the same numbers for the
    same samples: walking the samples, sample ``i`` gives the next percentile
    ``p`` once ``i*100//n >= p`` (one percentile per sample). Percentiles the
    walk never reaches (hey prints ``0% in 0.0000 secs``) are the slowest sample.
    From 25 samples on this is the usual nearest-rank rule; below that it is
    coarse, as any percentile of so few samples is.
    """
    n = len(sorted_latencies)
    if n == 0:
        return {p: None for p in PERCENTILES}
    out: dict[int, float | None] = {}
    j = 0
    for i in range(n):
        if j >= len(PERCENTILES):
            break
        if i * 100 // n >= PERCENTILES[j]:
            out[PERCENTILES[j]] = sorted_latencies[i]
            j += 1
    for p in PERCENTILES[j:]:
        out[p] = sorted_latencies[-1]
    return out


_STALE_CONNECTION_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                            ConnectionAbortedError)
_REPLAYABLE = frozenset({"GET", "HEAD", "OPTIONS"})


class _Worker:
    """One keep-alive connection, its own tallies (merged after join: no shared state)."""

    def __init__(self, plan: _Plan, stop: threading.Event, deadline: float | None):
        self.plan, self.stop, self.deadline = plan, stop, deadline
        parts = urlsplit(plan.url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.latencies: list[float] = []
        self.status: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.conn: http.client.HTTPConnection | None = None
        headers = {"Host": self.host_header, "User-Agent": "harness-load/1 (python fallback)",
                   "Accept-Encoding": "gzip"}
        if plan.body is not None:
            headers["Content-Type"] = plan.content_type
            headers["Content-Length"] = str(len(plan.body))
        if plan.disable_keepalive:
            headers["Connection"] = "close"
        for k, v in plan.headers:  # the caller's headers win, whatever their case
            for old in [h for h in headers if h.lower() == k.lower()]:
                del headers[old]
            headers[k] = v
        self.headers = headers

    def _connect(self) -> http.client.HTTPConnection:
        t = self.plan.timeout_s
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=t,
                                               context=ssl._create_unverified_context())  # like hey: no verify
        return http.client.HTTPConnection(self.host, self.port, timeout=t)

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def _request(self, timeout: float) -> http.client.HTTPResponse:
        if self.conn is None:
            self.conn = self._connect()
        conn, plan = self.conn, self.plan
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        conn.putrequest(plan.method, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            conn.putheader(k, v)
        conn.endheaders(plan.body)
        return conn.getresponse()

    def _send(self, start: float) -> http.client.HTTPResponse:
        plan = self.plan
        reused = self.conn is not None
        try:
            return self._request(plan.timeout_s)
        except _STALE_CONNECTION_ERRORS:
            # Like Go's transport: a kept-alive connection the server closed while
            # idle is retried once on a new one, for requests that may be replayed.
            self._close()
            left = plan.timeout_s - (time.monotonic() - start)
            if not (reused and plan.method in _REPLAYABLE and left > 0):
                raise
            return self._request(left)

    def _one(self) -> None:
        plan = self.plan
        start = time.monotonic()
        limit = start + plan.timeout_s
        try:
            resp = self._send(start)
            conn = self.conn
            while True:  # read the body within the request's time budget
                left = limit - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"request exceeded timeout of {plan.timeout_s}s while reading body")
                if conn is not None and conn.sock is not None:
                    conn.sock.settimeout(left)
                if not resp.read(65536):
                    break
            elapsed = time.monotonic() - start
            if elapsed > plan.timeout_s:
                raise TimeoutError(f"request exceeded timeout of {plan.timeout_s}s")
            self.latencies.append(elapsed)
            self.status[resp.status] += 1
            if plan.disable_keepalive or resp.will_close:
                self._close()
        except Exception as e:  # every failure is a result, keyed like hey's error lines
            self._close()
            if isinstance(e, OSError) and "timed out" in str(e):
                text = f"TimeoutError: timed out (timeout {plan.timeout_s}s)"
            else:
                text = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            self.errors[f'{plan.method.title()} "{plan.url}": {text}'] += 1

    def run(self) -> None:
        plan = self.plan
        interval = 1.0 / plan.qps if plan.qps else 0.0
        next_at = time.monotonic() + interval  # hey waits one tick before the first request too
        done = 0
        try:
            while not self.stop.is_set():
                if plan.per_worker is not None and done >= plan.per_worker:
                    break
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    break
                if interval:
                    now = time.monotonic()
                    wait = next_at - now
                    if wait > 0:
                        if self.deadline is not None:
                            wait = min(wait, self.deadline - now)
                        if self.stop.wait(max(0.0, wait)):
                            break
                        if self.deadline is not None and time.monotonic() >= self.deadline:
                            break
                    next_at = max(next_at + interval, time.monotonic())
                self._one()
                done += 1
        finally:
            self._close()


def _run_python(plan: _Plan, stop: threading.Event | None = None) -> LoadResult:
    argv = _hey_argv(plan, "hey", "<body-file>" if _needs_body_file(plan.body) else None)
    stop = stop or threading.Event()
    start = time.monotonic()
    deadline = start + plan.duration_s if plan.duration_s is not None else None
    workers = [_Worker(plan, stop, deadline) for _ in range(plan.concurrency)]
    threads = [threading.Thread(target=w.run, name=f"harness-load-{i}", daemon=True)
               for i, w in enumerate(workers)]
    for t in threads:
        t.start()
    hard_end = start + plan.bound_s()
    for t in threads:
        t.join(max(0.0, hard_end - time.monotonic()))
    if any(t.is_alive() for t in threads):
        stop.set()
        for t in threads:
            t.join(plan.timeout_s + 1.0)
        raise LoadError(f"failed to run the python load fallback: workers still busy after "
                        f"{plan.bound_s():.0f}s", argv)
    duration = time.monotonic() - start

    lats = sorted(x for w in workers for x in w.latencies)
    status: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for w in workers:
        status.update(w.status)
        errors.update(w.errors)
    total = len(lats) + sum(errors.values())
    return _make_result(
        total=total, duration_s=duration, rps=total / duration if duration > 0 else 0.0,
        status_counts=dict(status), errors=dict(errors), percentiles_s=percentiles_like_hey(lats),
        fastest_s=lats[0] if lats else None, slowest_s=lats[-1] if lats else None,
        average_s=sum(lats) / len(lats) if lats else None, tool="python", argv=argv)


# --------------------------------------------------------------------------- background


class LoadHandle:
    """A load run in a background thread; :meth:`result` waits for it."""

    def __init__(self, plan: _Plan):
        self._plan = plan
        self._result: LoadResult | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        self._stop = threading.Event()
        self.started_at = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="harness-load", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = _execute(self._plan, self._stop)
        except BaseException as e:  # handed to result()
            self._error = e
        finally:
            self._done.set()

    @property
    def url(self) -> str:
        return self._plan.url

    def done(self) -> bool:
        return self._done.is_set()

    def stop(self) -> LoadResult:
        """End the run now (hey gets SIGINT and prints its summary; the fallback's
        workers finish their request) and return its result."""
        self._stop.set()
        return self.result()

    def result(self, timeout: float | None = None) -> LoadResult:
        """Wait for the run (at most ``timeout`` s; default: its own bound) and return it.

        Re-raises what the run raised; raises TimeoutError if it is still going.
        """
        if timeout is None:
            timeout = self._plan.bound_s() + 5.0
        if not self._done.wait(timeout):
            raise TimeoutError(f"load run against {self._plan.url} still going after {timeout:.0f}s")
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


def start_load(url: str, *, duration_s: float | None = None, requests: int | None = None, concurrency: int = 10,
               method: str = "GET", body: str | bytes | None = None,
               headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
               content_type: str = "application/json", timeout_s: float = 5, qps: float | None = None,
               disable_keepalive: bool = False, tool: str = "auto") -> LoadHandle:
    """Like :func:`run_load`, in the background. Arguments are checked here, before it starts."""
    plan = _plan(url, duration_s=duration_s, requests=requests, concurrency=concurrency, method=method,
                 body=body, headers=headers, content_type=content_type, timeout_s=timeout_s, qps=qps,
                 disable_keepalive=disable_keepalive, tool=tool)
    return LoadHandle(plan)


__all__ = [
    "LoadError", "HeyMissing", "LoadResult", "LoadHandle", "PERCENTILES",
    "parse_hey", "run_load", "start_load", "build_hey_argv", "check_url", "is_loopback_host",
    "find_hey", "percentiles_like_hey",
]
