"""Helpers shared by the labs' checks: the fixed sentences every lab's /predict
must label correctly, and ``need``. Object helpers live in harness.cluster.objects."""
from __future__ import annotations

from .registry import CheckFailed

# Fixed sentences and the label both model versions give them with a margin.
SENTENCES = {
    "I love this, it is wonderful and amazing!": "positive",
    "This is the best day ever, thank you so much": "positive",
    "What a great idea, I am so excited": "positive",
    "This is terrible, I hate it": "negative",
    "Worst experience ever, totally disappointed and angry": "negative",
    "I would never trust this, it is awful": "negative",
    "Self-driving cars will be tested on highways next year": "neutral",
}


def need(value, message: str):
    if not value:
        raise CheckFailed(message)
    return value
