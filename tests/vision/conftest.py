"""Lab 04 vision tests: the ONNX models and their server.

They need models/vision-v1.onnx and -v2.onnx (make vision-models, which runs
scripts/export-vision-models.py in .venv-export) and onnxruntime, Pillow and
scikit-image (for its bundled test photos) in this venv. Without them the tests
skip, unless REQUIRE_VISION_MODELS=1 (CI), where that is a failure.
"""
from __future__ import annotations

import importlib.util
import os

import pytest

# onnxruntime >= 1.29 uploads telemetry from Linux unless this is set before it
# initializes; host servers inherit it (the images set it themselves).
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

from . import vision_servers as vs


def _missing() -> list[str]:
    missing = [f"models/{f}" for f in ("vision-v1.onnx", "vision-v1.json", "vision-v2.onnx", "vision-v2.json")
               if not (vs.MODELS / f).exists()]
    missing += [m for m in ("onnxruntime", "PIL", "skimage", "flask", "gunicorn")
                if importlib.util.find_spec(m) is None]
    return missing


@pytest.fixture(scope="module", autouse=True)
def _vision_prerequisites():
    """Module scope: checked before the modules' own module-scoped fixtures."""
    missing = _missing()
    if missing:
        why = f"vision prerequisites missing: {', '.join(missing)} (run: make vision-models)"
        if os.environ.get("REQUIRE_VISION_MODELS") == "1":
            pytest.fail(why + " and REQUIRE_VISION_MODELS=1", pytrace=False)
        pytest.skip(why + "; set REQUIRE_VISION_MODELS=1 to make this an error")


def pytest_generate_tests(metafunc):
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", [
            pytest.param(v, marks=[pytest.mark.docker] if v == "container" else [], id=v)
            for v in vs.VARIANTS])


@pytest.fixture
def launch(variant):
    """launch(**env) -> a started vision server of this variant; stopped after the test."""
    started = []

    def _launch(**env):
        s = vs.start(variant, env)
        started.append(s)
        return s

    yield _launch
    for s in started:
        s.stop()


@pytest.fixture(scope="module")
def shared_server():
    """One default server (v1, 1 MB body limit) per variant, for the many
    read-only checks of a module."""
    servers = {}

    def _get(variant):
        if variant not in servers:
            s = vs.start(variant, {"MAX_BODY_BYTES": 1_000_000})
            servers[variant] = s
            s.wait_ready(timeout=60)
        return servers[variant]

    yield _get
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="session", autouse=True)
def _remove_vision_image():
    yield
    try:
        vs.remove_image()
    except Exception:  # noqa: BLE001 - no daemon: nothing to remove
        pass
