"""Load a lab's Kubernetes manifests as data, and validate them against the
pinned Kubernetes schema with kubernetes-validate (strict: unknown fields are
errors, as ``kubectl apply --validate=strict`` makes them).

Every object keeps where it came from, so errors name ``file:line`` and the
field (``manifests/deployment.yaml:23: Deployment/sentiment:
spec.template.spec.contianers: unknown field``).

Loading is bounded, because a submission's YAML is untrusted data: a file is
read as UTF-8 text of at most ``MAX_MANIFEST_BYTES`` (``MAX_MANIFESTS_BYTES``
for all files), a file holds at most ``MAX_DOCUMENTS_PER_FILE`` documents
(``MAX_DOCUMENTS`` in all), collections nest at most ``MAX_DEPTH`` deep, and
anchors and aliases may add at most ``MAX_ALIAS_NODES`` nodes to a document
once expanded. The bounds are checked on the parser's events as the composer
reads them (``BoundedLoader.get_event``), so a "billion laughs" document
is refused at its first alias past the bound, before anything is expanded.
Aliases are counted rather than refused: they are valid YAML that kubectl
accepts, and a learner may reuse a block of labels with ``&labels``/``*labels``.

Before anything is applied, ``refuse_out_of_scope`` keeps a grading inside its
namespace: no Namespace objects, no cluster-scoped kinds, no other namespace.
"""
from __future__ import annotations

import difflib
import functools
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import GradingError

# The Kubernetes minor the labs target (kind's default node image of the pinned
# kind release). The schema ships inside the kubernetes-validate wheel.
K8S_SCHEMA_VERSION = "1.34.0"
MAX_MANIFEST_BYTES = 512 * 1024        # one file
MAX_MANIFESTS_BYTES = 2 * 1024 * 1024  # every file of the folder together
MAX_DOCUMENTS_PER_FILE = 100           # `---` separated documents in one file
MAX_DOCUMENTS = 300                    # documents in every file together
MAX_DEPTH = 32                         # mappings and sequences nested in each other
MAX_ALIAS_NODES = 10_000               # nodes that aliases add to one document once expanded


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
        """The line of the deepest key (or list item) that exists along ``path``:
        ``("spec", "replicas")`` is the line that says ``replicas:``."""
        node, line = self.node, self.node.start_mark.line + 1
        for key in path:
            nxt = None
            if isinstance(node, yaml.MappingNode):
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == key:
                        nxt, line = v, k.start_mark.line + 1
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                nxt = node.value[key]
                line = nxt.start_mark.line + 1
            if nxt is None:
                break
            node = nxt
        return line

    def where(self, path: tuple = ()) -> str:
        return f"{self.file}:{self.line_of(path) if path else self.line}"


# --- loading, bounded -------------------------------------------------------------------
class BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader, counting as the composer reads each event: documents
    (``budget`` is shared by the files of a folder), nesting depth, and the
    nodes that aliases add once expanded. Refusals are GradingErrors at the
    event's ``file:line``."""

    def __init__(self, text: str, rel: str, budget: dict):
        super().__init__(text)
        self.rel, self.budget = rel, budget
        self.documents = 0
        self._open: list[list] = []    # [expanded node count, anchor] per open collection
        self._sizes: dict[str, int] = {}
        self._alias_nodes = 0

    def _refuse(self, event: yaml.Event, message: str, fix: str) -> None:
        raise GradingError(message, where=f"{self.rel}:{event.start_mark.line + 1}", fix=fix)

    def _add(self, n: int) -> None:
        if self._open:
            self._open[-1][0] += n

    def get_event(self):
        event = super().get_event()
        if isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            self.budget["documents"] = self.budget.get("documents", 0) + 1
            if self.documents > MAX_DOCUMENTS_PER_FILE:
                self._refuse(event, f"more than {MAX_DOCUMENTS_PER_FILE} YAML documents in one file",
                             "a lab needs a handful of objects: keep one or a few per file")
            if self.budget["documents"] > MAX_DOCUMENTS:
                self._refuse(event, f"more than {MAX_DOCUMENTS} YAML documents in the manifests",
                             "a lab needs a handful of objects: remove the ones it does not ask for")
            self._sizes, self._alias_nodes = {}, 0     # anchors are per document
        elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            if len(self._open) >= MAX_DEPTH:
                self._refuse(event, f"YAML nested more than {MAX_DEPTH} levels deep",
                             "Kubernetes objects nest a dozen levels at most: check the indentation")
            self._open.append([1, event.anchor])
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            count, anchor = self._open.pop()
            if anchor is not None:
                self._sizes[anchor] = count
            self._add(count)
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor is not None:
                self._sizes[event.anchor] = 1
            self._add(1)
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for _, anchor in self._open):
                self._refuse(event, f"the alias *{event.anchor} refers to a block that contains it (a loop)",
                             "write the values out instead of the alias")
            size = self._sizes.get(event.anchor, 0)   # an undefined alias: the composer says so
            self._alias_nodes += size
            if self._alias_nodes > MAX_ALIAS_NODES:
                self._refuse(event, f"YAML aliases (*{event.anchor}) would expand this document past "
                                    f"{MAX_ALIAS_NODES:,} nodes (a 'billion laughs' document)",
                             "write the repeated values out; Kubernetes manifests do not need anchors (&) "
                             "and aliases (*)")
            self._add(size)
        return event


