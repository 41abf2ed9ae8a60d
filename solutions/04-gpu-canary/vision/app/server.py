"""Vision model server (Flask, served by gunicorn): ImageNet classification
with an ONNX model run by onnxruntime, on the GPU when there is one.

Contract (the sentiment server's, lab 01, plus images):
  GET  /livez    200 while the process is up
  GET  /healthz  alias of /livez
  GET  /readyz   503 until every worker has loaded the model, then 200
  GET  /metrics  Prometheus text format: requests, latency, inference time,
                 batch sizes and model_info{model_version, provider}
  POST /predict  an image: raw bytes (Content-Type image/jpeg, image/png or
                 image/webp) or JSON {"image_b64": "<base64>"}
                 -> {"predictions": [{"label", "class_id", "score"} x5],
                     "model_version": "v1", "provider": "CPUExecutionProvider"}
Bad input gets a 4xx JSON error, never a 500 (FAIL_RATE's 500s are on purpose).

Environment knobs:
  PORT                      listen port (default 8000; read by gunicorn.conf.py)
  MODEL_DIR                 where vision-<version>.onnx and .json live (default: ./model next to app/)
  MODEL_VERSION             which model to serve: v1 (stable) or v2 (canary); default v1
  MODEL_LOAD_DELAY_SECONDS  extra delay before the model counts as loaded (slow start)
  HANG_AFTER_SECONDS        after this long the server stops answering (liveness lesson)
  API_KEY                   if set, /predict needs "Authorization: Bearer <key>"
  FAIL_RATE                 0..1: that fraction of valid /predict requests get a 500
                            (a deliberately bad canary). Deterministic: each worker
                            fails request n when floor(n*rate) > floor((n-1)*rate),
                            so FAIL_RATE=0.5 fails every 2nd request of a worker.
  EXECUTION_PROVIDER        auto (default: CUDA when onnxruntime-gpu sees a GPU, else CPU),
                            cpu, or cuda (fail to load rather than fall back to the CPU)
  MAX_BATCH                 most images one inference call takes (default 8)
  MAX_BODY_BYTES            larger requests get 413 (default 8 MiB)
  ORT_INTRA_OP_THREADS      onnxruntime threads per worker (default: CPUs / workers)
  ORT_DISABLE_TELEMETRY     1 (set here and in the images): onnxruntime's telemetry stays off
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import json
import logging
import os
import re
import threading
import time
import warnings
from pathlib import Path

# onnxruntime >= 1.29 sends usage telemetry to Microsoft from Linux too, unless
# this is set before it initializes. A model server has no business phoning home.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from flask import Flask, Response, request  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest  # noqa: E402
from werkzeug.exceptions import HTTPException  # noqa: E402

log = logging.getLogger("vision")

TOP_K = 5
IMAGE_FORMATS = ("JPEG", "PNG", "WEBP")           # what Pillow may decode: nothing exotic
RAW_TYPES = {"image/jpeg", "image/jpg", "image/png", "image/webp", "application/octet-stream"}
MAX_PIXELS = 25_000_000                           # bigger (decompression bombs) get a 413
MIN_SIDE = 8                                      # smaller images are refused (400)

MODEL_DIR = Path(os.environ.get("MODEL_DIR", Path(__file__).resolve().parent.parent / "model"))
MODEL_VERSION = os.environ.get("MODEL_VERSION", "v1")
LOAD_DELAY = float(os.environ.get("MODEL_LOAD_DELAY_SECONDS", "0") or 0)
HANG_AFTER = float(os.environ.get("HANG_AFTER_SECONDS", "0") or 0)
FAIL_RATE = min(max(float(os.environ.get("FAIL_RATE", "0") or 0), 0.0), 1.0)
EXECUTION_PROVIDER = os.environ.get("EXECUTION_PROVIDER", "auto").strip().lower()
MAX_BATCH = max(1, int(os.environ.get("MAX_BATCH", "8")))
MAX_BODY_BYTES = int(os.environ.get("MAX_BODY_BYTES", str(8 * 1024 * 1024)))
# gunicorn.conf.py sets SERVER_START_TIME in the master, so that a worker that
# gunicorn replaces keeps the same clock: a hung server stays hung.
START_TIME = float(os.environ.get("SERVER_START_TIME", time.time()))
API_KEY = os.environ.get("API_KEY", "").encode()
# Set by gunicorn.conf.py: a folder where each worker marks itself ready.
STATE_DIR = os.environ.get("SERVER_STATE_DIR", "")
WORKERS = int(os.environ.get("SERVER_WORKERS", "1"))

Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.simplefilter("error", Image.DecompressionBombWarning)

REQUESTS = Counter("predict_requests_total", "Predict requests by outcome", ["status"])
LATENCY = Histogram("predict_latency_seconds", "Time spent in /predict (decode + inference)",
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5))
INFERENCE = Histogram("inference_latency_seconds", "Time of one onnxruntime run (one batch)",
                      ["provider"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1))
BATCH = Histogram("inference_batch_size", "Images per onnxruntime run", buckets=(1, 2, 4, 8, 16, 32))
INFO = Gauge("model_info", "1 for the model this worker serves and the execution provider it runs on",
             ["model_version", "provider"], multiprocess_mode="max")


class BadInput(ValueError):
    """The client's fault: answered with this status and message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def choose_providers() -> list[str]:
    available = ort.get_available_providers()
    if EXECUTION_PROVIDER == "cpu":
        return ["CPUExecutionProvider"]
    if EXECUTION_PROVIDER == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise RuntimeError("EXECUTION_PROVIDER=cuda but this onnxruntime has no CUDA provider "
                               f"(available: {available}); install onnxruntime-gpu")
        return ["CUDAExecutionProvider"]
    if EXECUTION_PROVIDER != "auto":
        raise RuntimeError(f"EXECUTION_PROVIDER must be auto, cpu or cuda, not {EXECUTION_PROVIDER!r}")
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


