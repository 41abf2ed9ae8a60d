"""Cluster addons: upstream's release manifests at pinned versions, the bundled copies when offline.

What real users do, so what the kind backend does: ``kubectl apply -f <pinned release URL>``
(kubectl fetches it), then check what landed. Only when the URL cannot be fetched (no network)
is the copy bundled in the repo applied instead, and that is announced (a warning, recorded in
the cluster's diagnostics). The bundled copies are what the sim and the offline validators use;
they must stay valid for a real API server (tests/kind/test_addons.py).

* metrics-server v0.7.2: the release's ``components.yaml``, then upstream's documented patch for
  kubelets with self-signed serving certificates (kind's): a JSON patch adding
  ``--kubelet-insecure-tls`` to the container's args (metrics-server's own
  ``manifests/components/test`` kustomization). Bundled: ``addons/metrics-server.yaml`` (the flag
  already in). Ready when ``kubectl top nodes`` returns rows. Labs 03 and every lab on kind.
* gateway-api: Gateway API v1.3.0 ``standard-install.yaml`` (bundled: ``harness/crds/``), waited
  ``Established``, then Traefik v3.5.0 from ``addons/gateway-traefik.yaml``. Traefik publishes no
  install manifest of its own (its documented paths are the Helm chart, or an RBAC example bound
  to ``default/traefik-controller``), so its Deployment, least-privilege RBAC and GatewayClass are
  ours, pinned by image tag. Ready when GatewayClass ``mlops-labs`` is ``Accepted=True``. Lab 04.
* custom-metrics: Prometheus v2.53.4 (``addons/custom-metrics-prometheus.yaml``: ours, pinned by
  image tag, scraping annotated pods with upstream's ``kubernetes-pods`` job every 5 s), then
  prometheus-adapter v0.12.0 (``addons/custom-metrics-adapter.yaml``: upstream's
  ``deploy/manifests`` folder with the changes its header lists; the rules are
  ``addons/custom-metrics-rules.yaml``, the sim's too). prometheus-adapter rather than KEDA: the
  HPA the learner writes stays a plain ``autoscaling/v2`` ``type: Pods`` metric, the same object on
  sim and kind, and ``kubectl get hpa`` shows it; KEDA would replace it with a ScaledObject that
  owns a generated HPA. Ready when ``kubectl get --raw /apis/custom.metrics.k8s.io/v1beta2``
  answers. Lab 05.

What landed is checked after every install: the CRDs' ``gateway.networking.k8s.io/bundle-version``
annotation and each Deployment's image tag (and metrics-server's flag). A part whose upstream
install is already in place (a reused cluster) is not re-applied: re-applying ``components.yaml``
would drop the patched flag and restart metrics-server twice.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from harness.cluster.base import NotFound, Obj
from harness.crds import CRD_DIR
from harness.errors import CommandError
from harness.waiting import DEFAULT_TIMEOUTS, Timeouts, WaitTimeout, wait_for

from .api import Api
from .cli import _FROM_SERVER, Kubectl, Logger, NoopLogger
from .diagnostics import Stuck, summary

ADDONS_DIR = Path(__file__).resolve().parent.parent / "addons"
ROOT = ADDONS_DIR.parents[2]
GATEWAY_CLASS = "mlops-labs"
GATEWAY_API_VERSION, METRICS_SERVER_VERSION, TRAEFIK_VERSION = "v1.3.0", "v0.7.2", "v3.5.0"
GATEWAY_API_URL = ("https://github.com/kubernetes-sigs/gateway-api/releases/download/"
                   f"{GATEWAY_API_VERSION}/standard-install.yaml")
METRICS_SERVER_URL = ("https://github.com/kubernetes-sigs/metrics-server/releases/download/"
                      f"{METRICS_SERVER_VERSION}/components.yaml")
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
# The standard channel of Gateway API v1.3.0: what Traefik v3.5's provider watches.
_GW_PLURALS = ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants")
GATEWAY_API_CRDS = tuple(CRD_DIR / f"gateway.networking.k8s.io_{p}.yaml" for p in _GW_PLURALS)
GATEWAY_API_CRD_NAMES = tuple(f"{p}.gateway.networking.k8s.io" for p in _GW_PLURALS)
INSECURE_TLS = "--kubelet-insecure-tls"
# kubernetes-sigs/metrics-server v0.7.2 manifests/components/test/kustomization.yaml (first op)
INSECURE_TLS_PATCH = [{"op": "add", "path": "/spec/template/spec/containers/0/args/-", "value": INSECURE_TLS}]
# kubectl's words when it could not fetch a URL (not an answer of the API server)
_FETCH_FAILED = ("unable to read URL", "dial tcp", "no such host", "i/o timeout", "connection refused",
                 "network is unreachable", "TLS handshake timeout", "Client.Timeout", "certificate")


@dataclass(frozen=True)
class Part:
    """One step of an addon: a pinned upstream URL (or none) and its bundled copy, and what must land."""

    what: str                                  # "Gateway API v1.3.0 CRDs (standard channel)"
    bundled: tuple[Path, ...]                  # applied when ``url`` is None or cannot be fetched
    url: str | None = None
    patches: tuple[tuple[str, str, str, tuple], ...] = ()   # (kind, namespace, name, JSON patch) after ``url``
    crds: tuple[str, ...] = ()                 # CRD names this part installs: waited Established, checked
    bundle_version: str | None = None          # ... their gateway.networking.k8s.io/bundle-version
    deployment: tuple[str, str] | None = None  # (namespace, name) whose first container is checked
    image: str | None = None
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class Addon:
    name: str
    namespace: str
    deployment: str
    parts: tuple[Part, ...]
    answers: tuple[str, ...] = ()   # kubectl args that must exit 0 with output once the addon works
    expect: str | None = None       # ... and print exactly this (None: any non-empty output)

    @property
    def path(self) -> Path:
        """The bundled manifest of the addon's workload (its last part)."""
        return self.parts[-1].bundled[-1]

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(p for part in self.parts for p in part.bundled)


