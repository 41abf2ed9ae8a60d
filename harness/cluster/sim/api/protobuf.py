"""Protobuf request bodies (``application/vnd.kubernetes.protobuf``), as kubectl sends them.

kubectl's imperative commands (``create namespace|configmap|secret|deployment``, ``expose``,
``run``, ``autoscale``) POST protobuf. The body is upstream's envelope
(``k8s.io/apimachinery/pkg/runtime/serializer/protobuf``): the 4-byte magic ``k8s\\x00``, then a
``runtime.Unknown`` whose ``typeMeta`` names the object's apiVersion and kind and whose ``raw`` is
the object's own message. Both are decoded with the ``protobuf`` package from upstream's
definitions (``proto/``: kubernetes/api and apimachinery v0.32.9, compiled to a descriptor set),
then turned into the object's JSON form, the one the rest of the server speaks. The types whose
JSON differs from their message are converted as their Go ``MarshalJSON`` does: ``Quantity`` and
``IntOrString`` (a string or a number), ``Time``/``MicroTime`` (RFC 3339), ``Duration`` (Go's
``1m30s``), ``RawExtension``/``FieldsV1`` (embedded JSON) and ``bytes`` (base64, as Secret data).

Groups outside the compiled set (networking.k8s.io, CRDs ...) answer 415, which kubectl reports as
the command's error; kubectl sends those as JSON anyway.
"""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from harness.cluster.base import ApiError

MAGIC = b"k8s\x00"
DESCRIPTORS = Path(__file__).with_name("proto") / "k8s-v0.32.9.desc"
META = "k8s.io.apimachinery.pkg.apis.meta.v1."


# ``*int32``/``*int64`` fields of the compiled groups whose explicit 0 differs from unset.
ZERO_MATTERS = frozenset({"replicas", "terminationGracePeriodSeconds", "activeDeadlineSeconds", "backoffLimit",
                          "parallelism", "completions", "ttlSecondsAfterFinished", "revisionHistoryLimit",
                          "progressDeadlineSeconds", "minReplicas", "defaultMode", "mode", "minAvailable",
                          "maxUnavailable", "startingDeadlineSeconds", "successfulJobsHistoryLimit",
                          "failedJobsHistoryLimit", "stabilizationWindowSeconds", "initialDelaySeconds"})


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class BadProtobuf(ApiError):
    code, reason = 400, "BadRequest"


@lru_cache(maxsize=1)
def _pool():
    from google.protobuf import descriptor_pb2, descriptor_pool
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for f in files.file:
        pool.Add(f)
    return pool


@lru_cache(maxsize=256)
def _message_class(full_name: str):
    from google.protobuf import message_factory
    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(full_name))


def message_name(api_version: str, kind: str) -> str:
    """``apps/v1`` + ``Deployment`` -> ``k8s.io.api.apps.v1.Deployment`` (core is ``k8s.io.api.core.v1``)."""
    group, _, version = api_version.rpartition("/")
    return f"k8s.io.api.{group or 'core'}.{version}.{kind}"


def decode(raw: bytes) -> dict:
    if not raw.startswith(MAGIC):
        raise BadProtobuf("the body of the request was in an unknown format: a protobuf body starts with the "
                          "4-byte prefix \"k8s\\x00\"")
    from google.protobuf.message import DecodeError
    try:
        unknown = _message_class("k8s.io.apimachinery.pkg.runtime.Unknown").FromString(raw[len(MAGIC):])
    except DecodeError as exc:
        raise BadProtobuf(f"the body of the request could not be decoded: {exc}") from None
    api_version, kind = unknown.typeMeta.apiVersion, unknown.typeMeta.kind
    name = message_name(api_version, kind)
    try:
        cls = _message_class(name)
    except KeyError:
        raise UnsupportedMediaType(
            f"the sim's API server decodes protobuf for core/v1, apps/v1, autoscaling/v1 and v2, batch/v1 and "
            f"policy/v1 only, not {kind} in {api_version or '(none)'}: send it as JSON "
            "(kubectl apply -f a manifest)") from None
    try:
        msg = cls.FromString(unknown.raw)
    except DecodeError as exc:
        raise BadProtobuf(f"the {kind} in the request could not be decoded: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **to_json(msg)}


def to_json(msg) -> dict:
    """A message as its object's JSON.

    Go's protobuf marshaller writes every non-pointer field, zero or not (``generateName: ""``,
    ``stdin: false``), where its JSON marshaller's ``omitempty`` leaves them out; the server decodes
    either into the same zero values. So empty strings, ``false`` and zeros are dropped here, as
    absent, except the zeros of the pointer fields where 0 means something (:data:`ZERO_MATTERS`,
    such as ``replicas: 0``): the descriptor does not say which fields are pointers."""
    out = {}
    for field, value in msg.ListFields():
        if value == "" or value is False or (value == 0 and type(value) is int and field.name not in ZERO_MATTERS):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            vf = field.message_type.fields_by_name["value"]
            out[field.name] = {k: _value(vf, v) for k, v in value.items()}
        elif _repeated(field):
            out[field.name] = [_value(field, v) for v in value]
        else:
            v = _value(field, value)
            if v is not None:
                out[field.name] = v
    return out


def _repeated(field) -> bool:
    rep = getattr(field, "is_repeated", None)         # protobuf >= 6 (``label`` went away)
    return rep if isinstance(rep, bool) else field.label == field.LABEL_REPEATED


def _value(field, value):
    if field.message_type is None:
        if field.type == field.TYPE_BYTES:
            return base64.b64encode(value).decode()
        return value
    special = _SPECIAL.get(field.message_type.full_name)
    return special(value) if special else to_json(value)


GO_ZERO_TIME = -62135596800   # 0001-01-01T00:00:00Z, Go's zero time.Time, which gogo writes for an unset Time


def _time(m, micro: bool = False):
    if (not m.seconds and not m.nanos) or m.seconds <= GO_ZERO_TIME:
        return None
    t = datetime.fromtimestamp(m.seconds + m.nanos / 1e9, tz=timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def go_duration(ns: int) -> str:
    """Go's ``time.Duration.String()`` for whole units: ``1h2m3s``, ``1m30s``, ``500ms``, ``0s``."""
    if ns == 0:
        return "0s"
    if abs(ns) < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if abs(ns) >= size:
                return f"{ns / size:g}{unit}"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    h, rest = divmod(ns, 3_600_000_000_000)
    m, rest = divmod(rest, 60_000_000_000)
    s = rest / 1e9
    out = (f"{h}h" if h else "") + (f"{m}m" if h or m else "") + f"{s:g}s"
    return sign + out


_SPECIAL = {
    "k8s.io.apimachinery.pkg.api.resource.Quantity": lambda m: m.string,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": lambda m: m.strVal if m.type == 1 else m.intVal,
    META + "Time": _time,
    META + "MicroTime": lambda m: _time(m, micro=True),
    META + "Duration": lambda m: go_duration(m.duration),
    META + "FieldsV1": lambda m: json.loads(m.Raw) if m.Raw else {},
    "k8s.io.apimachinery.pkg.runtime.RawExtension": lambda m: json.loads(m.raw) if m.raw else None,
}
