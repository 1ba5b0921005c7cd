#!/usr/bin/env python3
"""Inference worker for the ML example: a Keras model on TensorFlow.

Spawned by the Node front (front/server.js), which owns it, queues requests and
sends them as batches, one message at a time; speaks JSON lines:
  stdin : {"op": "batch", "requests": [{"id": 1, "inputs": [[x0, x1, x2, x3], ...], "t_us": T}, ...]}
          {"op": "predict", "id": 1, "inputs": [...], "delay_ms": 0}     (a batch of one)
          {"id": 2, "op": "ping"}
  stdout: {"event": "ready", "backend": "tensorflow", "inputs": 4, "dtype": "float32", ...}   (once)
          {"id": 1, "outputs": [...], "cached": N, "backend": "tensorflow"}   one line per request,
          {"id": 1, "error": "...", "status": 400|500}                        in the batch's order
          {"id": 2, "pong": true, "predictions": N, "cache": {...}, "metrics": {...}, "model": {...}}
          {"event": "reload", "ok": true|false, ...}                          (after a SIGHUP)
          {"id": null, "error": "bad request line: ...", "status": 400}       (a line we cannot read)
Every line is strict JSON (no NaN or Infinity), written on a private copy of the
original stdout: file descriptor 1 itself is pointed at stderr at start, so a
library that prints can never put a line the front would have to parse.
Logs go to stderr as JSON lines with a UTC timestamp ("t"), like the front's.

Batching: the front collects what is queued (up to ML_BATCH_MAX_ROWS rows; with
ML_BATCH_WAIT_MS > 0 an idle worker's batch waits that long for more) into one message; the
worker checks each request on its own (a bad one gets its 400 and the others go
on), runs every row that is not in the cache through ONE model call, and answers
each request with its own rows. A single row is run as a batch of two (padded
with zeros): TensorFlow's one-row kernel sums in another order, so a row's answer
would otherwise depend on what it was batched with (by up to 4e-6 here). Metrics
(rows per batch, queue wait from the front's arrival to the model call, model
time; Prometheus-style histograms) come back with every pong; t_us is the front's
CLOCK_MONOTONIC in microseconds, the clock time.monotonic_ns() reads too.

Inputs: finite numbers, and within the range of the model's input dtype (float32:
+-3.4028235e38). 1e39 is finite in JSON's float64 but inf in float32, where the
model's output would be NaN: such a request is refused (400). An output that is
not finite anyway (a model that overflows) fails its request with 500, is not
cached, and the worker goes on.

The model (ML_MODEL, default /opt/ml/model/model.keras) is built at image build
time by model/build_model.py. Loading it is what readiness waits for: the
"ready" line is sent only once a first prediction has run.

TensorFlow's thread pools are sized from ML_THREADS when set (examples/k8s/ml.yaml
sets it from the pod's CPU request), else from the container's CPU limit (cgroup
v2 cpu.max, or v1's cfs quota), else from the CPUs this process may run on.

Results are cached per row in an LRU bounded by bytes (ML_CACHE_BYTES, default
8 MiB; 0 disables it).

Signals come from the front (kai-init signals only its main child, the front) and
are handled between messages, never in the middle of a batch:
  stdin EOF       the front's stop, sent once it has nothing left for us: exit 0
                  at once (os._exit: TensorFlow's teardown would take seconds)
  SIGHUP          relayed by the front: load ML_MODEL again (a new file at that
                  path, e.g. a mounted volume updated in place), run it once, then
                  swap it in and empty the cache; if it fails to load, keep
                  serving the previous model and say so
  SIGTERM/SIGINT  from anyone else (a Ctrl-C on a terminal): finish the current
                  message, then exit 0
"""
import hashlib
import json
import math
import os
import select
import signal
import sys
import time
from datetime import datetime, timezone

from cachetools import LRUCache

# delay_ms is a test knob (slow inference on demand); the front accepts it only with
# ML_DEBUG_DELAY=1 and bounds it; the worker bounds it again.
MAX_DELAY_MS = 10_000
# The longest line the worker buffers: far above any batch the front sends.
MAX_LINE = 16 << 20
DEFAULT_MODEL = "/opt/ml/model/model.keras"

STATE = {"predictions": 0, "reloads": 0, "signals": []}
PROTO = None  # the protocol's stdout, set by main()


def now_iso():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log(msg, **fields):
    sys.stderr.write(json.dumps({"t": now_iso(), "pid": os.getpid(), "who": "worker", "msg": msg, **fields}) + "\n")
    sys.stderr.flush()


