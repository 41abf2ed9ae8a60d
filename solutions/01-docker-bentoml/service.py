"""Sentiment model server (BentoML 1.4).

The same contract as the Flask + gunicorn server in ../01-docker (tested by
tests/contract/):
  GET  /livez    200 while the process is up          (BentoML's own route)
  GET  /healthz  alias of /livez                      (BentoML's own route)
  GET  /readyz   503 until the model is loaded, then 200
                 (BentoML's own route, asking SentimentService.__is_ready__)
  GET  /metrics  Prometheus text format, every worker  (BentoML's own route)
  POST /predict  {"text": "..."} or {"texts": ["...", ...]}
                 -> label, score and model_version    (the Starlette app below)
Bad input gets a 4xx JSON error, never a 500.

Run it with:  bentoml serve service:SentimentService --host 127.0.0.1 --port 8000

Environment knobs:
  MODEL_DIR                 where sentiment-<version>.joblib lives (default: ./model)
  MODEL_VERSION             which model to serve (default v1)
  MODEL_LOAD_DELAY_SECONDS  extra delay before the model counts as loaded (slow start)
  HANG_AFTER_SECONDS        after this long the server stops answering (liveness lesson)
  HANG_AFTER_READY_SECONDS  the same, counted from when the server first became ready
                            (its first worker had the model loaded): a grader can hang a
                            pod a fixed time after its probes let it in
  API_KEY                   if set, /predict needs "Authorization: Bearer <key>"
  DOWNSTREAM_LATENCY_MS     /predict first waits this long without using CPU, as a call to a
                            slow feature store would (Lab 05's I/O-bound load)
  PREDICT_ERROR_RATE        this fraction of /predict requests answer 500, exactly (every
                            1/rate-th request of a worker), not sampled
  MODEL_WORKING_SET_MB      the model holds this many MB of extra memory once loaded
  WEB_CONCURRENCY           worker processes (default: one per CPU this process may use)
  PORT                      listen port when `bentoml serve` gets no --port (default 8000)

Why /predict is a plain Starlette route and not a @bentoml.api method: the
contract wants {"error": ...} JSON for every bad input, a body limit and a
choice between two input shapes. A @bentoml.api method validates with
pydantic, has no body limit, and some of its error answers are a JSON list,
not an object. The route also runs the ~0.5 ms predict on the event loop, with
no thread hop: the hot path stays short.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import bentoml
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

log = logging.getLogger("bentoml.sentiment")

MAX_TEXT_CHARS = 5_000        # one text
MAX_TEXTS = 64                # one batch
MAX_BODY_BYTES = 256 * 1024   # anything bigger gets 413
# Every worker loads its own copy of the model, and /readyz answers from
# whichever worker takes the connection: one worker may say "ready" a moment
# before its sibling is. A /predict that reaches a worker still loading waits
# this long for it instead of failing at once.
READY_WAIT_SECONDS = 10

MODEL_DIR = Path(os.environ.get("MODEL_DIR") or Path(__file__).resolve().parent / "model")
MODEL_VERSION = os.environ.get("MODEL_VERSION") or "v1"
LOAD_DELAY = float(os.environ.get("MODEL_LOAD_DELAY_SECONDS") or 0)
HANG_AFTER = float(os.environ.get("HANG_AFTER_SECONDS") or 0)
HANG_AFTER_READY = float(os.environ.get("HANG_AFTER_READY_SECONDS") or 0)
API_KEY = (os.environ.get("API_KEY") or "").encode()
WORKERS = int(os.environ.get("WEB_CONCURRENCY") or 0) or "cpu_count"
PORT = int(os.environ.get("PORT") or 8000)  # the default of `bentoml serve` without --port
DOWNSTREAM_LATENCY = float(os.environ.get("DOWNSTREAM_LATENCY_MS") or 0) / 1000
ERROR_RATE = min(max(float(os.environ.get("PREDICT_ERROR_RATE") or 0), 0.0), 1.0)
WORKING_SET_MB = int(float(os.environ.get("MODEL_WORKING_SET_MB") or 0))

# `bentoml serve` imports this module in its supervisor process first and
# then starts the workers with a copy of its environment. Setting the clock
# here gives every worker, also one that the supervisor restarts, the same
# start time: a hung server stays hung until it is restarted as a whole.
os.environ.setdefault("SENTIMENT_SERVER_START_TIME", str(time.time()))
START_TIME = float(os.environ["SENTIMENT_SERVER_START_TIME"])
# The same way, one folder for the whole server where the first worker that
# has its model writes when that was (HANG_AFTER_READY_SECONDS counts from it).
if "SENTIMENT_SERVER_STATE_DIR" not in os.environ:
    try:
        os.environ["SENTIMENT_SERVER_STATE_DIR"] = tempfile.mkdtemp(prefix="sentiment-state-")
    except OSError:   # no writable temp folder (read-only root): only this knob stops working
        os.environ["SENTIMENT_SERVER_STATE_DIR"] = ""
STATE_DIR = Path(os.environ["SENTIMENT_SERVER_STATE_DIR"]) if os.environ["SENTIMENT_SERVER_STATE_DIR"] else None


class Model:
    """Loads the model in a background thread so that /livez answers at once."""

    def __init__(self) -> None:
        self.pipeline = None
        self.classes: list[str] = []
        self.version = MODEL_VERSION
        self.sha256 = ""
        self.error: str | None = None
        self.ready = threading.Event()
        self._started = False

    def start_loading(self) -> None:
        if not self._started:
            self._started = True
            threading.Thread(target=self._load, name="model-loader", daemon=True).start()

    def _load(self) -> None:
        try:
            import joblib  # here, not at the top: the supervisor process never needs it

            if LOAD_DELAY > 0:
                time.sleep(LOAD_DELAY)
            path = MODEL_DIR / f"sentiment-{MODEL_VERSION}.joblib"
            manifest = MODEL_DIR / f"sentiment-{MODEL_VERSION}.json"
            self.pipeline = joblib.load(path)
            self.classes = [str(c) for c in self.pipeline.classes_]
            if manifest.exists():
                self.sha256 = json.loads(manifest.read_text()).get("sha256", "")
            self.pipeline.predict_proba(["warm up"])
            if WORKING_SET_MB > 0:   # touched page by page, so it is resident (and counted by a memory limit)
                self.ballast = bytearray(WORKING_SET_MB * 2**20)
                for i in range(0, len(self.ballast), 4096):
                    self.ballast[i] = 1
            self.ready.set()
            note_first_ready()
            log.info("model %s loaded from %s", MODEL_VERSION, path)
        except Exception as exc:  # reported by /readyz, never a crash loop of the server
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("failed to load model: %s", self.error)

    async def wait_ready(self, timeout: float) -> bool:
        """Wait (without blocking the event loop) until the model is loaded."""
        deadline = time.monotonic() + timeout
        while not self.ready.is_set() and self.error is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.ready.is_set()

    def predict(self, texts: list[str]) -> list[dict]:
        probs = self.pipeline.predict_proba(texts)
        out = []
        for row in probs:
            i = int(row.argmax())
            out.append({"label": self.classes[i], "score": round(float(row[i]), 4)})
        return out


MODEL = Model()


class LoopBatcher:
    """Greedy micro-batching on the event loop: requests that reach predict in
    the same loop iteration are classified with one predict_proba call (the
    per-call overhead of scikit-learn is ~0.5 ms; a batch of 32 costs ~0.03 ms
    per text). No timer: at low load a batch holds one request."""

    def __init__(self, predict_many) -> None:
        self._predict_many = predict_many
        self._queue: list[tuple[list[str], asyncio.Future]] = []

    def __len__(self) -> int:
        return sum(len(texts) for texts, _ in self._queue)

    async def submit(self, texts: list[str]) -> list[dict]:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.append((texts, fut))
        if len(self._queue) == 1:
            loop.call_soon(self._flush)
        return await fut

    def _flush(self) -> None:
        batch, self._queue = self._queue, []
        try:
            results = self._predict_many([t for texts, _ in batch for t in texts])
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        i = 0
        for texts, fut in batch:
            if not fut.done():
                fut.set_result(results[i:i + len(texts)])
            i += len(texts)


BATCHER = LoopBatcher(MODEL.predict)


class Metrics:
    """Our own Prometheus series, next to BentoML's request metrics.

    Created in the worker (from SentimentService.__init__), where BentoML has
    set PROMETHEUS_MULTIPROC_DIR, so /metrics sums them over all workers."""

    predictions = None
    in_flight = None
    queue_length = None

    @classmethod
    def setup(cls) -> None:
        from prometheus_client import Counter, Gauge

        if cls.predictions is None:
            cls.predictions = Counter("sentiment_predictions_total",
                                      "Texts classified by label", ["label"])
            # Summed over the workers (livesum): what the whole server holds right now.
            # Lab 05's HPA scales on it, through Prometheus and the custom metrics API.
            cls.in_flight = Gauge("inference_requests_in_flight", "Predict requests being served now",
                                  multiprocess_mode="livesum")
            cls.queue_length = Gauge("inference_queue_length", "Texts waiting for the next model batch",
                                     multiprocess_mode="livesum")


# ---------------------------------------------------------------- /predict

def error(status: int, message: str, **headers: str) -> Response:
    body = json.dumps({"error": message, "status": status})
    return Response(body, status_code=status, media_type="application/json", headers=headers)


def authorized(request: Request) -> bool:
    if not API_KEY:
        return True
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), API_KEY)


async def read_body(request: Request) -> bytes | None:
    """The request body, or None when it is over MAX_BODY_BYTES."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        # Read (and drop) a modest overshoot so that the client, still sending,
        # gets our 413 instead of a connection reset; h11 closes the rest.
        if int(declared) <= 16 * MAX_BODY_BYTES:
            async for _ in request.stream():
                pass
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


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


