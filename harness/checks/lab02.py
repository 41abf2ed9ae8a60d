"""Lab 02 checks: a Deployment with probes, a ClusterIP Service, config from a
ConfigMap and a Secret. Static checks read the manifests (file:line in every
message); the rest read the live cluster through the Cluster protocol and the
shared scenarios in harness.scenarios.common.
"""
from __future__ import annotations

import time

import requests

from .. import budget
from ..scenarios import common as sc
from ..labs.cluster_lab import ClusterLab
from ..manifests import validate
from ..probe_timing import ContainerProbes
from ..waiting import FinalError, WaitTimeout, wait_for
from ..cluster.objects import containers, is_ready, pod_state, quantity
from .common import SENTENCES
from .registry import CheckFailed, Partial, check

LAB = "02-k8s-basics"
K8S = "https://kubernetes.io/docs"
# per container: the laptop budget (harness/budget.py), which the grading namespace's LimitRange also enforces
CPU_LIMIT_MAX, MEM_LIMIT_MAX = budget.POD_MAX_CPU_MILLI / 1000, budget.POD_MAX_MEMORY_BYTES
TOTAL_CPU_REQUESTS_MAX, TOTAL_MEM_REQUESTS_MAX = 2.0, 2 * 1024 ** 3   # the Deployment's requests in all
# The README's limits for the probe checks (tasks 5 and 6).
STARTUP_BUDGET_MIN_S = 60       # startupProbe: initialDelaySeconds + periodSeconds × failureThreshold
LIVENESS_DELAY_MIN_S = 15       # or, without a startupProbe, liveness initialDelaySeconds (the load takes 8 s)
LIVENESS_BUDGET_MAX_S = 30      # liveness probe budget: a hung pod is restarted within this


