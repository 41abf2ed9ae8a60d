"""gunicorn settings for the sentiment server.

* Binds $HOST:$PORT (default 0.0.0.0:8000) so that Docker/Kubernetes can reach it.
* WEB_CONCURRENCY workers (default: the CPUs this container may use), each
  with THREADS threads (default 16) and HTTP keep-alive.
* SIGTERM is a graceful stop: in-flight requests finish within graceful_timeout.
"""
import multiprocessing
import os
import tempfile
import time

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
# cpu_count() is the host's, not the container's CPU limit: cap the default so
# that a pod on a big node does not start dozens of workers and get OOMKilled.
workers = int(os.environ.get("WEB_CONCURRENCY", min(multiprocessing.cpu_count(), 4)))
# Threads + keep-alive: connections are reused (no TCP setup per request) and
# concurrent requests in a worker are classified together by the micro-batcher.
worker_class = "gthread"
threads = int(os.environ.get("THREADS", "16"))
keepalive = 5
timeout = 30
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "20"))
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
control_socket_disable = True  # gunicorn 27: no control socket (the user has no home)

# One clock for the whole server (HANG_AFTER_SECONDS), and one folder where the
# workers' Prometheus counters are summed.
os.environ.setdefault("SERVER_START_TIME", str(time.time()))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="prom-"))
# Readiness is server-wide: /readyz says 200 only when every worker has loaded
# its model (each one drops a ready-<pid> file here).
os.environ["SERVER_STATE_DIR"] = tempfile.mkdtemp(prefix="state-")
os.environ["SERVER_WORKERS"] = str(workers)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    try:
        os.unlink(os.path.join(os.environ["SERVER_STATE_DIR"], f"ready-{worker.pid}"))
    except FileNotFoundError:
        pass
