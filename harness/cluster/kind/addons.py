"""Cluster addons, installed from version-pinned manifests kept in the repo.

Nothing is fetched at run time: each addon is a manifest under
``harness/cluster/addons/`` with its upstream version in its header. An addon
is ready when its Deployment is Available *and* its own readiness probe of
the API answers (for metrics-server: ``kubectl top nodes`` returns rows, which
needs a first scrape, about 15 s after the pod is Ready).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.cluster.base import Obj
from harness.waiting import DEFAULT_TIMEOUTS, Timeouts, WaitTimeout, wait_for

from .api import Api
from .cli import Kubectl
from .diagnostics import Stuck, summary

ADDONS_DIR = Path(__file__).resolve().parent.parent / "addons"


@dataclass(frozen=True)
class Addon:
    name: str
    manifest: str           # file name under ADDONS_DIR
    namespace: str
    deployment: str
    answers: tuple[str, ...] = ()   # kubectl args that must exit 0 with output once the addon works

    @property
    def path(self) -> Path:
        return ADDONS_DIR / self.manifest


METRICS_SERVER = Addon("metrics-server", "metrics-server.yaml", "kube-system", "metrics-server",
                       answers=("top", "nodes", "--no-headers"))
ADDONS = {a.name: a for a in (METRICS_SERVER,)}


def available(d: Obj) -> bool:
    st = d.get("status") or {}
    return (st.get("observedGeneration", 0) >= d["metadata"].get("generation", 0)
            and st.get("availableReplicas", 0) >= (d.get("spec") or {}).get("replicas", 1)
            and st.get("updatedReplicas", 0) >= (d.get("spec") or {}).get("replicas", 1))


def install(addon: Addon, kubectl: Kubectl, api: Api, timeouts: Timeouts = DEFAULT_TIMEOUTS) -> None:
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
                return res.stdout.strip()

            wait_for(answers, f"`kubectl {' '.join(addon.answers)}` to answer", timeouts.rollout,
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
