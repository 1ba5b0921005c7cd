#!/usr/bin/env python3
"""Inference worker for the ML example: a Keras model on TensorFlow.

Spawned by the Node front (front/server.js), which owns it and sends it one
request at a time; speaks JSON lines:
  stdin : {"id": 1, "op": "predict", "inputs": [[x0, x1, x2, x3], ...], "delay_ms": 0}
          {"id": 2, "op": "ping"}
  stdout: {"event": "ready", "backend": "tensorflow", "inputs": 4, ...}   (once, model loaded)
          {"id": 1, "outputs": [...], "cached": N, "backend": "tensorflow"}
          {"id": 2, "pong": true, "predictions": N, "cache": {...}}
          {"id": 1, "error": "...", "status": 400|500}
Logs go to stderr (inherited by the front, so they reach `docker logs`).

The model (ML_MODEL, default /opt/ml/model/model.keras) is built at image build
time by model/build_model.py. Loading it is what readiness waits for: the
"ready" line is sent only once a first prediction has run.

TensorFlow's thread pools are sized from the container's CPU limit (cgroup v2
cpu.max, or v1's cfs quota), not from the node's core count; ML_THREADS overrides.

Results are cached per row in an LRU bounded by bytes (ML_CACHE_BYTES, default
8 MiB; 0 disables it).

Stopping and reloading come from the front (kai-init signals only its main child):
  stdin EOF       the front's stop, sent once it has nothing left for us: exit 0
                  at once (os._exit: TensorFlow's teardown would take seconds)
  SIGHUP          relayed by the front: logged ("reload"), keeps running
  SIGTERM/SIGINT  from anyone else (a Ctrl-C on a terminal): finish the current
                  request, then exit 0
"""
import json
import math
import os
import signal
import sys
import time

from cachetools import LRUCache

STATE = {"busy": False, "stopping": False, "reloads": 0, "predictions": 0}
# delay_ms is a test knob (slow inference on demand); the front accepts it only with
# ML_DEBUG_DELAY=1 and bounds it; the worker bounds it again.
MAX_DELAY_MS = 10_000


def log(msg, **fields):
    fields.update(msg=msg, pid=os.getpid(), who="worker")
    sys.stderr.write(json.dumps(fields) + "\n")
    sys.stderr.flush()


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


def load_model():
    """Import TensorFlow, size its thread pools, load the model, run it once."""
    threads = positive_int_env("ML_THREADS", 0) or cpu_limit()
    import tensorflow as tf  # noqa: PLC0415 - heavy: imported once, at start
    import keras  # noqa: PLC0415

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    devices = [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()]
    # The one place that tells whether TF_IMAGE=...-gpu plus `--gpus all` worked.
    log("tensorflow", version=tf.__version__, keras=keras.__version__, devices=devices, threads=threads)
    path = os.environ.get("ML_MODEL", "/opt/ml/model/model.keras")
    model = keras.saving.load_model(path, compile=False)
    shape = model.input_shape
    if len(shape) != 2 or not isinstance(shape[1], int):
        raise ValueError(f"{path}: expected a model of shape (batch, n), got {shape}")
    width = shape[1]
    # One compiled function for all batch sizes; inputs are float32 (batch, width).
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True,
                     input_signature=[tf.TensorSpec([None, width], tf.float32)])

    def predict(rows):
        y = fn(tf.constant(rows, dtype=tf.float32)).numpy()
        return [float(v) for v in y.reshape(len(rows), -1)[:, 0]]

    predict([[0.0] * width])  # traces the graph: the first request is not the slow one
    log("model loaded", path=path, inputs=width, parameters=int(model.count_params()))
    return predict, width, devices, tf.__version__


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

    def stats(self):
        return {"entries": len(self.lru), "bytes": int(self.lru.currsize), "max_bytes": self.max_bytes}


