"""What a container's probe settings imply, in seconds: how long until it is
started and Ready after its model has loaded, how long a slow load may take,
and how long a hung container may live before the kubelet restarts it.

Upstream semantics (k/k ``pkg/kubelet/prober``): each probe runs first at
``initialDelaySeconds`` after the container started, then every
``periodSeconds`` (upstream's first tick lands anywhere in one period); a
result flips after ``failureThreshold`` failures or ``successThreshold``
successes, each attempt taking up to ``timeoutSeconds``. Liveness and
readiness run only once the startup probe has succeeded (``started``). A
liveness or startup failure kills the container with the probe's
``terminationGracePeriodSeconds``, else the pod's (30 s by default).

The *probe budget* of a liveness probe is the longest a hung container can
live once liveness applies: ``periodSeconds × failureThreshold +
timeoutSeconds + grace``. The *startup budget* is how long a start may take
before the startup probe gives up: ``initialDelaySeconds + periodSeconds ×
failureThreshold``.
"""
from __future__ import annotations

from dataclasses import dataclass

DEFAULT_POD_GRACE = 30


@dataclass(frozen=True)
class Probe:
    kind: str                 # startupProbe / readinessProbe / livenessProbe
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int
    grace: float              # the kill's grace period after this probe fails
    grace_from: str           # where that grace comes from, for messages

    @classmethod
    def of(cls, kind: str, spec: dict, pod_spec: dict) -> "Probe":
        pod_grace = pod_spec.get("terminationGracePeriodSeconds")
        if "terminationGracePeriodSeconds" in spec:
            grace, src = spec["terminationGracePeriodSeconds"], f"{kind}.terminationGracePeriodSeconds"
        elif pod_grace is not None:
            grace, src = pod_grace, "the pod's terminationGracePeriodSeconds"
        else:
            grace, src = DEFAULT_POD_GRACE, "the pod's default terminationGracePeriodSeconds"
        return cls(kind, float(spec.get("initialDelaySeconds", 0)), float(spec.get("periodSeconds", 10)),
                   float(spec.get("timeoutSeconds", 1)), int(spec.get("failureThreshold", 3)),
                   int(spec.get("successThreshold", 1)), float(grace), src)

    @property
    def budget(self) -> float:
        """The probe budget: from the first failing attempt's tick to the kill's end."""
        return self.period * self.failure_threshold + self.timeout + self.grace

    def explain_budget(self) -> str:
        return (f"periodSeconds {self.period:g} × failureThreshold {self.failure_threshold} + timeoutSeconds "
                f"{self.timeout:g} + grace {self.grace:g} s ({self.grace_from}) = {self.budget:g} s")

    @property
    def startup_budget(self) -> float:
        return self.initial_delay + self.period * self.failure_threshold


@dataclass(frozen=True)
class ContainerProbes:
    startup: Probe | None
    readiness: Probe | None
    liveness: Probe | None

    @classmethod
    def of(cls, container: dict, pod_spec: dict) -> "ContainerProbes":
        def one(kind):
            return Probe.of(kind, container[kind], pod_spec) if container.get(kind) else None
        return cls(one("startupProbe"), one("readinessProbe"), one("livenessProbe"))

    def ready_by(self, loaded: float) -> float:
        """The latest moment, in seconds after the container started, at which
        it is started and Ready when its model was loaded at ``loaded``: the
        next startup attempt (never before its initialDelaySeconds), then,
        since readiness runs only once started, the next readiness attempts."""
        t = loaded
        if self.startup:
            s = self.startup
            t = max(t, s.initial_delay) + s.period + s.timeout
        if self.readiness:
            r = self.readiness
            t = max(t, r.initial_delay) + r.period * r.success_threshold + r.timeout
        return t

    def ready_lag(self) -> float:
        """The longest from "the model is loaded" to "started and Ready",
        whenever the load ends (``ready_by(t) - t`` is largest at t = 0)."""
        return self.ready_by(0.0)

    def restart_bound(self, *, started: bool, since_start: float) -> tuple[float | None, str]:
        """Seconds from a hang to the kill's end, from the probes that apply at
        that moment, and how that was computed. ``since_start``: seconds from
        the container's start to the hang (liveness and startup count their
        initialDelaySeconds from the start). None: nothing will restart it."""
        if not started and self.startup:
            s = self.startup
            left = max(0.0, s.startup_budget - since_start)
            return left + s.timeout + s.grace, (
                f"not started yet, so the startup probe decides: {left:.0f} s left of its startup budget "
                f"(initialDelaySeconds {s.initial_delay:g} + periodSeconds {s.period:g} × failureThreshold "
                f"{s.failure_threshold}) + timeoutSeconds {s.timeout:g} + grace {s.grace:g} s")
        if not self.liveness:
            return None, "no livenessProbe: nothing restarts a hung container"
        live = self.liveness
        wait = max(0.0, live.initial_delay - since_start)
        pre = f"{wait:.0f} s until initialDelaySeconds {live.initial_delay:g} has passed + " if wait else ""
        return wait + live.budget, f"liveness: {pre}{live.explain_budget()}"