METRICS_SERVER = Addon(
    "metrics-server", "kube-system", "metrics-server",
    parts=(Part(f"metrics-server {METRICS_SERVER_VERSION}", (ADDONS_DIR / "metrics-server.yaml",),
                url=METRICS_SERVER_URL,
                patches=(("deployment", "kube-system", "metrics-server", tuple(INSECURE_TLS_PATCH)),),
                deployment=("kube-system", "metrics-server"),
                image=f"registry.k8s.io/metrics-server/metrics-server:{METRICS_SERVER_VERSION}",
                args=(INSECURE_TLS,)),),
    answers=("top", "nodes", "--no-headers"))
GATEWAY_API = Addon(
    "gateway-api", "mlops-gateway", "traefik",
    parts=(Part(f"Gateway API {GATEWAY_API_VERSION} CRDs (standard channel)", GATEWAY_API_CRDS,
                url=GATEWAY_API_URL, crds=GATEWAY_API_CRD_NAMES, bundle_version=GATEWAY_API_VERSION),
           Part(f"Traefik {TRAEFIK_VERSION}", (ADDONS_DIR / "gateway-traefik.yaml",),
                deployment=("mlops-gateway", "traefik"), image=f"docker.io/library/traefik:{TRAEFIK_VERSION}")),
    answers=("get", "gatewayclass", GATEWAY_CLASS, "-o",
             'jsonpath={.status.conditions[?(@.type=="Accepted")].status}'),
    expect="True")
