"""Lab 01 checks: a sentiment model server in a Docker image.

Each check reads the :class:`harness.labs.docker_lab.DockerLab` context. The order
here is the order of the report; ``container.graceful-stop`` stops the
container, so it comes last.
"""
from __future__ import annotations

import re
import time

from docker.utils.build import exclude_paths

from ..labs.docker_lab import DockerLab
from ..waiting import FinalError, WaitTimeout, wait_for
from .common import SENTENCES
from .registry import CheckFailed, check

LAB = "01-docker"
DOCKERFILE_REF = "https://docs.docker.com/reference/dockerfile/"

# Image size budgets, measured on the offline base image (146 MB): the lean
# Flask reference is 319 MB; a single-stage build with --no-cache-dir is about
# 425 MB and one with pip's cache more, so both fail. The lean BentoML
# reference is 421 MB (it keeps its .pyc files: see its Dockerfile) and the
# same single-stage build of it 495 MB (solutions/01-docker-bentoml/README.md).
SIZE_BUDGET_MB = {"flask": 360, "bentoml": 460}

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
       hint="list .git, .venv (and venv) and tests in the lab folder's .dockerignore",
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


def _layer_key(h: dict) -> tuple:
    """One history entry's identity: its image id where the builder keeps one,
    else what it ran and when (a cached step keeps its original creation time)."""
    hid = h.get("Id") or "<missing>"
    return ("id", hid) if hid != "<missing>" else ("step", h.get("CreatedBy"), h.get("Created"), h.get("Size"))


def _instruction(h: dict) -> str:
    """A history entry as the Dockerfile line it came from (shortened)."""
    by = (h.get("CreatedBy") or "").replace("/bin/sh -c #(nop) ", "").strip()
    by = by.replace("/bin/sh -c ", "RUN ", 1) if by.startswith("/bin/sh -c ") else by
    return by[:70]


def _copy_from_destinations(dockerfile: str) -> list[str]:
    """Where the final stage copies files from an earlier stage (``COPY --from=deps /deps /deps``):
    in a multi-stage build, that layer is the dependency layer of the final image."""
    stages = [chunk for chunk in re.split(r"(?im)^\s*FROM\s", dockerfile)[1:]]
    last = stages[-1] if stages else ""
    out = []
    for m in re.finditer(r"(?im)^\s*COPY\s+(?:--\S+\s+)*--from=\S+\s+(?:--\S+\s+)*(.+)$", last):
        parts = m.group(1).split()
        if len(parts) >= 2:
            out.append(parts[-1].rstrip("/") or "/")
    return out


def _dependency_layers(image, dockerfile: str) -> list[dict]:
    """The final image's dependency layers, from its history: RUN steps that install
    packages, and copies of an earlier build stage's output."""
    dests = _copy_from_destinations(dockerfile)
    out = []
    for h in image.history():
        by = h.get("CreatedBy") or ""
        if "#(nop)" not in by and DEP_INSTALL.search(by):
            out.append(h)
        elif "#(nop) COPY " in by and any(re.search(rf" in {re.escape(d)}/?\s*$", by) for d in dests):
            out.append(h)
    return out


def _dependency_step_running(log: list[str]) -> str:
    """While rebuilding: the dependency install step started to run rather than come
    from the cache. Only used to stop a doomed rebuild early (a forged line can only
    shorten the learner's own build); passing is decided from the image history."""
    if len(log) < 2 or not log[-1].startswith(" ---> Running in "):
        return ""
    header = next((ln for ln in reversed(log[:-1]) if ln.startswith("Step ")), "")
    m = re.match(r"Step \d+/\d+ : (RUN .*)", header)
    return f"`{m.group(1)[:70]}` ran again" if m and DEP_INSTALL.search(m.group(1)) else ""


@check("image.layer-order", lab=LAB, points=2, requires=("image.builds",),
       hint="COPY requirements.txt and RUN pip install before COPY of the app code, so code edits reuse the dependency layer",
       doc="https://docs.docker.com/build/cache/optimize/#order-your-layers")
