"""The scenario catalog: one folder per incident under ``practice/``.

A scenario folder holds:

* ``scenario.yaml``: ``title``, ``incident`` (what users see, never the cause), ``hints``
  (ordered), ``images`` (``v1``/``v2`` sentiment images it runs), ``entry`` (where traffic
  enters: ``{gateway: NAME}`` or ``{service: NAME, port: N}``), ``setup`` (ordered steps:
  ``{apply: FILE}``, ``{wait_available: DEPLOYMENT}``), ``verify`` (the criteria of
  ``practice-check``, see :mod:`.verify`), ``symptom`` (what the broken state shows, asserted by
  the calibration tests), ``fix`` (the reference fix as kubectl commands) and ``wrong_fixes``
  (plausible fixes that must not pass);
* the manifests that ``setup`` names;
* ``debrief.md``: root cause, the commands that reveal it, and the reasoning.

Errors name the file and the field, so a scenario author sees at once what to change.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from harness.errors import GradingError

ROOT = Path(__file__).resolve().parents[2] / "practice"
IMAGES = {"v1": "mlops-labs/sentiment:v1", "v2": "mlops-labs/sentiment:v2"}
SETUP_STEPS = ("apply", "wait_available")
REQUIRED = ("title", "incident", "hints", "entry", "setup", "verify", "symptom", "fix")


@dataclass(frozen=True)
class Scenario:
    id: str
    folder: Path
    title: str
    incident: str
    hints: tuple[str, ...]
    images: tuple[str, ...]
    entry: dict
    setup: tuple[dict, ...]
    verify: tuple[dict, ...]
    symptom: tuple[dict, ...]
    fix: tuple[str, ...]
    wrong_fixes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    minutes: int = 20                   # the suggested time for a mock interview

    @property
    def debrief(self) -> str:
        path = self.folder / "debrief.md"
        return path.read_text() if path.is_file() else ""

    def manifests(self, rel: str) -> list[dict]:
        path = self.folder / rel
        return [d for d in yaml.safe_load_all(path.read_text()) if d]


def root() -> Path:
    return Path(os.environ.get("HARNESS_PRACTICE_DIR") or ROOT)


def ids() -> list[str]:
    base = root()
    return sorted(p.name for p in base.iterdir() if (p / "scenario.yaml").is_file()) if base.is_dir() else []


def _bad(path: Path, what: str) -> GradingError:
    return GradingError(f"{path}: {what}", fix="fix the scenario file (practice/README.md, 'Adding a scenario')")


def load(scenario_id: str) -> Scenario:
    known = ids()
    if scenario_id not in known:
        raise GradingError(f"unknown practice scenario {scenario_id!r}",
                           fix="run `make practice` to list them (or SCENARIO=random)")
    folder = root() / scenario_id
    path = folder / "scenario.yaml"
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise _bad(path, f"not valid YAML: {exc}") from exc
    missing = [k for k in REQUIRED if k not in doc]
    if missing:
        raise _bad(path, f"missing field(s): {', '.join(missing)}")
    for i, step in enumerate(doc["setup"]):
        if not (isinstance(step, dict) and len(step) == 1 and next(iter(step)) in SETUP_STEPS):
            raise _bad(path, f"setup[{i}] must be one of {{apply: FILE}} or {{wait_available: NAME}}")
        if "apply" in step and not (folder / step["apply"]).is_file():
            raise _bad(path, f"setup[{i}]: {step['apply']} does not exist in {folder}")
    unknown = [i for i in doc.get("images") or [] if i not in IMAGES]
    if unknown:
        raise _bad(path, f"images: unknown {unknown} (known: {', '.join(IMAGES)})")
    entry = doc["entry"]
    if not (isinstance(entry, dict) and ("gateway" in entry or ("service" in entry and "port" in entry))):
        raise _bad(path, "entry must be {gateway: NAME} or {service: NAME, port: N}")
    from .verify import CRITERIA, OBSERVATIONS
    for i, c in enumerate(doc["verify"]):
        if c.get("criterion") not in CRITERIA or not c.get("unmet"):
            raise _bad(path, f"verify[{i}]: needs criterion (one of {', '.join(CRITERIA)}) and unmet (the words "
                             "a candidate sees while it is not met)")
    for i, s in enumerate(doc["symptom"]):
        if s.get("observe") not in OBSERVATIONS or not isinstance(s.get("expect"), dict):
            raise _bad(path, f"symptom[{i}]: needs observe (one of {', '.join(OBSERVATIONS)}) and expect")
    return Scenario(
        id=scenario_id, folder=folder, title=str(doc["title"]), incident=str(doc["incident"]).strip(),
        hints=tuple(str(h).strip() for h in doc["hints"]), images=tuple(doc.get("images") or ("v1",)),
        entry=dict(entry), setup=tuple(doc["setup"]), verify=tuple(doc["verify"]), symptom=tuple(doc["symptom"]),
        fix=tuple(doc["fix"]), wrong_fixes={k: tuple(v) for k, v in (doc.get("wrong_fixes") or {}).items()},
        minutes=int(doc.get("minutes", 20)))


def all_scenarios() -> list[Scenario]:
    return [load(i) for i in ids()]