PROMETHEUS_VERSION, ADAPTER_VERSION = "v2.53.4", "v0.12.0"
CUSTOM_METRICS_WINDOW = "30s"        # <<.Window>> of custom-metrics-rules.yaml: 6 scrapes at 5 s
CUSTOM_METRICS = Addon(
    "custom-metrics", "monitoring", "prometheus-adapter",
    parts=(Part(f"Prometheus {PROMETHEUS_VERSION}", (ADDONS_DIR / "custom-metrics-prometheus.yaml",),
                deployment=("monitoring", "prometheus"), image=f"quay.io/prometheus/prometheus:{PROMETHEUS_VERSION}"),
           Part(f"prometheus-adapter {ADAPTER_VERSION}", (ADDONS_DIR / "custom-metrics-adapter.yaml",),
                deployment=("monitoring", "prometheus-adapter"),
                image=f"registry.k8s.io/prometheus-adapter/prometheus-adapter:{ADAPTER_VERSION}",
                args=("--prometheus-url=http://prometheus.monitoring.svc:9090/",))),
    answers=("get", "--raw", "/apis/custom.metrics.k8s.io/v1beta2"))
ADDONS = {a.name: a for a in (METRICS_SERVER, GATEWAY_API, CUSTOM_METRICS)}


def available(d: Obj) -> bool:
    st = d.get("status") or {}
    return (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
            and st.get("availableReplicas", 0) >= (d.get("spec") or {}).get("replicas", 1)
            and st.get("updatedReplicas", 0) >= (d.get("spec") or {}).get("replicas", 1))


# ---- what landed ---------------------------------------------------------------------------------
def landed(part: Part, api: Api) -> list[str]:
    """What differs from what ``part`` installs ([] when its objects are in place at the pinned version)."""
    problems = []
    for name in part.crds:
        try:
            crd = api.get("CustomResourceDefinition", name, None)
        except NotFound:
            problems.append(f"CRD {name} is missing")
            continue
        got = (crd["metadata"].get("annotations") or {}).get(BUNDLE_VERSION)
        if part.bundle_version and got != part.bundle_version:
            problems.append(f"CRD {name} has {BUNDLE_VERSION} {got or '(none)'}, not {part.bundle_version}")
    if part.deployment:
        ns, name = part.deployment
        try:
            d = api.get("Deployment", name, ns)
        except NotFound:
            return problems + [f"deployment {ns}/{name} is missing"]
        c = ((d.get("spec") or {}).get("template", {}).get("spec", {}).get("containers") or [{}])[0]
        if part.image and c.get("image") != part.image:
            problems.append(f"deployment {ns}/{name} runs image {c.get('image')}, not {part.image}")
        missing = [a for a in part.args if a not in (c.get("args") or [])]
        if missing:
            problems.append(f"deployment {ns}/{name} lacks the args {' '.join(missing)}")
    return problems


def _fetch_failed(output: str) -> bool:
    return not _FROM_SERVER.search(output) and any(s in output for s in _FETCH_FAILED)


def _apply_files(kubectl: Kubectl, files: tuple[Path, ...], what: str) -> None:
    kubectl("apply", "--validate=strict", *[a for p in files for a in ("-f", str(p))], verb=f"install {what}")


