#!/usr/bin/env python3
"""Inference worker for the ML example.

Spawned by the Node front (front/server.js); speaks JSON lines:
  stdin : {"id": 1, "op": "predict", "inputs": [[1, 2, 3], ...], "delay_ms": 0}
          {"id": 2, "op": "ping"}
  stdout: {"event": "ready", "backend": "tensorflow"|"python", ...}   (once, at start)
          {"id": 1, "outputs": [...], "backend": "..."} or {"id": 1, "error": "..."}
Logs go to stderr (inherited by the front, so they reach `docker logs`).

The "model" is deliberately tiny: y = tanh(2 * mean(x) + 0.1) per input row.
With TensorFlow in the image (the tensorflow/tensorflow base) it runs as TF ops;
without it (a stand-in base image in tests, a laptop) the same numbers come
from the pure-Python fallback, so the service starts either way.

Stopping and reloading come from the Node front, which owns this worker (kai-init
signals only its main child, the front):
  stdin EOF       the front's stop: every request already queued on stdin is
                  answered, then the worker exits 0 (also when the front went away)
  SIGHUP          relayed by the front: logged ("reload"), keeps running
  SIGTERM/SIGINT  from anyone else (kai-init --signal-group TERM, a Ctrl-C on a
                  terminal): idle: exit 0 at once; busy: finish the current
                  request, then exit 0
"""
import json
import math
import os
import signal
import sys
import time

from cachetools import LRUCache

STATE = {"busy": False, "stopping": False, "reloads": 0}


def log(msg, **fields):
    fields.update(msg=msg, pid=os.getpid(), who="worker")
    sys.stderr.write(json.dumps(fields) + "\n")
    sys.stderr.flush()


def load_backend():
    if os.environ.get("ML_FORCE_FALLBACK") == "1":
        return "python", None
    try:
        import tensorflow as tf  # noqa: PLC0415 - optional, heavy import
    except ImportError as exc:
        log("tensorflow not available, using the pure-Python fallback", error=str(exc))
        return "python", None

    def tf_predict(rows):
        out = []
        for row in rows:  # rows may differ in length: one small op each
            x = tf.constant(row, dtype=tf.float32)
            out.append(float(tf.math.tanh(2.0 * tf.reduce_mean(x) + 0.1).numpy()))
        return out

    log("tensorflow backend", version=tf.__version__)
    return "tensorflow", tf_predict


def py_predict(rows):
    return [math.tanh(2.0 * (sum(row) / len(row)) + 0.1) for row in rows]


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


def handle(req, backend, predict, cache):
    op = req.get("op")
    if op == "ping":
        return {"id": req.get("id"), "pong": True, "backend": backend}
    if op != "predict":
        return {"id": req.get("id"), "error": f"unknown op {op!r}"}
    rows = req.get("inputs")
    if (not isinstance(rows, list) or not rows
            or not all(isinstance(r, list) and r and all(isinstance(v, (int, float)) for v in r) for r in rows)):
        return {"id": req.get("id"), "error": "inputs must be a non-empty list of non-empty number lists"}
    delay = min(max(int(req.get("delay_ms") or 0), 0), 30000)
    if delay:
        time.sleep(delay / 1000)  # simulated slow inference (tests: in-flight work on shutdown)
    keys = [tuple(r) for r in rows]
    missing = [r for r, k in zip(rows, keys) if k not in cache]
    if missing:
        for k, y in zip((tuple(r) for r in missing), predict(missing)):
            cache[k] = y
    return {"id": req.get("id"), "outputs": [round(cache[k], 6) for k in keys], "backend": backend}


def main():
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    backend, predict = load_backend()
    predict = predict or py_predict
    cache = LRUCache(maxsize=int(os.environ.get("ML_CACHE_SIZE", "1024")))
    send({"event": "ready", "backend": backend, "python": sys.version.split()[0], "pid": os.getpid()})
    log("ready", backend=backend, uid=os.getuid())
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        STATE["busy"] = True
        try:
            try:
                req = json.loads(line)
                resp = handle(req, backend, predict, cache)
            except Exception as exc:  # one bad request must not kill the worker
                resp = {"id": None, "error": f"{type(exc).__name__}: {exc}"}
            send(resp)
        finally:
            STATE["busy"] = False
        if STATE["stopping"]:
            log("current request done, exiting")
            return 0
    log("stdin closed, exiting")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(0)