def layer_order(ctx: DockerLab) -> str:
    """editing app code rebuilds without re-running the dependency install (judged from the image history)"""
    dockerfile = (ctx.context / "Dockerfile").read_text(errors="replace").replace("\\\n", " ")
    if not any(DEP_INSTALL.search(ln) for ln in dockerfile.splitlines() if ln.strip().upper().startswith("RUN")):
        raise CheckFailed("no dependency install step (RUN pip install ...) found in the Dockerfile")
    rel = ctx.app_file()
    if rel is None:
        raise CheckFailed("no Python app file found in the build context")
    first_img = ctx.image()
    second = ctx.rebuild_after_touching(rel, stop_when=_dependency_step_running)
    if second.stopped:
        raise CheckFailed(f"editing {rel} re-ran the dependency install ({second.stopped}): "
                          "the dependency layer comes after a COPY of the code")
    if not second.ok:
        raise CheckFailed(f"the second build failed: {second.error}", details=second.log_tail())
    second_img = ctx.image(second.tag)
    if second_img.id == first_img.id:
        raise CheckFailed(f"editing {rel} changed nothing in the image: is the app code copied in?")
    deps = _dependency_layers(first_img, dockerfile)
    if not deps:
        raise CheckFailed("no dependency layer found in the image history (a RUN pip install ..., or a "
                          "COPY --from of a build stage that installs them)")
    kept = {_layer_key(h) for h in second_img.history()}
    rebuilt = [h for h in deps if _layer_key(h) not in kept]
    if rebuilt:
        h = rebuilt[0]
        raise CheckFailed(f"editing {rel} rebuilt the dependency layer `{_instruction(h)}` "
                          f"({(h.get('Size') or 0) / 1e6:.0f} MB, a new layer in the image history): "
                          "the dependency layer comes after a COPY of the code")
    return (f"editing {rel} reused the dependency layer `{_instruction(deps[0])}` (same layer in the image "
            f"history; rebuild {second.duration_s:.1f}s)")


@check("image.size", lab=LAB, points=1, requires=("image.builds",),
       hint="install the dependencies in a build stage and COPY --from it (multi-stage), with pip --no-compile "
            "--no-cache-dir, and delete test suites and caches in the same RUN",
       doc="https://docs.docker.com/build/building/multi-stage/")
def image_size(ctx: DockerLab) -> str:
    """the image is within the size budget"""
    img = ctx.image()
    size_mb = img.attrs["Size"] / 1e6
    reqs = (ctx.context / "requirements.txt")
    framework = "bentoml" if reqs.is_file() and "bentoml" in reqs.read_text().lower() else "flask"
    budget = SIZE_BUDGET_MB[framework]
    if size_mb > budget:
        layers = sorted((h for h in img.history() if (h.get("Size") or 0) > 0), key=lambda h: -(h.get("Size") or 0))
        top = ", ".join(f"`{_instruction(h)}` {h['Size'] / 1e6:.0f} MB" for h in layers[:3])
        raise CheckFailed(f"the image is {size_mb:.0f} MB, over the {budget} MB budget for a {framework} server; "
                          f"the biggest layers: {top}",
                          details="layers (image history, biggest first):\n" + "\n".join(
                              f"  {h['Size'] / 1e6:8.1f} MB  {_instruction(h)}" for h in layers[:8]))
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


# How long the grader waits for Docker to notice a hung server; a HEALTHCHECK
# whose interval, timeout and retries imply more is too slow to be useful here.
MAX_UNHEALTHY_S = 60.0
HANG_AT_S = 2.0   # the twin container stops answering this long after it starts


def _health_config(image) -> dict | None:
    """The image's HEALTHCHECK in seconds, with Docker's defaults filled in."""
    hc = (image.attrs.get("Config") or {}).get("Healthcheck") or {}
    test = hc.get("Test") or []
    if not test or test[0] == "NONE":
        return None
    ns = 1e9
    return {"test": test, "interval": (hc.get("Interval") or 30 * ns) / ns, "timeout": (hc.get("Timeout") or 30 * ns) / ns,
            "start_period": (hc.get("StartPeriod") or 0) / ns, "retries": hc.get("Retries") or 3}


def unhealthy_bound(hc: dict, hang_at: float = HANG_AT_S) -> float:
    """Seconds after start by which Docker must report ``unhealthy`` for a server that
    stops answering at ``hang_at``: failures count once the start period is over, and
    ``retries`` consecutive ones (each up to ``timeout``, one ``interval`` apart) make it
    unhealthy; one more period and 3 s of slack for the check that was in flight."""
    counted_from = max(hang_at, hc["start_period"])
    return counted_from + (hc["retries"] + 1) * (hc["interval"] + hc["timeout"]) + 3.0


@check("container.healthy", lab=LAB, points=2, requires=("image.builds",),
       hint="add a HEALTHCHECK that calls /livez (python -c with urllib; the slim image has no curl), "
            "with --interval=5s --timeout=2s --retries=3 so Docker notices a hung server quickly",
       doc="https://docs.docker.com/reference/dockerfile/#healthcheck")
