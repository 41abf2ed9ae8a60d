"""Lab 01 checks: a sentiment model server in a Docker image.

Each check reads the :class:`harness.docker_lab.DockerLab` context. The order
here is the order of the report; ``container.graceful-stop`` stops the
container, so it comes last.
"""
from __future__ import annotations

import re
import time

from docker.utils.build import exclude_paths

from ..docker_lab import DockerLab
from ..waiting import FinalError, WaitTimeout, wait_for
from .common import SENTENCES
from .registry import CheckFailed, check

LAB = "01-docker"
DOCKERFILE_REF = "https://docs.docker.com/reference/dockerfile/"

# Image size budgets, from the reference solutions measured on the offline
# base image (Flask 425 MB, BentoML 495 MB) plus headroom.
SIZE_BUDGET_MB = {"flask": 550, "bentoml": 600}

# Files that must never reach the build context.
IGNORE_PROBES = {".git": ".git/HEAD", "a virtualenv": ".venv/pyvenv.cfg", "tests": "tests/test_probe.py"}

SECRET_NAME = re.compile(r"(?i)(pass(word|wd)?|secret|token|api[_-]?key|private[_-]?key|access[_-]?key|credential)")
SECRET_VALUE = re.compile(
    r"(AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|sk-[A-Za-z0-9_-]{16,}|xox[baprs]-[A-Za-z0-9-]{10,}"
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----)")
# Public values that official images set and that only look like secrets.
SECRET_ALLOW = {"GPG_KEY"}
DEP_INSTALL = re.compile(r"\b(pip3?|uv|poetry|pipenv)\b.*\binstall\b|\bpip3? sync\b")


def _ctx_failed_start(ctx: DockerLab) -> CheckFailed | None:
    c = ctx.run().container
    c.reload()
    if c.status in ("exited", "dead"):
        code = c.attrs["State"].get("ExitCode")
        return CheckFailed(f"the container exited with code {code} instead of serving",
                           details="last log lines:\n" + ctx.logs_tail(80))
    return None


@check("docker.dockerignore", lab=LAB, points=2,
       hint="list .git, .venv (and venv) and tests in labs/01-docker/.dockerignore",
       doc="https://docs.docker.com/build/concepts/context/#dockerignore-files")
def dockerignore(ctx: DockerLab) -> str:
    """.dockerignore keeps .git, virtualenvs and tests out of the build context"""
    ignore = ctx.context / ".dockerignore"
    if not ignore.is_file():
        raise CheckFailed("there is no .dockerignore: the whole folder is sent to the daemon")
    patterns = [ln.strip() for ln in ignore.read_text(errors="replace").splitlines()
                if ln.strip() and not ln.strip().startswith("#")]
    created = []
    try:
        for rel in IGNORE_PROBES.values():
            p = ctx.context / rel
            if not p.exists():
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text("probe\n")
                created.append(p)
        included = exclude_paths(str(ctx.context), patterns)
    finally:
        for p in created:
            p.unlink()
            try:
                p.parent.rmdir()
            except OSError:
                pass
    leaked = [what for what, rel in IGNORE_PROBES.items() if rel in included]
    if leaked:
        raise CheckFailed(f"these would be sent in the build context: {', '.join(leaked)}")
    return f"{len(patterns)} patterns keep .git, virtualenvs and tests out"


@check("image.builds", lab=LAB, points=3,
       hint="read the last build log lines: fix that Dockerfile instruction (FROM, COPY paths, RUN pip install -r requirements.txt)",
       doc=DOCKERFILE_REF)
def image_builds(ctx: DockerLab) -> str:
    """the image builds"""
    b = ctx.build()
    if not b.ok:
        raise CheckFailed(f"the build failed: {b.error}", details="last build log lines:\n" + b.log_tail())
    return f"built in {b.duration_s:.1f}s ({len(b.steps)} steps)"


@check("image.layer-order", lab=LAB, points=2, requires=("image.builds",),
       hint="COPY requirements.txt and RUN pip install before COPY of the app code, so code edits reuse the dependency layer",
       doc="https://docs.docker.com/build/cache/optimize/#order-your-layers")
