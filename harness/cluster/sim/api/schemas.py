"""The v1.32 OpenAPI schemas, from the pinned ``kubernetes-validate`` package, and what the server does with them.

Why: kube-apiserver publishes ``/openapi/v3`` (kubectl needs it to ``apply``), decodes
bodies strictly against the types (``fieldValidation=Strict``: ``unknown field
"spec.replicass"``) and takes strategic-merge-patch merge keys from the Go struct tags,
which the schemas carry as ``x-kubernetes-patch-merge-key``/``-strategy``. The package
ships the same definitions as JSON Schema (``$defs``, nullable types as ``["string",
"null"]``, int-or-string as ``oneOf``); :func:`openapi_schema` turns one back into the
OpenAPI 3.0 shape upstream serves (``allOf: [{$ref}]`` when a reference has siblings,
``format: int-or-string``), which kubectl's parser (gnostic) requires.
"""
from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any, Iterator

import kubernetes_validate

K8S_VERSION = "1.32.0"
_DIR = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / f"v{K8S_VERSION}-local-strict"
_REF = "#/$defs/"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@functools.lru_cache(maxsize=1)
def definitions() -> dict[str, dict]:
    return json.loads((_DIR / "_definitions.json").read_text())["$defs"]


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def resolve(schema: dict | None) -> dict:
    """Follow ``$ref`` (and a one-element ``allOf``) to the schema it names."""
    seen = 0
    while schema and seen < 20:
        seen += 1
        if "$ref" in schema:
            schema = definitions().get(_ref_name(schema["$ref"]), {})
        elif len(schema.get("allOf") or []) == 1:
            schema = schema["allOf"][0]
        else:
            break
    return schema or {}


def child(schema: dict, key: str) -> dict | None:
    """The schema of property ``key`` (or of the map's values); None when the field is unknown."""
    s = resolve(schema)
    props = s.get("properties")
    if props and key in props:
        return props[key]
    extra = s.get("additionalProperties")
    if isinstance(extra, dict):
        return extra
    if s.get("x-kubernetes-preserve-unknown-fields") or (not props and extra is not False):
        return {}
    return None


def items(schema: dict) -> dict:
    return resolve(schema).get("items") or {}


def is_map_of_fields(schema: dict) -> bool:
    return bool(resolve(schema).get("properties"))


def unknown_fields(obj: Any, schema: dict, path: str = "") -> Iterator[str]:
    """Dotted paths (``spec.template.spec.containers[0].imagee``) of fields the strict schema does not define."""
    s = resolve(schema)
    if isinstance(obj, dict):
        props = s.get("properties")
        if props is None:
            extra = s.get("additionalProperties")
            if isinstance(extra, dict):
                for k, v in obj.items():
                    yield from unknown_fields(v, extra, f"{path}[{k}]" if path else k)
            return
        for k, v in obj.items():
            p = f"{path}.{k}" if path else k
            if k in props:
                yield from unknown_fields(v, props[k], p)
            elif s.get("additionalProperties") is False:
                yield p
    elif isinstance(obj, list):
        sub = s.get("items")
        if isinstance(sub, dict):
            for i, v in enumerate(obj):
                yield from unknown_fields(v, sub, f"{path}[{i}]")


def kind_schema(schema_id: str) -> dict | None:
    return definitions().get(schema_id)


# ---- OpenAPI v3 ---------------------------------------------------------------------------------
def openapi_schema(node: Any) -> Any:
    """One JSON-Schema definition in the OpenAPI 3.0 form kube-apiserver serves."""
    if isinstance(node, list):
        return [openapi_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    one = node.get("oneOf")
    if one and {t for o in one for t in _types(o)} >= {"string", "integer"}:
        out = {k: v for k, v in node.items() if k != "oneOf"}
        out.update(type="string", format="int-or-string")
        return out
    if one and {t for o in one for t in _types(o)} >= {"string", "number"}:
        return {**{k: v for k, v in node.items() if k != "oneOf"}, "type": "string"}
    out: dict[str, Any] = {}
    for k, v in node.items():
        if k in ("$schema", "$id"):
            continue
        if k == "type" and isinstance(v, list):
            real = [t for t in v if t != "null"]
            out[k] = real[0] if real else "object"
        elif k == "$ref":
            out[k] = "#/components/schemas/" + _ref_name(v)
        elif k in ("properties", "patternProperties"):
            out[k] = {p: openapi_schema(s) for p, s in v.items()}
        elif k == "additionalProperties" and v is False:
            continue   # upstream's documents leave it out: strictness is the server's business
        else:
            out[k] = openapi_schema(v)
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}]
    return out


def _types(s: dict) -> list[str]:
    t = s.get("type")
    return t if isinstance(t, list) else [t] if t else []


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref" and isinstance(v, str):
                yield _ref_name(v)
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def closure(names: list[str]) -> dict[str, dict]:
    """The named definitions and every definition they reference, in OpenAPI form."""
    out: dict[str, dict] = {}
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in out or n not in definitions():
            continue
        out[n] = openapi_schema(definitions()[n])
        todo.extend(_refs(definitions()[n]))
    return out


def crd_schema(crd, version: str) -> dict:
    """A CRD version's ``openAPIV3Schema`` with the GVK and ObjectMeta, as apiextensions publishes it."""
    s = copy.deepcopy(crd.versions[version])
    s.setdefault("properties", {})["metadata"] = {"$ref": f"#/components/schemas/{OBJECT_META}"}
    s["x-kubernetes-group-version-kind"] = [{"group": crd.group, "kind": crd.kind, "version": version}]
    return s
