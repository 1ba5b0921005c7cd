"""End-to-end tests of the ML image's service: the real Keras model on real
TensorFlow (the stand-in base carries tensorflow-cpu 2.17.0 from PyPI), hostile
input, the bounded queue, dropped work, the byte-bounded cache, readiness by
notification, the thread pools, and a worker killed with SIGKILL.

Requests come from a Python client run with `docker exec` inside the container
(loopback only; the container has --network none), which prints one JSON answer
per request: what each client got, not what the server logged.

Run through tests/e2e/run (KAI_E2E_ONLY=MlService for these alone).
"""
import json
import time
import unittest

import harness as h
from test_images import image

# The golden input and what the model built by examples/ml/model/build_model.py
# (fixed weights) answers for it on TensorFlow 2.17 (float32, rounded to 6 places;
# the worker runs every batch, one row included, through the many-row kernel).
# The same weights in float64 numpy give -1.63618092, 0.06776514, 0.91127572; the
# function the model approximates, sin(x0) + x1*x2 - 0.5*x3: -1.6456, 0, 0.9400.
GOLDEN_INPUTS = [[0.5, -1.0, 2.0, 0.25], [0.0, 0.0, 0.0, 0.0], [-1.5, 1.25, 0.75, -2.0]]
GOLDEN_OUTPUTS = [-1.63618, 0.067765, 0.911277]
TOLERANCE = 1e-5

# Importing TensorFlow and loading the model: ~20 s on an idle machine, minutes on a
# loaded one. Waits are for facts (healthy), so a long bound costs nothing when fast.
START = 300
START_PERIOD = ["--health-start-period", f"{START}s"]

# Each spec: {"method", "path", "body" (text), "big" (a body of N bytes),
# "raw" (bytes to send as they are), "after" (ms before sending), "abort" (ms
# after sending: close the connection without reading the answer)}. Printed:
# one JSON line per spec, in order: {"status", "body", "headers"} or {"error"}.
CLIENT = r'''
import http.client, json, socket, sys, threading, time
specs = json.loads(sys.argv[1])
out = [None] * len(specs)
def one(i, s):
    time.sleep(s.get("after", 0) / 1000)
    c = None
    t0 = time.monotonic()
    try:
        if "raw" in s:
            c = socket.create_connection(("127.0.0.1", 8080), timeout=30)
            c.sendall(s["raw"].encode("latin-1"))
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            status = int(head.split()[1]) if head.startswith(b"HTTP/") else None
            out[i] = {"status": status, "body": body.decode("utf-8", "replace"), "headers": {},
                      "ms": (time.monotonic() - t0) * 1000}
            return
        body = ("x" * s["big"]) if "big" in s else s.get("body")
        c = http.client.HTTPConnection("127.0.0.1", 8080, timeout=s.get("abort", 60000) / 1000)
        hdrs = {"content-type": "application/json"} if body is not None else {}
        c.request(s.get("method", "GET"), s["path"], body=body, headers=hdrs)
        r = c.getresponse()
        out[i] = {"status": r.status, "body": r.read().decode(), "headers": {k.lower(): v for k, v in r.getheaders()},
                  "ms": (time.monotonic() - t0) * 1000}
    except Exception as e:
        out[i] = {"error": type(e).__name__ + ": " + str(e)}
    finally:
        if c is not None:
            c.close()  # an "abort" hangs up here, without the answer
ts = [threading.Thread(target=one, args=(i, s)) for i, s in enumerate(specs)]
for t in ts: t.start()
for t in ts: t.join()
for o in out: print(json.dumps(o))
'''


def call(container, specs, timeout=90):
    p = h.exec_(container, "python3", "-c", CLIENT, json.dumps(specs), timeout=timeout)
    answers = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    if len(answers) != len(specs):
        raise AssertionError(f"client printed {len(answers)} answers for {len(specs)} requests:\n{p.stdout}{p.stderr}")
    return answers


