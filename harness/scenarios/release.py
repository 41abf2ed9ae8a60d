"""Lab 05's chart on a live cluster: prod's rendered objects applied, then ``activeColor``
switched under traffic and switched back.

:func:`install` renders the chart with ``values-prod.yaml`` (plus the grader's knob
``downstreamLatencyMs``, which makes each request wait on I/O), creates the Secret that
``existingSecret`` names (the platform's job, not the chart's), applies the objects in
dependency order (as ``helm template | kubectl apply``, so that the grader's knobs reach
the ConfigMap) and waits for both colours.

:func:`switch` is ``helm upgrade --set activeColor=<other>``: the same render with the
colour switched, applied while a steady load runs; it records failed requests and which
model answered afterwards.

:func:`helm_round_trip` is the release itself, through Helm's engine and the cluster's API
(the sim starts its REST API for it): install over the live objects (adopted: they carry
Helm's ownership metadata), upgrade to the other colour, roll back to revision 1.
"""
from __future__ import annotations

import json
import secrets
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .. import helm
from ..cluster.base import ApiError
from ..cluster.objects import pod_state
from ..errors import GradingError, ScenarioFailed
from ..labs.cluster_lab import ClusterLab, apply_order
from ..load import LoadResult, start_load
from ..manifests import Manifest
from ..waiting import FinalError, WaitTimeout, wait_for
from . import chart as ch
from .common import PREDICT_BODY, refused_pods

# Each /predict waits this long "on a downstream" without using CPU (the server's knob).
DOWNSTREAM_LATENCY_MS = 500
# The server's knobs the grader sets in the chart's ConfigMap: few threads per pod, so that
# one pod's capacity (WEB_CONCURRENCY x THREADS) is small and a modest load exceeds it.
THREADS = 4


@dataclass
class Release:
    values: dict
    manifests: list[Manifest]
    api_key: str
    active: str                       # the active colour
    deployments: dict[str, str]       # colour -> Deployment name
    service: str
    service_port: int
    hpa: Manifest | None
    url: str = ""
    headers: dict = field(default_factory=dict)
    note: str = ""

    @property
    def active_deployment(self) -> str:
        return self.deployments[self.active]

    @property
    def capacity(self) -> int:
        cm = next((m for m in self.manifests if m.kind == "ConfigMap"), None)
        data = (cm.obj.get("data") or {}) if cm else {}
        return int(data.get("WEB_CONCURRENCY", 1)) * int(data.get("THREADS", THREADS))


