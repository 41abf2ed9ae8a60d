"""One container of one pod, as the kubelet runs it (k/k ``pkg/kubelet/kuberuntime``).

Why: this is where a learner's manifest meets the runtime. The worker owns
the container's life: image policy (nothing is ever pulled: ``Always`` or a
missing image gives ErrImagePull then ImagePullBackOff), config resolution,
start, probes, restarts with CrashLoopBackOff, and the kill sequence
(preStop, then SIGTERM, then SIGKILL when the grace period runs out).

Back-off follows ``flowcontrol.Backoff`` as the kubelet uses it: keyed on the
exited container's ``finishedAt``; the first restart is immediate, later ones
wait 10 s, 20 s, 40 s ... capped at 300 s, reset after 10 minutes without a
crash. Image pulls back off the same way from the time of the failed pull.
"""
from __future__ import annotations

from typing import Any

from harness.cluster.base import Obj

from . import podsecurity
from .clock import rfc3339
from .podconfig import ConfigError, MountError, expand, resolve_env, resolve_volumes
from .probes import ProbeWorker, resolve_port, run_probe
from .quantity import milli, parse_quantity
from .runtime import ContainerSpec, StartError

INITIAL_BACKOFF, MAX_BACKOFF = 10.0, 300.0
MIN_STOP_GRACE = 2.0   # minimumGracePeriodInSeconds