def post(path, body, **kw):
    return dict(method="POST", path=path, body=body if isinstance(body, str) else json.dumps(body), **kw)


def pids(container):
    front = h.find_proc(container, r"^node front/server\.js")
    worker = h.find_proc(container, r"python3? -u /app/worker/worker\.py")
    return [p["pid"] for p in front], [p["pid"] for p in worker]


def worker_line(logs, msg):
    """The worker's first JSON log line with this msg, as a dict."""
    for line in logs.splitlines():
        if line.startswith("{") and '"who": "worker"' in line:
            d = json.loads(line)
            if d.get("msg") == msg:
                return d
    raise AssertionError(f"no worker line {msg!r} in:\n{logs[-3000:]}")


def health(container):
    a = call(container, [dict(path="/health")])[0]
    return a["status"], json.loads(a["body"])


class MlServiceTests(unittest.TestCase):
    """One container, the test settings: delay_ms allowed, a queue of 3, an 8 KiB cache."""

    @classmethod
    def setUpClass(cls):
        cls.c = None
        cls.c = h.run_container(image("ml"), f"kai-e2e-{h.RUN_ID}-mlsvc", env_vars={
            "ML_DEBUG_DELAY": "1", "ML_QUEUE_MAX": "3", "ML_CACHE_BYTES": "8192", "ML_TIMEOUT_MS": "8000"},
            extra=START_PERIOD)
        h.wait_for("the ML service to become healthy", lambda: cls.healthy(cls.c), START)

    @classmethod
    def healthy(cls, name):
        if not h.inspect(name)["State"]["Running"]:
            raise AssertionError(f"{name} exited:\n{h.logs(name)[-3000:]}")
        return h.health_status(name) == "healthy"

    @classmethod
    def tearDownClass(cls):
        if cls.c:
            h.docker("rm", "-f", cls.c, check=False)

    def test_1_tensorflow_backend_and_golden_prediction(self):
        status, body = health(self.c)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["backend"], "tensorflow")
        a = call(self.c, [post("/predict", {"inputs": GOLDEN_INPUTS})])[0]
        self.assertEqual(a["status"], 200, a)
        got = json.loads(a["body"])
        self.assertEqual(got["backend"], "tensorflow")
        self.assertEqual(len(got["outputs"]), len(GOLDEN_INPUTS))
        for g, want in zip(got["outputs"], GOLDEN_OUTPUTS):
            self.assertAlmostEqual(g, want, delta=TOLERANCE, msg=f"outputs {got['outputs']} != {GOLDEN_OUTPUTS}")
        # The worker says which TensorFlow and which devices it runs on.
        tf = worker_line(h.logs(self.c), "tensorflow")
        self.assertEqual(tf["version"], "2.17.0")
        self.assertTrue(any(d.startswith("CPU:") for d in tf["devices"]), tf)
        print(f"\n    golden prediction {got['outputs']} on {tf['devices']}", end=" ")

    def test_2_ready_by_notification(self):
        # kai-init's own notify check passes: the front wrote on fd 3 (KAI_INIT_NOTIFY=fd:3)
        # after the model loaded and the server listened.
        p = h.exec_(self.c, "/sbin/kai-init", "check", "--path", "/readyz/notify", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        logs = h.logs(self.c)
        ready = logs.find('"msg":"ready","backend":"tensorflow","notify":"fd:3"')
        self.assertGreater(ready, logs.find('"msg":"worker ready"'), logs[-3000:])
        self.assertGreater(ready, logs.find('"msg":"listening"'), logs[-3000:])

    def test_3_bad_input_gets_4xx_and_the_worker_survives(self):
        before = pids(self.c)
        cases = [
            ("wrong row width", post("/predict", {"inputs": [[1, 2, 3]]}), 400),
            ("non-numbers", post("/predict", {"inputs": [[1, "2", 3, 4]]}), 400),
            ("booleans", post("/predict", {"inputs": [[True, 2, 3, 4]]}), 400),
            ("empty batch", post("/predict", {"inputs": []}), 400),
            ("empty row", post("/predict", {"inputs": [[]]}), 400),
            ("no inputs", post("/predict", {}), 400),
            ("batch over the limit (64)", post("/predict", {"inputs": [[1, 2, 3, 4]] * 65}), 413),
            ("null body", post("/predict", "null"), 400),
            ("array body", post("/predict", "[1,2]"), 400),
            ("not JSON", post("/predict", "{inputs"), 400),
            ("body over 1 MiB", dict(method="POST", path="/predict", big=(1 << 20) + 100), 413),
            ("non-integer delay_ms", post("/predict", {"inputs": [[1, 2, 3, 4]], "delay_ms": 1.5}), 400),
            ("delay_ms out of bounds", post("/predict", {"inputs": [[1, 2, 3, 4]], "delay_ms": 10 ** 6}), 400),
            ("GET with non-numbers", dict(path="/predict?x=a,b,c,d"), 400),
            ("GET with an empty value", dict(path="/predict?x=1,,3,4"), 400),
            ("GET with a bad delay_ms", dict(path="/predict?x=1,2,3,4&delay_ms=1e3"), 400),
            ("malformed request line", dict(raw="GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400),
            ("unknown path", dict(path="/nope"), 404),
            ("wrong method", dict(method="PUT", path="/predict", body="{}"), 405),
        ]
        answers = call(self.c, [spec for _, spec, _ in cases])
        for (what, _, want), a in zip(cases, answers):
            self.assertEqual(a.get("status"), want, f"{what}: {a}")
            if "raw" not in _:
                self.assertIn("error", json.loads(a["body"]), f"{what}: no message: {a}")
        # Same processes, still serving.
        self.assertEqual(pids(self.c), before)
        a = call(self.c, [dict(path="/predict?x=1,2,3,4")])[0]
        self.assertEqual(a["status"], 200, a)
        self.assertEqual(h.health_status(self.c), "healthy")
        # Failed requests are logged, with their status.
        logs = h.logs(self.c)
        for status in (400, 404, 405, 413):
            self.assertRegex(logs, r'"msg":"request failed".*"status":%d' % status)

    def test_4_queue_is_bounded(self):
        # One running + ML_QUEUE_MAX=3 waiting; two more are refused at once.
        specs = [dict(path="/predict?x=%d,0,0,0&delay_ms=1500" % i) for i in range(6)]
        t0 = time.monotonic()
        answers = call(self.c, specs)
        statuses = sorted(a.get("status") for a in answers)
        self.assertEqual(statuses, [200, 200, 200, 200, 503, 503], answers)
        for a in answers:
            if a["status"] == 503:
                self.assertIn("queue full", a["body"])
                self.assertEqual(a["headers"].get("retry-after"), "1")
        print(f"\n    4 answered, 2 refused (queue full) in {time.monotonic() - t0:.1f}s", end=" ")

    def test_5_work_of_gone_clients_is_dropped(self):
        _, before = health(self.c)
        n0 = before["worker"]["predictions"]
        specs = [dict(path="/predict?x=9,0,0,0&delay_ms=2000")]
        # Three clients queue behind it and hang up after 300 ms.
        specs += [dict(path="/predict?x=9,%d,0,0&delay_ms=2000" % i, after=300, abort=300) for i in range(3)]
        answers = call(self.c, specs)
        self.assertEqual(answers[0].get("status"), 200, answers)
        for a in answers[1:]:
            self.assertIn("error", a, answers)  # timed out on our side: we hung up
        h.wait_for("the front to log the dropped requests",
                   lambda: h.logs(self.c).count('"msg":"prediction dropped: client gone"') >= 3, 10)
        _, after = health(self.c)
        self.assertEqual(after["worker"]["predictions"] - n0, 1,
                         "the worker ran predictions whose clients had gone")

    def test_6_timeout_is_504(self):
        a = call(self.c, [dict(path="/predict?x=1,2,3,5&delay_ms=8500")])[0]
        self.assertEqual(a["status"], 504, a)
        self.assertIn("no answer from the worker within 8000 ms", a["body"])

    def test_7_cache_is_bounded_by_bytes(self):
        rows = [[i, 0.5, 0.25, 1.0] for i in range(64)]
        a = call(self.c, [post("/predict", {"inputs": rows})])[0]
        self.assertEqual(a["status"], 200, a)
        b = json.loads(call(self.c, [post("/predict", {"inputs": rows[-2:]})])[0]["body"])
        self.assertEqual(b["cached"], 2, b)   # the most recent rows are still there
        h.wait_for("the worker to be idle", lambda: health(self.c)[1]["worker"].get("state") == "idle", 30)
        cache = health(self.c)[1]["worker"]["cache"]
        self.assertEqual(cache["max_bytes"], 8192)
        self.assertLessEqual(cache["bytes"], 8192, cache)
        self.assertGreater(cache["entries"], 0, cache)
        self.assertLess(cache["entries"], 64, cache)
        c = json.loads(call(self.c, [post("/predict", {"inputs": rows[:1]})])[0]["body"])
        self.assertEqual(c["cached"], 0, "the oldest row should have been evicted")
        print(f"\n    cache: {cache}", end=" ")


    def test_8_full_queue_is_refused_before_the_body(self):
        # One prediction running and ML_QUEUE_MAX (3) waiting: a POST that has sent its
        # head but not its body is refused at once, without the front waiting for (and
        # buffering) a body it has no room to serve.
        specs = [dict(path="/predict?x=%d,0,0,1&delay_ms=2000" % i) for i in range(4)]
        specs.append(dict(raw="POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: 5000\r\n\r\n", after=500))
        answers = call(self.c, specs)
        last = answers[-1]
        self.assertEqual(last.get("status"), 503, answers)
        self.assertIn("queue full", last["body"])
        self.assertLess(last["ms"], 2000, last)


class MlWorkerDeathTests(unittest.TestCase):
    """Production settings (no ML_DEBUG_DELAY), one CPU: the thread pools follow the
    limit; then the worker is killed with SIGKILL and the container stops with 1."""

    def test_worker_killed(self):
        name = h.run_container(image("ml"), f"kai-e2e-{h.RUN_ID}-mldeath", extra=["--cpus", "1", *START_PERIOD])
        try:
            h.wait_for("healthy", lambda: MlServiceTests.healthy(name), START)
            # TF's thread pools follow the container's CPU limit, not the machine's cores.
            self.assertEqual(worker_line(h.logs(name), "tensorflow")["threads"], 1)
            a = call(name, [dict(path="/predict?x=1,2,3,4&delay_ms=10")])[0]
            self.assertEqual(a["status"], 400, a)
            self.assertIn("delay_ms is a test setting", a["body"])
            _, [worker] = pids(name)
            h.exec_(name, "sh", "-c", f"kill -KILL {worker}")
            h.wait_for("the container to stop", lambda: not h.inspect(name)["State"]["Running"], 30)
            st = h.inspect(name)["State"]
            logs = h.logs(name)
            self.assertEqual(st["ExitCode"], 1, logs[-3000:])
            self.assertRegex(logs, r'"msg":"worker exited unexpectedly: stopping the front","code":null,'
                                   r'"signal":"SIGKILL"')
            # kai-init reports the front's exit status.
            self.assertIn("kai-init: info: child exited code=1", logs)
        finally:
            h.docker("rm", "-f", name, check=False)


def suite():
    loader = unittest.TestLoader()
    s = unittest.TestSuite()
    for cls in (MlServiceTests, MlWorkerDeathTests):
        s.addTests(loader.loadTestsFromTestCase(cls))
    return s
