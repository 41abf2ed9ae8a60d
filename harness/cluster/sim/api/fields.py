"""Field selectors (``involvedObject.name=web,type!=Normal``), with the fields each kind supports upstream.

Why: ``kubectl describe`` finds an object's events with ``involvedObject.*`` selectors,
``rollout status``/``wait`` watch ``metadata.name=web``, and an unsupported field is a 400
(``field label not supported: spec.foo``), as kube-apiserver answers.
"""
from __future__ import annotations

from typing import Any, Callable

from harness.cluster.base import Obj

_COMMON = {"metadata.name", "metadata.namespace"}
SUPPORTED: dict[str, set[str]] = {
    "Pod": {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"},
    "Event": {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
              "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
              "reason", "reportingComponent", "source", "type"},
    "Node": {"spec.unschedulable"},
    "Namespace": {"status.phase"},
    "Secret": {"type"},
    "ReplicaSet": {"status.replicas"},
    "Service": {"spec.clusterIP", "spec.type"},
}


class FieldSelectorError(ValueError):
    pass


def _value(obj: Obj, field: str) -> str:
    if field == "source":
        field = "source.component"
    node: Any = obj
    for part in field.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    if node is None and field == "spec.unschedulable":
        return "false"
    if isinstance(node, list):   # status.podIPs
        return ",".join(str(x.get("ip", x)) if isinstance(x, dict) else str(x) for x in node)
    return "" if node is None else str(node)


def parse(selector: str | None, kind: str) -> Callable[[Obj], bool]:
    if not selector or not selector.strip():
        return lambda o: True
    terms = []
    for part in selector.split(","):
        part = part.strip()
        if not part:
            continue
        for op in ("!=", "==", "="):
            if op in part:
                field, value = part.split(op, 1)
                break
        else:
            raise FieldSelectorError(f'invalid selector: \'{selector}\'; can\'t understand \'{part}\'')
        field = field.strip()
        if field not in _COMMON and field not in SUPPORTED.get(kind, set()):
            raise FieldSelectorError(f'field label not supported: {field}')
        terms.append((field, op != "!=", value.strip()))

    def match(o: Obj) -> bool:
        return all((_value(o, f) == v) == eq for f, eq, v in terms)
    return match