def send(*objs):
    """Write answers as strict JSON lines. A value JSON cannot carry (NaN, inf) that
    escaped every check still never reaches the front as an unreadable line."""
    lines = []
    for obj in objs:
        try:
            lines.append(json.dumps(obj, allow_nan=False))
        except ValueError as exc:
            log("answer not representable in JSON", id=obj.get("id"), error=str(exc))
            lines.append(json.dumps({"id": obj.get("id"), "error": "internal error: answer not representable",
                                     "status": 500}))
    PROTO.write("".join(line + "\n" for line in lines))
    PROTO.flush()


def cpu_limit():
    """CPUs this container may use: the cgroup quota if there is one, else the
    CPUs we may run on. A Kubernetes limit of 2 on a 64-core node gives 2."""
    n = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            n = min(n, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        try:
            with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
                quota = int(f.read())
            with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
                period = int(f.read())
            if quota > 0 and period > 0:
                n = min(n, math.ceil(quota / period))
        except (OSError, ValueError):
            pass
    return max(1, n)


def positive_int_env(name, default):
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        log(f"{name} must be a non-negative integer", value=raw)
        sys.exit(2)
    return int(raw)


def start_tensorflow():
    """Import TensorFlow and size its thread pools: once, before any model exists
    (TensorFlow refuses a new size once its runtime has started)."""
    threads = positive_int_env("ML_THREADS", 0)
    source = "ML_THREADS" if threads else "cpu limit"
    threads = threads or cpu_limit()
    import tensorflow as tf  # noqa: PLC0415 - heavy: imported once, at start
    import keras  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    devices = [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()]
    # The one place that tells whether TF_IMAGE=...-gpu plus `--gpus all` worked.
    log("tensorflow", version=tf.__version__, keras=keras.__version__, devices=devices, threads=threads,
        threads_from=source)
    return devices, tf.__version__


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_model(path):
    """Load a Keras model of shape (batch, n) and run it once. Returns the model's
    description, with `predict(rows) -> [float]` in it."""
    import numpy as np  # noqa: PLC0415
    import tensorflow as tf  # noqa: PLC0415
    import keras  # noqa: PLC0415

    t0 = time.monotonic()
    digest = file_sha256(path)
    model = keras.saving.load_model(path, compile=False)
    shape = model.input_shape
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise ValueError(f"{path}: expected a model of shape (batch, n), got {shape}")
    width = shape[1]
    dtype = tf.as_dtype(model.inputs[0].dtype)
    if not dtype.is_floating:
        raise ValueError(f"{path}: expected a floating-point input, got {dtype.name}")
    np_dtype = dtype.as_numpy_dtype
    # One compiled function for all batch sizes.
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                     input_signature=[tf.TensorSpec([None, width], dtype)])

    def predict(rows):
        x = np.asarray(rows, dtype=np_dtype)
        if len(x) == 1:
            # Two rows, so that one row takes the same kernel as any batch: its answer
            # is then the same bit for bit whatever it is batched with.
            x = np.vstack([x, np.zeros_like(x)])
        y = fn(tf.constant(x)).numpy().reshape(len(x), -1)[:len(rows), 0]
        return [float(v) for v in y]

    predict([[0.0] * width])  # traces the graph: the first request is not the slow one
    info = {"path": path, "sha256": digest, "inputs": width, "dtype": dtype.name,
            "input_max": float(np.finfo(np_dtype).max), "parameters": int(model.count_params()),
            "load_ms": round((time.monotonic() - t0) * 1000)}
    return dict(info, predict=predict)


class RowCache:
    """Row -> output, least recently used first out, bounded by bytes (keys
    included), not by entries: a few huge rows cannot grow it past its bound."""

    def __init__(self, max_bytes):
        self.max_bytes = max_bytes
        self.lru = LRUCache(maxsize=max(max_bytes, 1), getsizeof=lambda entry: entry[1])

    @staticmethod
    def cost(key):
        # A tuple of floats plus the float result, as CPython stores them.
        return sys.getsizeof(key) + 24 * (len(key) + 1) + 100

    def get(self, key):
        entry = self.lru.get(key)
        return None if entry is None else entry[0]

    def put(self, key, value):
        cost = self.cost(key)
        if self.max_bytes and cost <= self.max_bytes:
            self.lru[key] = (value, cost)

    def clear(self):
        self.lru.clear()

    def stats(self):
        return {"entries": len(self.lru), "bytes": int(self.lru.currsize), "max_bytes": self.max_bytes}


class Histogram:
    """Cumulative buckets, as Prometheus keeps them."""

    def __init__(self, bounds):
        self.bounds = bounds
        self.counts = [0] * len(bounds)
        self.count = 0
        self.sum = 0.0

    def observe(self, v):
        self.count += 1
        self.sum += v
        for i, b in enumerate(self.bounds):
            if v <= b:
                self.counts[i] += 1

    def export(self):
        return {"buckets": [[b, c] for b, c in zip(self.bounds, self.counts)], "count": self.count,
                "sum": round(self.sum, 6)}


