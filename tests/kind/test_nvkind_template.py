"""The nvkind template describes the same course cluster as kind-config.yaml, plus GPU mounts.

nvkind renders it with Go templates; here a tiny renderer covers exactly the constructs the
file uses (drop ``{{- ... }}`` control lines, expand the one ``range`` over devices), which is
enough to compare the resulting YAML with kind-config.yaml field by field."""
from __future__ import annotations

import posixpath
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


def nvidia_visible_devices(node: dict) -> list[str]:
    """nvkind's ``(*Node).getNvidiaVisibleDevices`` (NVIDIA/nvkind pkg/nvkind/node.go): the base names
    of the ``/dev/null`` mounts whose parent is exactly ``/var/run/nvidia-container-devices``.
    ``HasGPUs()`` is ``len(...) > 0``; nvkind installs the container toolkit only on such nodes."""
    return [posixpath.basename(m["containerPath"]) for m in node.get("extraMounts") or []
            if m.get("hostPath") == "/dev/null"
            and posixpath.dirname(m["containerPath"]) == "/var/run/nvidia-container-devices"]


def test_same_cluster_as_kind_config_plus_gpu_mounts():
    kind_cfg = yaml.safe_load(CONFIG.read_text())
    nv = render([0, 1])
    nv["nodes"][2].pop("extraMounts")
    assert nv == kind_cfg


def test_nvkind_sees_the_gpus_of_the_gpu_worker():
    """Blind spot of the old test: it compared the mounts with the path we had written
    (``.../cdi/runtime.nvidia.com/gpu/N``), never with the rule nvkind applies, under which
    that path counts no GPU, so ``HasGPUs()`` was false and the toolkit was never installed."""
    nv = render([0, 1])
    assert [nvidia_visible_devices(n) for n in nv["nodes"]] == [[], [], ["0", "1"]]
    assert nvidia_visible_devices(render([3])["nodes"][2]) == ["3"]


def test_the_template_only_uses_documented_values():
    names = set(re.findall(r"\$\.(\w+)", TEMPLATE.read_text()))
    assert names == {"image", "gpuDevices"}
    assert (Path(__file__).resolve().parents[2] / "docs" / "real-gpu.md").exists()