def _text(path: Path, rel: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise GradingError(f"not UTF-8 text (byte 0x{data[exc.start]:02x})", where=f"{rel}:{line}",
                           fix="save the file as UTF-8: YAML and kubectl read manifests as UTF-8") from None


def _yaml_error(exc: yaml.YAMLError, rel: str, text: str) -> GradingError:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return GradingError(f"invalid YAML: {exc}", where=rel, fix="fix the indentation or syntax")
    n = mark.line + 1
    lines = text.splitlines()
    tab = n <= len(lines) and "\t" in lines[n - 1]
    return GradingError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", where=f"{rel}:{n}",
                        fix=f"the indentation or syntax on line {n} is wrong"
                            + ("; YAML needs spaces, not tabs" if tab else ""))


def load_file(path: Path, rel: str, budget: dict | None = None) -> list[Manifest]:
    """The objects of one YAML file, within the bounds above (``budget`` counts across files)."""
    budget = {} if budget is None else budget
    size = path.stat().st_size
    budget["bytes"] = budget.get("bytes", 0) + size
    if size > MAX_MANIFEST_BYTES:
        raise GradingError(f"manifest file is too large ({size // 1024} KiB, at most {MAX_MANIFEST_BYTES // 1024} KiB)",
                           where=rel, fix="split or shrink it")
    if budget["bytes"] > MAX_MANIFESTS_BYTES:
        raise GradingError(f"the manifests are too large (over {MAX_MANIFESTS_BYTES // 2**20} MiB in all)",
                           where=rel, fix="remove the files the lab does not ask for")
    return load_text(_text(path, rel), rel, budget)


def load_text(text: str, rel: str, budget: dict | None = None) -> list[Manifest]:
    """The objects of YAML text named ``rel`` (a file, or a template Helm rendered), within the
    document, depth and alias bounds above."""
    budget = {} if budget is None else budget
    out: list[Manifest] = []
    loader = BoundedLoader(text, rel, budget)
    try:
        while loader.check_node():
            node = loader.get_node()
            doc = loader.construct_document(node)
            if doc is None:
                continue
            if not isinstance(doc, dict):
                raise GradingError("a YAML document must be a Kubernetes object (a mapping)",
                                   where=f"{rel}:{node.start_mark.line + 1}", fix="check the --- separators")
            out.append(Manifest(doc, rel, node.start_mark.line + 1, node))
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, rel, text) from None
    except RecursionError:   # a flow collection so deep that the parser recursed before any event
        raise GradingError(f"YAML nested more than {MAX_DEPTH} levels deep", where=rel,
                           fix="Kubernetes objects nest a dozen levels at most: check the brackets") from None
    finally:
        loader.dispose()
    return out


def load_dir(lab_dir: Path, sub: str = "manifests") -> list[Manifest]:
    """Every object of every ``*.yaml``/``*.yml`` under ``lab_dir/sub``, in file order."""
    folder = lab_dir / sub
    if not folder.is_dir():
        raise GradingError(f"no {sub}/ folder", where=str(folder),
                           fix=f"put your Kubernetes YAML files in {sub}/ (the starter has them)")
    files = sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise GradingError("no YAML files", where=str(folder), fix="add your manifests (*.yaml)")
    out: list[Manifest] = []
    budget: dict = {}
    for path in files:
        out += load_file(path, path.relative_to(lab_dir).as_posix(), budget)
    return out


# --- scope: one namespace, nothing cluster-wide ----------------------------------------
@functools.lru_cache(maxsize=1)
def _client_scopes() -> dict[str, str]:
    """``{"clusterrolebinding": "Cluster", "deployment": "Namespaced", ...}`` for every built-in
    kind, read from the kubernetes client's API modules, whose methods are generated from the
    API's OpenAPI paths: ``create_namespaced_<kind>`` for ``/namespaces/{namespace}/...``
    resources, ``create_<kind>`` for cluster-scoped ones. The files are read as text: importing
    ``kubernetes.client`` takes seconds."""
    import importlib.util

    spec = importlib.util.find_spec("kubernetes.client")
    api_dir = Path(spec.origin).parent / "api"
    out: dict[str, str] = {}
    for module in sorted(api_dir.glob("*_api.py")):
        if module.name == "custom_objects_api.py":
            continue
        for namespaced, kind in re.findall(r"^    def create_(namespaced_)?(\w+?)(?<!_with_http_info)\(",
                                           module.read_text(), flags=re.M):
            out.setdefault(kind.replace("_", ""), "Namespaced" if namespaced else "Cluster")
    return out


