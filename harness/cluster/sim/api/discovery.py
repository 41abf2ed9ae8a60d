"""API discovery and OpenAPI documents, built from :mod:`.resources` and :mod:`.schemas`.

Why: kubectl maps ``get deploy`` to a URL through discovery. kubectl 1.30+ asks ``/api`` and
``/apis`` for *aggregated* discovery and recognises it only by the response's Content-Type
(``application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList``); 1.27-1.29 ask for
v2beta1; older clients read the legacy per-group-version lists. All three are served, chosen by
the Accept header as kube-apiserver does. ``kubectl apply`` needs ``/openapi/v3``: an index,
then one document per group-version whose PATCH operations carry
``x-kubernetes-group-version-kind`` and the ``fieldValidation`` parameter (that is how kubectl
decides the server validates fields itself).
"""
from __future__ import annotations

import functools
import hashlib
import json

from . import schemas
from .resources import Resource, all_resources, group_versions, preferred_versions

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"

_SUB_KIND = {"scale": ("autoscaling", "v1", "Scale"), "eviction": ("policy", "v1", "Eviction"),
             "binding": ("", "v1", "Binding"), "exec": ("", "v1", "PodExecOptions"),
             "portforward": ("", "v1", "PodPortForwardOptions"), "proxy": ("", "v1", "ServiceProxyOptions"),
             "finalize": ("", "v1", "Namespace")}
_SUB_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"], "log": ["get"],
              "exec": ["create", "get"], "portforward": ["create", "get"], "binding": ["create"],
              "eviction": ["create"], "proxy": ["create", "delete", "get", "patch", "update"], "finalize": ["update"]}


def aggregated_version(accept: str) -> str | None:
    """``v2`` or ``v2beta1`` when the Accept header asks for aggregated discovery (first match wins)."""
    for part in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList" \
                and params.get("v") in ("v2", "v2beta1"):
            return params["v"]
    return None


def _sub_kind(r: Resource, sub: str) -> dict:
    g, v, k = _SUB_KIND.get(sub, (r.group, r.version, r.kind))
    if sub == "proxy" and r.kind == "Node":
        k = "NodeProxyOptions"
    return {"group": g, "version": v, "kind": k}


def _aggregated_resource(r: Resource) -> dict:
    out = {"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
           "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
           "verbs": list(r.verbs)}
    if r.short:
        out["shortNames"] = list(r.short)
    if r.categories:
        out["categories"] = list(r.categories)
    if r.subresources:
        out["subresources"] = [{"subresource": s, "responseKind": _sub_kind(r, s), "verbs": _SUB_VERBS[s]}
                               for s in r.subresources]
    return out


def aggregated(core: bool, version: str) -> dict:
    """``/api`` (``core``) or ``/apis`` as an APIGroupDiscoveryList."""
    items = []
    for group, versions in preferred_versions().items():
        if (group == "") != core:
            continue
        items.append({"metadata": {"name": group, "creationTimestamp": None},
                      "versions": [{"version": v, "freshness": "Current",
                                    "resources": [_aggregated_resource(r) for r in all_resources()
                                                  if (r.group, r.version) == (group, v)]} for v in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
            "metadata": {}, "items": items}


def api_versions(server: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]}


def _group(group: str, versions: list[str]) -> dict:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": gvs, "preferredVersion": gvs[0]}


def api_group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group(g, vs) for g, vs in preferred_versions().items() if g]}


def api_group(group: str) -> dict | None:
    vs = preferred_versions().get(group)
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, vs)} if vs and group else None


def resource_list(group: str, version: str) -> dict | None:
    rs = [r for r in all_resources() if (r.group, r.version) == (group, version)]
    if not rs:
        return None
    out = []
    for r in rs:
        row = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
               "verbs": list(r.verbs)}
        if r.short:
            row["shortNames"] = list(r.short)
        if r.categories:
            row["categories"] = list(r.categories)
        out.append(row)
        for s in r.subresources:
            k = _sub_kind(r, s)
            out.append({"name": f"{r.plural}/{s}", "singularName": "", "namespaced": r.namespaced,
                        **({"group": k["group"], "version": k["version"]} if k["group"] != r.group else {}),
                        "kind": k["kind"], "verbs": _SUB_VERBS[s]})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
            "resources": out}


# ---- OpenAPI v3 -------------------------------------------------------------------------------------
def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


@functools.lru_cache(maxsize=None)
def openapi_document(group: str, version: str) -> bytes | None:
    rs = [r for r in all_resources() if (r.group, r.version) == (group, version)]
    if not rs:
        return None
    comps: dict[str, dict] = {}
    paths: dict[str, dict] = {}
    params = [{"name": n, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
              for n in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")]
    for r in rs:
        if "crd" in r.extra:
            name = ".".join(reversed(r.group.split("."))) + f".{version}.{r.kind}"   # io.k8s.networking.gateway.v1.HTTPRoute
            comps[name] = schemas.crd_schema(r.extra["crd"], version)
            comps.update(schemas.closure([schemas.OBJECT_META]))
        elif schemas.kind_schema(r.schema_id) is not None:
            name = r.schema_id
            comps.update(schemas.closure([name]))
        else:
            continue
        gvk = {"group": r.group, "version": r.version, "kind": r.kind}
        ref = {"$ref": f"#/components/schemas/{name}"}
        ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        base = f"/{_gv_path(group, version)}" + ("/namespaces/{namespace}" if r.namespaced else "") + f"/{r.plural}"
        action = lambda verb: {"x-kubernetes-action": verb, "x-kubernetes-group-version-kind": gvk}  # noqa: E731
        body = {"content": {t: {"schema": ref} for t in ("application/json", "application/yaml")}}
        patch_body = {"content": {t: {"schema": {"type": "object"}} for t in (
            "application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json",
            "application/apply-patch+yaml")}}
        paths[base] = {"get": {**action("list"), "responses": ok},
                       "post": {**action("post"), "requestBody": body, "responses": ok, "parameters": params}}
        paths[base + "/{name}"] = {
            "get": {**action("get"), "responses": ok},
            "put": {**action("put"), "requestBody": body, "responses": ok, "parameters": params},
            "patch": {**action("patch"), "requestBody": patch_body, "responses": ok, "parameters": params},
            "delete": {**action("delete"), "responses": ok}}
    doc = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{schemas.K8S_VERSION}"},
           "paths": paths, "components": {"schemas": comps}}
    return json.dumps(doc).encode()


@functools.lru_cache(maxsize=1)
def openapi_index() -> dict:
    out = {}
    for group, version in group_versions():
        doc = openapi_document(group, version)
        if doc is not None:
            h = hashlib.sha512(doc).hexdigest()[:128].upper()
            out[_gv_path(group, version)] = {"serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={h}"}
    return {"paths": out}
