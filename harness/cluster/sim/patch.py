"""``kubectl patch`` semantics: JSON merge (RFC 7386), strategic merge, JSON patch (RFC 6902).

Why: graders and learners patch live objects (scale, image bump, node status
for fake GPUs). Strategic merge is approximated: lists of objects that carry a
``name`` (containers, env, ports, volumes) are merged by name, other lists are
replaced; ``$patch``/``$retainKeys`` directives are not supported.
"""
from __future__ import annotations

import copy
from typing import Any

from harness.cluster.base import Invalid


def merge_patch(target: Any, patch: Any, *, strategic: bool = False) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif strategic and isinstance(v, list) and isinstance(out.get(k), list) and v and all(
                isinstance(x, dict) and "name" in x for x in v + out[k]):
            merged = {x["name"]: x for x in out[k]}
            order = [x["name"] for x in out[k]]
            for x in v:
                if x["name"] in merged:
                    merged[x["name"]] = merge_patch(merged[x["name"]], x, strategic=True)
                else:
                    merged[x["name"]] = x
                    order.append(x["name"])
            out[k] = [merged[n] for n in order]
        else:
            out[k] = merge_patch(out.get(k), v, strategic=strategic)
    return out


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise Invalid(f"invalid JSON pointer {pointer!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _walk(doc: Any, tokens: list[str]) -> tuple[Any, str]:
    for t in tokens[:-1]:
        doc = doc[int(t)] if isinstance(doc, list) else doc[t]
    return doc, tokens[-1]


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        try:
            kind, path = op["op"], _tokens(op["path"])
            if kind in ("add", "replace"):
                parent, last = _walk(doc, path)
                if isinstance(parent, list):
                    idx = len(parent) if last == "-" else int(last)
                    if kind == "add":
                        parent.insert(idx, copy.deepcopy(op["value"]))
                    else:
                        parent[idx] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and last not in parent:
                        raise KeyError(last)
                    parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                parent, last = _walk(doc, path)
                del parent[int(last) if isinstance(parent, list) else last]
            elif kind == "test":
                parent, last = _walk(doc, path)
                if (parent[int(last)] if isinstance(parent, list) else parent[last]) != op["value"]:
                    raise Invalid(f"test operation failed at {op['path']}")
            elif kind in ("move", "copy"):
                src_parent, src_last = _walk(doc, _tokens(op["from"]))
                value = src_parent[int(src_last)] if isinstance(src_parent, list) else src_parent[src_last]
                if kind == "move":
                    del src_parent[int(src_last) if isinstance(src_parent, list) else src_last]
                doc = json_patch(doc, [{"op": "add", "path": op["path"], "value": value}])
            else:
                raise Invalid(f"unknown JSON patch operation {kind!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise Invalid(f"the server rejected our request due to an error in our request: "
                          f"jsonpatch {op.get('op')} operation does not apply: doc is missing path: "
                          f"{op.get('path')}: {exc}") from exc
    return doc