_served = [0]   # /predict requests of this worker, for PREDICT_ERROR_RATE


def fails_now() -> bool:
    """Every 1/ERROR_RATE-th request fails (per worker): an exact, not a sampled, rate."""
    if ERROR_RATE <= 0:
        return False
    _served[0] += 1
    n = _served[0]
    return int(n * ERROR_RATE) != int((n - 1) * ERROR_RATE)


async def predict(request: Request) -> Response:
    Metrics.in_flight.inc()
    try:
        return await _predict(request)
    finally:
        Metrics.in_flight.dec()


async def _predict(request: Request) -> Response:
    if not authorized(request):
        return error(401, "missing or wrong API key", **{"WWW-Authenticate": "Bearer"})
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        return error(415, 'send JSON with "Content-Type: application/json"')
    try:
        body = await read_body(request)
    except ClientDisconnect:
        return error(400, "the client went away")
    if body is None:
        return error(413, f"the body may be at most {MAX_BODY_BYTES} bytes")
    try:
        payload = json.loads(body)
    except ValueError:  # also UnicodeDecodeError
        return error(400, "the body is not valid JSON")
    texts = parse_texts(payload)
    if isinstance(texts, str):
        return error(400, texts)
    if not MODEL.ready.is_set() and not await MODEL.wait_ready(READY_WAIT_SECONDS):
        return error(503, MODEL.error or "model is loading")
    if DOWNSTREAM_LATENCY > 0:
        await asyncio.sleep(DOWNSTREAM_LATENCY)   # waiting on I/O: this request is in flight, the CPU is idle
    if fails_now():
        return error(500, f"model {MODEL.version} failed on this input")
    # On the event loop (cheaper than a hop to a thread), batched with the
    # requests that arrived in the same loop iteration.
    Metrics.queue_length.set(len(BATCHER) + len(texts))
    results = await BATCHER.submit(texts)
    Metrics.queue_length.set(len(BATCHER))
    for r in results:
        Metrics.predictions.labels(r["label"]).inc()
    if "text" in payload:
        out = {**results[0], "model_version": MODEL.version}
    else:
        out = {"predictions": results, "model_version": MODEL.version}
    return Response(json.dumps(out), media_type="application/json")


