"""Helm, through its own engine: lint and render a learner's chart offline.

``helm-python-sdk`` (pinned in pyproject.toml) binds Helm v4's Go SDK as a
shared library, so this is ``helm lint --strict`` and ``helm template`` without
the ``helm`` binary. This module is the only place that imports it: checks get
:class:`LintMessage` lists and :class:`~harness.manifests.Manifest` objects.

A chart is a submission's data. Helm's template language cannot run programs
or read files outside the chart; ``lookup`` returns nothing offline. The staged
submission has no symlinks (``harness/submission.py``), values files are read
with a size bound, and rendered output goes through the same bounded YAML
loader as hand-written manifests.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import GradingError
from .manifests import MAX_MANIFEST_BYTES, Manifest, load_text

SEVERITY = {0: "unknown", 1: "info", 2: "warning", 3: "error"}
MAX_VALUES_BYTES = 256 * 1024
# Helm's template errors name the template and its line: "template: sentiment/templates/hpa.yaml:12:20: ..."
# or "execution error at (sentiment/templates/deployment.yaml:48:27): ..."
_TEMPLATE_AT = re.compile(r"(?:template: |at \()(?:[^/\s()]+/)?(templates/[^:\s]+):(\d+)")


def _sdk():
    try:
        import helm_python
    except ImportError:
        raise GradingError("Helm's engine (the Python package helm-python-sdk) is not installed",
                           fix="run `make setup` (it installs the pinned helm-python-sdk)") from None
    return helm_python


def versions() -> tuple[str, str]:
    """(helm-python-sdk's native library version, the Helm SDK version it embeds)."""
    h = _sdk()
    return h.helm_c_version(), h.helm_sdk_version()


@dataclass(frozen=True)
class LintMessage:
    severity: str          # info, warning, error
    path: str              # relative to the chart
    message: str

    def __str__(self) -> str:
        return f"[{self.severity.upper()}] {self.path}: {self.message}"


def load_values(path: Path, rel: str) -> dict[str, Any]:
    """A values file, parsed by Helm's own YAML reader (bounded; empty file: {})."""
    if not path.is_file():
        raise GradingError("values file not found", where=rel, fix=f"create {rel} (the starter has it)")
    data = path.read_bytes()
    if len(data) > MAX_VALUES_BYTES:
        raise GradingError(f"values file is too large ({len(data) // 1024} KiB)", where=rel, fix="shrink it")
    h = _sdk()
    try:
        values = h.values_from_yaml(data.decode("utf-8")) or {}
    except UnicodeDecodeError:
        raise GradingError("not UTF-8 text", where=rel, fix="save the file as UTF-8") from None
    except h.HelmError as exc:
        raise GradingError(f"invalid YAML: {_detail(exc)}", where=rel, fix="fix the indentation or syntax") from None
    if not isinstance(values, dict):
        raise GradingError("a values file must be a mapping", where=rel, fix="use key: value lines at the top level")
    return values


def _detail(exc: Exception) -> str:
    return str(getattr(exc, "detail", "") or exc).strip()


def merged_values(files: list[Path], chart_dir: Path, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """``-f a.yaml -f b.yaml --set ...``: later files win, maps merge key by key (Helm's coalescing)."""
    out: dict[str, Any] = {}
    for f in files:
        _merge(out, load_values(f, _rel(f, chart_dir)))
    if overrides:
        _merge(out, overrides)
    return out


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def _rel(path: Path, chart_dir: Path) -> str:
    try:
        return f"{chart_dir.name}/{path.relative_to(chart_dir).as_posix()}"
    except ValueError:
        return path.name


def lint(chart_dir: Path, values: dict[str, Any] | None = None, kube_version: str | None = None) -> list[LintMessage]:
    """``helm lint --strict`` with these values: every finding (warnings count as failures in strict mode)."""
    h = _sdk()
    _need_chart(chart_dir)
    try:
        report = h.lint(str(chart_dir), values, strict=True, kube_version=kube_version)
    except h.HelmError as exc:
        raise GradingError(f"helm lint could not read the chart: {_detail(exc)}", where=str(chart_dir),
                           fix="check Chart.yaml (apiVersion: v2, name, version)") from None
    msgs = [LintMessage(SEVERITY.get(m.get("severity", 0), "unknown"), m.get("path", ""), m.get("error", ""))
            for m in report.get("messages") or []]
    msgs += [LintMessage("error", "", e) for e in report.get("errors") or [] if not any(e in m.message for m in msgs)]
    return msgs


def _need_chart(chart_dir: Path) -> None:
    if not (chart_dir / "Chart.yaml").is_file():
        raise GradingError("no Chart.yaml", where=str(chart_dir), fix="the chart folder needs Chart.yaml (the starter has it)")


class RenderError(Exception):
    """The chart did not render: ``where`` is ``templates/x.yaml:line`` when Helm names it."""

    def __init__(self, message: str, where: str = ""):
        super().__init__(f"{where}: {message}" if where else message)
        self.message, self.where = message, where


def render(chart_dir: Path, values: dict[str, Any], *, release: str, namespace: str,
           label: str = "") -> list[Manifest]:
    """``helm template <release> <chart> -n <namespace>`` with ``values``: the rendered objects, each
    named ``<label or chart>/templates/<file>`` with its line in the rendered output. Raises
    :class:`RenderError` with Helm's message (schema, ``required``, template errors)."""
    h = _sdk()
    _need_chart(chart_dir)
    try:
        with h.Chart.load(str(chart_dir)) as chart:
            chart.validate_schema(values)
            out = chart.render(values, name=release, namespace=namespace, is_install=True)
    except h.HelmError as exc:
        text = _detail(exc)
        m = _TEMPLATE_AT.search(text)
        raise RenderError(text, f"{chart_dir.name}/{m.group(1)}:{m.group(2)}" if m else "") from None
    manifests: list[Manifest] = []
    budget: dict = {}
    for name in sorted(out):
        text = out[name]
        if name.endswith("NOTES.txt") or not text.strip():
            continue
        if len(text) > MAX_MANIFEST_BYTES:
            raise RenderError(f"renders {len(text) // 1024} KiB (at most {MAX_MANIFEST_BYTES // 1024} KiB)", name)
        rel = f"{label or chart_dir.name}/{name.split('/', 1)[1] if '/' in name else name}"
        manifests += load_text(text, rel, budget)
    return manifests


# ---- releases: helm install / upgrade / rollback against a cluster's API ------------------------
@dataclass(frozen=True)
class Revision:
    revision: int
    status: str            # deployed, superseded, failed, ...
    manifest: str          # the objects this revision applied, as Helm stored them


class Releases:
    """``helm install|upgrade|rollback|history`` through Helm's engine, against the cluster a
    kubeconfig names (a kind cluster, any context, or the sim's API: ``make cluster-up BACKEND=sim``).
    Helm keeps each revision in a Secret ``sh.helm.release.v1.<name>.v<N>`` of the namespace."""

    def __init__(self, kubeconfig: Path | str, namespace: str, context: str | None = None, timeout_s: int = 120):
        h = _sdk()
        self._h, self.namespace, self.timeout_s = h, namespace, timeout_s
        self._cfg = h.Config(kubeconfig_path=str(kubeconfig), kube_context=context, namespace=namespace)

    def close(self) -> None:
        self._cfg.close()

    def __enter__(self) -> "Releases":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except self._h.HelmError as exc:
            raise GradingError(f"helm {what} failed: {_detail(exc)}", where=f"namespace {self.namespace}",
                               fix="kubectl get events and kubectl describe the objects it names") from None

    def install(self, chart_dir: Path, name: str, values: dict[str, Any]) -> Revision:
        _need_chart(chart_dir)
        return _revision(self._call("install", self._cfg.install, str(chart_dir), name, values,
                                    namespace=self.namespace, timeout=self.timeout_s))

    def upgrade(self, chart_dir: Path, name: str, values: dict[str, Any]) -> Revision:
        _need_chart(chart_dir)
        return _revision(self._call("upgrade", self._cfg.upgrade, str(chart_dir), name, values,
                                    namespace=self.namespace, timeout=self.timeout_s))

    def rollback(self, name: str, revision: int) -> None:
        self._call("rollback", self._cfg.rollback, name, version=revision, timeout=self.timeout_s)

    def history(self, name: str) -> list[Revision]:
        return [_revision(r) for r in self._call("history", self._cfg.history, name) or []]

    def manifest(self, name: str, revision: int) -> str:
        return _revision(self._call("status", self._cfg.status, name, revision=revision)).manifest


def _revision(r: dict) -> Revision:
    return Revision(int(r.get("revision", 0)), str(r.get("status", "")), str(r.get("manifest", "")))


# ---- `python -m harness.helm template|lint`: the same engine by hand, for a learner without helm ----
def _set(pairs: list[str]) -> dict[str, Any]:
    """``--set a.b=c``: nested keys, values as Helm reads them (true/false/numbers, else strings)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        value: Any = _sdk().values_from_yaml(f"v: {raw}")["v"] if raw else ""
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m harness.helm",
                                 description="helm template / helm lint --strict through Helm's engine (helm-python-sdk)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("template", help="like `helm template RELEASE CHART -f VALUES [--set k=v] [-n NS]`")
    t.add_argument("release")
    t.add_argument("chart", type=Path)
    lnt = sub.add_parser("lint", help="like `helm lint --strict CHART -f VALUES`")
    lnt.add_argument("chart", type=Path)
    lnt.add_argument("--strict", action="store_true", help="accepted for helm's syntax: warnings always fail")
    for p in (t, lnt):
        p.add_argument("-f", "--values", action="append", type=Path, default=[])
        p.add_argument("--set", action="append", default=[])
    t.add_argument("-n", "--namespace", default="default")
    args = ap.parse_args(argv)
    try:
        values = merged_values(args.values, args.chart, _set(args.set))
        if args.cmd == "lint":
            msgs = lint(args.chart, values)
            for m in msgs:
                print(m)
            failed = any(m.severity in ("warning", "error") for m in msgs)    # --strict: warnings fail too
            print(f"1 chart(s) linted, {1 if failed else 0} chart(s) failed")
            return 1 if failed else 0
        for m in render(args.chart, values, release=args.release, namespace=args.namespace):
            import yaml
            print(f"---\n# Source: {m.file}\n" + yaml.safe_dump(m.obj, sort_keys=False), end="")
        return 0
    except (GradingError, RenderError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