def go_duration(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


def full_image_ref(image: str) -> str:
    ref = image if ":" in image.rsplit("/", 1)[-1] or "@" in image else image + ":latest"
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return "docker.io/library/" + ref
    if "." not in first and ":" not in first and first != "localhost":
        return "docker.io/" + ref
    return ref


class Backoff:
    """``flowcontrol.Backoff`` for one key."""

    def __init__(self) -> None:
        self.delay: float | None = None
        self.last_update = 0.0

    def _expired(self, event_time: float) -> bool:
        return event_time - self.last_update > 2 * MAX_BACKOFF

    def in_backoff_since(self, event_time: float, now: float) -> bool:
        return self.delay is not None and not self._expired(event_time) and now - event_time < self.delay

    def in_backoff_since_update(self, now: float) -> bool:
        return self.delay is not None and now - self.last_update < self.delay

    def next(self, event_time: float, now: float) -> None:
        if self.delay is None or self._expired(event_time):
            self.delay = INITIAL_BACKOFF
        else:
            self.delay = min(self.delay * 2, MAX_BACKOFF)
        self.last_update = now


class ContainerWorker:
    def __init__(self, pod_worker, spec: dict[str, Any]):
        self.pw, self.k, self.spec, self.name = pod_worker, pod_worker.k, spec, spec["name"]
        self.cid: str | None = None
        self.old_cids: list[str] = []
        self.running = False
        self.instances = 0
        self.restart_count = 0
        self.started = False
        self.ready = False
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.term: dict[str, Any] | None = None
        self.last_state: dict[str, Any] = {}
        self.waiting: tuple[str, str] | None = None
        self.done = False
        self.crash, self.pull = Backoff(), Backoff()
        self.pull_failed_at: float | None = None
        self.probes: dict[str, ProbeWorker] = {}
        self.kill: dict[str, Any] | None = None
        self._once: set[tuple] = set()

    # ---- helpers ---------------------------------------------------------------
    @property
    def field_path(self) -> str:
        return f"spec.containers{{{self.name}}}"

    def event(self, pod: Obj, type_: str, reason: str, msg: str, once_key: tuple | None = None) -> None:
        if once_key is not None:
            if once_key in self._once:
                return
            self._once.add(once_key)
        self.k.record(pod, type_, reason, msg, field_path=self.field_path)

    def _pod_ref(self, pod: Obj) -> str:
        m = pod["metadata"]
        return f"{m['name']}_{m['namespace']}({m['uid']})"

    # ---- main loop -----------------------------------------------------------------
    def sync(self, pod: Obj, now: float, terminating: bool) -> None:
        if self.kill is not None:
            self._progress_kill(pod, now)
        if self.cid and self.running:
            st = self.k.runtime.status(self.cid)
            if not st.running:
                self._exited(pod, st, terminating)
        if terminating or self.done:
            return
        if self.running:
            self._probe(pod, now)
        else:
            self._try_start(pod, now)

    def _exited(self, pod: Obj, st, terminating: bool) -> None:
        code = st.exit_code if st.exit_code is not None else 137
        reason = "OOMKilled" if st.oom_killed else ("Completed" if code == 0 else "Error")
        self.term = {"exitCode": code, "reason": reason, "startedAt": rfc3339(st.started_at or 0),
                     "finishedAt": rfc3339(st.finished_at or self.k.clock.now()),
                     "containerID": f"containerd://{self.cid}"}
        self.finished_at = st.finished_at or self.k.clock.now()
        self.running = self.ready = self.started = False
        self.probes, self.kill = {}, None
        policy = pod["spec"].get("restartPolicy", "Always")
        if policy == "Never" or (policy == "OnFailure" and code == 0):
            self.done = True

    def _try_start(self, pod: Obj, now: float) -> None:
        if self.term is not None and self.finished_at is not None:
            if self.crash.in_backoff_since(self.finished_at, now):
                ref = self._pod_ref(pod)
                self.waiting = ("CrashLoopBackOff", f"back-off {go_duration(self.crash.delay)} restarting failed "
                                                    f"container={self.name} pod={ref}")
                self.event(pod, "Warning", "BackOff", f"Back-off restarting failed container {self.name} in pod {ref}",
                           once_key=("crash", self.finished_at))
                self.k.timers.at(self.finished_at + self.crash.delay)
                return
        if not self._image_ready(pod, now):
            return
        try:
            cspec = self._container_spec(pod)
        except ConfigError as exc:
            self.waiting = ("CreateContainerConfigError", str(exc))
            self.event(pod, "Warning", "Failed", f"Error: {exc}", once_key=("config", str(exc)))
            self.k.timers.at(now + 10)
            return
        except MountError as exc:
            self.waiting = ("ContainerCreating", "")
            self.event(pod, "Warning", "FailedMount", str(exc), once_key=("mount", str(exc)))
            self.k.timers.at(now + 10)
            return
        if self.term is not None and self.finished_at is not None:
            self.crash.next(self.finished_at, now)
        try:
            cid = self.k.runtime.start(cspec)
        except StartError as exc:
            self._start_failed(pod, now, str(exc))
            return
        if self.cid:
            self.old_cids.append(self.cid)
            while len(self.old_cids) > 1:     # keep one dead instance for `logs --previous`
                self.k.runtime.remove(self.old_cids.pop(0))
        if self.term is not None:
            self.last_state = {"terminated": self.term}
        if self.instances:
            self.restart_count += 1
        self.instances += 1
        self.cid, self.running, self.started_at, self.waiting = cid, True, now, None
        self.started = "startupProbe" not in self.spec
        self.probes = {k: ProbeWorker(k, self.spec[k], now)
                       for k in ("startupProbe", "livenessProbe", "readinessProbe") if self.spec.get(k)}
        self.event(pod, "Normal", "Created", f"Created container: {self.name}")
        self.event(pod, "Normal", "Started", f"Started container {self.name}")
        self._probe(pod, now)

    def _start_failed(self, pod: Obj, now: float, msg: str) -> None:
        if self.instances:
            self.restart_count += 1
        self.instances += 1
        if self.term is not None:
            self.last_state = {"terminated": self.term}
        self.term = {"exitCode": 128, "reason": "StartError", "message": msg, "startedAt": rfc3339(0),
                     "finishedAt": rfc3339(now)}
        self.finished_at = now
        self.event(pod, "Warning", "Failed", f"Error: {msg}")
        if pod["spec"].get("restartPolicy", "Always") == "Never":
            self.done = True

    def _image_ready(self, pod: Obj, now: float) -> bool:
        image, policy = self.spec["image"], self.spec.get("imagePullPolicy", "IfNotPresent")
        present = self.k.runtime.image_present(image)
        if policy == "Never" and not present:
            msg = f'Container image "{image}" is not present with pull policy of Never'
            self.waiting = ("ErrImageNeverPull", msg)
            self.event(pod, "Warning", "ErrImageNeverPull", msg, once_key=("never",))
            return False
        if policy != "Always" and present:
            self.event(pod, "Normal", "Pulled", f'Container image "{image}" already present on machine',
                       once_key=("pulled", self.instances))
            return True
        if self.pull.in_backoff_since_update(now):
            if self.pull_failed_at is not None and now > self.pull_failed_at:
                msg = f'Back-off pulling image "{image}"'
                self.waiting = ("ImagePullBackOff", msg)
                self.event(pod, "Normal", "BackOff", msg)
                self.event(pod, "Warning", "Failed", "Error: ImagePullBackOff")
            self.k.timers.at(self.pull.last_update + self.pull.delay)
            return False
        ref = full_image_ref(image)
        why = ("imagePullPolicy is Always and the sim never pulls" if present else
               "the image is not in the node's image store")
        err = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{ref}": failed to resolve '
               f'reference "{ref}": {ref}: not found ({why}; build it locally, load_image() it and use '
               f"imagePullPolicy: IfNotPresent with a pinned tag)")
        self.event(pod, "Normal", "Pulling", f'Pulling image "{image}"')
        self.event(pod, "Warning", "Failed", f'Failed to pull image "{image}": {err}')
        self.event(pod, "Warning", "Failed", "Error: ErrImagePull")
        self.waiting = ("ErrImagePull", err)
        self.pull.next(now, now)
        self.pull_failed_at = now
        self.k.timers.at(now + 1)
        return False

    def _container_spec(self, pod: Obj) -> ContainerSpec:
        violations = podsecurity.baseline_violations(pod["spec"])
        if violations:   # defence in depth: admission should have refused it already
            raise ConfigError("the sim refuses to run this pod on the grader's host: " + ", ".join(violations))
        env = resolve_env(self.k.store, pod, self.spec)
        files, tmpfs = resolve_volumes(self.k.store, pod, self.spec)
        res = self.spec.get("resources") or {}
        lim, req = res.get("limits") or {}, res.get("requests") or {}
        ports = [p["containerPort"] for p in self.spec.get("ports") or []]
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            for h in ("httpGet", "tcpSocket"):
                port = resolve_port(((self.spec.get(kind) or {}).get(h) or {}).get("port"), self.spec)
                if port:
                    ports.append(port)
        ports += self.pw.service_ports(pod, self.spec)
        m = pod["metadata"]
        return ContainerSpec(
            namespace=m["namespace"], pod=m["name"], pod_uid=m["uid"], name=self.name, image=self.spec["image"],
            command=[expand(x, env) for x in self.spec["command"]] if self.spec.get("command") else None,
            args=[expand(x, env) for x in self.spec["args"]] if self.spec.get("args") else None,
            env=env, ports=sorted(set(ports)),
            cpu_limit_milli=milli(lim["cpu"]) if "cpu" in lim else None,
            cpu_request_milli=milli(req["cpu"]) if "cpu" in req else None,
            memory_limit_bytes=int(parse_quantity(lim["memory"])) if "memory" in lim else None,
            working_dir=self.spec.get("workingDir"), files=files, tmpfs=tmpfs, instance=self.instances)

    # ---- probes --------------------------------------------------------------------
    def _probe(self, pod: Obj, now: float) -> None:
        order = ["startupProbe"] if not self.started else ["livenessProbe", "readinessProbe"]
        for kind in order:
            w = self.probes.get(kind)
            if w is None:
                continue
            if w.pending is not None and w.pending.done():
                ok, out = w.pending.result()
                w.pending = None
                self._probe_result(pod, w, ok, out, now)
            elif w.due(now):
                args = (self.k.runtime, self.cid, w.probe, self.spec, self.pw.pod_ip)
                if self.k.executor is None:
                    self._probe_result(pod, w, *run_probe(*args), now)
                else:
                    w.pending = self.k.executor.submit(run_probe, *args)
            if not w.on_hold:
                self.k.timers.at(w.next_due)
            if self.kill is not None or not self.running:
                return
            if kind == "startupProbe" and w.result:
                self.started = True
                for other in ("livenessProbe", "readinessProbe"):
                    if other in self.probes:
                        self.probes[other].next_due = max(self.probes[other].next_due, now)
                return self._probe(pod, now)
        rp = self.probes.get("readinessProbe")
        self.ready = self.started and (rp is None or bool(rp.result))

    def _probe_result(self, pod: Obj, w: ProbeWorker, ok: bool, out: str, now: float) -> None:
        if not ok:
            self.event(pod, "Warning", "Unhealthy", f"{w.label} probe failed: {out}")
        if w.record(ok, now):
            grace = w.probe.get("terminationGracePeriodSeconds", pod["spec"].get("terminationGracePeriodSeconds", 30))
            self.begin_kill(pod, now, grace, f"Container {self.name} failed {w.label.lower()} probe, will be restarted")

    # ---- termination -----------------------------------------------------------------
    def begin_kill(self, pod: Obj, now: float, grace: float, message: str, *, unready: bool = True) -> None:
        """Start the kill sequence. Pod deletion passes ``unready=False``: the container keeps
        its last readiness result until it exits (what EndpointSlice ``serving`` reflects)."""
        if self.kill is not None or not self.running:
            return
        self.event(pod, "Normal", "Killing", message)
        if unready:
            self.ready = False
        self.kill = {"t0": now, "grace": grace, "phase": "prestop", "hook_until": None, "future": None}
        pre = (self.spec.get("lifecycle") or {}).get("preStop")
        if not pre or grace <= 0:
            return self._stop(now, grace)
        if "sleep" in pre:
            self.kill["hook_until"] = now + pre["sleep"].get("seconds", 0)
        elif "exec" in pre:
            self.kill["future"] = self._submit(self.k.runtime.exec, self.cid, pre["exec"].get("command") or [], grace)
        elif "httpGet" in pre:
            h = pre["httpGet"]
            self.kill["future"] = self._submit(self.k.runtime.http_get, self.cid, resolve_port(h.get("port"), self.spec),
                                               h.get("path", "/"), h.get("scheme", "HTTP"), {}, grace)
        else:
            return self._stop(now, grace)   # tcpSocket hooks are accepted but never run
        self._progress_kill(pod, now)

    def _submit(self, fn, *args):
        from concurrent.futures import Future
        if self.k.executor is not None:
            return self.k.executor.submit(fn, *args)
        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except Exception as exc:  # noqa: BLE001 - reported as FailedPreStopHook
            f.set_exception(exc)
        return f

    def _stop(self, now: float, remaining: float) -> None:
        remaining = max(remaining, MIN_STOP_GRACE)
        self.k.runtime.signal(self.cid, "SIGTERM")
        self.kill.update(phase="term", kill_at=now + remaining)
        self.k.timers.at(now + remaining)

    def _progress_kill(self, pod: Obj, now: float) -> None:
        k = self.kill
        if k["phase"] == "prestop":
            fut, until = k["future"], k["hook_until"]
            finished = (until is not None and now >= until) or (fut is not None and fut.done())
            if finished:
                if fut is not None:
                    err = fut.exception()
                    res = None if err else fut.result()
                    failed = err or (isinstance(res, tuple) and (res[0] is None or (isinstance(res[0], int)
                                     and (res[0] != 0 if "exec" in self.spec["lifecycle"]["preStop"]
                                          else not 200 <= res[0] < 400))))
                    if failed:
                        self.event(pod, "Warning", "FailedPreStopHook",
                                   f"PreStopHook failed: {err or res[1] or f'exit code {res[0]}'}")
                self._stop(now, k["grace"] - int(now - k["t0"]))
            elif now >= k["t0"] + k["grace"]:
                self._stop(now, 0)   # the hook overran the grace period: SIGTERM with the 2 s minimum
            else:
                self.k.timers.at(min(x for x in (until, k["t0"] + k["grace"]) if x is not None))
        elif k["phase"] == "term" and now >= k["kill_at"]:
            self.k.runtime.signal(self.cid, "SIGKILL")
            k["phase"] = "killed"

    # ---- status --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        if self.running:
            state = {"running": {"startedAt": rfc3339(self.started_at)}}
        elif self.waiting is not None and not self.done:
            state = {"waiting": {"reason": self.waiting[0], **({"message": self.waiting[1]} if self.waiting[1] else {})}}
        elif self.term is not None:
            state = {"terminated": self.term}
        else:
            state = {"waiting": {"reason": "ContainerCreating"}}
        out = {"name": self.name, "state": state, "lastState": self.last_state, "ready": self.ready,
               "restartCount": self.restart_count, "image": self.spec["image"],
               "imageID": "" if not self.instances else full_image_ref(self.spec["image"]),
               "started": self.running and self.started}
        if self.cid:
            out["containerID"] = f"containerd://{self.cid}"
        return out