METRICS = {
    "batch_rows": Histogram([1, 2, 4, 8, 16, 32, 64, 128, 256]),          # rows per batch message
    "batch_requests": Histogram([1, 2, 4, 8, 16, 32, 64, 128, 256]),      # requests per batch message
    "queue_wait_seconds": Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]),
    "model_seconds": Histogram([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1]),
}
COUNTS = {"ok": 0, "bad_input": 0, "non_finite": 0, "model_error": 0, "cached_rows": 0, "model_rows": 0}


def bad(req_id, msg):
    return {"id": req_id, "error": msg, "status": 400}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_request(req, model):
    """None if the request can run, else why not (a 400)."""
    rows = req.get("inputs")
    width, limit = model["inputs"], model["input_max"]
    if not isinstance(rows, list) or not rows:
        return "inputs must be a non-empty list of rows"
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) != width or not all(is_number(v) for v in r):
            return f"inputs[{i}] must be a list of {width} finite numbers"
        for j, v in enumerate(r):
            if abs(v) > limit:
                return (f"inputs[{i}][{j}] = {v!r} is outside the range of {model['dtype']}, the model's input"
                        f" type (largest magnitude {limit:.8g})")
    delay = req.get("delay_ms", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
        return f"delay_ms must be an integer in 0..{MAX_DELAY_MS}"
    return None


def run_batch(reqs, model, cache):
    """Answers for a batch of requests, in their order: one model call for every row
    of every valid request that is not cached."""
    started_ns = time.monotonic_ns()
    answers = [None] * len(reqs)
    work = []    # (index in reqs, keys, outputs so far)
    rows = []    # the rows the model must run, in order
    delay = 0
    for k, req in enumerate(reqs):
        why = check_request(req, model)
        if why:
            answers[k] = bad(req.get("id"), why)
            COUNTS["bad_input"] += 1
            continue
        STATE["predictions"] += 1
        delay = max(delay, req.get("delay_ms", 0))
        keys = [tuple(float(v) for v in r) for r in req["inputs"]]
        outs = [cache.get(key) for key in keys]
        work.append((k, keys, outs))
        rows += [list(key) for key, y in zip(keys, outs) if y is None]
        t_us = req.get("t_us")
        if is_number(t_us):
            METRICS["queue_wait_seconds"].observe(max(0.0, (started_ns / 1000 - t_us) / 1e6))
    METRICS["batch_requests"].observe(len(reqs))
    METRICS["batch_rows"].observe(sum(len(keys) for _, keys, _ in work))
    if delay:
        time.sleep(delay / 1000)  # simulated slow inference (tests: in-flight work on shutdown)
    computed, failure = [], None
    if rows:
        t0 = time.monotonic()
        try:
            computed = model["predict"](rows)
        except Exception as exc:  # a model error must not kill the worker
            failure = f"{type(exc).__name__}: {exc}"
            log("prediction failed", rows=len(rows), error=failure)
        METRICS["model_seconds"].observe(time.monotonic() - t0)
    it = iter(computed)
    for k, keys, outs in work:
        req_id = reqs[k].get("id")
        missing = [i for i, y in enumerate(outs) if y is None]
        if failure and missing:
            answers[k] = {"id": req_id, "error": "model error", "status": 500}
            COUNTS["model_error"] += 1
            continue
        for i in missing:
            outs[i] = next(it)
        bad_rows = [i for i, y in enumerate(outs) if not math.isfinite(y)]
        if bad_rows:
            answers[k] = {"id": req_id, "status": 500,
                          "error": f"the model's output for inputs[{bad_rows[0]}] is not finite ({outs[bad_rows[0]]})"}
            COUNTS["non_finite"] += 1
            log("non-finite model output", id=req_id, rows=bad_rows[:10], output=str(outs[bad_rows[0]]))
        for i in missing:
            if math.isfinite(outs[i]):
                cache.put(keys[i], outs[i])
        if bad_rows:
            continue
        COUNTS["ok"] += 1
        COUNTS["cached_rows"] += len(keys) - len(missing)
        COUNTS["model_rows"] += len(missing)
        answers[k] = {"id": req_id, "outputs": [round(y, 6) for y in outs], "cached": len(keys) - len(missing),
                      "backend": "tensorflow"}
    return answers


def model_info(model):
    return {k: v for k, v in model.items() if k != "predict"}


class Worker:
    def __init__(self, model, cache):
        self.model, self.cache = model, cache

    def handle(self, line):
        """Answer one message (a line of stdin)."""
        try:
            req = json.loads(line)
            if not isinstance(req, dict):
                raise ValueError("a message is a JSON object")
        except ValueError as exc:
            send({"id": None, "error": f"bad request line: {exc}", "status": 400})
            return
        op = req.get("op")
        if op == "ping":
            send({"id": req.get("id"), "pong": True, "predictions": STATE["predictions"], "cache": self.cache.stats(),
                  "reloads": STATE["reloads"], "model": model_info(self.model),
                  "metrics": {"counts": COUNTS, **{k: h.export() for k, h in METRICS.items()}}})
        elif op == "predict":
            send(*run_batch([req], self.model, self.cache))
        elif op == "batch":
            reqs = req.get("requests")
            if not isinstance(reqs, list) or not reqs or not all(isinstance(r, dict) for r in reqs):
                send({"id": None, "error": "bad request line: requests must be a non-empty list of objects",
                      "status": 400})
                return
            send(*run_batch(reqs, self.model, self.cache))
        else:
            send(bad(req.get("id"), f"unknown op {op!r}"))

    def reload(self):
        path = os.environ.get("ML_MODEL", DEFAULT_MODEL)
        log("SIGHUP: reloading the model", path=path, previous_sha256=self.model["sha256"])
        try:
            new = load_model(path)
        except Exception as exc:  # a bad file must not take the served model down
            log("model reload failed: still serving the previous model", path=path,
                error=f"{type(exc).__name__}: {exc}"[:500], sha256=self.model["sha256"])
            send({"event": "reload", "ok": False, "error": f"{type(exc).__name__}"})
            return
        self.model = new
        self.cache.clear()  # its answers were the previous model's
        STATE["reloads"] += 1
        log("model reloaded", **model_info(new), reloads=STATE["reloads"])
        send({"event": "reload", "ok": True, **model_info(new)})


def on_signal(signum, _frame):
    # Only noted here: the loop acts on it between messages (select wakes up through
    # the wakeup fd), so no signal ever interrupts a batch or a reload half-way.
    STATE["signals"].append(signum)


def act_on_signals(worker):
    """Reload or stop for the signals noted since last time; True: stop."""
    while STATE["signals"]:
        signum = STATE["signals"].pop(0)
        if signum == signal.SIGHUP:
            worker.reload()
        else:
            log(f"{signal.Signals(signum).name}: exiting")
            return True
    return False


def serve(worker):
    """Read messages until stdin closes (exit 0) or a stop signal arrives."""
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    buf = b""
    skipping = False  # inside a line longer than MAX_LINE: dropped up to its newline
    while True:
        # Messages already read, one at a time; signals are acted on between them.
        while True:
            if act_on_signals(worker):
                return 0
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1:]
            if skipping:
                skipping = False
            elif line.strip():
                worker.handle(line)
        if len(buf) > MAX_LINE:
            send({"id": None, "error": f"bad request line: longer than {MAX_LINE} bytes", "status": 400})
            buf, skipping = b"", True
        ready, _, _ = select.select([0, wake_r], [], [])
        if wake_r in ready:
            os.read(wake_r, 4096)
        if 0 in ready:
            chunk = os.read(0, 1 << 16)
            if not chunk:
                log("stdin closed, exiting")
                return 0
            buf += chunk


