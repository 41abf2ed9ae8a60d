"""gunicorn settings for the vision server.

* Binds $HOST:$PORT (default 0.0.0.0:8000) so that Docker/Kubernetes can reach it.
* WEB_CONCURRENCY workers (default: the CPUs this container may use, at most 4;
  the GPU image sets 1: one CUDA context, batching does the rest), each with
  THREADS threads (default 8) and HTTP keep-alive.
* Each worker's onnxruntime gets CPUs / workers threads (ORT_INTRA_OP_THREADS
  overrides), so that the workers do not oversubscribe the CPUs.
* SIGTERM is a graceful stop: in-flight requests finish within graceful_timeout.
"""
import math
import os
import tempfile
import time


def effective_cpus() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2 CPU
    quota (docker run --cpus, a Kubernetes CPU limit). cpu_count() would say the
    whole host's, and a pod on a big node would start dozens of workers."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


cpus = effective_cpus()
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", min(cpus, 4)))
worker_class = "gthread"
threads = int(os.environ.get("THREADS", "8"))
keepalive = 5
timeout = 60
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "20"))
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")
control_socket_disable = True  # gunicorn 27: no control socket (the user has no home)

# One clock for the whole server (HANG_AFTER_SECONDS), and one folder where the
# workers' Prometheus metrics are summed.
os.environ.setdefault("SERVER_START_TIME", str(time.time()))
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="prom-"))
# Readiness is server-wide: /readyz says 200 only when every worker has loaded
# its model (each one drops a ready-<pid> file here).
os.environ["SERVER_STATE_DIR"] = tempfile.mkdtemp(prefix="state-")
os.environ["SERVER_WORKERS"] = str(workers)
os.environ["SERVER_CPUS"] = str(cpus)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
    try:
        os.unlink(os.path.join(os.environ["SERVER_STATE_DIR"], f"ready-{worker.pid}"))
    except FileNotFoundError:
        pass