# Waiting reasons that do not clear up by themselves: fail fast with them.
STUCK_REASONS = {"ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                 "CreateContainerConfigError", "CrashLoopBackOff"}


def _stuck_reason(pod: dict) -> str | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
        if reason in STUCK_REASONS:
            return reason
    return None


@check("manifests.valid", lab=LAB, points=2,
       hint="fix the field named at file:line (kubectl apply --validate=strict would refuse it)",
       doc=f"{K8S}/reference/kubernetes-api/workload-resources/deployment-v1/")
def manifests_valid(ctx: ClusterLab) -> str:
    """the manifests validate against the pinned Kubernetes schema (strict)"""
    errors = validate(ctx.manifests)
    if errors:
        raise CheckFailed(f"{len(errors)} schema error(s); first: {errors[0]}", details="\n".join(errors))
    kinds = sorted({m.kind for m in ctx.manifests})
    for kind in ("Deployment", "Service"):
        if kind not in kinds:
            raise CheckFailed(f"no {kind} in manifests/ (found: {', '.join(kinds)})")
    return f"{len(ctx.manifests)} objects valid for Kubernetes {__import__('harness.manifests').manifests.K8S_SCHEMA_VERSION}"


@check("deployment.replicas-selector", lab=LAB, points=2,
       hint="set spec.replicas: 2 (or more) and make spec.selector.matchLabels equal labels in spec.template.metadata.labels",
       doc=f"{K8S}/concepts/workloads/controllers/deployment/#selector")
def replicas_selector(ctx: ClusterLab) -> str:
    """at least 2 replicas, and the selector matches the pod template labels"""
    m = sc.deployment_manifest(ctx)
    spec = m.obj.get("spec") or {}
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 2:
        raise CheckFailed(f"{m.where(('spec', 'replicas'))}: {m.ref}: spec.replicas is {replicas}: "
                          "one pod means downtime on every restart")
    sel = (spec.get("selector") or {}).get("matchLabels") or {}
    labels = (((spec.get("template") or {}).get("metadata") or {}).get("labels")) or {}
    if not sel:
        raise CheckFailed(f"{m.where(('spec', 'selector'))}: {m.ref}: spec.selector.matchLabels is empty")
    wrong = {k: v for k, v in sel.items() if labels.get(k) != v}
    if wrong:
        raise CheckFailed(f"{m.where(('spec', 'selector'))}: {m.ref}: selector {wrong} does not match template "
                          f"labels {labels} (the API server refuses this: `selector` does not match template `labels`)")
    return f"{replicas} replicas, selector {sel} matches the template"


@check("deployment.resources", lab=LAB, points=2,
       hint="give every container resources.requests and resources.limits for cpu and memory (e.g. 250m/256Mi, limits 1/512Mi), "
            "limits at most 2 CPUs / 2Gi, requests at most 2 CPUs / 2Gi for all replicas together",
       doc=f"{K8S}/concepts/configuration/manage-resources-containers/")
def resources(ctx: ClusterLab) -> str:
    """every container has CPU and memory requests and limits, within a laptop budget"""
    m = sc.deployment_manifest(ctx)
    replicas = (m.obj.get("spec") or {}).get("replicas", 1) or 1
    total_cpu = total_mem = 0.0
    for i, c in enumerate(containers(m.obj)):
        res = c.get("resources") or {}
        where = m.where(("spec", "template", "spec", "containers", i, "resources"))
        for section in ("requests", "limits"):
            for r in ("cpu", "memory"):
                if r not in (res.get(section) or {}):
                    raise CheckFailed(f"{where}: container {c.get('name')!r} has no resources.{section}.{r}")
        req, lim = res["requests"], res["limits"]
        if quantity(req["cpu"]) > quantity(lim["cpu"]) or quantity(req["memory"]) > quantity(lim["memory"]):
            raise CheckFailed(f"{where}: container {c.get('name')!r}: requests exceed limits")
        if quantity(lim["cpu"]) > CPU_LIMIT_MAX or quantity(lim["memory"]) > MEM_LIMIT_MAX:
            raise CheckFailed(f"{where}: container {c.get('name')!r}: limits cpu {lim['cpu']}, memory "
                              f"{lim['memory']} do not fit: {budget.describe()}")
        total_cpu += quantity(req["cpu"]) * replicas
        total_mem += quantity(req["memory"]) * replicas
    if total_cpu > TOTAL_CPU_REQUESTS_MAX or total_mem > TOTAL_MEM_REQUESTS_MAX:
        raise CheckFailed(f"{m.ref}: {replicas} replicas request {total_cpu:g} CPU and "
                          f"{total_mem / 2**20:.0f}Mi in all: over this lab's 2 CPU / 2Gi for the whole "
                          "Deployment (the requests are what the scheduler reserves on a laptop's node)")
    return f"requests and limits set; {replicas} replicas request {total_cpu:g} CPU, {total_mem / 2**20:.0f}Mi"


@check("deployment.image-pinned", lab=LAB, points=1,
       hint="use image: mlops-labs/sentiment:v1 with imagePullPolicy: IfNotPresent (kind nodes cannot pull; :latest means Always)",
       doc=f"{K8S}/concepts/containers/images/#image-pull-policy")
def image_pinned(ctx: ClusterLab) -> str:
    """the image tag is pinned (not :latest) and the pull policy works on kind"""
    m = sc.deployment_manifest(ctx)
    for i, c in enumerate(containers(m.obj)):
        where = m.where(("spec", "template", "spec", "containers", i, "image"))
        image = str(c.get("image", ""))
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        if "@sha256:" not in image and (not tag or tag == "latest"):
            raise CheckFailed(f"{where}: image {image!r} has no pinned tag (it means :latest, pulled Always)")
        if c.get("imagePullPolicy") == "Always":
            raise CheckFailed(f"{where}: imagePullPolicy Always makes kind try a registry for a locally loaded image")
    return "image tags pinned; pull policy works with a loaded image"


@check("pods.ready", lab=LAB, points=2, requires=("manifests.valid",),
       hint="kubectl describe pod: look at Events (image pull, probes, scheduling) and fix that field",
       doc=f"{K8S}/tasks/debug/debug-application/debug-pods/")
def pods_ready(ctx: ClusterLab) -> str:
    """all pods become Ready within the time limit"""
    sc.apply_once(ctx)
    dep = sc.deployment(ctx)
    want = dep["spec"].get("replicas", 1)
    name = dep["metadata"]["name"]
    start = time.monotonic()

    def all_ready():
        refused = sc.refused_pods(ctx, name)
        if refused:
            raise FinalError(f"the pods of Deployment/{name} are refused: {refused}")
        pods = ctx.pods(sc.selector(dep))
        stuck = [pod_state(p) for p in pods if _stuck_reason(p)]
        if stuck and time.monotonic() - start > 5:
            raise FinalError("a pod cannot start: " + "; ".join(stuck))
        return len(pods) >= want and sum(is_ready(p) for p in pods) >= want

    try:
        wait_for(all_ready, f"{want} pods of Deployment/{name} to be Ready", ctx.timeouts.pod_start,
                 progress=ctx.log)
    except (WaitTimeout, FinalError) as exc:
        pods = ctx.pods(sc.selector(dep))
        events = [f"{e['reason']}: {e['message']}" for e in ctx.cluster.events()
                  if e.get("type") == "Warning"][-8:]
        states = "; ".join(pod_state(p) for p in pods) or "none"
        raise CheckFailed(f"{exc}; pods: {states}", details="warning events:\n" + "\n".join(events)) from None
    return f"{want}/{want} pods Ready after {time.monotonic() - start:.1f}s"


def _post_once_serving(t, body: dict, headers: dict, deadline: float) -> requests.Response:
    """POST /predict through the Service; until ``deadline``, a 503 or a refused
    connection is retried. Without a readinessProbe a pod counts as Ready, and
    gets traffic, while its model still loads: that is what the probe checks
    grade, not routing (so adding a second replica never fails this check)."""
    while True:
        try:
            r = requests.post(t.url + "/predict", json=body, headers=headers, timeout=5)
            if r.status_code != 503 or time.monotonic() > deadline:
                return r
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


@check("service.routes", lab=LAB, points=2, requires=("pods.ready",),
       hint="the Service's spec.selector must equal the pod labels and targetPort must be the container port (8000 or its name)",
       doc=f"{K8S}/concepts/services-networking/service/")
def service_routes(ctx: ClusterLab) -> str:
    """the ClusterIP Service selects the pods and /predict through it answers correctly"""
    svc_m = ctx.one("Service")
    svc = ctx.cluster.get("Service", svc_m.name)
    if svc["spec"].get("type", "ClusterIP") != "ClusterIP":
        raise CheckFailed(f"{svc_m.where(('spec', 'type'))}: {svc_m.ref} is {svc['spec']['type']}, "
                          "this lab asks for a ClusterIP Service")
    t = sc.traffic(ctx)   # waits until the Service answers at all
    wrong = []
    deadline = time.monotonic() + ctx.timeouts.service_endpoints
    for text, want in SENTENCES.items():
        try:
            r = _post_once_serving(t, {"text": text}, t.headers, deadline)
        except requests.RequestException as exc:
            raise CheckFailed(f"no answer through Service/{svc_m.name}: {type(exc).__name__} "
                              "(does its selector match the pods, and targetPort the container port?)") from None
        if r.status_code != 200:
            raise CheckFailed(f"POST /predict through Service/{svc_m.name} answered {r.status_code}: {r.text[:150]}")
        if r.json().get("label") != want:
            wrong.append(text)
    if wrong:
        raise CheckFailed(f"{len(wrong)} sentences got the wrong label through the Service")
    return f"{len(SENTENCES)}/{len(SENTENCES)} predictions correct through Service/{svc_m.name}"


@check("config.configmap-secret", lab=LAB, points=2, requires=("pods.ready",),
       hint="load settings with envFrom: configMapRef, and API_KEY with valueFrom.secretKeyRef (never value: in the Deployment)",
       doc=f"{K8S}/concepts/configuration/secret/#using-secrets-as-environment-variables")
def config_secret(ctx: ClusterLab) -> str:
    """config from a ConfigMap, API_KEY from a Secret; 401 without the key, 200 with it"""
    m = sc.deployment_manifest(ctx)
    cms = {x.name for x in ctx.objects("ConfigMap")}
    secrets = {x.name for x in ctx.objects("Secret")}
    uses_cm = any((src.get("configMapRef") or {}).get("name") in cms
                  for c in containers(m.obj) for src in c.get("envFrom") or [])
    if not uses_cm:
        raise CheckFailed(f"{m.ref}: no container loads one of your ConfigMaps with envFrom.configMapRef")
    key_ref = None
    for i, c in enumerate(containers(m.obj)):
        for j, e in enumerate(c.get("env") or []):
            if e.get("name") == "API_KEY":
                where = m.where(("spec", "template", "spec", "containers", i, "env", j))
                if "value" in e:
                    raise CheckFailed(f"{where}: API_KEY is written into the Deployment: reference a Secret instead")
                key_ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if not key_ref or key_ref.get("name") not in secrets:
                    raise CheckFailed(f"{where}: API_KEY must come from secretKeyRef to one of your Secrets")
    if key_ref is None:
        raise CheckFailed(f"{m.ref}: no API_KEY env var from a Secret")
    t = sc.traffic(ctx)
    body = {"text": "I love it"}
    no_key = requests.post(t.url + "/predict", json=body, timeout=5).status_code
    with_key = _post_once_serving(t, body, t.headers, time.monotonic() + ctx.timeouts.service_endpoints).status_code
    if no_key != 401 or with_key != 200:
        raise CheckFailed(f"through the Service: without the key {no_key} (want 401), with it {with_key} (want 200)")
    return f"ConfigMap via envFrom, API_KEY via Secret/{key_ref['name']}; 401 without the key, 200 with it"


@check("probes.readiness-gates-traffic", lab=LAB, points=3, requires=("pods.ready",),
       hint="add a readinessProbe: httpGet /readyz on the http port, so a pod gets traffic only once its model is loaded",
       doc=f"{K8S}/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#define-readiness-probes")
def readiness_gates(ctx: ClusterLab) -> str:
    """a readiness probe keeps traffic off a pod until its model is loaded"""
    m = sc.deployment_manifest(ctx)
    for i, c in enumerate(containers(m.obj)):
        if not c.get("readinessProbe"):
            raise CheckFailed(f"{m.where(('spec', 'template', 'spec', 'containers', i))}: container "
                              f"{c.get('name')!r} has no readinessProbe: the Service sends it traffic as soon as "
                              "it runs, and again while it is hung")
    obs = sc.slow_start(ctx)
    if obs.load is None:
        raise CheckFailed("could not send traffic through the Service (see service.routes)")
    r = obs.load
    if r.total < 20:
        raise CheckFailed(f"only {r.total} requests were sent: the Service did not carry traffic")
    if r.failed:
        raise CheckFailed(f"{r.failed} of {r.total} requests failed while a new pod loaded its model "
                          f"for {obs.delay_s:g}s ({r.failures()})")
    ready = f", new pod Ready after {obs.ready_after_s:.1f}s" if obs.ready_after_s else ""
    return f"0 of {r.total} requests failed during a {obs.delay_s:g}s model load{ready}"


def _probes(m) -> ContainerProbes:
    c = containers(m.obj)[0] if containers(m.obj) else {}
    return ContainerProbes.of(c, ((m.obj.get("spec") or {}).get("template") or {}).get("spec") or {})


@check("probes.startup", lab=LAB, points=2, requires=("pods.ready",),
       hint=f"add a startupProbe (httpGet /readyz, initialDelaySeconds + failureThreshold × periodSeconds "
            f"≥ {STARTUP_BUDGET_MIN_S} s) so liveness waits for the model",
       doc=f"{K8S}/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#define-startup-probes")
def startup(ctx: ClusterLab) -> str:
    """a startup probe (or enough liveness initialDelaySeconds) covers a slow model load, which is never killed"""
    m = sc.deployment_manifest(ctx)
    where = m.where(("spec", "template", "spec", "containers", 0))
    p = _probes(m)
    if p.startup:
        how = (f"startupProbe budget {p.startup.startup_budget:g} s (initialDelaySeconds {p.startup.initial_delay:g} "
               f"+ periodSeconds {p.startup.period:g} × failureThreshold {p.startup.failure_threshold})")
        if p.startup.startup_budget < STARTUP_BUDGET_MIN_S:
            raise CheckFailed(f"{where}: {how} is under {STARTUP_BUDGET_MIN_S} s: a model load that takes longer "
                              "(a cold node, a bigger model) is killed before it finishes")
    elif p.liveness and p.liveness.initial_delay >= LIVENESS_DELAY_MIN_S:
        how = f"livenessProbe initialDelaySeconds {p.liveness.initial_delay:g} s (no startupProbe)"
    else:
        have = (f"a livenessProbe with initialDelaySeconds {p.liveness.initial_delay:g}" if p.liveness
                else "no livenessProbe either")
        raise CheckFailed(f"{where}: container has no startupProbe ({have}): nothing tells the kubelet how long "
                          f"a model load may take. Add a startupProbe with a budget ≥ {STARTUP_BUDGET_MIN_S} s")
    obs = sc.slow_start(ctx)
    if obs.new_pod is None:
        raise CheckFailed("the scaled-up pod never appeared")
    if obs.restarts:
        raise CheckFailed(f"pod {obs.new_pod} was restarted {obs.restarts}× while its model loaded for "
                          f"{obs.delay_s:g}s: liveness killed a healthy but slow start")
    if obs.ready_after_s is None:
        raise CheckFailed(f"pod {obs.new_pod} was not Ready {obs.deadline_s:g}s after the scale-up, with a "
                          f"{obs.delay_s:g}s model load (its probes imply Ready by then, with "
                          f"{sc.START_ALLOWANCE_S:g}s for the container to start)")
    return (f"{how}; a {obs.delay_s:g}s model load finished without restarts "
            f"(Ready {obs.ready_after_s:.1f}s after the scale-up)")


@check("probes.liveness-heals", lab=LAB, points=3, requires=("pods.ready",),
       hint=f"add a livenessProbe: httpGet /livez with a short periodSeconds and failureThreshold and its own "
            f"terminationGracePeriodSeconds, so a hung server is restarted within {LIVENESS_BUDGET_MAX_S} s",
       doc=f"{K8S}/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/#define-a-liveness-http-request")
def liveness_heals(ctx: ClusterLab) -> "str | Partial":
    """a hung container is restarted within what its probe settings imply, and the Service keeps answering"""
    m = sc.deployment_manifest(ctx)
    p = _probes(m)
    if not p.liveness:
        raise CheckFailed(f"{m.where(('spec', 'template', 'spec'))}: {m.ref}: no livenessProbe: "
                          "a hung server is never restarted")
    obs = sc.hung_pod(ctx)
    if obs.pod is None:
        raise CheckFailed("the replacement pod never appeared")
    if obs.early_restart_at is not None:
        raise CheckFailed(f"the replacement pod {obs.pod} was restarted at {obs.early_restart_at:.0f}s, before it "
                          "was ever Ready and before any hang: its probes kill a healthy start (see probes.startup)")
    if obs.ready_at is None:
        raise CheckFailed(f"the replacement pod {obs.pod} was not started and Ready in time "
                          f"(its probes imply ≤ {p.ready_lag():.0f}s after its model loads), so the grader "
                          "could not hang it once its probes had let it in")
    hung = (f"pod {obs.pod} hung {obs.hang_after_ready_s:g}s after its model loaded "
            f"(≤ {obs.hang_at - obs.ready_at:.0f}s after it was Ready)")
    if obs.restarted_at is None:
        raise CheckFailed(f"{hung} and was not restarted within {obs.allowed_s:.0f}s: the probes that apply "
                          f"imply {obs.bound_s:.0f}s ({obs.bound_why}) + {sc.RESTART_SLACK_S:g}s for the restart")
    took = max(0.0, obs.restarted_at - obs.hang_at)
    if took > obs.allowed_s:
        raise CheckFailed(f"{hung}; the restart came {took:.0f}s after the hang; the probes imply "
                          f"≤ {obs.bound_s:.0f}s ({obs.bound_why}) + {sc.RESTART_SLACK_S:g}s")
    r = obs.load
    if r is None or r.total == 0:
        raise CheckFailed("no traffic went through the Service during the hang")
    ok = r.ok / r.total
    if ok < 0.6:
        raise CheckFailed(f"the Service answered only {ok:.0%} of {r.total} requests while one pod was hung")
    done = (f"restarted ≤ {took:.0f}s after hanging (the probes imply ≤ {obs.bound_s:.0f}s: {obs.bound_why}); "
            f"Service answered {ok:.0%} of {r.total} requests meanwhile")
    if p.liveness.budget > LIVENESS_BUDGET_MAX_S:
        return Partial(2, f"{done}; but the probe budget {p.liveness.budget:g}s is over {LIVENESS_BUDGET_MAX_S}s: "
                          "a hung server also hangs its graceful shutdown, so give the livenessProbe its own short "
                          "terminationGracePeriodSeconds (README task 5)")
    return done