def api_scope(obj: dict) -> str | None:
    """``"Namespaced"``, ``"Cluster"``, or None for a kind this harness does not know."""
    from .crds.validate import lookup

    crd = lookup(obj)
    if crd is not None:
        return crd.scope
    return _client_scopes().get(str(obj.get("kind", "")).lower())


NAMESPACE_FIX = ("delete the metadata.namespace line: each grading runs in a namespace of its own, "
                 "and kubectl puts an object without one in the current namespace")


# The grading namespace's budget belongs to the grader: a submission's own quota or
# limits could replace it (same name) or confuse what the checks report.
GRADER_OWNED_KINDS = frozenset({"ResourceQuota", "LimitRange"})


def refuse_out_of_scope(manifests: list[Manifest], namespace: str | None = None) -> list[str]:
    """Refuse (GradingError, exit 2) what would reach beyond the grading namespace:
    Namespace objects, cluster-scoped kinds, and ``metadata.namespace`` other than
    ``namespace``. ``namespace: default`` is dropped instead, with a notice (returned):
    tutorials write it, and it means "where I am working", which here is the grading
    namespace."""
    notices: list[str] = []
    refusals: list[tuple[str, str, str]] = []
    for m in manifests:
        meta = m.obj.get("metadata")
        ns = meta.get("namespace") if isinstance(meta, dict) else None
        scope = api_scope(m.obj)
        if m.kind == "Namespace":
            refusals.append((m.where(), f"{m.ref}: a Namespace object is not allowed: each grading creates "
                             "and deletes a namespace of its own", "delete this object (and any namespace: "
                             "line that names it)"))
        elif m.kind in GRADER_OWNED_KINDS:
            refusals.append((m.where(), f"{m.ref}: a {m.kind} is the grader's: every grading namespace "
                             "carries its own (the laptop budget, harness/budget.py)", "delete this object"))
        elif scope == "Cluster":
            refusals.append((m.where(), f"{m.ref} is cluster-scoped: it would change the whole cluster, "
                             "not this lab's namespace", "delete it: the labs need only namespaced objects "
                             "(Deployment, Service, ConfigMap, ...)"))
        elif ns in (None, "") or ns == namespace:
            continue
        elif ns == "default":
            del meta["namespace"]
            notices.append(f'{m.where(("metadata", "namespace"))}: {m.ref}: metadata.namespace "default" '
                           f"was ignored; the object goes in the grading namespace ({NAMESPACE_FIX})")
        else:
            refusals.append((m.where(("metadata", "namespace")),
                             f'{m.ref}: metadata.namespace is "{ns}": objects may only go in the grading '
                             "namespace", NAMESPACE_FIX))
    if refusals:
        where, message, fix = refusals[0]
        more = "".join(f"\n  also {w}: {msg}" for w, msg, _ in refusals[1:])
        raise GradingError(message + more, where=where, fix=fix)
    return notices


# --- schema validation ---------------------------------------------------------------------
def _schema(version: str, api_version: str, kind: str) -> tuple[dict, dict] | None:
    """The strict JSON schema kubernetes-validate uses for this kind, and its $defs."""
    files = _schema_files(version, api_version, kind)
    return None if files is None else (files[0], files[1].get("$defs", {}))


def _resolve(s: dict, defs: dict) -> dict:
    while isinstance(s, dict) and "$ref" in s:
        s = defs.get(s["$ref"].rsplit("/", 1)[-1], {})
    return s if isinstance(s, dict) else {}


def _properties(s: dict, defs: dict) -> dict:
    s = _resolve(s, defs)
    props = dict(s.get("properties") or {})
    for sub in s.get("allOf", []) + s.get("anyOf", []) + s.get("oneOf", []):
        props.update(_properties(sub, defs))
    return props


def _schema_at(root: dict, defs: dict, path: tuple) -> dict:
    s = root
    for p in path:
        s = _resolve(s, defs)
        s = (s.get("items") or {}) if isinstance(p, int) else _properties(s, defs).get(p, {})
    return _resolve(s, defs)


EXPANSIONS_PER_TYPE = 4