async def http_error(request: Request, exc: HTTPException) -> Response:
    return error(exc.status_code, exc.detail, **(exc.headers or {}))


api = Starlette(routes=[Route("/predict", predict, methods=["POST"])],
                exception_handlers={HTTPException: http_error})


# ------------------------------------------------------ HANG_AFTER_SECONDS

_first_ready_at: list[float] = []   # cached once read


def note_first_ready() -> None:
    """Write, once for the whole server (O_EXCL), when a worker first had its model."""
    if STATE_DIR is None:
        _first_ready_at.append(time.time())   # one process's own view
        return
    try:
        fd = os.open(STATE_DIR / "first-ready-at", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    except OSError as exc:   # the folder is gone: HANG_AFTER_READY_SECONDS cannot work, serving can
        log.warning("cannot record the ready time: %s", exc)
        return
    with os.fdopen(fd, "w") as f:
        f.write(repr(time.time()))


def first_ready_at() -> float | None:
    if not _first_ready_at and STATE_DIR is not None:
        try:
            _first_ready_at.append(float((STATE_DIR / "first-ready-at").read_text()))
        except (OSError, ValueError):
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


class HangAfter:
    """ASGI middleware: once HANG_AFTER_SECONDS have passed since the server
    started (or HANG_AFTER_READY_SECONDS since it first was ready), never
    answer any request again (/livez included), so that only a liveness probe
    that restarts the container helps."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and hang_due():
            await asyncio.Event().wait()
        await self.app(scope, receive, send)


# ----------------------------------------------------------------- service

@bentoml.asgi_app(api, path="/")
@bentoml.service(
    workers=WORKERS,                         # BentoML's default is 1; `bentoml serve` has no --workers
    http={"port": PORT},                     # used when `bentoml serve` has no --port
    traffic={"timeout": 30},                 # like gunicorn's worker timeout
    logging={"access": {"enabled": False}},  # no log line per request (the Flask server has none)
    # BentoML wraps every request in OpenTelemetry spans even though it samples
    # none of them by default (tracing.sample_rate 0): ~20% of a /predict.
    # Skip it; drop this line when you configure a tracing exporter.
    tracing={"excluded_urls": ".*"},
)
class SentimentService:
    def __init__(self) -> None:
        # Runs once per worker, before it accepts connections: it must not block.
        Metrics.setup()
        MODEL.start_loading()

    async def __is_ready__(self) -> bool:
        """BentoML's GET /readyz answers 503 while this is False."""
        return MODEL.ready.is_set()


SentimentService.add_asgi_middleware(HangAfter)
