"""PATCH bodies: JSON patch, JSON merge patch, strategic merge patch (merge keys from the schemas), apply.

Why: ``kubectl apply`` (client-side) sends a strategic merge patch with ``$setElementOrder``
directives; ``scale`` and ``set image`` send strategic merges; ``rollout undo`` a JSON patch;
``--server-side`` an ``application/apply-patch+yaml`` body. Strategic merge follows
``k8s.io/apimachinery/pkg/util/strategicpatch``: lists whose schema says
``x-kubernetes-patch-strategy: merge`` are merged by ``x-kubernetes-patch-merge-key`` (or
unioned, for lists of scalars); ``$patch: replace|delete|merge``, ``$retainKeys``,
``$setElementOrder/<field>`` and ``$deleteFromPrimitiveList/<field>`` are honoured.

Server-side apply is simplified (FIDELITY.md, "The API server"): the applied configuration is
strategic-merged onto the live object. There are no managedFields, no conflicts (``force`` is
ignored), and a field dropped from the configuration is not removed from the object.
"""
from __future__ import annotations

import copy
from typing import Any

from ..patch import json_patch, merge_patch
from . import schemas

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC, APPLY)


class PatchError(ValueError):
    """A patch that cannot be applied (400 BadRequest upstream)."""


def drop_nulls(node: Any) -> Any:
    """What Go's decoding does to ``null`` fields of a typed object: they come back absent.

    ``kubectl rollout undo`` patches the template with ``creationTimestamp: null``; without this
    the template would differ from the old ReplicaSet's and a new one would be created."""
    if isinstance(node, dict):
        return {k: drop_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [drop_nulls(v) for v in node]
    return node


def _strategy(field_schema: dict | None) -> tuple[str, str | None]:
    if not field_schema:
        return "", None
    strategy = field_schema.get("x-kubernetes-patch-strategy") or ""
    key = field_schema.get("x-kubernetes-patch-merge-key")
    return strategy, key


def strategic_merge(original: Any, patch: Any, schema: dict | None) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(original, dict):
        original = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    out = copy.deepcopy(original)
    orders = {k.split("/", 1)[1]: v for k, v in patch.items() if k.startswith("$setElementOrder/")}
    for k, v in patch.items():
        if k.startswith("$deleteFromPrimitiveList/"):
            f = k.split("/", 1)[1]
            if isinstance(out.get(f), list):
                out[f] = [x for x in out[f] if x not in v]
            continue
        if k.startswith("$") :
            continue
        sub = schemas.child(schema or {}, k) if schema is not None else None
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list):
            out[k] = _merge_list(out.get(k), v, sub)
        elif isinstance(v, dict):
            merged = strategic_merge(out.get(k), v, sub)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    for f, order in orders.items():
        if isinstance(out.get(f), list):
            out[f] = _reorder(out[f], order, _strategy(schemas.child(schema or {}, f) if schema else None)[1])
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(original: Any, patch: list, field_schema: dict | None) -> list:
    strategy, key = _strategy(field_schema)
    if "merge" not in strategy.split(","):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return drop_directives(copy.deepcopy(patch))
    base = list(original) if isinstance(original, list) else []
    if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
        return [drop_directives(x) for x in patch if not (isinstance(x, dict) and x.get("$patch") == "replace")]
    if key is None:   # a list of scalars merged as a set (finalizers)
        return base + [x for x in patch if x not in base]
    item_schema = schemas.items(field_schema or {})
    index = {x.get(key): i for i, x in enumerate(base) if isinstance(x, dict)}
    out = list(base)
    deleted: set = set()
    for x in patch:
        if not isinstance(x, dict):
            continue
        k = x.get(key)
        if x.get("$patch") == "delete":
            deleted.add(k)
            continue
        if k in index:
            out[index[k]] = strategic_merge(out[index[k]], x, item_schema)
        else:
            index[k] = len(out)
            out.append(drop_directives(copy.deepcopy(x)))
    return [x for x in out if not (isinstance(x, dict) and x.get(key) in deleted)]


def _reorder(items: list, order: list, key: str | None) -> list:
    def ident(x: Any) -> Any:
        return x.get(key) if key and isinstance(x, dict) else x
    want = [ident(o) for o in order]
    pos = {v: i for i, v in enumerate(want)}
    indexed = list(enumerate(items))
    indexed.sort(key=lambda p: (pos.get(ident(p[1]), len(want)), p[0]))
    return [x for _, x in indexed]


def drop_directives(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: drop_directives(v) for k, v in node.items() if not k.startswith("$")}
    if isinstance(node, list):
        return [drop_directives(v) for v in node]
    return node


def apply_patch(current: dict, patch_type: str, body: Any, schema: dict | None) -> dict:
    """``current`` with ``body`` applied; ``schema`` is the kind's definition (None for custom resources)."""
    try:
        if patch_type == JSON_PATCH:
            if not isinstance(body, list):
                raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
            return json_patch(current, body)
        if not isinstance(body, dict):
            raise PatchError("json: cannot unmarshal array into Go value of type map[string]interface {}")
        if patch_type == MERGE_PATCH:
            return merge_patch(current, body)
        if patch_type in (STRATEGIC, APPLY):
            return strategic_merge(current, body, schema if schema is not None else {})
    except (KeyError, TypeError, AttributeError) as exc:
        raise PatchError(f"unable to apply the patch: {exc}") from exc
    raise PatchError(f"unsupported patch type {patch_type!r}")
