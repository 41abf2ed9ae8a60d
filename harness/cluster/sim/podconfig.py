"""What the kubelet resolves before starting a container: env, envFrom, volumes.

Why: ``CreateContainerConfigError`` (a missing ConfigMap or key) and
``FailedMount`` are lessons of their own. Values come from the store exactly
as the kubelet reads them from the API server; ``$(VAR)`` references are
expanded in env values, command and args as upstream does.

Only configMap, secret, emptyDir (tmpfs) and projected (configMap/secret
sources) volumes are supported; their files are copied *into* the container
(never bind-mounted from the host).
"""
from __future__ import annotations

import base64
import math
import re
from typing import Any

from harness.cluster.base import Obj

from .quantity import milli, parse_quantity


class ConfigError(Exception):
    """Becomes ``CreateContainerConfigError`` with this message."""


class MountError(Exception):
    """Becomes a ``FailedMount`` event; the container stays ``ContainerCreating``."""


def _source(store, kind: str, ns: str, name: str) -> dict[str, str] | None:
    obj = store.try_get(kind, ns, name)
    if obj is None:
        return None
    if kind == "Secret":
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    out = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        out[k] = base64.b64decode(v).decode("utf-8", "replace")
    return out


_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(s: str, env: dict[str, str]) -> str:
    return _REF.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), s)


def _field(pod: Obj, path: str) -> str:
    m = re.match(r"metadata\.(labels|annotations)\['(.+)'\]$", path)
    if m:
        return (pod["metadata"].get(m.group(1)) or {}).get(m.group(2), "")
    st = pod.get("status") or {}
    return str({"metadata.name": pod["metadata"]["name"], "metadata.namespace": pod["metadata"].get("namespace"),
                "metadata.uid": pod["metadata"].get("uid"), "spec.nodeName": pod["spec"].get("nodeName"),
                "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default"),
                "status.hostIP": st.get("hostIP"), "status.podIP": st.get("podIP"),
                "status.podIPs": st.get("podIP")}.get(path, ""))


def _resource(container: dict[str, Any], ref: dict[str, Any]) -> str:
    section, _, res = ref["resource"].partition(".")
    value = ((container.get("resources") or {}).get(section) or {}).get(res)
    if value is None:
        value = "4" if res == "cpu" else str(8 * 2 ** 30)   # node allocatable, as upstream falls back to
    divisor = parse_quantity(ref.get("divisor", "1"))
    if res == "cpu":
        return str(max(1, math.ceil(milli(value) / 1000 / float(divisor))))
    return str(math.ceil(parse_quantity(value) / divisor))


def resolve_env(store, pod: Obj, container: dict[str, Any]) -> dict[str, str]:
    ns = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    for src in container.get("envFrom") or []:
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            if key not in src:
                continue
            ref = src[key]
            data = _source(store, kind, ns, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
            for k, v in data.items():
                env[src.get("prefix", "") + k] = v
    for e in container.get("env") or []:
        if "valueFrom" not in e:
            env[e["name"]] = expand(str(e.get("value", "")), env)
            continue
        vf = e["valueFrom"]
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            if key in vf:
                ref = vf[key]
                data = _source(store, kind, ns, ref["name"])
                if data is None:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f'{kind.lower()} "{ref["name"]}" not found')
                if ref["key"] not in data:
                    if ref.get("optional"):
                        break
                    raise ConfigError(f"couldn't find key {ref['key']} in {kind} {ns}/{ref['name']}")
                env[e["name"]] = data[ref["key"]]
                break
        else:
            if "fieldRef" in vf:
                env[e["name"]] = _field(pod, vf["fieldRef"]["fieldPath"])
            elif "resourceFieldRef" in vf:
                env[e["name"]] = _resource(container, vf["resourceFieldRef"])
    return env


def _items(data: dict[str, str], items: list[dict[str, Any]] | None) -> dict[str, str]:
    if not items:
        return dict(data)
    return {it.get("path", it["key"]): data[it["key"]] for it in items if it["key"] in data}


def resolve_volumes(store, pod: Obj, container: dict[str, Any]) -> tuple[dict[str, bytes], list[str]]:
    """Files to copy into the container and tmpfs mount points, for its volumeMounts."""
    ns = pod["metadata"]["namespace"]
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    files: dict[str, bytes] = {}
    tmpfs: list[str] = []
    for m in container.get("volumeMounts") or []:
        v = volumes.get(m["name"])
        if v is None:
            raise MountError(f'volume "{m["name"]}" not found')
        path = m["mountPath"].rstrip("/")
        sources: list[tuple[str, dict[str, Any]]] = []
        if "emptyDir" in v:
            tmpfs.append(path)
            continue
        if "configMap" in v:
            sources.append(("ConfigMap", v["configMap"]))
        elif "secret" in v:
            sources.append(("Secret", {**v["secret"], "name": v["secret"].get("secretName")}))
        elif "projected" in v:
            for s in v["projected"].get("sources") or []:
                if "configMap" in s:
                    sources.append(("ConfigMap", s["configMap"]))
                elif "secret" in s:
                    sources.append(("Secret", s["secret"]))
        else:
            kinds = ", ".join(k for k in v if k != "name")
            raise MountError(f'volume "{m["name"]}": volume type {kinds} is not supported by the sim')
        for kind, ref in sources:
            data = _source(store, kind, ns, ref["name"])
            if data is None:
                if ref.get("optional"):
                    continue
                raise MountError(f'MountVolume.SetUp failed for volume "{m["name"]}" : '
                                 f'{kind.lower()} "{ref["name"]}" not found')
            for rel, content in _items(data, ref.get("items")).items():
                if m.get("subPath"):
                    if rel == m["subPath"]:
                        files[path] = content.encode()
                    continue
                files[f"{path}/{rel}"] = content.encode()
    return files, tmpfs
