"""CRD schemas kept in the repo (Gateway API v1.3.0 standard channel, Istio networking.istio.io) and a
validator that applies them like the API server (``validate.py``)."""

from pathlib import Path

CRD_DIR = Path(__file__).resolve().parent