def layer_order(ctx: DockerLab) -> str:
    """editing app code rebuilds without re-running the dependency install"""
    first = ctx.build()
    installs = [s for s in first.steps if DEP_INSTALL.search(s.instruction)]
    if not installs:
        raise CheckFailed("no dependency install step (RUN pip install ...) found in the Dockerfile")
    rel = ctx.app_file()
    if rel is None:
        raise CheckFailed("no Python app file found in the build context")
    second = ctx.rebuild_after_touching(rel)
    if not second.ok:
        raise CheckFailed(f"the second build failed: {second.error}", details=second.log_tail())
    again = {s.number: s for s in second.steps}
    rerun = [s for s in installs if s.number in again and not again[s.number].cached]
    if rerun:
        raise CheckFailed(f"editing {rel} re-ran `{rerun[0].instruction[:70]}`: "
                          "the dependency layer comes after a COPY of the code")
    if all(s.cached for s in second.steps):
        raise CheckFailed(f"editing {rel} changed nothing in the image: is the app code copied in?")
    return f"editing {rel} reused the dependency layer (rebuild {second.duration_s:.1f}s)"


@check("image.size", lab=LAB, points=1, requires=("image.builds",),
       hint="start FROM python:3.11-slim, install with --no-cache-dir, and do not copy data or build tools into the final image",
       doc="https://docs.docker.com/build/building/best-practices/")
def image_size(ctx: DockerLab) -> str:
    """the image is within the size budget"""
    size_mb = ctx.image().attrs["Size"] / 1e6
    reqs = (ctx.context / "requirements.txt")
    framework = "bentoml" if reqs.is_file() and "bentoml" in reqs.read_text().lower() else "flask"
    budget = SIZE_BUDGET_MB[framework]
    if size_mb > budget:
        raise CheckFailed(f"the image is {size_mb:.0f} MB, over the {budget} MB budget for a {framework} server")
    return f"{size_mb:.0f} MB (budget {budget} MB for {framework})"


@check("image.no-secrets", lab=LAB, points=2, requires=("image.builds",),
       hint="do not put keys or passwords in ENV/ARG lines: pass them at run time (docker run -e, a Kubernetes Secret)",
       doc="https://docs.docker.com/build/building/secrets/")
def no_secrets(ctx: DockerLab) -> str:
    """no secret-looking values in ENV or the image history"""
    img = ctx.image()
    found = []
    for entry in (img.attrs.get("Config") or {}).get("Env") or []:
        name, _, value = entry.partition("=")
        if name in SECRET_ALLOW:
            continue
        if (SECRET_NAME.search(name) and value.strip()) or SECRET_VALUE.search(value):
            found.append(f"ENV {name}=…")
    for layer in img.history():
        created_by = layer.get("CreatedBy") or ""
        for m in SECRET_VALUE.finditer(created_by):
            found.append(f"history: …{m.group(0)[:8]}…")
        for m in re.finditer(r"\b([A-Z_]*(?:PASSWORD|SECRET|TOKEN|API_KEY)[A-Z_]*)=(\S+)", created_by):
            if m.group(1) not in SECRET_ALLOW and "ENV " not in created_by:
                found.append(f"history: {m.group(1)}=…")
    if found:
        raise CheckFailed("secret-looking values are baked into the image: " + ", ".join(sorted(set(found))))
    return "no secret-looking ENV values or history entries"


@check("container.healthy", lab=LAB, points=2, requires=("image.builds",),
       hint="add a HEALTHCHECK that calls /livez (the slim image has no curl: use python -c with urllib)",
       doc="https://docs.docker.com/reference/dockerfile/#healthcheck")
def container_healthy(ctx: DockerLab) -> str:
    """the container starts and its own HEALTHCHECK reports healthy"""
    if not (ctx.image().attrs.get("Config") or {}).get("Healthcheck"):
        ctx.run()
        raise CheckFailed("the image has no HEALTHCHECK, so Docker cannot tell whether it is healthy")
    started = ctx.run().started_at

    def healthy():
        failed = _ctx_failed_start(ctx)
        if failed:
            raise FinalError(failed.message)
        state = ctx.run().container.attrs["State"]
        return (state.get("Health") or {}).get("Status") == "healthy"

    try:
        wait_for(healthy, "the container's HEALTHCHECK to report healthy", ctx.timeouts.container_healthy)
    except (FinalError, WaitTimeout) as exc:
        raise CheckFailed(str(exc), details="last log lines:\n" + ctx.logs_tail(80)) from None
    return f"healthy after {time.monotonic() - started:.1f}s"


