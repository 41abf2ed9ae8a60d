"""Sentiment model server (Flask, served by gunicorn).

Contract (shared with the BentoML variant, tested by tests/contract/):
  GET  /livez    200 while the process is up
  GET  /healthz  alias of /livez
  GET  /readyz   503 until the model is loaded, then 200
  GET  /metrics  Prometheus text format
  POST /predict  {"text": "..."} or {"texts": ["...", ...]}
                 -> label, score and model_version
Bad input gets a 4xx JSON error, never a 500.

Environment knobs:
  PORT                      listen port (default 8000; read by gunicorn.conf.py)
  MODEL_DIR                 where sentiment-<version>.joblib lives (default: ./model next to app/)
  MODEL_VERSION             which model to serve (default v1)
  MODEL_LOAD_DELAY_SECONDS  extra delay before the model counts as loaded (slow start)
  HANG_AFTER_SECONDS        after this long the server stops answering (liveness lesson)
  HANG_AFTER_READY_SECONDS  the same, counted from when the server first became ready
                            (every worker has its model): a grader can hang a pod a fixed
                            time after its probes let it in, whatever the model load took
  API_KEY                   if set, /predict needs "Authorization: Bearer <key>"
  DOWNSTREAM_LATENCY_MS     /predict first waits this long without using CPU, as a call to a
                            slow feature store or remote service would (I/O-bound load)
  PREDICT_ERROR_RATE        this fraction of /predict requests answer 500 (a faulty model
                            release); every 1/rate-th request, so the rate is exact
  MODEL_WORKING_SET_MB      the model holds this many MB of extra memory once loaded (a big
                            model's working set: what a memory limit must leave room for)
"""
from __future__ import annotations

import hmac
import json
import logging
import os
import threading
import time
from pathlib import Path

import joblib
from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from werkzeug.exceptions import HTTPException

log = logging.getLogger("sentiment")

MAX_TEXT_CHARS = 5_000        # one text
MAX_TEXTS = 64                # one batch
MAX_BODY_BYTES = 256 * 1024   # anything bigger gets 413

MODEL_DIR = Path(os.environ.get("MODEL_DIR", Path(__file__).resolve().parent.parent / "model"))
MODEL_VERSION = os.environ.get("MODEL_VERSION", "v1")
LOAD_DELAY = float(os.environ.get("MODEL_LOAD_DELAY_SECONDS", "0") or 0)
HANG_AFTER = float(os.environ.get("HANG_AFTER_SECONDS", "0") or 0)
HANG_AFTER_READY = float(os.environ.get("HANG_AFTER_READY_SECONDS", "0") or 0)
# gunicorn.conf.py sets SERVER_START_TIME in the master, so that a worker that
# gunicorn replaces keeps the same clock: a hung server stays hung.
START_TIME = float(os.environ.get("SERVER_START_TIME", time.time()))
API_KEY = os.environ.get("API_KEY", "").encode()
# Set by gunicorn.conf.py: a folder where each worker marks itself ready.
STATE_DIR = os.environ.get("SERVER_STATE_DIR", "")
WORKERS = int(os.environ.get("SERVER_WORKERS", "1"))
DOWNSTREAM_LATENCY = float(os.environ.get("DOWNSTREAM_LATENCY_MS", "0") or 0) / 1000
ERROR_RATE = min(max(float(os.environ.get("PREDICT_ERROR_RATE", "0") or 0), 0.0), 1.0)
WORKING_SET_MB = int(float(os.environ.get("MODEL_WORKING_SET_MB", "0") or 0))

REQUESTS = Counter("predict_requests_total", "Predict requests by outcome", ["status"])
PREDICTIONS = Counter("predictions_total", "Texts classified by label", ["label"])
LATENCY = Histogram("predict_latency_seconds", "Time spent in /predict",
                    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1))
