"""Diagnostics for a real cluster: what a failed check or a stuck wait needs to explain itself.

``collect`` writes, under a directory: events sorted by time, ``kubectl get
pods -o wide``, ``kubectl describe`` of every failing pod, container logs (the
current and the ``--previous`` instance), and nodes. Each part is written
independently: one failing part is noted in ``errors.txt``, never raised, so
diagnostics cannot hide the failure that asked for them.

``summary`` is the short form put into an error when a wait gets stuck
(k8s e2e ``DumpAllNamespaceInfo``, reduced to what fits in a message).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from harness.cluster.base import ApiError, Obj


class Stuck(RuntimeError):
    """A wait on the cluster failed; the message carries events and pod states."""


def _event_line(e: Obj) -> str:
    io = e.get("involvedObject") or {}
    ts = e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or ""
    return (f'{ts}  {e.get("type", ""):<7} {e.get("reason", ""):<20} {io.get("kind", "")}/{io.get("name", "")}'
            f'  (x{e.get("count") or 1}) {e.get("message", "")}')


def failing(pod: Obj) -> bool:
    st = pod.get("status") or {}
    if st.get("phase") == "Succeeded":
        return False
    if st.get("phase") != "Running":
        return True
    return any(not c.get("ready") or c.get("restartCount", 0) > 0 for c in st.get("containerStatuses") or [])


def pod_line(pod: Obj) -> str:
    st = pod.get("status") or {}
    parts = [f'pod/{pod["metadata"]["name"]} phase={st.get("phase")} node={pod.get("spec", {}).get("nodeName")}']
    for c in st.get("containerStatuses") or []:
        state = c.get("state") or {}
        why = next(((k, v.get("reason", ""), v.get("message", "")) for k, v in state.items()), ("?", "", ""))
        parts.append(f'{c["name"]}: ready={c.get("ready")} restarts={c.get("restartCount", 0)} '
                     f'{why[0]} {why[1]} {why[2]}'.rstrip())
    for cond in st.get("conditions") or []:
        if cond.get("status") != "True" and cond.get("message"):
            parts.append(f'{cond["type"]}: {cond["message"]}')
    return "; ".join(parts)


def summary(cluster: Any, namespace: str | None = None, events: int = 15) -> str:
    ns = namespace or cluster.namespace
    lines: list[str] = []
    try:
        lines += [f"pods in {ns} that are not ready:"] + ["  " + pod_line(p) for p in cluster.list("Pod", ns)
                                                           if failing(p)]
    except Exception as exc:  # noqa: BLE001 - a summary must not raise
        lines.append(f"(could not list pods: {exc})")
    try:
        evs = cluster.events(ns)[-events:]
        lines += [f"last {len(evs)} events in {ns}:"] + ["  " + _event_line(e) for e in evs]
    except Exception as exc:  # noqa: BLE001
        lines.append(f"(could not list events: {exc})")
    return "\n".join(lines)


def collect(cluster: Any, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "logs").mkdir(exist_ok=True)
    errors: list[str] = []
    ns = cluster.namespace
    kubectl = cluster.kubectl

    def part(name: str, fn: Callable[[], str]) -> None:
        try:
            (directory / name).write_text(fn())
        except Exception as exc:  # noqa: BLE001 - noted, never raised
            errors.append(f"{name}: {exc}")

    part("events.txt", lambda: "\n".join(_event_line(e) for e in cluster.events(ns)) + "\n")
    part("pods-wide.txt", lambda: kubectl("get", "pods", "-o", "wide", "-n", ns, verb="list pods").stdout)
    pods: list[Obj] = []
    try:
        pods = cluster.list("Pod", ns)
    except ApiError as exc:
        errors.append(f"pods: {exc}")
    for kind, fname in (("Pod", "pods.yaml"), ("Deployment", "deployments.yaml"),
                        ("ReplicaSet", "replicasets.yaml"), ("Service", "services.yaml")):
        part(fname, lambda kind=kind: yaml.safe_dump_all(cluster.list(kind, ns), sort_keys=False))
    for pod in pods:
        name = pod["metadata"]["name"]
        if failing(pod):
            part(f"describe-{name}.txt",
                 lambda name=name: kubectl("describe", "pod", name, "-n", ns, verb=f"describe pod {name}").stdout)
        for c in (pod.get("spec") or {}).get("containers") or []:
            for prev in (False, True):
                try:
                    text = cluster.logs(name, c["name"], previous=prev, tail=200)
                except ApiError:
                    continue   # no previous instance, or still waiting to start
                except Exception as exc:  # noqa: BLE001
                    errors.append(f"logs {name}/{c['name']}: {exc}")
                    continue
                suffix = ".previous" if prev else ""
                (directory / "logs" / f"{name}_{c['name']}{suffix}.log").write_text(text)
    part("nodes-wide.txt", lambda: kubectl("get", "nodes", "-o", "wide", verb="list nodes").stdout)
    part("nodes.yaml", lambda: yaml.safe_dump_all(cluster.list("Node"), sort_keys=False))
    extra = getattr(cluster, "diagnostics_extra", None)
    if extra is not None:
        part(f"{cluster.name}.yaml", lambda: yaml.safe_dump(extra(), sort_keys=False))
    if errors:
        (directory / "errors.txt").write_text("\n".join(errors) + "\n")