class MicroBatcher:
    """Greedy micro-batching, as in the sentiment server: request threads queue
    their images and one thread runs everything queued in one onnxruntime call.
    No timer: at low load a batch holds one image, under load batches grow while
    the previous one runs. It also keeps one inference at a time per worker, so
    the workers' onnxruntime thread pools do not fight over the CPUs."""

    def __init__(self, run_batch, max_batch: int) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: list[tuple[np.ndarray, list, threading.Event]] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()

    def submit(self, image: np.ndarray) -> np.ndarray:
        slot: list = []
        done = threading.Event()
        with self._cv:
            self._queue.append((image, slot, done))
            self._cv.notify()
        done.wait()
        if isinstance(slot[0], BaseException):
            raise slot[0]
        return slot[0]

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue:
                    self._cv.wait()
                batch = self._queue[:self._max_batch]
                del self._queue[:self._max_batch]
            try:
                probs = self._run_batch(np.stack([img for img, _, _ in batch]))
                for (_, slot, _), row in zip(batch, probs):
                    slot.append(row)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, slot, _ in batch:
                    slot.append(exc)
            for _, _, done in batch:
                done.set()


class Model:
    """Loads the model in a background thread so that /livez answers at once."""

    def __init__(self) -> None:
        self.session: ort.InferenceSession | None = None
        self.version = MODEL_VERSION
        self.provider = ""
        self.sha256 = ""
        self.size = 224
        self.labels: list[str] = []
        self.input_name = "input"
        self.error: str | None = None
        self.ready = threading.Event()
        self.batcher = MicroBatcher(self._run_batch, MAX_BATCH)

    def load(self) -> None:
        try:
            if LOAD_DELAY > 0:
                time.sleep(LOAD_DELAY)
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", MODEL_VERSION):
                raise ValueError(f"bad MODEL_VERSION {MODEL_VERSION!r}")
            path = MODEL_DIR / f"vision-{MODEL_VERSION}.onnx"
            manifest_path = MODEL_DIR / f"vision-{MODEL_VERSION}.json"
            data = path.read_bytes()
            manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
            self.sha256 = hashlib.sha256(data).hexdigest()
            if manifest.get("sha256") and manifest["sha256"] != self.sha256:
                raise ValueError(f"{path.name}: sha256 {self.sha256[:12]} does not match the manifest's "
                                 f"{manifest['sha256'][:12]}")

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = default_threads()
            opts.inter_op_num_threads = 1
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(data, sess_options=opts, providers=choose_providers())
            inp = session.get_inputs()[0]
            self.input_name = inp.name
            self.size = int(manifest.get("input", {}).get("size") or inp.shape[-1])
            n_out = session.get_outputs()[0].shape[-1]
            labels = manifest.get("labels") or []
            self.labels = labels if len(labels) == n_out else [f"class_{i}" for i in range(n_out)]
            norm = manifest.get("normalization", {})
            self.mean = np.asarray(norm.get("mean", [0.5] * 3), np.float32).reshape(3, 1, 1)
            self.std = np.asarray(norm.get("std", [0.5] * 3), np.float32).reshape(3, 1, 1)
            self.session = session
            # The provider actually used: onnxruntime falls back to the CPU (with a
            # warning) when onnxruntime-gpu is installed but no GPU is visible.
            self.provider = session.get_providers()[0]
            if EXECUTION_PROVIDER == "cuda" and self.provider != "CUDAExecutionProvider":
                raise RuntimeError(f"EXECUTION_PROVIDER=cuda but the session runs on {self.provider}")
            session.run(None, {self.input_name: np.zeros((1, 3, self.size, self.size), np.float32)})  # warm up
            INFO.labels(self.version, self.provider).set(1)
            self.ready.set()
            if STATE_DIR:
                Path(STATE_DIR, f"ready-{os.getpid()}").touch()
            log.warning("model %s (%s px) loaded from %s, provider %s, %d threads",
                        MODEL_VERSION, self.size, path, self.provider, opts.intra_op_num_threads)
        except Exception as exc:  # reported by /readyz, never a crash loop of the web server
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("failed to load model: %s", self.error)

    def _run_batch(self, batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        logits = self.session.run(None, {self.input_name: batch})[0]
        INFERENCE.labels(self.provider).observe(time.perf_counter() - started)
        BATCH.observe(len(batch))
        logits = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        return e / e.sum(axis=1, keepdims=True)

    def preprocess(self, raw: bytes) -> np.ndarray:
        """Image bytes -> float32 CHW: shorter side resized to the model's size,
        center crop, pixel/255 normalized with the manifest's mean/std."""
        if not raw:
            raise BadInput("empty image")
        s = self.size
        try:
            img = Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS)
            w, h = img.size
            if min(w, h) < MIN_SIDE:
                raise BadInput(f"image is too small: {w}x{h} (min side {MIN_SIDE} px)")
            img.draft("RGB", (s, s))   # JPEG: decode at a reduced scale, much faster for big photos
            img = ImageOps.exif_transpose(img).convert("RGB")
            w, h = img.size
            scale = s / min(w, h)
            nw, nh = max(s, round(w * scale)), max(s, round(h * scale))
            img = img.resize((nw, nh), Image.Resampling.BILINEAR)
            left, top = (nw - s) // 2, (nh - s) // 2
            img = img.crop((left, top, left + s, top + s))
        except BadInput:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadInput(f"image has more than {MAX_PIXELS} pixels", 413) from None
        except Exception as exc:  # noqa: BLE001 - any decoder error on client bytes is a 400
            raise BadInput(f"not a decodable image ({', '.join(IMAGE_FORMATS)}): {type(exc).__name__}") from None
        x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (x - self.mean) / self.std

    def predict(self, image: np.ndarray) -> list[dict]:
        probs = self.batcher.submit(image)
        top = np.argsort(-probs)[:TOP_K]
        return [{"label": self.labels[i], "class_id": int(i), "score": round(float(probs[i]), 5)}
                for i in top]