def container_healthy(ctx: DockerLab) -> str:
    """the image's HEALTHCHECK reports healthy, and unhealthy once the server stops answering"""
    hc = _health_config(ctx.image())
    if hc is None:
        ctx.run()
        raise CheckFailed("the image has no HEALTHCHECK, so Docker cannot tell whether it is healthy")
    bound = unhealthy_bound(hc)
    flags = f"--interval={hc['interval']:g}s --timeout={hc['timeout']:g}s --retries={hc['retries']}" + (
        f" --start-period={hc['start_period']:g}s" if hc["start_period"] else "")
    if bound > MAX_UNHEALTHY_S:
        ctx.run()
        raise CheckFailed(f"HEALTHCHECK {flags} would take up to {bound:.0f}s to notice a hung server "
                          f"(the grader allows {MAX_UNHEALTHY_S:.0f}s): shorten the interval and timeout")
    # A twin of the container whose server stops answering soon after it starts
    # (the server's HANG_AFTER_SECONDS knob): an honest HEALTHCHECK turns unhealthy.
    twin = ctx.run_twin({"HANG_AFTER_SECONDS": f"{HANG_AT_S:g}"})
    started = ctx.run().started_at

    def health(container) -> str:
        container.reload()
        if container.status in ("exited", "dead"):
            raise FinalError(f"the container exited with code {container.attrs['State'].get('ExitCode')}")
        return (container.attrs["State"].get("Health") or {}).get("Status") or ""

    def healthy():
        failed = _ctx_failed_start(ctx)
        if failed:
            raise FinalError(failed.message)
        return health(ctx.run().container) == "healthy"

    try:
        wait_for(healthy, "the container's HEALTHCHECK to report healthy", ctx.timeouts.container_healthy,
                 on_poll=ctx.progress("the container's HEALTHCHECK to report healthy", ctx.timeouts.container_healthy))
    except (FinalError, WaitTimeout) as exc:
        raise CheckFailed(str(exc), details="last log lines:\n" + ctx.logs_tail(80)) from None
    took = time.monotonic() - started
    remaining = max(1.0, bound - (time.monotonic() - twin.started_at))
    desc = f"Docker to report the hung twin unhealthy (within {bound:.0f}s of its start)"
    try:
        wait_for(lambda: health(twin.container) == "unhealthy", desc, remaining,
                 on_poll=ctx.progress(desc, remaining))
    except FinalError as exc:
        raise CheckFailed(f"the twin container used to test the HEALTHCHECK {exc}") from None
    except WaitTimeout:
        seen = health(twin.container) or "no health status"
        raise CheckFailed(f"the HEALTHCHECK still reports {seen!r} {bound - HANG_AT_S:.0f}s after the server "
                          f"stopped answering (HEALTHCHECK {flags} implies unhealthy by then): it does not "
                          "check that the server serves (`CMD true`, or a check that cannot fail?)") from None
    return (f"healthy after {took:.1f}s; a server that stopped answering was reported unhealthy "
            f"{time.monotonic() - twin.started_at - HANG_AT_S:.0f}s later (bound {bound - HANG_AT_S:.0f}s)")


@check("container.ready", lab=LAB, points=2, requires=("image.builds",),
       hint="serve GET /readyz: 503 while the model loads, 200 once it can predict; listen on 0.0.0.0:8000",
       doc="https://flask.palletsprojects.com/en/stable/quickstart/#routing")
def container_ready(ctx: DockerLab) -> str:
    """/readyz turns 200"""
    started = ctx.run().started_at

    def ready():
        failed = _ctx_failed_start(ctx)
        if failed:
            raise FinalError(failed.message)
        code = ctx.http("GET", "/readyz").status_code
        if code in (404, 405):
            raise FinalError(f"GET /readyz answered {code}: the server has no /readyz route (task 5)")
        if code == 503 and ctx.http("POST", "/predict", json={"text": "ok"}).status_code == 200:
            contradictions.append(code)
            if len(contradictions) >= 3:   # three looks, half a second apart: not a race with the model load
                raise FinalError("GET /readyz still answers 503 while POST /predict already answers 200: "
                                 "/readyz must turn 200 once the model is loaded (task 5)")
        return code == 200

    contradictions: list[int] = []

    try:
        wait_for(ready, "GET /readyz to answer 200", ctx.timeouts.container_ready,
                 on_poll=ctx.progress("GET /readyz to answer 200", ctx.timeouts.container_ready))
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
