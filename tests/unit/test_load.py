"""harness.load: parsing captured hey outputs, argv building, the URL rule, and
short real runs (hey and the Python fallback) against a server on 127.0.0.1."""
from __future__ import annotations

import http.server
import json
import logging
import socket
import stat
import threading
import time
from pathlib import Path

import pytest

from harness import load
from harness.load import (PERCENTILES, HeyMissing, LoadError, LoadResult, build_hey_argv, parse_hey,
                          percentiles_like_hey, run_load, start_load)

FIXTURES = Path(__file__).parent / "fixtures" / "hey"
HAVE_HEY = load.find_hey() is not None
needs_hey = pytest.mark.skipif(not HAVE_HEY, reason="hey not installed")
TOOLS = [pytest.param("hey", marks=needs_hey), "python"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --------------------------------------------------------------------------- captured outputs

REFUSED = 'Get "http://127.0.0.1:18099/": dial tcp 127.0.0.1:18099: connect: connection refused'
SLOW_TIMEOUT = ('Get "http://127.0.0.1:18081/slow": context deadline exceeded '
                '(Client.Timeout exceeded while awaiting headers)')
SOMESLOW_TIMEOUT = ('Get "http://127.0.0.1:18081/someslow": context deadline exceeded '
                    '(Client.Timeout exceeded while awaiting headers)')
CHAOS_TIMEOUT = ('Get "http://127.0.0.1:18081/chaos": context deadline exceeded '
                 '(Client.Timeout exceeded while awaiting headers)')

# file -> exact expectations (latencies in ms as hey printed them, in seconds x 1000)
EXPECTED = {
    "mixed_status.txt": dict(
        total=200, duration_s=0.0481, rps=4157.1551, ok=137, failed=63,
        status_counts={200: 137, 404: 23, 500: 40}, errors={},
        pct=(0.3, 0.8, 1.3, 2.6, 4.6, 6.5, 12.2), fastest_ms=0.1, slowest_ms=13.2, average_ms=2.1),
    "all_errors_refused.txt": dict(
        total=200, duration_s=0.0132, rps=15111.3853, ok=0, failed=200,
        status_counts={}, errors={REFUSED: 200},
        pct=(None,) * 7, fastest_ms=None, slowest_ms=None, average_ms=None),
    "all_timeouts.txt": dict(
        total=6, duration_s=2.0018, rps=2.9974, ok=0, failed=6,
        status_counts={}, errors={SLOW_TIMEOUT: 6},
        pct=(None,) * 7, fastest_ms=None, slowest_ms=None, average_ms=None),
    # only 8 responses: hey prints "0% in 0.0000 secs" for p90/p95/p99 -> the slowest
    "partial_timeouts.txt": dict(
        total=12, duration_s=2.0035, rps=5.9896, ok=8, failed=4,
        status_counts={200: 8}, errors={SOMESLOW_TIMEOUT: 4},
        pct=(0.2, 0.2, 0.8, 1.5, 2.0, 2.0, 2.0), fastest_ms=0.1, slowest_ms=2.0, average_ms=0.8),
    "duration_post_qps.txt": dict(
        total=200, duration_s=1.0059, rps=198.8265, ok=137, failed=63,
        status_counts={200: 137, 404: 23, 500: 40}, errors={},
        pct=(0.3, 0.4, 0.5, 0.6, 0.8, 0.9, 7.3), fastest_ms=0.2, slowest_ms=7.6, average_ms=0.6),
    "post_eof.txt": dict(
        total=40, duration_s=0.0296, rps=1349.3453, ok=30, failed=10,
        status_counts={200: 30}, errors={'Post "http://127.0.0.1:18081/drop": EOF': 10},
        pct=(1.9, 2.3, 2.4, 3.2, 4.7, 5.2, 5.2), fastest_ms=1.5, slowest_ms=5.2, average_ms=2.7),
    "mixed_errors.txt": dict(
        total=60, duration_s=4.0168, rps=14.9372, ok=32, failed=28,
        status_counts={200: 32, 503: 8},
        errors={'Get "http://127.0.0.1:18081/chaos": EOF': 8, CHAOS_TIMEOUT: 12},
        pct=(0.7, 0.9, 2.3, 5.1, 8.0, 11.7, 12.9), fastest_ms=0.5, slowest_ms=12.9, average_ms=3.3),
}


def test_every_fixture_has_expectations():
    assert sorted(p.name for p in FIXTURES.glob("*.txt")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parse_fixture_exact(name):
    exp = EXPECTED[name]
    r = parse_hey(fixture(name), argv=["hey", "-n", "1", "x"])
    assert r.tool == "hey"
    assert r.argv == ("hey", "-n", "1", "x")
    assert r.total == exp["total"]
    assert r.duration_s == exp["duration_s"]
    assert r.rps == exp["rps"]
    assert r.ok == exp["ok"]
    assert r.failed == exp["failed"]
    assert r.status_counts == exp["status_counts"]
    assert r.errors == exp["errors"]
    assert r.percentiles_ms == dict(zip(PERCENTILES, exp["pct"]))
    assert (r.fastest_ms, r.slowest_ms, r.average_ms) == (exp["fastest_ms"], exp["slowest_ms"], exp["average_ms"])
    # derived fields
    assert r.total == r.responses + r.error_count
    assert r.failed == r.non_2xx + r.error_count
    assert r.ok_rps == pytest.approx(exp["ok"] / exp["duration_s"], abs=1e-3)
    assert r.error_rate == pytest.approx(exp["failed"] / exp["total"], abs=1e-6)
    # hey's rps is total / duration: counts failures too
    assert r.rps == pytest.approx(r.total / r.duration_s, rel=0.02)
    assert r.output == fixture(name)


def test_all_errors_is_reported_as_failure_despite_hey_rps():
    r = parse_hey(fixture("all_errors_refused.txt"))
    assert r.rps > 10_000          # what hey claims...
    assert r.ok == 0               # ...while nothing worked
    assert r.ok_rps == 0
    assert r.failed == r.total == 200
    assert r.error_rate == 1.0
    assert r.status_counts == {}
    assert "connection refused" in r.summary()
    assert "ok 0 " in r.summary() and "failed 200 (100.0%)" in r.summary()


def test_mixed_status_ok_rps_counts_2xx_only():
    r = parse_hey(fixture("mixed_status.txt"))
    assert r.ok_rps == pytest.approx(137 / 0.0481, abs=1e-3)
    assert r.ok_rps < r.rps


def test_summary_and_to_dict():
    r = parse_hey(fixture("mixed_errors.txt"), argv=["hey", "-n", "60"])
    line = r.summary()
    assert "\n" not in line
    for part in ("hey: 60 requests", "ok 32", "failed 28", "200x32", "503x8", "errors 20", "+1 other kinds"):
        assert part in line
    d = r.to_dict()
    assert set(d) == {f.name for f in LoadResult.__dataclass_fields__.values()} - {"output"}
    assert d["status_counts"] == {"200": 32, "503": 8}
    assert d["argv"] == ["hey", "-n", "60"]
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize("text", [
    "",
    "some random text\n",
    "-n cannot be less than -c.\n\nUsage: hey [options...] <url>\n",
    "\nSummary:\n  Total:\t0.1 secs\n",                           # no Requests/sec
])
def test_parse_garbage_raises(text):
    with pytest.raises(LoadError) as ei:
        parse_hey(text, argv=["hey", "-n", "5", "http://127.0.0.1:1/"])
    assert ei.value.argv == ["hey", "-n", "5", "http://127.0.0.1:1/"]
    assert "hey -n 5" in str(ei.value)


def test_parse_truncated_latency_raises_with_tail():
    text = fixture("mixed_status.txt").replace("  99% in 0.0122 secs\n", "")
    with pytest.raises(LoadError, match="6 latency lines") as ei:
        parse_hey(text)
    assert "Status code distribution" in str(ei.value)   # the output tail is in the message


# --------------------------------------------------------------------------- percentiles


def _hey_loop(lats):
    """A straight port of hey 0.1.4's report.latencies() loop (0 = not printed)."""
    data = [0.0] * len(PERCENTILES)
    j = 0
    for i in range(len(lats)):
        if j >= len(PERCENTILES):
            break
        if i * 100 // len(lats) >= PERCENTILES[j]:
            data[j] = lats[i]
            j += 1
    return data


@pytest.mark.parametrize("n", list(range(1, 60)) + [99, 100, 101, 250, 1000])
def test_percentiles_match_hey(n):
    lats = [float(i + 1) for i in range(n)]
    ours = percentiles_like_hey(lats)
    for p, hey_value in zip(PERCENTILES, _hey_loop(lats)):
        # where hey prints a value we agree; where it leaves a gap we give the slowest
        assert ours[p] == (hey_value if hey_value else lats[-1])
    values = [ours[p] for p in PERCENTILES]
    assert values == sorted(values)
    if n >= 25:   # the usual rule from there on: sample ceil(p*n/100), 0-based, capped
        assert values == [lats[min(-(-p * n // 100), n - 1)] for p in PERCENTILES]


def test_percentiles_examples():
    lats = [float(i) for i in range(1, 101)]
    assert percentiles_like_hey(lats) == {10: 11.0, 25: 26.0, 50: 51.0, 75: 76.0, 90: 91.0, 95: 96.0, 99: 100.0}
    assert percentiles_like_hey([7.0]) == {p: 7.0 for p in PERCENTILES}


def test_percentiles_empty():
    assert percentiles_like_hey([]) == {p: None for p in PERCENTILES}


# --------------------------------------------------------------------------- argv and arguments

URL = "http://127.0.0.1:8080/predict"


def test_argv_requests_defaults():
    assert build_hey_argv(URL, requests=100) == [
        "hey", "-n", "100", "-c", "10", "-m", "GET", "-t", "5", URL]
    assert build_hey_argv(URL)[1:3] == ["-n", "200"]          # hey's default count


def test_argv_everything():
    argv = build_hey_argv(URL, duration_s=10, concurrency=4, method="post", body='{"x": [1, 2]}',
                          headers={"X-A": "1", "Authorization": "Bearer t"}, timeout_s=3, qps=20,
                          disable_keepalive=True)
    assert argv == ["hey", "-z", "10s", "-c", "4", "-m", "POST", "-t", "3", "-q", "20",
                    "-d", '{"x": [1, 2]}', "-T", "application/json",
                    "-H", "X-A: 1", "-H", "Authorization: Bearer t", "-disable-keepalive", URL]


def test_argv_conversions():
    assert build_hey_argv(URL, duration_s=1.5)[1:3] == ["-z", "1500ms"]
    assert build_hey_argv(URL, duration_s=0.25)[1:3] == ["-z", "250ms"]
    a = build_hey_argv(URL, requests=5, concurrency=10, timeout_s=2.5, qps=0.5,
                       headers=[("X-Dup", "1"), ("X-Dup", "2")], content_type="text/plain", body="hi")
    assert a[a.index("-c") + 1] == "5"          # hey refuses -n < -c
    assert a[a.index("-t") + 1] == "3"          # whole seconds, rounded up
    assert a[a.index("-q") + 1] == "0.5"
    assert a[a.index("-T") + 1] == "text/plain"
    assert [a[i + 1] for i, x in enumerate(a) if x == "-H"] == ["X-Dup: 1", "X-Dup: 2"]
    binary = build_hey_argv(URL, method="POST", body=b"\x00\xff" * 10)
    assert binary[binary.index("-D") + 1] == "<body-file>" and "-d" not in binary


@pytest.mark.parametrize("kwargs", [
    dict(duration_s=1, requests=10),
    dict(duration_s=0),
    dict(requests=0),
    dict(concurrency=0),
    dict(timeout_s=0),
    dict(qps=0),
    dict(method="TRACE"),
    dict(headers={"Bad:Name": "x"}),
    dict(headers={"X-A": "a\r\nX-B: b"}),
])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        build_hey_argv(URL, **kwargs)
    with pytest.raises(ValueError):
        run_load(URL, tool="python", **kwargs)


def test_unknown_tool():
    with pytest.raises(ValueError, match="tool"):
        run_load(URL, requests=1, tool="wrk")


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/", "http://127.0.0.1:8080/x?y=1", "http://127.9.8.7:1/", "http://localhost:8000/",
    "http://LOCALHOST/", "http://[::1]:8080/", "https://127.0.0.1:8443/", "http://[::ffff:127.0.0.1]:80/",
])
def test_loopback_urls_accepted(url):
    load.check_url(url)


@pytest.mark.parametrize("url", [
    "http://10.0.0.1/", "http://192.168.1.5:8080/", "http://example.com/", "http://0.0.0.0:8080/",
    "http://[2001:db8::1]/", "http://localhost.example.com/", "http://foo.localhost/",
    "http://127.0.0.1@example.com/", "ftp://127.0.0.1/", "127.0.0.1:8080", "http:///x",
    "http://127.0.0.1:99999/",
])
def test_non_loopback_refused(url):
    with pytest.raises(ValueError):
        run_load(url, requests=1, concurrency=1, tool="python")
    with pytest.raises(ValueError):
        start_load(url, requests=1, concurrency=1)     # refused up front, not in the thread


# --------------------------------------------------------------------------- a local server


class _Server:
    """ThreadingHTTPServer on 127.0.0.1:0 that numbers requests and records them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.seen: list[dict] = []
        self.connections: set[tuple] = set()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *a):
                pass

            def _do(self):
                n_body = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n_body) if n_body else b""
                with outer.lock:
                    n = outer.count
                    outer.count += 1
                    outer.connections.add(self.client_address)
                    outer.seen.append({"path": self.path, "method": self.command, "body": body,
                                       "headers": dict(self.headers)})
                if self.path.startswith("/slow"):
                    time.sleep(1.5)
                code = 500 if self.path.startswith("/mixed") and n % 5 == 4 else 200
                out = json.dumps({"n": n}).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass
                if self.path.startswith("/closing"):   # close without saying so: a stale keep-alive
                    self.close_connection = True

            do_GET = do_POST = _do

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@pytest.fixture
def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_consistent(r: LoadResult, tool: str):
    assert r.tool == tool
    assert r.total == r.responses + r.error_count
    assert r.failed == r.non_2xx + r.error_count
    if r.responses:
        pct = [r.percentiles_ms[p] for p in PERCENTILES]
        assert None not in pct
        assert r.fastest_ms <= pct[0] and pct == sorted(pct) and pct[-1] <= r.slowest_ms
        assert r.fastest_ms <= r.average_ms <= r.slowest_ms


# --------------------------------------------------------------------------- real runs


def test_hey_and_python_agree(server):
    results = {}
    tools = ["hey", "python"] if HAVE_HEY else ["python"]
    for tool in tools:
        before = server.count
        t0 = time.monotonic()
        r = run_load(server.url + "/mixed", requests=100, concurrency=5, tool=tool)
        assert time.monotonic() - t0 < 3
        _check_consistent(r, tool)
        # counters start at a multiple of 5, so exactly 1 in 5 requests is a 500
        assert server.count - before == r.total == 100
        assert r.status_counts == {200: 80, 500: 20}
        assert (r.ok, r.failed, r.errors, r.error_rate) == (80, 20, {}, 0.2)
        assert r.ok_rps == pytest.approx(80 / r.duration_s, rel=1e-3)
        results[tool] = r
    if len(results) == 2:
        a, b = results["hey"].to_dict(), results["python"].to_dict()
        assert a.keys() == b.keys()
        for k in ("total", "ok", "failed", "status_counts", "errors", "error_rate"):
            assert a[k] == b[k]
        assert results["hey"].argv[1:] == results["python"].argv[1:]   # same command, either way


@pytest.mark.parametrize("tool", TOOLS)
def test_all_errors_live(tool, closed_port):
    url = f"http://127.0.0.1:{closed_port}/"
    r = run_load(url, requests=20, concurrency=4, timeout_s=2, tool=tool)
    _check_consistent(r, tool)
    assert r.total == r.failed == 20
    assert r.ok == 0 and r.ok_rps == 0 and r.error_rate == 1.0
    assert r.status_counts == {}
    assert len(r.errors) == 1
    assert "refused" in next(iter(r.errors)).lower()
    assert r.p50_ms is None


@pytest.mark.parametrize("tool", TOOLS)
def test_timeouts_live(tool, server):
    t0 = time.monotonic()
    r = run_load(server.url + "/slow", requests=2, concurrency=2, timeout_s=1, tool=tool)
    assert time.monotonic() - t0 < 2.5
    _check_consistent(r, tool)
    assert (r.total, r.ok, r.failed, r.error_count) == (2, 0, 2, 2)
    assert len(r.errors) == 1 and "timeout" in next(iter(r.errors)).lower()


@pytest.mark.parametrize("tool", TOOLS)
def test_post_body_and_headers_reach_server(tool, server):
    r = run_load(server.url + "/echo", requests=4, concurrency=2, method="POST", body='{"x": 1}',
                 headers={"X-Test": "yes"}, tool=tool)
    assert (r.total, r.ok) == (4, 4)
    assert len(server.seen) == 4
    for req in server.seen:
        assert req["method"] == "POST" and req["path"] == "/echo" and req["body"] == b'{"x": 1}'
        assert req["headers"]["Content-Type"] == "application/json"
        assert req["headers"]["X-Test"] == "yes"


@pytest.mark.parametrize("tool", TOOLS)
def test_stale_keepalive_is_retried(tool, server):
    r = run_load(server.url + "/closing", requests=10, concurrency=1, tool=tool)
    assert (r.total, r.ok, r.errors) == (10, 10, {})


def test_python_concurrency_is_exact_and_keeps_alive(server):
    r = run_load(server.url + "/", requests=200, concurrency=10, tool="python")
    assert r.total == r.ok == server.count == 200
    assert len(server.connections) == 10      # one keep-alive connection per worker


def test_python_uneven_requests_like_hey(server):
    r = run_load(server.url + "/", requests=25, concurrency=10, tool="python")
    assert r.total == server.count == 20      # hey's n // c per worker


def test_python_disable_keepalive(server):
    r = run_load(server.url + "/", requests=12, concurrency=3, disable_keepalive=True, tool="python")
    assert r.ok == 12
    assert len(server.connections) == 12
    assert all(req["headers"].get("Connection") == "close" for req in server.seen)


def test_python_duration_and_qps(server):
    t0 = time.monotonic()
    r = run_load(server.url + "/", duration_s=1, concurrency=2, qps=20, tool="python")
    elapsed = time.monotonic() - t0
    assert 1.0 <= elapsed < 1.6
    assert 1.0 <= r.duration_s < 1.6
    assert 34 <= r.total <= 40          # 2 workers x 20/s x 1 s
    assert r.ok == r.total == server.count


def test_start_load_runs_in_background(server):
    h = start_load(server.url + "/", duration_s=1, concurrency=2, qps=50)
    time.sleep(0.3)
    assert not h.done()
    seen_while_running = server.count
    assert seen_while_running > 0          # load flows while the caller does other things
    r = h.result()
    assert h.done()
    assert r.tool == ("hey" if HAVE_HEY else "python")
    assert r.total == r.ok == server.count > seen_while_running
    assert r.duration_s >= 1.0


def test_start_load_result_reraises(tmp_path, monkeypatch, server):
    monkeypatch.setenv(load.HEY_ENV, str(tmp_path / "no-such-hey"))
    h = start_load(server.url + "/", requests=1, concurrency=1, tool="hey")
    with pytest.raises(HeyMissing):
        h.result(timeout=5)


# --------------------------------------------------------------------------- hey missing / broken


def _script(tmp_path: Path, body: str) -> str:
    p = tmp_path / "fake-hey"
    p.write_text("#!/bin/sh\n" + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IXUSR)
    return str(p)


def test_fallback_when_hey_missing(tmp_path, monkeypatch, server, caplog):
    monkeypatch.setenv(load.HEY_ENV, str(tmp_path / "no-such-hey"))
    with caplog.at_level(logging.INFO, logger="harness.load"):
        r = run_load(server.url + "/", requests=10, concurrency=2)
    assert r.tool == "python" and r.ok == 10
    notices = [rec for rec in caplog.records if rec.name == "harness.load"]
    assert len(notices) == 1 and "fallback" in notices[0].getMessage()
    assert "\n" not in notices[0].getMessage()


def test_tool_hey_required_but_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(load.HEY_ENV, str(tmp_path / "no-such-hey"))
    with pytest.raises(HeyMissing, match="failed to run hey"):
        run_load(URL, requests=1, concurrency=1, tool="hey")


def test_hey_crash_is_load_error(tmp_path, monkeypatch):
    monkeypatch.setenv(load.HEY_ENV, _script(tmp_path, 'echo "panic: something broke" ; exit 2'))
    with pytest.raises(LoadError) as ei:
        run_load(URL, requests=3, concurrency=1, tool="hey")
    msg = str(ei.value)
    assert msg.startswith("failed to run hey: exit status 2")
    assert "-n 3 -c 1" in msg and "panic: something broke" in msg
    assert ei.value.output.strip() == "panic: something broke"


def test_hey_unparsable_output_is_load_error(tmp_path, monkeypatch):
    monkeypatch.setenv(load.HEY_ENV, _script(tmp_path, "echo 'hello, not hey'"))
    with pytest.raises(LoadError, match="failed to run hey: could not parse") as ei:
        run_load(URL, requests=1, concurrency=1, tool="hey")
    assert "hello, not hey" in str(ei.value)


def test_hey_hang_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setenv(load.HEY_ENV, _script(tmp_path, "echo started; sleep 30"))
    monkeypatch.setattr(load, "SUBPROCESS_MARGIN_S", 0.5)
    t0 = time.monotonic()
    with pytest.raises(LoadError, match="no exit after") as ei:
        run_load(URL, requests=1, concurrency=1, timeout_s=1, tool="hey")   # bound: 1 s + 0.5 s
    assert time.monotonic() - t0 < 4
    assert "started" in ei.value.output


def test_fake_hey_output_is_parsed(tmp_path, monkeypatch):
    fixture_path = FIXTURES / "all_errors_refused.txt"
    monkeypatch.setenv(load.HEY_ENV, _script(tmp_path, f"cat '{fixture_path}'"))
    r = run_load(URL, requests=200, concurrency=10, tool="hey")
    assert r.argv[0].endswith("fake-hey") and r.argv[1:] == tuple(build_hey_argv(URL, requests=200)[1:])
    assert (r.ok, r.failed, r.ok_rps, r.error_rate) == (0, 200, 0, 1.0)


@pytest.mark.parametrize("tool", ["hey", "python"])
def test_start_load_can_be_stopped_early(tool):
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from harness.load import start_load

    if tool == "hey" and not shutil.which("hey"):
        pytest.skip("hey not installed")

    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        h = start_load(f"http://127.0.0.1:{srv.server_port}/", duration_s=60, concurrency=2, qps=20, tool=tool)
        import time
        time.sleep(1.5)
        t0 = time.monotonic()
        r = h.stop()
        assert time.monotonic() - t0 < 5
        assert r.ok > 5 and r.failed == 0 and r.duration_s < 10
    finally:
        srv.shutdown()
