"""The nvkind template describes the same course cluster as kind-config.yaml, plus GPU mounts.

nvkind renders it with Go templates; here a tiny renderer covers exactly the constructs the
file uses (drop ``{{- ... }}`` control lines, expand the one ``range`` over devices), which is
enough to compare the resulting YAML with kind-config.yaml field by field."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.cluster.kind.cluster import CONFIG

TEMPLATE = CONFIG.parent / "nvkind-config.yaml.tmpl"


def render(devices: list[int]) -> dict:
    """Render with no ``image`` value: ``if hasKey $ "image"`` blocks vanish, the devices range repeats."""
    out: list[str] = []
    body: list[str] = []
    stack: list[str] = []   # open blocks: "image", "range" or "other"
    for line in TEMPLATE.read_text().splitlines():
        s = line.strip()
        if s.startswith("{{- if"):
            stack.append("image" if '"image"' in s else "other")
        elif s.startswith("{{- range"):
            stack.append("range")
        elif s == "{{- end }}":
            if stack.pop() == "range":
                for d in devices:
                    out.extend(b.replace("{{ $d }}", str(d)) for b in body)
                body = []
        elif s.startswith("{{"):
            continue   # assignments
        elif "range" in stack:
            body.append(line)
        elif "image" not in stack:
            out.append(line)
    assert not stack
    text = "\n".join(out)
    assert "{{" not in text, "a template construct the test renderer does not know"
    return yaml.safe_load(text)


def test_same_cluster_as_kind_config_plus_gpu_mounts():
    kind_cfg = yaml.safe_load(CONFIG.read_text())
    nv = render([0, 1])
    mounts = nv["nodes"][2].pop("extraMounts")
    assert nv == kind_cfg
    assert mounts == [{"hostPath": "/dev/null",
                       "containerPath": f"/var/run/nvidia-container-devices/cdi/runtime.nvidia.com/gpu/{d}"}
                      for d in (0, 1)]


def test_the_template_only_uses_documented_values():
    names = set(re.findall(r"\$\.(\w+)", TEMPLATE.read_text()))
    assert names == {"image", "gpuDevices"}
    assert (Path(__file__).resolve().parents[2] / "docs" / "real-gpu.md").exists()
