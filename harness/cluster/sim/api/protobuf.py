"""Protobuf request bodies (``application/vnd.kubernetes.protobuf``): not decoded yet.

kubectl's imperative commands (``create configmap|secret|deployment``, ``autoscale``) send them;
until a decoder built from upstream's ``.proto`` definitions is added, the server answers 415,
which kubectl reports as the command's error (FIDELITY.md, "The API server").
"""
from __future__ import annotations

from harness.cluster.base import ApiError


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


def decode(raw: bytes):
    raise UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: "
                               "application/json, application/yaml (the sim's API server does not decode protobuf; "
                               "use kubectl apply -f with a manifest)")