class FailureInjector:
    """FAIL_RATE: deterministic, per worker. Request n (1, 2, ...) fails when
    floor(n * rate) > floor((n - 1) * rate): exactly rate of every worker's
    requests fail, spread evenly (0.5: every 2nd, 0.25: every 4th, 0.1: every 10th)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.n = 0
        self._lock = threading.Lock()

    def should_fail(self) -> bool:
        if self.rate <= 0:
            return False
        with self._lock:
            self.n += 1
            return int(self.n * self.rate) > int((self.n - 1) * self.rate)


def default_threads() -> int:
    if os.environ.get("ORT_INTRA_OP_THREADS"):
        return max(1, int(os.environ["ORT_INTRA_OP_THREADS"]))
    cpus = int(os.environ.get("SERVER_CPUS", "0")) or len(os.sched_getaffinity(0))
    return max(1, cpus // max(1, WORKERS))


model = Model()
failures = FailureInjector(FAIL_RATE)
threading.Thread(target=model.load, name="model-loader", daemon=True).start()

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES


def error(status: int, message: str, **headers: str) -> Response:
    body = json.dumps({"error": message, "status": status})
    return Response(body, status=status, mimetype="application/json", headers=headers)


@app.before_request
def hang_when_asked() -> None:
    if HANG_AFTER > 0 and time.time() - START_TIME > HANG_AFTER:
        threading.Event().wait()  # never answers: only a liveness restart helps


@app.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    return error(exc.code or 500, exc.description or exc.name)


@app.errorhandler(Exception)
def unexpected(exc: Exception) -> Response:
    log.exception("unexpected error")
    return error(500, "internal error")


@app.get("/livez")
@app.get("/healthz")
def livez() -> Response:
    return Response('{"status":"ok"}', mimetype="application/json")


def server_ready() -> bool:
    """Ready when every worker has its model: gunicorn spreads requests over
    workers, so one loaded worker is not enough (see gunicorn.conf.py)."""
    if not model.ready.is_set():
        return False
    if not STATE_DIR:
        return True
    return len(list(Path(STATE_DIR).glob("ready-*"))) >= WORKERS


@app.get("/readyz")
def readyz() -> Response:
    if server_ready():
        return Response(json.dumps({"status": "ready", "model_version": model.version,
                                    "provider": model.provider}), mimetype="application/json")
    return error(503, model.error or "model is loading")


@app.get("/metrics")
def metrics() -> Response:
    from prometheus_client import CollectorRegistry, multiprocess

    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:   # under gunicorn: every worker's counts
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), mimetype=CONTENT_TYPE_LATEST)


def authorized() -> bool:
    if not API_KEY:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), API_KEY)


def image_bytes() -> bytes:
    """The request's image, or BadInput."""
    ctype = (request.mimetype or "").lower()
    if ctype == "application/json":
        payload = request.get_json(silent=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("image_b64"), str):
            raise BadInput('JSON body must be an object like {"image_b64": "<base64 image>"}')
        text = payload["image_b64"].strip()
        if text.startswith("data:") and "," in text:         # a data: URL is fine too
            text = text.split(",", 1)[1]
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise BadInput('"image_b64" is not valid base64') from None
    if ctype in RAW_TYPES:
        return request.get_data(cache=False)
    raise BadInput(f"unsupported Content-Type {ctype or '(none)'!r}: send image/jpeg, image/png, "
                   'image/webp, or application/json with {"image_b64": ...}', 415)


