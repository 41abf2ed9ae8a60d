"""``kubectl exec -i`` and ``kubectl exec -it`` on the sim's API with real Docker: stdin piped into the
pod's process, and a shell on a terminal (kubectl run in a pseudo-terminal, as a learner types it).

Blind spot before: the sim's API refused ``-i``/``-t`` ("non-interactive commands only"), so the
interview practice's most common first move, a shell in the pod, did not exist on sim.
"""
from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

pytestmark = pytest.mark.docker

POD = """apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: python:3.11-slim
    command: [sleep, infinity]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from harness.cluster.sim import daemon
    from harness.cluster.sim.docker_runtime import available
    if not available():
        pytest.skip("no Docker engine")
    sim, server, nodeports = daemon.start_cluster()
    tmp = tmp_path_factory.mktemp("exec-it")
    kc = tmp / "kubeconfig"
    daemon.write_context(server.url, kc)
    base = ["kubectl", "--kubeconfig", str(kc), "--context", daemon.CONTEXT, "--cache-dir", str(tmp / "cache")]
    try:
        subprocess.run(base + ["apply", "-f", "-"], input=POD, text=True, check=True, capture_output=True)
        subprocess.run(base + ["wait", "--for=condition=Ready", "pod/shell", "--timeout=90s"], check=True,
                       capture_output=True)
        yield base
    finally:
        daemon.stop_cluster(sim, server, nodeports)


def test_exec_i_pipes_stdin_into_the_process_and_ends_with_its_exit_code(cluster):
    p = subprocess.run(cluster + ["exec", "-i", "shell", "--", "python", "-c",
                                  "import sys; data = sys.stdin.read(); print(data.upper(), end=''); "
                                  "print('to stderr', file=sys.stderr); sys.exit(4)"],
                       input="hello from stdin\nsecond line\n", capture_output=True, text=True, timeout=60)
    assert p.stdout == "HELLO FROM STDIN\nSECOND LINE\n", p
    assert "to stderr" in p.stderr
    assert p.returncode == 4, p


def _read_until(fd: int, needle: bytes, timeout: float) -> bytes:
    out = b""
    end = time.monotonic() + timeout
    while needle not in out and time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_exec_it_is_a_shell_on_a_terminal(cluster):
    pid, fd = pty.fork()
    if pid == 0:                                          # the child: kubectl on a 30x100 pseudo-terminal
        import fcntl
        import struct
        import termios
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        os.execvp("kubectl", cluster + ["exec", "-it", "shell", "--", "sh"])
    try:
        first = _read_until(fd, b"#", 30)                 # the root shell's prompt
        os.write(fd, b"echo product=$((6*7)); tty; stty size\n")
        out = _read_until(fd, b"product=42", 30)
        out += _read_until(fd, b"30 100", 10)
        os.write(fd, b"exit 3\n")
        rest = _read_until(fd, b"\x00never", 10)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    text = (first + out + rest).decode(errors="replace")
    assert "product=42" in text and "/dev/pts/" in text, text     # a real terminal inside the container
    assert "30 100" in text, text                                 # kubectl's resize reached it
    assert os.WEXITSTATUS(status) == 3, text