def main():
    global PROTO
    # The protocol gets its own descriptor; fd 1 becomes stderr, so that anything a
    # library prints lands in the logs instead of in the front's pipe.
    PROTO = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    cache = RowCache(positive_int_env("ML_CACHE_BYTES", 8 << 20))
    t0 = time.monotonic()
    devices, version = start_tensorflow()
    model = load_model(os.environ.get("ML_MODEL", DEFAULT_MODEL))
    info = model_info(model)
    log("model loaded", **info)
    send({"event": "ready", "backend": "tensorflow", "tensorflow": version, **info,
          "devices": devices, "python": sys.version.split()[0], "pid": os.getpid(),
          "load_ms": round((time.monotonic() - t0) * 1000)})
    log("ready", uid=os.getuid(), cache=cache.stats())
    return serve(Worker(model, cache))


def leave(code):
    """Exit now: every answer is written and flushed. A normal interpreter exit
    would run TensorFlow's teardown (its thread pools, atexit hooks), which takes
    seconds, sometimes more than the stop budget, after the work is done."""
    try:
        if PROTO is not None:
            PROTO.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    try:
        status = main()
    except BrokenPipeError:  # the front is gone: nobody to answer
        status = 0
    except SystemExit as exc:  # a bad setting
        status = exc.code if isinstance(exc.code, int) else 1
    leave(status)