def _color_of(dep: Manifest) -> str | None:
    labels = (((dep.obj.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("labels") or {}
    return labels.get("color")


def _with_knobs(manifests: list[Manifest]) -> list[Manifest]:
    """The ConfigMap the Deployments load with envFrom gets the grader's knobs."""
    names = {e["configMapRef"]["name"] for m in manifests if m.kind == "Deployment"
             for c in ((m.obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or []
             for e in c.get("envFrom") or [] if e.get("configMapRef")}
    found = False
    for m in manifests:
        if m.kind == "ConfigMap" and m.name in names:
            m.obj.setdefault("data", {}).update({"DOWNSTREAM_LATENCY_MS": str(DOWNSTREAM_LATENCY_MS),
                                                 "THREADS": str(THREADS)})
            found = True
    if not found:
        raise ScenarioFailed("no Deployment loads the chart's ConfigMap with envFrom: the grader sets "
                             "DOWNSTREAM_LATENCY_MS there (templates/deployment.yaml: envFrom.configMapRef)")
    return manifests


def render(ctx: ClusterLab, active: str | None = None) -> tuple[dict, list[Manifest]]:
    """prod's objects as ``helm template -f values-prod.yaml [--set activeColor=...]`` makes them,
    and the values they were made with (the chart's values.yaml coalesced under prod's)."""
    obs = ch.chart(ctx)
    values = dict(obs.renders["prod"].values)
    if active:
        values["activeColor"] = active
    defaults = [obs.folder / "values.yaml"] if (obs.folder / "values.yaml").is_file() else []
    try:
        effective = helm.merged_values(defaults, obs.folder, values)
    except GradingError as exc:
        raise ScenarioFailed(f"the chart's values do not load: {exc}") from None
    try:
        manifests = helm.render(obs.folder, values, release=ch.RELEASE, namespace=ctx.cluster.namespace,
                                label=f"chart[prod{' activeColor=' + active if active else ''}]")
    except (helm.RenderError, GradingError) as exc:
        raise ScenarioFailed(f"prod does not render: {exc}") from None
    return effective, _with_knobs(manifests)


def _apply(ctx: ClusterLab, manifests: list[Manifest]) -> None:
    for m in sorted(manifests, key=apply_order):
        try:
            ctx.cluster.apply([m.obj])
        except ApiError as exc:
            raise ScenarioFailed(f"{m.where()}: {m.ref}: the cluster refused it: {exc.message}") from None


# container states that do not clear up by themselves while the grader waits
STUCK = ("CreateContainerConfigError", "ErrImageNeverPull", "InvalidImageName", "ImagePullBackOff", "ErrImagePull")


def _pods_of(ctx: ClusterLab, d: dict) -> list[dict]:
    sel = ",".join(f"{k}={v}" for k, v in ((d["spec"].get("selector") or {}).get("matchLabels") or {}).items())
    return ctx.cluster.list("Pod", label_selector=sel or None)


def _wait_available(ctx: ClusterLab, name: str) -> None:
    def available():
        refused = refused_pods(ctx, name)
        if refused:
            raise FinalError(f"the pods are refused: {refused}")
        d = ctx.cluster.get("Deployment", name)
        for p in _pods_of(ctx, d):
            for cs in (p.get("status") or {}).get("containerStatuses") or []:
                if ((cs.get("state") or {}).get("waiting") or {}).get("reason") in STUCK:
                    raise FinalError(pod_state(p))
        st = d.get("status") or {}
        want = max(1, d["spec"].get("replicas", 1))
        return st.get("updatedReplicas", 0) >= want and st.get("availableReplicas", 0) >= want

    try:
        wait_for(available, f"Deployment/{name} to be available", ctx.timeouts.pod_start, progress=ctx.log)
    except (WaitTimeout, FinalError) as exc:
        states = "; ".join(pod_state(p) for p in _pods_of(ctx, ctx.cluster.get("Deployment", name))) or "no pods"
        raise ScenarioFailed(f"Deployment/{name} never became available: {exc} (pods: {states})") from None


def predict(rel: Release, timeout: float = 5) -> dict:
    req = urllib.request.Request(rel.url + "/predict", data=PREDICT_BODY.encode(), method="POST",
                                 headers={"Content-Type": "application/json", **rel.headers})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def install(ctx: ClusterLab) -> Release:
    """prod applied and both colours available; the same Release for every later call."""
    if "release" in ctx.observations:
        rel = ctx.observations["release"]
        if isinstance(rel, ScenarioFailed):
            raise rel
        return rel
    try:
        rel = _install(ctx)
    except ScenarioFailed as exc:
        ctx.observations["release"] = exc
        raise
    ctx.observations["release"] = rel
    return rel


def _install(ctx: ClusterLab) -> Release:
    values, manifests = render(ctx)
    ctx.use_manifests(manifests)
    deps = {_color_of(m) or m.name: m.name for m in manifests if m.kind == "Deployment"}
    services = [m for m in manifests if m.kind == "Service"]
    if not services:
        raise ScenarioFailed("prod renders no Service")
    active = str(values.get("activeColor") or "blue")
    if active not in deps:
        raise ScenarioFailed(f"activeColor {active!r}: prod renders no Deployment with the pod label color: {active} "
                             f"(found {', '.join(sorted(deps)) or 'none'})")
    secret = values.get("existingSecret")
    key = secrets.token_hex(12)
    if secret:
        ctx.cluster.apply([{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": str(secret)},
                            "type": "Opaque", "stringData": {"API_KEY": key}}])
    svc = services[0]
    port = ((svc.obj.get("spec") or {}).get("ports") or [{}])[0].get("port", 80)
    hpas = [m for m in manifests if m.kind == "HorizontalPodAutoscaler"]
    rel = Release(values, manifests, key, active, deps, svc.name, port, hpas[0] if hpas else None,
                  headers={"Authorization": f"Bearer {key}"} if secret else {},
                  note="the measured part applies prod's rendered objects (helm template | kubectl apply, "
                       "with the grader's knobs); release.rollback then runs the Helm release itself")
    ctx.log(f"installing the chart: {len(manifests)} objects rendered from values-prod.yaml "
            f"(DOWNSTREAM_LATENCY_MS={DOWNSTREAM_LATENCY_MS}, THREADS={THREADS})")
    _apply(ctx, manifests)
    ctx.applied = [m.obj for m in manifests]
    for name in deps.values():
        _wait_available(ctx, name)
    rel.url = ctx.cluster.service_url(rel.service, port)

    def answers():
        return predict(rel).get("model_version")

    try:
        wait_for(answers, f"Service/{rel.service} to answer /predict", ctx.timeouts.service_endpoints + 15)
    except WaitTimeout as exc:
        raise ScenarioFailed(f"Service/{rel.service} does not answer POST /predict: {exc}") from None
    return rel


def _wait_settled(ctx: ClusterLab, timeout: float = 90) -> None:
    """No pod terminating (a scale-down that just ended): the switch is measured on its own."""
    def settled():
        return not any(p["metadata"].get("deletionTimestamp") for p in ctx.cluster.list("Pod"))

    try:
        wait_for(settled, "terminating pods to be gone before the switch", timeout, progress=ctx.log)
    except WaitTimeout:
        pass            # measured anyway; failures say what they saw


@dataclass
class Switch:
    to: str
    load: LoadResult | None
    versions_after: dict[str, int]      # model_version -> answers, after the switch settled
    expected_version: str
    seconds: float
    error: str = ""


def _versions(rel: Release, n: int = 24) -> dict[str, int]:
    seen: dict[str, int] = {}
    for _ in range(n):
        try:
            v = str(predict(rel).get("model_version"))
        except OSError as exc:
            v = f"error: {exc}"
        seen[v] = seen.get(v, 0) + 1
    return seen


def switch(ctx: ClusterLab, to: str, *, settle_s: float = 6.0, concurrency: int = 4) -> Switch:
    """``helm upgrade --set activeColor=<to>`` while ``concurrency`` clients keep sending."""
    key = f"switch-{to}"
    if key in ctx.observations:
        return ctx.observations[key]
    rel = install(ctx)
    _wait_settled(ctx)
    values, manifests = render(ctx, to)
    tag = ((values.get("colors") or {}).get(to) or {}).get("tag", to)
    handle = start_load(rel.url + "/predict", duration_s=120, concurrency=concurrency, method="POST",
                        body=PREDICT_BODY, headers=rel.headers, timeout_s=5, disable_keepalive=True)
    start = time.monotonic()
    error = ""
    try:
        time.sleep(2)
        _apply(ctx, manifests)
        for name in {_color_of(m) or m.name: m.name for m in manifests if m.kind == "Deployment"}.values():
            _wait_available(ctx, name)
        time.sleep(settle_s)      # the Service's endpoints reach every proxy
    except ScenarioFailed as exc:
        error = str(exc)
    finally:
        result = handle.stop()
    sw = Switch(to, result, _versions(rel) if not error else {}, str(tag), time.monotonic() - start, error)
    rel.active = to
    ctx.observations[key] = sw
    return sw


# ---- helm install / upgrade / rollback through the cluster's API ------------------------------
# Helm adopts objects that carry its ownership metadata (helm.sh/docs: "adopting resources"), so
# the objects the live part applied become release revision 1 instead of a refused install.
OWNER_LABEL = ("app.kubernetes.io/managed-by", "Helm")
OWNER_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


@dataclass
class RoundTrip:
    """``helm install`` (prod), ``helm upgrade --set activeColor=<other>``, ``helm rollback <release> 1``."""
    other: str
    history: list[helm.Revision] = field(default_factory=list)
    live: dict[int, dict[str, object]] = field(default_factory=dict)    # revision -> object ref -> what it declares
    manifests_equal: bool = False       # revision 3's stored manifest is revision 1's
    how: str = ""
    error: str = ""

    def changed(self, a: int, b: int) -> list[str]:
        x, y = self.live.get(a, {}), self.live.get(b, {})
        return sorted(r for r in set(x) | set(y) if x.get(r) != y.get(r))


def _declared(obj: dict) -> object:
    """What an object declares, without what the cluster or an HPA writes (status, replicas)."""
    out = {k: obj.get(k) for k in ("spec", "data", "stringData") if k in obj}
    if obj.get("kind") == "Deployment" and isinstance(out.get("spec"), dict):
        out["spec"] = {k: v for k, v in out["spec"].items() if k != "replicas"}
    return json.loads(json.dumps(out, sort_keys=True))


def _live_objects(ctx: ClusterLab, manifest: str) -> dict[str, object]:
    found: dict[str, object] = {}
    for doc in yaml.safe_load_all(manifest):
        if not isinstance(doc, dict) or not doc.get("kind"):
            continue
        name = (doc.get("metadata") or {}).get("name", "")
        try:
            found[f"{doc['kind']}/{name}"] = _declared(ctx.cluster.get(doc["kind"], name))
        except ApiError as exc:
            found[f"{doc['kind']}/{name}"] = f"missing: {exc.message}"
    return found


def _owned_by_release(m: Manifest, namespace: str) -> dict:
    obj = json.loads(json.dumps(m.obj))
    meta = obj.setdefault("metadata", {})
    meta.setdefault("labels", {})[OWNER_LABEL[0]] = OWNER_LABEL[1]
    meta.setdefault("annotations", {}).update({OWNER_ANNOTATIONS[0]: ch.RELEASE, OWNER_ANNOTATIONS[1]: namespace})
    return obj


def helm_round_trip(ctx: ClusterLab) -> RoundTrip:
    """The release's life through Helm's engine and the cluster's API (the sim starts its REST API for
    it): prod installed over the objects already live, upgraded to the other colour, rolled back to
    revision 1; the live objects are read after each step."""
    if "helm-round-trip" in ctx.observations:
        return ctx.observations["helm-round-trip"]
    rel = install(ctx)
    other = "green" if rel.active == "blue" else "blue"
    rt = RoundTrip(other)
    ctx.observations["helm-round-trip"] = rt
    obs = ch.chart(ctx)
    values = dict(obs.renders["prod"].values)
    ns = ctx.cluster.namespace
    step = "install"
    with tempfile.TemporaryDirectory(prefix="helm-") as tmp:
        try:
            kubeconfig, context = ctx.cluster.write_kubeconfig(Path(tmp))
            rt.how = f"Helm's engine against the {getattr(ctx.cluster, 'name', 'cluster')} cluster's API"
            # the objects applied so far, as prod renders them, with the release's ownership metadata
            plain = helm.render(obs.folder, values, release=ch.RELEASE, namespace=ns, label="chart[prod]")
            for m in sorted(plain, key=apply_order):
                ctx.cluster.apply([_owned_by_release(m, ns)])
            ctx.log(f"helm install {ch.RELEASE} -f values-prod.yaml, upgrade --set activeColor={other}, "
                    f"rollback {ch.RELEASE} 1")
            with helm.Releases(kubeconfig, ns, context=context, timeout_s=int(ctx.timeouts.pod_start)) as h:
                first = h.install(obs.folder, ch.RELEASE, values)
                rt.live[1] = _live_objects(ctx, first.manifest)
                step = f"upgrade --set activeColor={other}"
                second = h.upgrade(obs.folder, ch.RELEASE, {**values, "activeColor": other})
                rt.live[2] = _live_objects(ctx, second.manifest)
                step = "rollback to revision 1"
                h.rollback(ch.RELEASE, 1)
                rt.history = h.history(ch.RELEASE)
                third = h.manifest(ch.RELEASE, rt.history[-1].revision)
                rt.live[3] = _live_objects(ctx, third)
                rt.manifests_equal = third == first.manifest
        except (GradingError, helm.RenderError, ApiError) as exc:
            msg = getattr(exc, "message", None) or str(exc)
            rt.error = f"helm {step}: {msg}" if not msg.startswith("helm ") else msg
    return rt
