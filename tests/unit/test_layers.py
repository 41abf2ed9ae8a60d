"""The data path reads top to bottom: scenarios (observations) sit below checks
(judgement). Before, harness/scenarios*.py imported CheckFailed and pod helpers
from harness.checks while the checks imported the scenarios (5 imports upward)."""
from __future__ import annotations

import ast
from pathlib import Path

import harness

HARNESS = Path(harness.__file__).parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(HARNESS.parent).with_suffix("").parts[:-1])
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def test_no_scenario_imports_the_checks():
    offenders = {p.name: sorted(i for i in _imports(p) if i.startswith("harness.checks"))
                 for p in (HARNESS / "scenarios").glob("*.py")}
    assert not {k: v for k, v in offenders.items() if v}


def test_the_cluster_backends_know_no_lab():
    for p in (HARNESS / "cluster").rglob("*.py"):
        bad = [i for i in _imports(p) if i.startswith(("harness.checks", "harness.scenarios"))]
        assert not bad, f"{p.relative_to(HARNESS)} imports {bad}"
