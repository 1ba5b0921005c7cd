#!/usr/bin/env python3
"""A worker that answers with lines the front cannot parse, for the front's tests.

Started by the ML front in place of its worker (ML_WORKER=/e2e/garbling_worker.py),
it runs the image's real worker (/app/worker/worker.py) as its own child and passes
every line through both ways, except the answer to a request whose first input is
1313: that line is rewritten the way json.dumps writes a float the model made NaN
(`NaN` is not JSON), which is what a poisoned request once made the real worker
write. The front must fail that one request and keep serving the others.

Requests are read in either shape the front sends: one request
({"id", "inputs", ...}) or a batch ({"requests": [{"id", "inputs"}, ...]}).
Signals it gets (HUP, TERM, INT) go on to the real worker; stdin EOF is passed on
too, and this process exits with the worker's status.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading

MARK = 1313
real = subprocess.Popen([sys.executable, "-u", "/app/worker/worker.py"], stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE, text=True, bufsize=1)
poisoned = set()
lock = threading.Lock()


def relay_signal(signum, _frame):
    real.send_signal(signum)


for s in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
    signal.signal(s, relay_signal)


def requests_of(msg):
    if isinstance(msg, dict):
        yield msg
        for r in msg.get("requests") or []:
            if isinstance(r, dict):
                yield r


def to_worker():
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError:
            msg = None
        for r in requests_of(msg):
            rows = r.get("inputs")
            if isinstance(rows, list) and rows and isinstance(rows[0], list) and rows[0][:1] == [MARK]:
                with lock:
                    poisoned.add(r.get("id"))
        real.stdin.write(line)
        real.stdin.flush()
    real.stdin.close()


threading.Thread(target=to_worker, daemon=True).start()
for line in real.stdout:
    try:
        msg = json.loads(line)
    except ValueError:
        msg = None
    with lock:
        hit = isinstance(msg, dict) and msg.get("id") in poisoned and "outputs" in msg
    if hit:
        line = re.sub(r'"outputs": \[[^\]]*\]', '"outputs": [NaN]', line)
    sys.stdout.write(line)
    sys.stdout.flush()
sys.stdout.flush()
os._exit(real.wait())
