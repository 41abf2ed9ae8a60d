"""Cluster addons, installed from version-pinned manifests kept in the repo.

Nothing is fetched at run time but the addons' images: each addon is a manifest
under ``harness/cluster/addons/`` with its upstream version in its header, plus
the CRDs it needs (applied first and waited ``Established``, because objects of
a new kind are refused until then). An addon is ready when its Deployment is
Available *and* its own readiness probe of the API answers:

* metrics-server: ``kubectl top nodes`` returns rows (a first scrape, about
  15 s after the pod is Ready). Labs 03 and every lab on kind.
* gateway-api: the Gateway API v1.3.0 standard CRDs (``harness/crds/``) and
  Traefik v3.5.0 as the implementation; ready when GatewayClass ``mlops-labs``
  is ``Accepted=True``, i.e. Traefik's controller runs and owns the class.
  Lab 04 only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.cluster.base import Obj
from harness.crds import CRD_DIR
from harness.waiting import DEFAULT_TIMEOUTS, Timeouts, WaitTimeout, wait_for

from .api import Api
from .cli import Kubectl
from .diagnostics import Stuck, summary

ADDONS_DIR = Path(__file__).resolve().parent.parent / "addons"
GATEWAY_CLASS = "mlops-labs"
# The standard channel of Gateway API v1.3.0: what Traefik v3.5's provider watches.
GATEWAY_API_CRDS = tuple(CRD_DIR / f"gateway.networking.k8s.io_{p}.yaml"
                         for p in ("gatewayclasses", "gateways", "httproutes", "grpcroutes", "referencegrants"))


@dataclass(frozen=True)
class Addon:
    name: str
    manifest: str           # file name under ADDONS_DIR
    namespace: str
    deployment: str
    answers: tuple[str, ...] = ()   # kubectl args that must exit 0 with output once the addon works
    expect: str | None = None       # ... and print exactly this (None: any non-empty output)
    crds: tuple[Path, ...] = ()     # applied and waited Established before the manifest

    @property
    def path(self) -> Path:
        return ADDONS_DIR / self.manifest


METRICS_SERVER = Addon("metrics-server", "metrics-server.yaml", "kube-system", "metrics-server",
                       answers=("top", "nodes", "--no-headers"))
GATEWAY_API = Addon("gateway-api", "gateway-traefik.yaml", "mlops-gateway", "traefik",
                    answers=("get", "gatewayclass", GATEWAY_CLASS, "-o",
                             'jsonpath={.status.conditions[?(@.type=="Accepted")].status}'),
                    expect="True", crds=GATEWAY_API_CRDS)
ADDONS = {a.name: a for a in (METRICS_SERVER, GATEWAY_API)}


def available(d: Obj) -> bool:
    st = d.get("status") or {}
    return (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
            and st.get("availableReplicas", 0) >= (d.get("spec") or {}).get("replicas", 1)
            and st.get("updatedReplicas", 0) >= (d.get("spec") or {}).get("replicas", 1))


def install(addon: Addon, kubectl: Kubectl, api: Api, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> None:
    if addon.crds:
        files = [a for p in addon.crds for a in ("-f", str(p))]
        kubectl("apply", "--validate=strict", *files, verb=f"install the CRDs of addon {addon.name}")
        kubectl("wait", "--for=condition=Established", f"--timeout={int(timeouts.rollout)}s", *files,
                verb=f"wait for the CRDs of addon {addon.name} to be Established", timeout=timeouts.rollout + 10)
    kubectl("apply", "--validate=strict", "-f", str(addon.path), verb=f"install addon {addon.name}")

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


class _View:
    """Just enough of a cluster for :func:`summary` over another namespace."""

    def __init__(self, api: Api, namespace: str):
        self.api, self.namespace = api, namespace

    def list(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return self.api.list(kind, namespace or self.namespace)

    def events(self, namespace: str | None = None) -> list[Obj]:
        evs = self.api.list("Event", namespace or self.namespace)
        return sorted(evs, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
