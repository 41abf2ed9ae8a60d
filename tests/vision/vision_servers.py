"""Start the lab 04 vision server (solutions/04-gpu-canary/vision) on the host
(gunicorn from this venv, on 127.0.0.1) or in its CPU container image (built
once per session through the Docker SDK, with model/ staged from models/).

Reuses the contract tests' Server handle (probes, SIGTERM, logs, cleanup)."""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from functools import lru_cache
from pathlib import Path

from tests.contract.servers import BIN, LABEL, ROOT, Server, free_port

MODELS = ROOT / "models"
VISION_DIR = ROOT / "solutions" / "04-gpu-canary" / "vision"
VARIANTS = ("host", "container")
IMAGE_TAG = "mlops-labs/vision-test:cpu"
CAT_CLASSES = set(range(281, 286))   # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@lru_cache(maxsize=None)
def photo(name: str) -> bytes:
    """scikit-image's bundled photos: coffee as JPEG, chelsea (a cat) as PNG."""
    from PIL import Image
    from skimage import data

    arr = {"coffee": data.coffee, "chelsea": data.chelsea}[name]()
    buf = io.BytesIO()
    if name == "coffee":
        Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    else:
        Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def host_providers() -> set[str]:
    """Providers a host server may report: CPU, or CUDA where this venv has
    onnxruntime-gpu (the container image is always CPU)."""
    import onnxruntime as ort

    return {"CPUExecutionProvider"} | ({"CUDAExecutionProvider"} & set(ort.get_available_providers()))


def start_host(env: dict[str, str]) -> Server:
    port = free_port()
    tmp = tempfile.mkdtemp(prefix="vision-")
    full_env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "MODEL_DIR": str(MODELS),
                "WEB_CONCURRENCY": "2", **env}
    for k in ("PROMETHEUS_MULTIPROC_DIR", "SERVER_START_TIME", "SERVER_STATE_DIR", "SERVER_WORKERS",
              "SERVER_CPUS"):
        full_env.pop(k, None)
    log = Path(tmp) / "server.log"
    proc = subprocess.Popen([str(BIN / "gunicorn"), "--config", "app/gunicorn.conf.py", "app.server:app"],
                            cwd=VISION_DIR, env=full_env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    return Server("vision-host", f"http://127.0.0.1:{port}", _proc=proc, _log=log, _tmp=[tmp])


IMAGE_TAG_GPU = "mlops-labs/vision-test:gpu"
_image: list[str] = []


def image(tag: str = IMAGE_TAG, dockerfile: str = "Dockerfile", buildargs: dict | None = None) -> str:
    """Build an image of the server once per session (the CPU one by default), with the
    models staged into model/."""
    import docker

    if tag in _image:
        return tag
    ctx = Path(tempfile.mkdtemp(prefix="vision-ctx-"))
    try:
        shutil.copytree(VISION_DIR, ctx, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "model"))
        (ctx / "model").mkdir()
        for f in MODELS.glob("vision-v*"):
            if f.suffix in (".onnx", ".json"):
                shutil.copy2(f, ctx / "model" / f.name)
        docker.from_env().images.build(path=str(ctx), tag=tag, dockerfile=dockerfile, buildargs=buildargs or {},
                                       rm=True, labels={LABEL: "1"})
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    _image.append(tag)
    return tag


def start_container(env: dict[str, str], tag: str | None = None) -> Server:
    import docker

    client = docker.from_env()
    c = client.containers.run(tag or image(), detach=True, name=f"vision-test-{uuid.uuid4().hex[:8]}",
                              labels={LABEL: "1"}, environment={"WEB_CONCURRENCY": "2", **env},
                              ports={"8000/tcp": ("127.0.0.1", None)})
    for _ in range(100):
        c.reload()
        binding = (c.attrs["NetworkSettings"]["Ports"] or {}).get("8000/tcp")
        if binding:
            return Server("vision-container", f"http://127.0.0.1:{binding[0]['HostPort']}", _container=c)
        time.sleep(0.05)
    c.remove(force=True)
    raise RuntimeError("vision-container: no port published")


def start(variant: str, env: dict | None = None) -> Server:
    env = {k: str(v) for k, v in (env or {}).items()}
    return start_host(env) if variant == "host" else start_container(env)


def remove_image() -> None:
    import docker

    for tag in _image:
        try:
            docker.from_env().images.remove(tag, force=True)
        except Exception:  # noqa: BLE001
            pass
    _image.clear()


def readyz_until(s: Server, text: str, timeout: float = 20):
    """GET /readyz until its body mentions ``text`` (or ``timeout`` s pass); the last response."""
    deadline = time.monotonic() + timeout
    while True:
        r = s.get("/readyz")
        if text in r.text or time.monotonic() > deadline:
            return r
        time.sleep(0.2)
