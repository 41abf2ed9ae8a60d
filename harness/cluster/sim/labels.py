"""Label selectors: the ``a=b,c!=d`` string syntax and ``LabelSelector`` dicts.

Why a module of its own: the store's ``list(label_selector=...)``, the
ReplicaSet and endpoints controllers and validation all match labels, and
they must agree exactly (k8s.io/apimachinery ``labels`` and
``metav1.LabelSelectorAsSelector`` semantics).
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

Matcher = Callable[[Mapping[str, str]], bool]

_SET_RE = re.compile(r"^\s*(!?)\s*([A-Za-z0-9._/-]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")


def _split_top(s: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


def parse_selector(s: str | None) -> Matcher:
    """Parse ``a=b,c!=d,e in (x,y),!f,g`` into a predicate over a label map."""
    if not s or not s.strip():
        return lambda labels: True
    preds: list[Matcher] = []
    for part in _split_top(s):
        part = part.strip()
        if "!=" in part:
            k, v = (x.strip() for x in part.split("!=", 1))
            preds.append(lambda l, k=k, v=v: l.get(k) != v)
        elif "==" in part or ("=" in part and " in " not in part):
            k, v = (x.strip() for x in re.split(r"==?", part, maxsplit=1))
            preds.append(lambda l, k=k, v=v: l.get(k) == v)
        else:
            m = _SET_RE.match(part)
            if not m:
                raise ValueError(f"unable to parse requirement: {part!r}")
            neg, key, op, vals = m.groups()
            values = {x.strip() for x in (vals or "").split(",") if x.strip()}
            if op == "in":
                preds.append(lambda l, k=key, vs=values: l.get(k) in vs)
            elif op == "notin":
                preds.append(lambda l, k=key, vs=values: l.get(k) not in vs)
            elif neg:
                preds.append(lambda l, k=key: k not in l)
            else:
                preds.append(lambda l, k=key: k in l)
    return lambda labels: all(p(labels or {}) for p in preds)


def selector_matcher(sel: Mapping[str, Any] | None) -> Matcher:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) as a predicate.

    An empty selector matches everything, as ``LabelSelectorAsSelector`` does; a
    ``None`` selector matches nothing.
    """
    if sel is None:
        return lambda labels: False
    preds: list[Matcher] = []
    for k, v in (sel.get("matchLabels") or {}).items():
        preds.append(lambda l, k=k, v=v: l.get(k) == v)
    for e in sel.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), set(e.get("values") or [])
        if op == "In":
            preds.append(lambda l, k=k, vs=vals: l.get(k) in vs)
        elif op == "NotIn":
            preds.append(lambda l, k=k, vs=vals: l.get(k) not in vs)
        elif op == "Exists":
            preds.append(lambda l, k=k: k in l)
        elif op == "DoesNotExist":
            preds.append(lambda l, k=k: k not in l)
        else:
            raise ValueError(f"{op!r} is not a valid label selector operator")
    return lambda labels: all(p(labels or {}) for p in preds)


def equality_matcher(sel: Mapping[str, str] | None) -> Matcher:
    """A Service-style ``spec.selector`` map: every pair must be present."""
    sel = dict(sel or {})
    return lambda labels: all((labels or {}).get(k) == v for k, v in sel.items())