@app.post("/predict")
def predict() -> Response:
    started = time.perf_counter()
    if not authorized():
        REQUESTS.labels("401").inc()
        return error(401, "missing or wrong API key", **{"WWW-Authenticate": "Bearer"})
    if not model.ready.is_set():
        REQUESTS.labels("503").inc()
        return error(503, "model is loading")
    try:
        image = model.preprocess(image_bytes())
    except BadInput as exc:
        REQUESTS.labels(str(exc.status)).inc()
        return error(exc.status, str(exc))
    except HTTPException as exc:              # 413 from MAX_CONTENT_LENGTH: counted, then answered
        REQUESTS.labels(str(exc.code)).inc()
        raise
    if failures.should_fail():                # FAIL_RATE: a deliberately bad canary
        REQUESTS.labels("500").inc()
        # model_version in the body tells a canary analysis which backend failed
        body = json.dumps({"error": "injected failure (FAIL_RATE)", "status": 500,
                           "model_version": model.version})
        return Response(body, status=500, mimetype="application/json")
    predictions = model.predict(image)
    body = {"predictions": predictions, "model_version": model.version, "provider": model.provider}
    REQUESTS.labels("200").inc()
    LATENCY.observe(time.perf_counter() - started)
    return Response(json.dumps(body), mimetype="application/json")
