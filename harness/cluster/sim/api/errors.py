"""``Status`` objects for errors, as kube-apiserver writes them (``k8s.io/apimachinery/pkg/api/errors``).

Why: kubectl prints errors from the Status's fields, not from the message alone. An Invalid
error without ``details.causes`` and ``details.kind`` (the Kind, not the plural) prints only
``The deployments "web" is invalid``; a NotFound's ``details.kind`` is the resource (plural).
The sim's in-process API raises :class:`~harness.cluster.base.ApiError` with upstream's
messages; this module adds the structure around them.
"""
from __future__ import annotations

import re

from harness.cluster.base import ApiError, Obj

_CAUSE_REASONS = {"Invalid value": "FieldValueInvalid", "Required value": "FieldValueRequired",
                  "Forbidden": "FieldValueForbidden", "Unsupported value": "FieldValueNotSupported",
                  "Duplicate value": "FieldValueDuplicate", "Not found": "FieldValueNotFound",
                  "Too long": "FieldValueTooLong", "Too many": "FieldValueTooMany"}
_RESOURCE = re.compile(r'^(?:Operation cannot be fulfilled on )?([a-z0-9]+)(?:\.([a-z0-9.-]+))? "')
_CAUSE = re.compile(r"(?:^|, |\[)([A-Za-z$][\w.\[\]/$-]*(?:\[[^\]]*\])*): (" + "|".join(_CAUSE_REASONS) + ")")


def causes(message: str) -> list[dict]:
    """``spec.replicas: Invalid value: -1: must be ...`` (or ``[a, b]``) -> StatusCause objects."""
    body = message.split(" is invalid: ", 1)[-1]
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    marks = list(_CAUSE.finditer(body))
    out = []
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        text = body[m.start(1):end].rstrip(", ")
        out.append({"reason": _CAUSE_REASONS[m.group(2)], "message": text[len(m.group(1)) + 2:],
                    "field": m.group(1)})
    return out


def status(code: int, reason: str, message: str, *, details: dict | None = None) -> Obj:
    out = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
           "reason": reason, "code": code}
    if details:
        out["details"] = details
    return out


def from_api_error(err: ApiError, *, group: str = "", plural: str = "") -> Obj:
    """The Status for an error raised by the store or the admission path."""
    reason = err.reason
    details: dict = {}
    if err.name:
        details["name"] = err.name
    if group:
        details["group"] = group
    if reason == "Invalid":
        details["kind"] = err.kind
        found = causes(err.message)
        if found:
            details["causes"] = found
    elif reason in ("NotFound", "AlreadyExists", "Conflict"):
        # upstream names the resource here: `deployments.apps "web" not found` -> kind deployments, group apps
        m = _RESOURCE.match(err.message)
        if plural or m:
            details["kind"] = plural or m.group(1)
            if m and m.group(2) and not group:
                details["group"] = m.group(2)
    elif err.kind:
        details["kind"] = err.kind
    if reason == "Expired":
        return status(410, "Expired", err.message)
    return status(err.code, reason, err.message, details=details or None)


def not_found_resource(path: str) -> Obj:
    """An unknown URL: kube-apiserver's 404 is a bare ``404 page not found`` Status."""
    return status(404, "NotFound", "the server could not find the requested resource", details={})


def bad_request(message: str) -> Obj:
    return status(400, "BadRequest", message)


def internal(message: str) -> Obj:
    return status(500, "InternalError", f"Internal error occurred: {message}",
                  details={"causes": [{"message": message}]})