# Summed over gunicorn's workers: the requests this server holds right now.
IN_FLIGHT = Gauge("inference_requests_in_flight", "Predict requests being served now", multiprocess_mode="livesum")
QUEUE_LENGTH = Gauge("inference_queue_length", "Texts waiting for the next model batch", multiprocess_mode="livesum")


class MicroBatcher:
    """Greedy micro-batching: request threads queue their texts; one thread
    classifies everything that is queued in a single predict_proba call.

    scikit-learn's per-call overhead dominates a one-sentence predict (~0.5 ms),
    while a batch of 32 costs ~0.03 ms per sentence. Nothing waits on a timer:
    at low load a batch holds one request, under load batches grow by
    themselves while the previous one is being computed.
    """

    def __init__(self, predict_many, max_batch: int = 256) -> None:
        self._predict_many = predict_many
        self._max_batch = max_batch
        self._queue: list[tuple[list[str], list, threading.Event]] = []
        self._cv = threading.Condition()
        threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()

    def submit(self, texts: list[str]) -> list[dict]:
        slot: list = []
        done = threading.Event()
        with self._cv:
            self._queue.append((texts, slot, done))
            QUEUE_LENGTH.set(sum(len(t) for t, _, _ in self._queue))
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
                batch, n = [], 0
                while self._queue and (not batch or n + len(self._queue[0][0]) <= self._max_batch):
                    item = self._queue.pop(0)
                    batch.append(item)
                    n += len(item[0])
                QUEUE_LENGTH.set(sum(len(t) for t, _, _ in self._queue))
            try:
                flat = [t for texts, _, _ in batch for t in texts]
                results = self._predict_many(flat)
                i = 0
                for texts, slot, _ in batch:
                    slot.append(results[i:i + len(texts)])
                    i += len(texts)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                for _, slot, _ in batch:
                    slot.append(exc)
            for _, _, done in batch:
                done.set()


class Model:
    """Loads the model in a background thread so that /livez answers at once."""

    def __init__(self) -> None:
        self.pipeline = None
        self.version = MODEL_VERSION
        self.sha256 = ""
        self.error: str | None = None
        self.ready = threading.Event()
        self.batcher = MicroBatcher(self._predict_now)

    def load(self) -> None:
        try:
            if LOAD_DELAY > 0:
                time.sleep(LOAD_DELAY)
            path = MODEL_DIR / f"sentiment-{MODEL_VERSION}.joblib"
            manifest = MODEL_DIR / f"sentiment-{MODEL_VERSION}.json"
            self.pipeline = joblib.load(path)
            if manifest.exists():
                self.sha256 = json.loads(manifest.read_text()).get("sha256", "")
            self.pipeline.predict_proba(["warm up"])
            if WORKING_SET_MB > 0:   # touched page by page, so it is resident (and counted by a memory limit)
                self.ballast = bytearray(WORKING_SET_MB * 2**20)
                for i in range(0, len(self.ballast), 4096):
                    self.ballast[i] = 1
            self.ready.set()
            if STATE_DIR:
                Path(STATE_DIR, f"ready-{os.getpid()}").touch()
            note_first_ready()
            log.info("model %s loaded from %s", MODEL_VERSION, path)
        except Exception as exc:  # reported by /readyz, never a crash loop of the web server
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("failed to load model: %s", self.error)

    def predict(self, texts: list[str]) -> list[dict]:
        return self.batcher.submit(texts)

    def _predict_now(self, texts: list[str]) -> list[dict]:
        probs = self.pipeline.predict_proba(texts)
        classes = self.pipeline.classes_
        out = []
        for row in probs:
            i = int(row.argmax())
            out.append({"label": str(classes[i]), "score": round(float(row[i]), 4)})
        return out


_first_ready_at: list[float] = []   # when the whole server first was ready (cached)


