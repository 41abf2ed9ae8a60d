"""Lab 05's chart, observed once through Helm's engine (:mod:`harness.helm`).

:func:`chart` lints the learner's ``chart/`` with each environment's values and
renders dev, prod and prod with ``activeColor`` switched, as ``helm template``
would. What failed is recorded, not raised: each check judges its own part.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .. import helm
from ..errors import GradingError
from ..manifests import Manifest

RELEASE = "sentiment"
NAMESPACE = "grade"
ENVS = ("dev", "prod")


@dataclass
class Render:
    env: str
    values: dict = field(default_factory=dict)
    manifests: list[Manifest] = field(default_factory=list)
    error: str = ""                   # "where: message" when it did not render

    def objects(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def one(self, kind: str) -> Manifest | None:
        found = self.objects(kind)
        return found[0] if len(found) == 1 else None


@dataclass
class ChartObservation:
    folder: Path
    values_files: dict[str, Path]                  # env -> file
    lint: dict[str, list[helm.LintMessage]]        # env -> findings (warnings and errors)
    renders: dict[str, Render]                     # dev, prod, prod-switched


def chart_folder(staged: Path) -> Path:
    folder = staged / "chart"
    if not (folder / "Chart.yaml").is_file():
        raise GradingError("no chart/Chart.yaml", where=str(staged),
                           fix="the lab's Helm chart goes in chart/ (the starter has it)")
    return folder


def _render(folder: Path, env: str, values: dict, overrides: dict | None = None) -> Render:
    vals = {**values, **(overrides or {})}
    label = f"chart[{env}]"
    try:
        return Render(env, vals, helm.render(folder, vals, release=RELEASE, namespace=NAMESPACE, label=label))
    except helm.RenderError as exc:
        return Render(env, vals, error=str(exc))
    except GradingError as exc:        # rendered output that is not valid YAML
        return Render(env, vals, error=str(exc))


def chart(ctx) -> ChartObservation:
    """Lint and render once per grading; later calls return the same observation."""
    if "chart" in ctx.observations:
        return ctx.observations["chart"]
    folder = chart_folder(ctx.submission.staged)
    files = {env: folder / f"values-{env}.yaml" for env in ENVS}
    values = {env: helm.merged_values([f], folder) for env, f in files.items()}
    lint = {env: [m for m in helm.lint(folder, values[env]) if m.severity in ("warning", "error", "unknown")]
            for env in ENVS}
    renders = {env: _render(folder, env, values[env]) for env in ENVS}
    active = (values["prod"].get("activeColor") or "blue")
    other = "green" if active == "blue" else "blue"
    renders["prod-switched"] = _render(folder, f"prod --set activeColor={other}", values["prod"],
                                       {"activeColor": other})
    obs = ctx.observations["chart"] = ChartObservation(folder, files, lint, renders)
    return obs