def bad(req_id, msg):
    return {"id": req_id, "error": msg, "status": 400}


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def handle(req, predict, width, cache):
    req_id = req.get("id")
    op = req.get("op")
    if op == "ping":
        return {"id": req_id, "pong": True, "predictions": STATE["predictions"], "cache": cache.stats()}
    if op != "predict":
        return bad(req_id, f"unknown op {op!r}")
    # The front validates too; the worker does not trust its pipe to be well-formed.
    rows = req.get("inputs")
    if not isinstance(rows, list) or not rows:
        return bad(req_id, "inputs must be a non-empty list of rows")
    for i, r in enumerate(rows):
        if not isinstance(r, list) or len(r) != width or not all(is_number(v) for v in r):
            return bad(req_id, f"inputs[{i}] must be a list of {width} finite numbers")
    delay = req.get("delay_ms", 0)
    if not isinstance(delay, int) or isinstance(delay, bool) or not 0 <= delay <= MAX_DELAY_MS:
        return bad(req_id, f"delay_ms must be an integer in 0..{MAX_DELAY_MS}")
    STATE["predictions"] += 1
    if delay:
        time.sleep(delay / 1000)  # simulated slow inference (tests: in-flight work on shutdown)
    keys = [tuple(float(v) for v in r) for r in rows]
    outputs = [cache.get(k) for k in keys]
    missing = [i for i, y in enumerate(outputs) if y is None]
    if missing:
        for i, y in zip(missing, predict([list(keys[i]) for i in missing])):
            outputs[i] = y
            cache.put(keys[i], y)
    return {"id": req_id, "outputs": [round(y, 6) for y in outputs], "cached": len(rows) - len(missing),
            "backend": "tensorflow"}


def on_stop(signum, _frame):
    STATE["stopping"] = True
    name = signal.Signals(signum).name
    if STATE["busy"]:
        log(f"{name}: finishing the current request, then exiting")
        return
    log(f"{name}: idle, exiting")
    raise SystemExit(0)


def on_hup(_signum, _frame):
    STATE["reloads"] += 1
    log("SIGHUP received: reloading model configuration", reloads=STATE["reloads"])


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    cache = RowCache(positive_int_env("ML_CACHE_BYTES", 8 << 20))
    t0 = time.monotonic()
    predict, width, devices, version = load_model()
    send({"event": "ready", "backend": "tensorflow", "tensorflow": version, "inputs": width,
          "devices": devices, "python": sys.version.split()[0], "pid": os.getpid(),
          "load_ms": round((time.monotonic() - t0) * 1000)})
    log("ready", uid=os.getuid(), cache=cache.stats())
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        STATE["busy"] = True
        try:
            try:
                req = json.loads(line)
                if not isinstance(req, dict):
                    raise ValueError("a request is a JSON object")
            except ValueError as exc:
                resp = {"id": None, "error": f"bad request line: {exc}", "status": 400}
            else:
                try:
                    resp = handle(req, predict, width, cache)
                except Exception as exc:  # a model error must not kill the worker
                    log("prediction failed", id=req.get("id"), error=f"{type(exc).__name__}: {exc}")
                    resp = {"id": req.get("id"), "error": "model error", "status": 500}
            send(resp)
        finally:
            STATE["busy"] = False
        if STATE["stopping"]:
            log("current request done, exiting")
            return 0
    log("stdin closed, exiting")
    return 0


def leave(code):
    """Exit now: every answer is written and flushed. A normal interpreter exit
    would run TensorFlow's teardown (its thread pools, atexit hooks), which takes
    seconds, sometimes more than the stop budget, after the work is done."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, ValueError):
        pass
    os._exit(code)


if __name__ == "__main__":
    try:
        status = main()
    except BrokenPipeError:  # the front is gone: nobody to answer
        status = 0
    except SystemExit as exc:  # SIGTERM while idle, a bad setting
        status = exc.code if isinstance(exc.code, int) else 1
    leave(status)