def note_first_ready() -> None:
    """Remember when the server first became ready. Under gunicorn the worker
    that completes the set writes it to STATE_DIR once (O_EXCL), so every
    worker, also one that gunicorn replaces later, uses the same moment."""
    if not STATE_DIR:
        _first_ready_at.append(time.time())
        return
    if len(list(Path(STATE_DIR).glob("ready-*"))) < WORKERS:
        return
    try:
        fd = os.open(Path(STATE_DIR, "first-ready-at"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as f:
        f.write(repr(time.time()))


def first_ready_at() -> float | None:
    if not _first_ready_at and STATE_DIR:
        try:
            _first_ready_at.append(float(Path(STATE_DIR, "first-ready-at").read_text()))
        except (FileNotFoundError, ValueError):
            return None
    return _first_ready_at[0] if _first_ready_at else None


def hang_due() -> bool:
    now = time.time()
    if HANG_AFTER > 0 and now - START_TIME > HANG_AFTER:
        return True
    if HANG_AFTER_READY > 0:
        ready_at = first_ready_at()
        return ready_at is not None and now - ready_at > HANG_AFTER_READY
    return False


model = Model()
threading.Thread(target=model.load, name="model-loader", daemon=True).start()

app = Flask(__name__)
app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES


def error(status: int, message: str, **headers: str) -> Response:
    body = json.dumps({"error": message, "status": status})
    return Response(body, status=status, mimetype="application/json", headers=headers)


@app.before_request
def hang_when_asked() -> None:
    if hang_due():
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
        return Response(json.dumps({"status": "ready", "model_version": model.version}),
                        mimetype="application/json")
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


def parse_texts(payload: object) -> list[str] | str:
    """The texts to classify, or an error message."""
    if not isinstance(payload, dict):
        return 'body must be a JSON object like {"text": "..."} or {"texts": ["..."]}'
    if ("text" in payload) == ("texts" in payload):
        return 'give exactly one of "text" or "texts"'
    texts = [payload["text"]] if "text" in payload else payload["texts"]
    if not isinstance(texts, list) or not texts:
        return '"texts" must be a non-empty list of strings'
    if len(texts) > MAX_TEXTS:
        return f'"texts" may hold at most {MAX_TEXTS} items'
    for t in texts:
        if not isinstance(t, str):
            return "every text must be a string"
        if len(t) > MAX_TEXT_CHARS:
            return f"a text may be at most {MAX_TEXT_CHARS} characters"
    return texts


@app.post("/predict")
def predict() -> Response:
    with IN_FLIGHT.track_inprogress():
        return _predict()


_served = [0]
_served_lock = threading.Lock()


def faulty_now() -> bool:
    """Every 1/ERROR_RATE-th request fails (per worker): an exact, not a sampled, rate."""
    if ERROR_RATE <= 0:
        return False
    with _served_lock:
        _served[0] += 1
        n = _served[0]
    return int(n * ERROR_RATE) != int((n - 1) * ERROR_RATE)


def _predict() -> Response:
    started = time.perf_counter()
    if not authorized():
        REQUESTS.labels("401").inc()
        return error(401, "missing or wrong API key", **{"WWW-Authenticate": "Bearer"})
    if not model.ready.is_set():
        REQUESTS.labels("503").inc()
        return error(503, "model is loading")
    payload = request.get_json(silent=True)
    texts = parse_texts(payload)
    if isinstance(texts, str):
        REQUESTS.labels("400").inc()
        return error(400, texts)
    if DOWNSTREAM_LATENCY > 0:
        time.sleep(DOWNSTREAM_LATENCY)   # waiting on I/O: this worker is busy, the CPU is not
    if faulty_now():
        REQUESTS.labels("500").inc()
        return error(500, f"model {model.version} failed on this input")
    results = model.predict(texts)
    for r in results:
        PREDICTIONS.labels(r["label"]).inc()
    if "text" in payload:
        body = {**results[0], "model_version": model.version}
    else:
        body = {"predictions": results, "model_version": model.version}
    REQUESTS.labels("200").inc()
    LATENCY.observe(time.perf_counter() - started)
    return Response(json.dumps(body), mimetype="application/json")
