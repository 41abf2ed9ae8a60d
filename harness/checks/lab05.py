"""Lab 05 checks: a Helm chart with dev/prod values, an HPA on requests in
flight, the API key by reference only, and a blue/green Service.

These checks judge what Helm's own engine made of the chart
(:mod:`harness.scenarios.chart`): ``helm lint --strict`` findings and the objects
``helm template`` renders for each environment. Messages name the rendered
template (``chart[prod]/templates/hpa.yaml:14``) or the values file.
"""
from __future__ import annotations

import re

from .. import helm
from ..cluster.objects import quantity
from ..manifests import validate
from ..scenarios import chart as ch
from .registry import CheckFailed, check

LAB = "05-helm-autoscaling"
HELM = "https://helm.sh/docs"
K8S = "https://kubernetes.io/docs"
METRIC = "inference_requests_in_flight"
PROD_MIN, PROD_MAX = 2, 6
THREADS_DEFAULT = 16            # the reference server's gunicorn threads per worker (THREADS)
SECRET_KEY = re.compile(r"(?i)(api[_-]?key|apikey|token|passw(or)?d|secret|credential)")
# a values key that names a Secret rather than holding one
REFERENCE_KEY = re.compile(r"(?i)secret(name|ref)?$")     # existingSecret, secretName, tlsSecretRef


def _need_render(obs: ch.ChartObservation, env: str) -> ch.Render:
    r = obs.renders[env]
    if r.error:
        raise CheckFailed(f"{env} does not render: {r.error}")
    return r


@check("chart.lint", lab=LAB, points=2,
       hint="fix each [WARNING]/[ERROR] line that `helm lint --strict chart -f chart/values-<env>.yaml` prints",
       doc=f"{HELM}/helm/helm_lint/")
def chart_lint(ctx) -> str:
    """helm lint --strict is clean with the dev and the prod values"""
    obs = ch.chart(ctx)
    bad = [f"{env}: {m}" for env, msgs in obs.lint.items() for m in msgs]
    if bad:
        raise CheckFailed(f"helm lint --strict: {len(bad)} finding(s); first: {bad[0]}", details="\n".join(bad))
    return "helm lint --strict: 0 warnings, 0 errors with values-dev.yaml and values-prod.yaml"


@check("chart.renders", lab=LAB, points=2,
       hint="run `helm template sentiment chart -f chart/values-prod.yaml` and fix the template or field it names",
       doc=f"{HELM}/helm/helm_template/")
def chart_renders(ctx) -> str:
    """dev and prod both render, and every rendered object validates strictly"""
    obs = ch.chart(ctx)
    counts = []
    for env in ch.ENVS:
        r = _need_render(obs, env)
        if not r.manifests:
            raise CheckFailed(f"{env} renders no objects")
        errors = validate(r.manifests)
        if errors:
            raise CheckFailed(f"{env}: {len(errors)} schema error(s) in the rendered objects; first: {errors[0]}",
                              details="\n".join(errors))
        counts.append(f"{env} {len(r.manifests)}")
    return f"rendered objects valid for the pinned Kubernetes schema ({', '.join(counts)})"


def _deployments(r: ch.Render):
    return r.objects("Deployment")