def homes_of(key: str, root: dict, defs: dict, max_depth: int = 8) -> list[tuple]:
    """Paths (list items as ``0``) where ``key`` is a valid property, shortest first. A type
    is expanded at its first ``EXPANSIONS_PER_TYPE`` places (ObjectMeta is both ``metadata``
    and ``spec.template.metadata``), which bounds the search in recursive schemas."""
    found, frontier, seen = [], [((), root)], {}
    for _ in range(max_depth):
        nxt = []
        for path, s in frontier:
            s = _resolve(s, defs)
            if "items" in s:
                nxt.append((path + (0,), s["items"]))
                continue
            for name, sub in _properties(s, defs).items():
                if name == key:
                    found.append(path)
                ref = id(_resolve(sub, defs))
                seen[ref] = seen.get(ref, 0) + 1
                if seen[ref] <= EXPANSIONS_PER_TYPE:
                    nxt.append((path + (name,), sub))
        frontier = nxt
    return found


def dotted(path: tuple) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def unknown_field_advice(obj: dict, path: tuple, key: str, version: str = K8S_SCHEMA_VERSION) -> str:
    """``envFrom belongs in spec.template.spec.containers[0]`` when ``key`` is valid elsewhere in
    this kind's schema (the home nearest ``path``), ``did you mean "containers"?`` for a close
    spelling of a field valid here, else ""."""
    found = _schema(version, str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
    if found is None:
        return ""
    root, defs = found
    homes = homes_of(key, root, defs)
    if homes:
        def shared(h: tuple) -> int:
            n = 0
            for a, b in zip(h, path):
                if a != b:
                    break
                n += 1
            return n
        best = sorted(homes, key=lambda h: (-shared(h), len(h)))[0]
        return f"{key} belongs in {dotted(best)}"
    here = list(_properties(_schema_at(root, defs, path), defs))
    close = difflib.get_close_matches(key, here, n=1, cutoff=0.75)
    return f'did you mean "{close[0]}"?' if close else ""


MAX_SCHEMA_ERRORS = 10   # per object


@functools.lru_cache(maxsize=64)
def _schema_files(version: str, api_version: str, kind: str) -> tuple[dict, dict] | None:
    """The kind's strict schema and the definitions document, as kubernetes-validate finds them."""
    from kubernetes_validate.utils import schema_contents

    gv = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    try:
        return (schema_contents(f"{folder}/{kind.lower()}-{gv}.json", version),
                schema_contents(f"{folder}/_definitions.json", version))
    except Exception:  # noqa: BLE001 - not kept for this kind or version
        return None


@functools.lru_cache(maxsize=64)
def _validator(version: str, api_version: str, kind: str):
    """A validator built the way kubernetes-validate builds it, to list every error
    (kubernetes_validate.validate raises only the best match)."""
    import jsonschema
    from referencing import Registry, Resource

    files = _schema_files(version, api_version, kind)
    if files is None:
        return None
    schema, defs = files
    registry = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _messages(m: Manifest, found: list) -> list[tuple[int, str]]:
    """(line, message) for each schema error of ``m``."""
    out = []
    for e in found:
        path = tuple(getattr(e, "path", ()) or ())
        msg = getattr(e, "message", "") or str(e).splitlines()[0]
        unknown = re.findall(r"'([^']*)'", msg.split("(", 1)[-1]) if "Additional properties" in msg else []
        for key in unknown:
            advice = unknown_field_advice(m.obj, path, key)
            out.append((m.line_of(path + (key,)), f"{dotted(path + (key,))}: unknown field"
                        + (f"; {advice}" if advice else "")))
        if not unknown:
            out.append((m.line_of(path) if path else m.line, f"{dotted(path)}: {msg}"))
    return sorted(set(out))


def validate(manifests: list[Manifest], version: str = K8S_SCHEMA_VERSION,
             skip_kinds: frozenset[str] = frozenset()) -> list[str]:
    """Schema errors as ``file:line: Kind/name: field.path: message`` strings, every one
    of each object; an unknown field's line is that field's, with advice on where it belongs."""
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    errors = []
    for m in manifests:
        if not m.obj.get("apiVersion") or not m.obj.get("kind"):
            errors.append(f"{m.where()}: {m.ref}: apiVersion and kind are required")
            continue
        if m.kind in skip_kinds:
            continue
        validator = _validator(version, str(m.obj["apiVersion"]), m.kind)
        if validator is not None:
            found = list(itertools.islice(validator.iter_errors(m.obj), MAX_SCHEMA_ERRORS))
        else:   # not kept for this version: kubernetes-validate's own choice of schema, best match
            try:
                kubernetes_validate.validate(m.obj, version, strict=True)
                found = []
            except ValidationError as exc:
                found = [exc]
            except SchemaNotFoundError:
                errors.append(f"{m.where()}: {m.ref}: unknown apiVersion/kind {m.obj['apiVersion']}/{m.kind} "
                              f"for Kubernetes {version}")
                continue
        errors += [f"{m.file}:{line}: {m.ref}: {msg}" for line, msg in _messages(m, found)]
    return errors
