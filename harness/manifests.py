"""Load a lab's Kubernetes manifests as data, and validate them against the
pinned Kubernetes schema with kubernetes-validate (strict: unknown fields are
errors, as ``kubectl apply --validate=strict`` makes them).

Every object keeps where it came from, so errors name ``file:line`` and the
field (``manifests/deployment.yaml:23: Deployment/sentiment:
spec.template.spec.contianers: unknown field``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import GradingError

# The Kubernetes minor the labs target (kind's default node image of the pinned
# kind release). The schema ships inside the kubernetes-validate wheel.
K8S_SCHEMA_VERSION = "1.34.0"
MAX_MANIFEST_BYTES = 512 * 1024


@dataclass
class Manifest:
    obj: dict
    file: str          # path relative to the lab folder
    line: int          # 1-based line where the document starts
    node: yaml.Node = field(repr=False)

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", "?"))

    @property
    def name(self) -> str:
        return str((self.obj.get("metadata") or {}).get("name", "?"))

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"

    def line_of(self, path: tuple) -> int:
        """The line of the deepest node that exists along ``path`` (keys/indexes)."""
        node = self.node
        for key in path:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if k.value == key:
                        nxt = v if not isinstance(v, yaml.ScalarNode) else v
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                nxt = node.value[key]
            if nxt is None:
                break
            node = nxt
        return node.start_mark.line + 1

    def where(self, path: tuple = ()) -> str:
        return f"{self.file}:{self.line_of(path) if path else self.line}"


def load_dir(lab_dir: Path, sub: str = "manifests") -> list[Manifest]:
    """Every object of every ``*.yaml``/``*.yml`` under ``lab_dir/sub``, in file order."""
    folder = lab_dir / sub
    if not folder.is_dir():
        raise GradingError(f"no {sub}/ folder", where=str(folder),
                           fix=f"put your Kubernetes YAML files in {sub}/ (the starter has them)")
    out: list[Manifest] = []
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise GradingError("no YAML files", where=str(folder), fix="add your manifests (*.yaml)")
    for path in files:
        rel = path.relative_to(lab_dir).as_posix()
        if path.stat().st_size > MAX_MANIFEST_BYTES:
            raise GradingError("manifest file is too large", where=rel, fix="split or shrink it")
        text = path.read_text(errors="replace")
        try:
            nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
            docs = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise GradingError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=f"{rel}{line}",
                               fix="fix the indentation or syntax on that line") from None
        for node, doc in zip(nodes, docs):
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise GradingError("a YAML document must be a Kubernetes object (a mapping)",
                                   where=f"{rel}:{node.start_mark.line + 1}", fix="check the --- separators")
            out.append(Manifest(doc, rel, node.start_mark.line + 1, node))
    return out


def validate(manifests: list[Manifest], version: str = K8S_SCHEMA_VERSION,
             skip_kinds: frozenset[str] = frozenset()) -> list[str]:
    """Schema errors as ``file:line: Kind/name: field.path: message`` strings."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    errors = []
    for m in manifests:
        if not m.obj.get("apiVersion") or not m.obj.get("kind"):
            errors.append(f"{m.where()}: {m.ref}: apiVersion and kind are required")
            continue
        if m.kind in skip_kinds:
            continue
        try:
            kubernetes_validate.validate(m.obj, version, strict=True)
        except ValidationError as exc:
            path = tuple(getattr(exc, "path", ()) or ())
            dotted = ".".join(str(p) for p in path) or "(top level)"
            msg = getattr(exc, "message", "") or str(exc).splitlines()[0]
            if "Additional properties are not allowed" in msg:
                msg = "unknown field " + msg.split("(", 1)[-1].rstrip(")").replace(" was unexpected", "")
            errors.append(f"{m.where(path)}: {m.ref}: {dotted}: {msg}")
        except SchemaNotFoundError:
            errors.append(f"{m.where()}: {m.ref}: unknown apiVersion/kind {m.obj['apiVersion']}/{m.kind} "
                          f"for Kubernetes {version}")
    return errors