@check("container.ready", lab=LAB, points=2, requires=("image.builds",),
       hint="serve GET /readyz: 503 while the model loads, 200 once it can predict; listen on 0.0.0.0:8000",
       doc="https://kubernetes.io/docs/reference/using-api/health-checks/")
def container_ready(ctx: DockerLab) -> str:
    """/readyz turns 200"""
    started = ctx.run().started_at

    def ready():
        failed = _ctx_failed_start(ctx)
        if failed:
            raise FinalError(failed.message)
        return ctx.http("GET", "/readyz").status_code == 200

    try:
        wait_for(ready, "GET /readyz to answer 200", ctx.timeouts.container_ready)
    except (FinalError, WaitTimeout) as exc:
        raise CheckFailed(str(exc), details="last log lines:\n" + ctx.logs_tail(80)) from None
    return f"ready after {time.monotonic() - started:.1f}s"


@check("predict.labels", lab=LAB, points=3, requires=("container.ready",),
       hint='POST /predict {"text": ...} must return {"label", "score", "model_version"} from the loaded model',
       doc="https://flask.palletsprojects.com/en/stable/quickstart/#apis-with-json")
def predict_labels(ctx: DockerLab) -> str:
    """/predict returns the right labels on fixed sentences"""
    wrong = []
    for text, want in SENTENCES.items():
        r = ctx.http("POST", "/predict", json={"text": text})
        if r.status_code != 200:
            raise CheckFailed(f"POST /predict answered {r.status_code}: {r.text[:200]}",
                              details="last log lines:\n" + ctx.logs_tail(80))
        try:
            body = r.json()
        except ValueError:
            raise CheckFailed(f"POST /predict did not return JSON: {r.text[:200]}") from None
        missing = [k for k in ("label", "score", "model_version") if k not in body]
        if missing:
            raise CheckFailed(f"the /predict answer lacks {', '.join(missing)}: {body}")
        if body["label"] != want:
            wrong.append(f"{text!r}: got {body['label']}, want {want}")
    if wrong:
        raise CheckFailed(f"{len(wrong)} of {len(SENTENCES)} sentences got the wrong label",
                          details="\n".join(wrong))
    return f"{len(SENTENCES)}/{len(SENTENCES)} sentences labelled correctly"


@check("container.non-root", lab=LAB, points=2, requires=("image.builds",),
       hint="create a user (useradd --system ...) and add `USER <uid>` before CMD",
       doc="https://docs.docker.com/build/building/best-practices/#user")
def non_root(ctx: DockerLab) -> str:
    """the server process runs as a non-root user"""
    failed = _ctx_failed_start(ctx)
    if failed:
        raise failed
    c = ctx.run().container
    code, out = c.exec_run(["cat", "/proc/1/status"], user="0")
    if code != 0:
        raise CheckFailed(f"could not read the server process's status: {out.decode(errors='replace')[:200]}")
    uid = next((ln.split()[1] for ln in out.decode().splitlines() if ln.startswith("Uid:")), "?")
    if uid == "0":
        raise CheckFailed("the server process (PID 1) runs as root (uid 0)")
    return f"PID 1 runs as uid {uid}"


@check("container.graceful-stop", lab=LAB, points=2, requires=("image.builds",),
       hint='use the exec form CMD ["gunicorn", ...] so the server is PID 1 and gets SIGTERM (not a `sh -c` wrapper)',
       doc="https://docs.docker.com/reference/dockerfile/#shell-and-exec-form")
def graceful_stop(ctx: DockerLab) -> str:
    """docker stop finishes well within the grace period"""
    failed = _ctx_failed_start(ctx)
    if failed:
        raise failed
    c = ctx.run().container
    grace = ctx.timeouts.stop_grace
    start = time.monotonic()
    c.stop(timeout=int(grace))
    took = time.monotonic() - start
    c.reload()
    code = c.attrs["State"].get("ExitCode")
    if took > grace / 2 or code == 137:
        raise CheckFailed(f"docker stop took {took:.1f}s of the {grace:.0f}s grace period (exit code {code}): "
                          "SIGTERM did not stop the server, so it was killed",
                          details="last log lines:\n" + ctx.logs_tail(80))
    return f"stopped in {took:.1f}s with exit code {code}"