def _containers(m) -> list[dict]:
    return (((m.obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []


@check("values.dev-prod", lab=LAB, points=3, requires=("chart.renders",),
       hint="values-dev.yaml: replicas 1, logLevel debug, autoscaling and pdb off; values-prod.yaml: "
            "autoscaling on (2-6), resources, pdb on",
       doc=f"{HELM}/chart_template_guide/values_files/")
def dev_prod(ctx) -> str:
    """dev and prod differ exactly where the lab asks"""
    obs = ch.chart(ctx)
    dev, prod = obs.renders["dev"], obs.renders["prod"]
    problems = []
    if dev.objects("HorizontalPodAutoscaler"):
        problems.append("dev renders an HPA (dev runs one pod per colour, no autoscaling)")
    if dev.objects("PodDisruptionBudget"):
        problems.append("dev renders a PodDisruptionBudget")
    for m in _deployments(dev):
        if (m.obj.get("spec") or {}).get("replicas", 1) != 1:
            problems.append(f"{m.where(('spec', 'replicas'))}: {m.ref}: dev wants 1 replica, "
                            f"found {m.obj['spec'].get('replicas')}")
    cm = dev.one("ConfigMap")
    if cm is None or str((cm.obj.get("data") or {}).get("LOG_LEVEL", "")).lower() != "debug":
        problems.append("dev's ConfigMap does not set LOG_LEVEL: debug (values-dev.yaml: logLevel)")
    hpas = prod.objects("HorizontalPodAutoscaler")
    if len(hpas) != 1:
        problems.append(f"prod renders {len(hpas)} HPAs (one, for the active colour)")
    else:
        spec = hpas[0].obj.get("spec") or {}
        if (spec.get("minReplicas"), spec.get("maxReplicas")) != (PROD_MIN, PROD_MAX):
            problems.append(f"{hpas[0].where(('spec', 'minReplicas'))}: prod's HPA scales "
                            f"{spec.get('minReplicas')}-{spec.get('maxReplicas')}, the lab asks {PROD_MIN}-{PROD_MAX}")
    if len(prod.objects("PodDisruptionBudget")) != 1:
        problems.append("prod renders no PodDisruptionBudget (values-prod.yaml: pdb.enabled)")
    for m in _deployments(prod):
        for c in _containers(m):
            res = c.get("resources") or {}
            if not (res.get("requests") and res.get("limits")):
                problems.append(f"{m.where(('spec', 'template'))}: {m.ref}: container {c.get('name')} has no "
                                "requests and limits in prod (values-prod.yaml: resources)")
    if problems:
        raise CheckFailed(f"{len(problems)} difference(s) missing; first: {problems[0]}", details="\n".join(problems))
    return (f"dev: 1 replica per colour, LOG_LEVEL debug, no HPA or PDB; prod: HPA {PROD_MIN}-{PROD_MAX}, "
            "resources, a PDB")


def _secret_values(values, path: str = "") -> list[str]:
    """Values whose key says "secret" and whose value is a literal, not the name of a Secret."""
    found = []
    if isinstance(values, dict):
        for k, v in values.items():
            p = f"{path}.{k}" if path else str(k)
            if isinstance(v, (dict, list)):
                found += _secret_values(v, p)
            elif SECRET_KEY.search(str(k)) and not REFERENCE_KEY.search(str(k)) and v not in (None, "", False):
                found.append(p)
    elif isinstance(values, list):
        for i, v in enumerate(values):
            found += _secret_values(v, f"{path}[{i}]")
    return found


@check("secrets.by-reference", lab=LAB, points=2, requires=("chart.renders",),
       hint="delete the key from the values file; read API_KEY with env.valueFrom.secretKeyRef.name: "
            "{{ .Values.existingSecret }}",
       doc=f"{K8S}/concepts/configuration/secret/#using-secrets-as-environment-variables")
def secrets_by_reference(ctx) -> str:
    """no secret in a values file or a rendered manifest; API_KEY comes from an existing Secret"""
    obs = ch.chart(ctx)
    problems = []
    for f in [obs.folder / "values.yaml", *obs.values_files.values()]:
        if f.is_file():
            for p in _secret_values(helm.load_values(f, f"chart/{f.name}")):
                problems.append(f"chart/{f.name}: {p} holds a literal secret (values files end up in git and in "
                                "`helm get values`)")
    for env in ch.ENVS:
        r = obs.renders[env]
        for m in r.objects("Secret"):
            if (m.obj.get("data") or m.obj.get("stringData")):
                problems.append(f"{m.file}:{m.line}: {m.ref} renders the secret's value into the manifest")
        for m in _deployments(r):
            for c in _containers(m):
                for e in c.get("env") or []:
                    if SECRET_KEY.search(str(e.get("name", ""))) and "value" in e:
                        problems.append(f"{m.where(('spec', 'template'))}: {m.ref}: env {e['name']} is a literal "
                                        "value, not a secretKeyRef")
    prod = obs.renders["prod"]
    refs = {((e.get("valueFrom") or {}).get("secretKeyRef") or {}).get("name") for m in _deployments(prod)
            for c in _containers(m) for e in c.get("env") or [] if e.get("name") == "API_KEY"}
    refs |= {(s.get("secretRef") or {}).get("name") for m in _deployments(prod) for c in _containers(m)
             for s in c.get("envFrom") or []}
    refs.discard(None)
    if not problems and not refs:
        problems.append("no container reads API_KEY from a Secret (env.valueFrom.secretKeyRef)")
    if problems:
        raise CheckFailed(problems[0], details="\n".join(problems))
    return f"API_KEY only by reference (Secret {', '.join(sorted(refs))}); no literal secret in values or manifests"


def _capacity(r: ch.Render) -> int:
    """Requests one pod serves at once: WEB_CONCURRENCY workers x THREADS threads, from the ConfigMap."""
    cm = r.one("ConfigMap")
    data = (cm.obj.get("data") or {}) if cm else {}
    try:
        return int(data.get("WEB_CONCURRENCY", 1)) * int(data.get("THREADS", THREADS_DEFAULT))
    except ValueError:
        return THREADS_DEFAULT


@check("hpa.custom-metric", lab=LAB, points=3, requires=("chart.renders",),
       hint=f"templates/hpa.yaml: metrics: - type: Pods, pods.metric.name: {METRIC}, target.type: AverageValue "
            "with a value below what one pod serves at once",
       doc=f"{K8S}/tasks/run-application/horizontal-pod-autoscale-walkthrough/"
           "#autoscaling-on-multiple-metrics-and-custom-metrics")
def hpa_custom_metric(ctx) -> str:
    """prod's HPA scales the active Deployment on requests in flight per pod"""
    obs = ch.chart(ctx)
    prod = obs.renders["prod"]
    hpa = prod.one("HorizontalPodAutoscaler")
    if hpa is None:
        raise CheckFailed(f"prod renders {len(prod.objects('HorizontalPodAutoscaler'))} HPAs; it needs one "
                          "(values-prod.yaml: autoscaling.enabled: true)")
    spec = hpa.obj.get("spec") or {}
    metrics = spec.get("metrics") or []
    pods = [m for m in metrics if m.get("type") == "Pods"]
    if not pods:
        kinds = ", ".join(f"{m.get('type')} {((m.get('resource') or {}).get('name') or '')}".strip() for m in metrics)
        raise CheckFailed(f"{hpa.where(('spec', 'metrics'))}: {hpa.ref} scales on {kinds or 'nothing'}: requests "
                          "that wait on a slow downstream use no CPU, so this HPA stays at its minimum")
    src = pods[0].get("pods") or {}
    name = (src.get("metric") or {}).get("name")
    if name != METRIC:
        raise CheckFailed(f"{hpa.where(('spec', 'metrics'))}: {hpa.ref}: pods metric {name!r}: the adapter serves "
                          f"{METRIC!r} (kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2 lists it)")
    target = src.get("target") or {}
    if target.get("type") != "AverageValue":
        raise CheckFailed(f"{hpa.where(('spec', 'metrics'))}: {hpa.ref}: a pods metric needs target.type "
                          f"AverageValue, found {target.get('type')!r}")
    try:
        avg = quantity(str(target.get("averageValue")))
    except (ValueError, TypeError):
        raise CheckFailed(f"{hpa.ref}: target.averageValue {target.get('averageValue')!r} is not a quantity") from None
    cap = _capacity(prod)
    if not 0 < avg <= cap:
        raise CheckFailed(f"{hpa.where(('spec', 'metrics'))}: {hpa.ref}: averageValue {target.get('averageValue')} "
                          f"is above the {cap} requests one pod serves at once (WEB_CONCURRENCY x THREADS): "
                          "requests would queue inside the pods before the HPA adds any")
    ref = (spec.get("scaleTargetRef") or {}).get("name")
    active = prod.values.get("activeColor", "blue")
    deps = {m.name: m for m in _deployments(prod)}
    if ref not in deps:
        raise CheckFailed(f"{hpa.ref}: scaleTargetRef names Deployment {ref!r}, which the chart does not render")
    color = _pod_labels(deps[ref]).get("color")
    if color is not None and color != active:
        raise CheckFailed(f"{hpa.ref}: scales Deployment/{ref} ({color}), but the active colour is {active}")
    return f"{hpa.ref} scales Deployment/{ref} on {METRIC}, {target.get('averageValue')} per pod (a pod serves {cap})"


def _pod_labels(m) -> dict:
    return (((m.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}


def _selected(r: ch.Render) -> tuple[object, list[str]]:
    svcs = r.objects("Service")
    if len(svcs) != 1:
        raise CheckFailed(f"{r.env} renders {len(svcs)} Services; blue/green needs one that both colours sit behind")
    sel = (svcs[0].obj.get("spec") or {}).get("selector") or {}
    if not sel:
        raise CheckFailed(f"{svcs[0].where(('spec', 'selector'))}: {svcs[0].ref} has no selector")
    picked = [m.name for m in _deployments(r) if all(_pod_labels(m).get(k) == v for k, v in sel.items())]
    return svcs[0], picked


@check("bluegreen.selector", lab=LAB, points=3, requires=("chart.renders",),
       hint="templates/service.yaml: add `color: {{ .Values.activeColor }}` to spec.selector, "
            "and a color label to each Deployment's pod template",
       doc=f"{K8S}/concepts/services-networking/service/#defining-a-service")
def bluegreen_selector(ctx) -> str:
    """two Deployments (blue, green); the Service selects only the active colour, and switching moves it"""
    obs = ch.chart(ctx)
    prod = obs.renders["prod"]
    deps = _deployments(prod)
    colors = sorted({_pod_labels(m).get("color", "") for m in deps})
    if len(deps) != 2 or colors != ["blue", "green"]:
        raise CheckFailed(f"prod renders {len(deps)} Deployments with colours {colors}: blue/green needs two, "
                          "with pod labels color: blue and color: green")
    svc, picked = _selected(prod)
    active = prod.values.get("activeColor", "blue")
    want = [m.name for m in deps if _pod_labels(m).get("color") == active]
    if picked != want:
        raise CheckFailed(f"{svc.where(('spec', 'selector'))}: {svc.ref} selects the pods of "
                          f"{' and '.join(picked) or 'no Deployment'}: with activeColor {active} it must select "
                          f"only {' '.join(want)}'s")
    switched = _need_render(obs, "prod-switched")
    svc2, picked2 = _selected(switched)
    other = switched.values["activeColor"]
    want2 = [m.name for m in _deployments(switched) if _pod_labels(m).get("color") == other]
    if picked2 != want2:
        raise CheckFailed(f"with --set activeColor={other}, {svc2.ref} selects "
                          f"{' and '.join(picked2) or 'no Deployment'}, not {' '.join(want2)}: the selector must "
                          "follow .Values.activeColor")
    return f"{svc.ref} selects {want[0]} only; --set activeColor={other} moves it to {want2[0]}"


# --- live: prod installed on the cluster (harness/scenarios/release.py, custom_hpa.py) -------------
MAX_SCALE_DOWN_WINDOW_S = 60      # the lab's requirement: prod gives capacity back within a minute
                                  # (custom_hpa.MAX_WATCHED_WINDOW_S is the same figure)
P99_GAIN = 0.8                    # p99 at the peak must be at most 0.8 x p99 at the minimum


def _live(ctx):
    from ..scenarios import release

    if not hasattr(ctx, "cluster"):
        raise CheckFailed("this check needs a cluster (grade with --backend sim or kind)")
    return release.install(ctx)


@check("release.installs", lab=LAB, points=2, requires=("chart.renders",),
       hint="run `helm install sentiment chart -f chart/values-prod.yaml` (or helm template | kubectl apply) "
            "and fix the object the cluster refuses or the pods that never become Ready",
       doc=f"{HELM}/helm/helm_install/")
def release_installs(ctx) -> str:
    """prod's objects are accepted, both colours become available and the Service answers"""
    rel = _live(ctx)
    if rel.note and rel.note not in ctx.notices:
        ctx.notices.append(rel.note)
    return (f"{len(rel.manifests)} objects applied; "
            + ", ".join(f"{c} (Deployment/{n})" for c, n in sorted(rel.deployments.items()))
            + f" available; Service/{rel.service} answers with activeColor {rel.active}")


def _p99(load) -> float | None:
    return None if load is None else load.p99_ms


@check("hpa.scales-on-load", lab=LAB, points=4, requires=("release.installs",),
       hint=f"templates/hpa.yaml: a type: Pods metric {METRIC} with an averageValue below one pod's capacity; "
            "`kubectl describe hpa` shows why it does not scale",
       doc=f"{K8S}/tasks/run-application/horizontal-pod-autoscale/#scaling-on-custom-metrics")
def hpa_scales_on_load(ctx) -> str:
    """under I/O-bound load Lab 03's CPU HPA stays at its minimum; the chart's HPA scales out and cuts p99"""
    from ..scenarios import custom_hpa as ca

    _live(ctx)
    c = ca.contrast(ctx)
    if c.error:
        raise CheckFailed(c.error)
    before, after = _p99(c.cpu.load), _p99(c.custom.load)
    cpu = (f"Lab 03's CPU HPA stayed at {c.cpu.peak} ({c.cpu.current or 'no metric yet'}), p99 "
           f"{before:.0f} ms" if before is not None else f"Lab 03's CPU HPA peaked at {c.cpu.peak}")
    if c.custom.peak <= c.min_replicas:
        why = c.custom.condition or (f"it read {c.custom.current}" if c.custom.current else "it read no metric")
        raise CheckFailed(f"{ca.CONCURRENCY} clients, each request waiting {_latency()} ms on I/O: the chart's HPA "
                          f"stayed at {c.custom.peak} replicas: {why}", details=cpu)
    if before is not None and after is not None and after > P99_GAIN * before:
        raise CheckFailed(f"the chart's HPA scaled {c.min_replicas} -> {c.custom.peak}, but p99 went {before:.0f} -> "
                          f"{after:.0f} ms (at most {P99_GAIN} x): requests still queue inside the pods; "
                          "scale earlier (a lower averageValue)", details=cpu)
    p99 = f", p99 {before:.0f} -> {after:.0f} ms" if before is not None and after is not None else ""
    return (f"{cpu}; the chart's HPA scaled {c.min_replicas} -> {c.custom.peak} in "
            f"{c.custom.first_scale_up_s} s on {METRIC}{p99}")


def _latency() -> int:
    from ..scenarios.release import DOWNSTREAM_LATENCY_MS

    return DOWNSTREAM_LATENCY_MS


@check("hpa.scale-down", lab=LAB, points=2, requires=("hpa.scales-on-load",),
       hint="values-prod.yaml: autoscaling.behavior.scaleDown.stabilizationWindowSeconds "
            f"at most {MAX_SCALE_DOWN_WINDOW_S}, and minReplicas/maxReplicas the lab asks for",
       doc=f"{K8S}/tasks/run-application/horizontal-pod-autoscale/#configurable-scaling-behavior")
def hpa_scale_down(ctx) -> str:
    """replicas stay within min/max, and return to the minimum within the scale-down window after the load"""
    from ..scenarios import custom_hpa as ca

    c = ca.contrast(ctx)
    if c.below_min or c.above_max:
        seen = sorted({r for _, phase, r, _ in c.series if phase in ca.BOUNDED_PHASES})
        raise CheckFailed(f"replicas {seen} left the HPA's bounds {c.min_replicas}-{c.max_replicas}")
    if c.scale_down_window_s > MAX_SCALE_DOWN_WINDOW_S:
        raise CheckFailed(f"behavior.scaleDown.stabilizationWindowSeconds {c.scale_down_window_s} s: prod must give "
                          f"capacity back within {MAX_SCALE_DOWN_WINDOW_S} s of the load ending")
    if c.back_to_min_s is None:
        raise CheckFailed(f"the load stopped {c.watched_down_s:.0f} s ago and the replicas are not back at "
                          f"{c.min_replicas} (scale-down window {c.scale_down_window_s} s, HPA sync "
                          f"{c.sync_period_s:g} s)")
    return (f"replicas stayed within {c.min_replicas}-{c.max_replicas}; back at {c.min_replicas} "
            f"{c.back_to_min_s:.0f} s after the load stopped (window {c.scale_down_window_s} s)")


def _switch_problem(sw) -> str:
    if sw.error:
        return sw.error
    failed = sw.load.failed if sw.load else 0
    if failed:
        return f"{failed} of {sw.load.total} requests failed during the switch ({sw.load.summary()})"
    others = {v: n for v, n in sw.versions_after.items() if v != sw.expected_version}
    if others:
        return (f"after the switch to {sw.to}, {sum(others.values())} of {sum(sw.versions_after.values())} answers "
                f"came from model {', '.join(sorted(others))}, not {sw.expected_version}")
    return ""


@check("bluegreen.switch", lab=LAB, points=3, requires=("release.installs",),
       hint="templates/service.yaml: spec.selector must carry color: {{ .Values.activeColor }}, and the idle "
            "colour must stay Ready; switch with `helm upgrade ... --set activeColor=green`",
       doc=f"{K8S}/concepts/services-networking/service/#defining-a-service")
def bluegreen_switch(ctx) -> str:
    """switching activeColor under load moves every request to the other colour with 0 failures, and back"""
    from ..scenarios import release

    rel = _live(ctx)
    first = rel.active
    other = "green" if first == "blue" else "blue"
    sw = release.switch(ctx, other)
    problem = _switch_problem(sw)
    if problem:
        raise CheckFailed(problem)
    back = release.switch(ctx, first)
    problem = _switch_problem(back)
    if problem:
        raise CheckFailed(f"switching back (the rollback): {problem}")
    return (f"{first} -> {other}: {sw.load.total} requests, 0 failed, then every answer from {sw.expected_version}; "
            f"back to {first}: {back.load.total} requests, 0 failed, every answer from {back.expected_version}")


@check("release.rollback", lab=LAB, points=2, requires=("release.installs",),
       hint="every object must come from the chart and follow activeColor where it should (templates/service.yaml "
            "spec.selector); nothing immutable may change between colours (a Deployment's spec.selector)",
       doc=f"{HELM}/helm/helm_rollback/")
def release_rollback(ctx) -> str:
    """helm install prod, helm upgrade --set activeColor=<other>, helm rollback 1: revision 3 restores revision 1's objects"""
    from ..scenarios import release

    _live(ctx)
    rt = release.helm_round_trip(ctx)
    if rt.error:
        raise CheckFailed(rt.error, details=rt.how)
    changed = rt.changed(1, 2)
    if not changed:
        raise CheckFailed(f"helm upgrade --set activeColor={rt.other} changed no object: a rollback has nothing to "
                          "restore, and the Service still selects the same pods", details=rt.how)
    states = [(r.revision, r.status) for r in rt.history]
    if states[-1:] != [(3, "deployed")] or [s for _, s in states[:-1]] != ["superseded"] * (len(states) - 1):
        raise CheckFailed(f"helm history after the rollback: {states} (want revisions 1 and 2 superseded, 3 deployed)")
    not_restored = rt.changed(1, 3)
    if not_restored or not rt.manifests_equal:
        raise CheckFailed("helm rollback to revision 1 left objects unlike revision 1's: "
                          + (", ".join(not_restored) or "the stored manifest differs"), details=rt.how)
    return (f"revision 2 (activeColor={rt.other}) changed {', '.join(changed)}; the rollback made revision 3, "
            f"whose objects are revision 1's ({len(rt.live[1])} objects compared live); {rt.how}")