def install_part(part: Part, kubectl: Kubectl, api: Api, timeouts: Timeouts, log: Logger) -> str:
    """Install one part; returns where it came from (also logged): upstream, bundled, or already there."""
    if part.url and not landed(part, api):
        source = f"already installed ({part.url})"
    elif part.url:
        res = kubectl("apply", "--validate=strict", "-f", part.url, verb=f"install {part.what}", check=False)
        if res.returncode == 0:
            source = f"upstream {part.url}"
            for kind, ns, name, patch in part.patches:
                kubectl("patch", kind, name, "-n", ns, "--type=json", "-p", json.dumps(list(patch)),
                        verb=f"patch {kind} {ns}/{name} of {part.what}")
        elif _fetch_failed(res.output):
            first = res.output.strip().splitlines()[0] if res.output.strip() else "no output"
            source = (f"bundled {', '.join(str(p.relative_to(ROOT)) for p in part.bundled)}"
                      f" (offline: could not fetch {part.url}: {first})")
            log.warn(f"{part.what}: could not fetch upstream's release manifest {part.url} ({first}); "
                     "installing the bundled copy instead")
            _apply_files(kubectl, part.bundled, part.what)
        else:
            raise CommandError(f"install {part.what}", res.argv, res.returncode, res.output)
    else:
        source = f"bundled {', '.join(p.name for p in part.bundled)}"
        _apply_files(kubectl, part.bundled, part.what)
    if part.crds:
        kubectl("wait", "--for=condition=Established", f"--timeout={int(timeouts.rollout)}s",
                *[f"crd/{n}" for n in part.crds],
                verb=f"wait for the CRDs of {part.what} to be Established", timeout=timeouts.rollout + 10)
    problems = landed(part, api)
    if problems:
        raise Stuck(f"failed to install {part.what} from {source}: what landed differs: {'; '.join(problems)}. "
                    "Another install may manage these objects: remove it, or `make cluster-down` and grade again")
    log.info(f"{part.what}: {source}")
    return source


def install(addon: Addon, kubectl: Kubectl, api: Api, timeouts: Timeouts = DEFAULT_TIMEOUTS,
            log: Logger | None = None) -> dict[str, str]:
    """Install ``addon`` (every part in order) and wait until it works; returns each part's source."""
    log = log or NoopLogger()
    sources = {part.what: install_part(part, kubectl, api, timeouts, log) for part in addon.parts}

    def ready() -> Obj | bool:
        d = api.get("Deployment", addon.deployment, addon.namespace)
        return d if available(d) else False

    try:
        wait_for(ready, f"addon {addon.name} (deployment {addon.namespace}/{addon.deployment}) Available",
                 timeouts.rollout, poll=timeouts.poll)
        if addon.answers:
            def answers() -> str:
                res = kubectl(*addon.answers, verb=f"ask {addon.name}", check=False)
                if res.returncode != 0:
                    raise RuntimeError(res.output)   # kept as the last error, retried
                out = res.stdout.strip()
                if addon.expect is not None and out != addon.expect:
                    raise RuntimeError(f"printed {out!r}, not {addon.expect!r}")
                return out

            wait_for(answers, f"`kubectl {' '.join(addon.answers)}` to answer"
                     + (f" {addon.expect}" if addon.expect else ""), timeouts.rollout,
                     poll=timeouts.poll)
    except WaitTimeout as exc:
        view = _View(api, addon.namespace)
        raise Stuck(f"failed to install addon {addon.name}: {exc}\n{summary(view)}") from exc
    return sources


# ---- the bundled copies, checked like the API server would ----------------------------------------
def bundled_errors(addon: Addon) -> tuple[int, list[str]]:
    """(objects checked, errors) over every object of every bundled file of ``addon``: core kinds
    with :func:`harness.manifests.validate` (the pinned Kubernetes schema, strict), custom kinds
    (GatewayClass) with :func:`harness.crds.validate.validate_custom`; none is skipped."""
    from harness.crds.validate import is_custom, validate_custom
    from harness.manifests import load_dir, validate

    count, errors = 0, []
    for path in addon.files:
        ms = [m for m in load_dir(path.parent.parent, path.parent.name) if m.file.endswith("/" + path.name)]
        core = [m for m in ms if not is_custom(m.obj)]
        errors += validate(core)
        errors += [f"{m.where()}: {m.ref}: {e}" for m in ms if is_custom(m.obj) for e in validate_custom(m.obj)]
        count += len(ms)
    return count, errors


class _View:
    """Just enough of a cluster for :func:`summary` over another namespace."""

    def __init__(self, api: Api, namespace: str):
        self.api, self.namespace = api, namespace

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return self.api.list(kind, namespace or self.namespace)

    def events(self, namespace: str | None = None) -> list[Obj]:
        evs = self.api.list("Event", namespace or self.namespace)
        return sorted(evs, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
