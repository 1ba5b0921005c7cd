"""End-to-end: the example images against the internet (issue 19).

Hostile inputs and clients against the real images on the engine, from inside
each container's own network namespace (a client container started with
`--network container:<target>`, running tests/e2e/hostile.js, or `docker exec`),
loopback only, bounded in count and time:
  * the ML worker: a poison input (1e39 is inf in float32), a model whose output
    overflows, a model reloaded on SIGHUP, a burst of 200 one-row requests
    (dynamic batching), outputs that do not depend on what a row was batched with;
  * the ML front: 600 connections holding unfinished 1 MiB bodies (memory stays
    bounded), bodies at the limit, dribbled headers, more connections than the cap,
    a worker answer it cannot parse (tests/e2e/garbling_worker.py);
  * the API: dribbled headers, idle connections beyond the cap, the /slow debug route;
  * what the files say: Node 22 defaults, the ML start period, OCI labels, bake
    attestations, the Kubernetes manifests, comments and README figures.

Run through tests/e2e/run (KAI_E2E_ONLY=test_examples for these alone).
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

import harness as h
from test_images import image
from test_ml import GOLDEN_INPUTS, START, START_PERIOD, call, health, post

HERE = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20


def read(rel):
    with open(os.path.join(h.REPO, rel)) as f:
        return f.read()


def hostile(target, mode, timeout=120, **opt):
    """Runs tests/e2e/hostile.js MODE in a client container that shares only target's
    network namespace (the target's own image: both have node). Returns a Popen;
    result() reads its one JSON line."""
    name = f"{target}-hostile-{uuid.uuid4().hex[:6]}"
    img = h.inspect(target)["Config"]["Image"]
    cmd = [h.DOCKER, "run", "--rm", "--name", name, "--label", h.LABEL, "--network", f"container:{target}",
           "-v", f"{HERE}:/e2e:ro", "--entrypoint", "node", img, "/e2e/hostile.js", mode, json.dumps(opt)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.env())
    p.deadline = time.monotonic() + timeout
    p.client = name
    return p


def result(p):
    try:
        out, err = p.communicate(timeout=max(1, p.deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        h.docker("rm", "-f", p.client, check=False)
        p.kill()  # our own child, by its Popen handle
        out, err = p.communicate(timeout=30)
        raise AssertionError(f"hostile client {p.client} did not finish: {err[-2000:]}") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not lines:
        raise AssertionError(f"hostile client exit {p.returncode}: {out[-2000:]}{err[-2000:]}")
    return json.loads(lines[-1])


def memory(name):
    """The container's memory use as its cgroup counts it (v2, else v1), in bytes."""
    out = h.exec_(name, "sh", "-c", "cat /sys/fs/cgroup/memory.current 2>/dev/null"
                  " || cat /sys/fs/cgroup/memory/memory.usage_in_bytes").stdout
    return int(out.split()[0])


class Sampler(threading.Thread):
    """Samples memory(name) and `kai-init check` every `every` s until stopped."""

    def __init__(self, name, every=0.5):
        super().__init__(daemon=True)
        self.name, self.every, self.mem, self.checks = name, every, [], []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.mem.append(memory(self.name))
                p = h.exec_(self.name, "/sbin/kai-init", "check", check=False, timeout=20)
                self.checks.append((p.returncode, (p.stdout + p.stderr).strip()[:200]))
            except (AssertionError, ValueError, IndexError):
                pass
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join(timeout=60)
        return self


def log_json(logs, who):
    """The JSON log lines of `who` ("front" or "worker"), as dicts."""
    out = []
    for line in logs.splitlines():
        if line.startswith("{"):
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if d.get("who") == who:
                out.append(d)
    return out


def logged(name, who, msg):
    return [d for d in log_json(h.logs(name), who) if d.get("msg") == msg]


def metrics(name, port):
    """The front's /metrics (Prometheus text) as {series: value}."""
    out = h.exec_(name, "node", "-e",
                  f"require('http').get('http://127.0.0.1:{port}/metrics',r=>{{let b='';r.on('data',c=>b+=c);"
                  "r.on('end',()=>{process.stdout.write(r.statusCode+'\\n'+b)})})").stdout
    status, _, body = out.partition("\n")
    if status != "200":
        raise AssertionError(f"/metrics answered {status}: {body[:500]}")
    series = {}
    for line in body.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            series[k] = float(v)
    return series


def get_status(name, port, path, timeout=10):
    """(status, body, seconds) of one GET from inside the container; status None on no answer."""
    script = ("const t=Date.now();const q=require('http').get('http://127.0.0.1:%d%s',r=>{let b='';"
              "r.on('data',c=>b+=c);r.on('end',()=>console.log(JSON.stringify([r.statusCode,b,(Date.now()-t)/1000])))});"
              "q.setTimeout(%d,()=>{console.log(JSON.stringify([null,'no answer',(Date.now()-t)/1000]));process.exit(0)});"
              "q.on('error',e=>console.log(JSON.stringify([null,e.message,(Date.now()-t)/1000])))"
              % (port, path, timeout * 1000))
    out = h.exec_(name, "node", "-e", script, timeout=timeout + 30).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))


def seconds(duration):
    m = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


# ======================================================================= what the files say

class ExampleFilesTests(unittest.TestCase):
    """The Dockerfiles, bake file, manifests and README agree with what the images do."""

    def assertRegex(self, text, regex, msg=None):  # noqa: N802 - unittest's name
        # Whole files are long: say what was looked for, not the file.
        if not re.search(regex, text):
            self.fail(msg or f"{regex!r} not found")

    def assertNotRegex(self, text, regex, msg=None):  # noqa: N802
        m = re.search(regex, text)
        if m:
            self.fail(msg or f"{regex!r} found: {m.group(0)!r}")

    def assertIn(self, member, container, msg=None):  # noqa: N802
        if member not in container:
            self.fail(msg or f"{member!r} not found")

    def test_node_22_is_the_default(self):
        # Node 20 left upstream support at the end of April 2026.
        self.assertRegex(read("Dockerfile.api"), r"(?m)^ARG NODE_IMAGE=node:22-alpine$")
        self.assertRegex(read("Dockerfile.ml"), r"(?m)^ARG NODE_IMAGE=node:22-bookworm-slim$")
        bake = read("docker-bake.hcl")
        self.assertRegex(bake, r'variable "NODE_IMAGE" \{\s*default = "node:22-alpine"')
        self.assertRegex(bake, r'variable "NODE_GLIBC_IMAGE" \{\s*default = "node:22-bookworm-slim"')

    def test_ml_start_period_covers_the_model_load_timeout(self):
        front = read("examples/ml/front/server.js")
        load_ms = int(re.search(r"intEnv\('ML_LOAD_TIMEOUT_MS', (\d+)", front).group(1))
        m = re.search(r"ML_LOAD_TIMEOUT_MS=(\d+)", read("Dockerfile.ml"))
        if m:
            load_ms = int(m.group(1))
        hc = re.search(r"(?m)^HEALTHCHECK (.*?)\\?$", read("Dockerfile.ml")).group(1)
        start = seconds(re.search(r"--start-period=(\S+)", hc).group(1))
        self.assertGreaterEqual(start, load_ms / 1000, f"HEALTHCHECK start period {start}s < model load timeout")
        # And Kubernetes' startupProbe allows the same.
        y = read("examples/k8s/ml.yaml")
        probe = re.search(r"startupProbe:(.*?)readinessProbe:", y, re.S).group(1)
        budget = int(re.search(r"periodSeconds: (\d+)", probe).group(1)) * \
            int(re.search(r"failureThreshold: (\d+)", probe).group(1))
        self.assertGreaterEqual(budget, load_ms / 1000)

    def test_fast_health_on_current_docker_is_documented(self):
        # Docker 20.10's builder rejects HEALTHCHECK --start-interval, so the images
        # cannot carry it; Docker >= 25 users get the fast path from the run line.
        for f in ("Dockerfile.api", "Dockerfile.ml"):
            text = read(f)
            self.assertNotRegex(re.search(r"(?m)^HEALTHCHECK .*", text).group(0), r"--start-interval")
            self.assertIn("--health-start-interval", text, f"{f} does not say how to get the fast start")
        self.assertRegex(read("README.md"), r"docker run [^\n]*--health-start-interval")

    def test_oci_labels_and_their_build_args(self):
        for f in ("Dockerfile.api", "Dockerfile.ml"):
            text = read(f)
            runtime = text[text.index("AS runtime"):]
            for label in ("source", "revision", "version", "licenses"):
                self.assertRegex(runtime, r"org\.opencontainers\.image\.%s=" % label, f"{f}: no {label} label")
            self.assertRegex(runtime, r"(?m)^ARG VERSION\b")
            self.assertRegex(runtime, r"(?m)^ARG REVISION\b")

    def test_bake_attests_sbom_and_provenance(self):
        bake = read("docker-bake.hcl")
        attest = re.search(r"attest\s*=\s*\[(.*?)\]", bake, re.S)
        self.assertTrue(attest, "no attest in docker-bake.hcl")
        self.assertIn("type=sbom", attest.group(1))
        self.assertIn("type=provenance", attest.group(1))
        for target in ("api", "ml"):
            body = re.search(r'target "%s" \{(.*?)\n\}' % target, bake, re.S).group(1)
            self.assertRegex(body, r'VERSION\s*=\s*TAG')
            self.assertRegex(body, r'REVISION\s*=\s*REVISION')

    def test_k8s_ml_threads_follow_the_cpu_request(self):
        # No CPU limit: the worker would size its pools from the node's cores.
        y = read("examples/k8s/ml.yaml")
        m = re.search(r"- name: ML_THREADS\s*\n\s*valueFrom:\s*\n\s*resourceFieldRef:\s*\n((?:\s+\w+: .*\n)+)", y)
        self.assertTrue(m, "ml.yaml does not size ML_THREADS from the container's resources")
        self.assertRegex(m.group(1), r"resource: (requests|limits)\.cpu")
        self.assertRegex(m.group(1), r'divisor: "?1"?')

    def test_k8s_pdb_does_not_block_a_drain(self):
        y = read("examples/k8s/ml.yaml")
        replicas = int(re.search(r"replicas: (\d+)", y).group(1))
        pdb = re.search(r"kind: PodDisruptionBudget\n(.*?)(?:\n---|\Z)", y, re.S).group(1)
        min_available = re.search(r"minAvailable: (\d+)", pdb)
        max_unavailable = re.search(r"maxUnavailable: (\d+)", pdb)
        allowed = int(max_unavailable.group(1)) if max_unavailable else replicas - int(min_available.group(1))
        self.assertGreaterEqual(allowed, 1, f"the PDB allows {allowed} disruptions of {replicas} replica(s):"
                                            " `kubectl drain` would wait forever")

    def test_comments_say_where_signals_go(self):
        # kai-init forwards a signal to its main child; only the SIGKILL after the stop
        # timeout (and signals named in --signal-group) reach the process group. Each
        # comment sentence, up to any SIGKILL in it, must not send signals to a group.
        wrong = []
        for f in ("Dockerfile.api", "Dockerfile.ml", "examples/api/src/server.js", "examples/ml/front/server.js",
                  "examples/ml/front/worker-client.js", "examples/k8s/api.yaml", "examples/k8s/ml.yaml"):
            text = " ".join(m.group(1) for m in re.finditer(r"(?m)^\s*(?:#|//)\s?(.*)$", read(f)))
            for sentence in re.split(r"(?<=\.)\s+", text):
                before_kill = re.split(r"SIGKILL", sentence)[0]
                if "group" in before_kill and re.search(r"forward|SIGTERM|signals? go", before_kill) \
                        and "signal-group" not in sentence:
                    wrong.append(f"{f}: {sentence.strip()[:200]}")
        self.assertEqual(wrong, [], "comments that send signals to the process group")

    def test_docker_build_lines_work_on_docker_20_10(self):
        # Docker 20.10 builds with the legacy builder unless DOCKER_BUILDKIT=1, and the
        # Dockerfiles need BuildKit (RUN --mount).
        missing = []
        readme = read("README.md")
        blocks = re.findall(r"```(?:sh|console|bash)\n(.*?)```", readme, re.S)
        lines = [line for b in blocks for line in b.splitlines()]
        for f in ("Dockerfile.api", "Dockerfile.ml", "docker-bake.hcl"):
            lines += [line for line in read(f).splitlines() if line.startswith("#")]
        for line in lines:
            if re.search(r"\bdocker build\b", line) and "DOCKER_BUILDKIT=1" not in line:
                missing.append(line.strip())
        self.assertEqual(missing, [], "`docker build` lines without DOCKER_BUILDKIT=1")

    def test_readme_build_context_figure_is_measured(self):
        # bench/images measures the context a fresh clone sends (BuildKit's "transferring
        # context"); the README's two statements of it must agree with each other and
        # with the measured table.
        readme = read("README.md")
        claim = re.search(r"a `\.dockerignore` that cuts the context \| ([\d.]+) MB", readme)
        table = re.search(r"\| build context sent \| [\d.]+ MB \| ([\d.]+) MB", readme)
        self.assertTrue(claim and table, "README: context figures not found")
        measured = re.search(r"\| build context sent\s*\|[^|]*\|\s*([\d.]+) MB", read("bench/images-results.md"))
        self.assertEqual(claim.group(1), table.group(1), "README's two build-context figures differ")
        if measured:
            self.assertAlmostEqual(float(claim.group(1)), float(measured.group(1)), delta=0.05)


# ======================================================================= the API image

class ApiLimitsTests(unittest.TestCase):
    """The API image as shipped (no debug routes) against slow and idle clients."""

    @classmethod
    def setUpClass(cls):
        cls.c = None
        cls.c = h.run_container(image("api"), f"kai-e2e-{h.RUN_ID}-apilimits")
        h.wait_for("the API to become healthy", lambda: h.health_status(cls.c) == "healthy", 60)

    @classmethod
    def tearDownClass(cls):
        if cls.c:
            h.docker("rm", "-f", cls.c, check=False)

    def listening(self):
        return [d for d in (json.loads(x) for x in h.logs(self.c).splitlines() if x.startswith("{"))
                if d.get("msg") == "listening"][-1]

    def test_1_slow_is_a_debug_route_off_in_the_image(self):
        status, body, took = get_status(self.c, 3000, "/slow?ms=30000", timeout=5)
        self.assertEqual(status, 404, f"/slow answered {status} {body} after {took}s")

    def test_2_runs_on_node_22(self):
        self.assertRegex(self.listening()["node"], r"^v22\.")

    def test_3_dribbled_headers_are_cut(self):
        # 300 connections that send one header byte a second: the server closes each
        # once headersTimeout has passed (they used to stay open for minutes).
        limit = self.listening().get("limits", {}).get("headersTimeoutMs", 10000) / 1000
        r = result(hostile(self.c, "dribble", port=3000, n=300, everyMs=1000, seconds=limit + 10))
        print(f"\n    300 dribblers: {r['closedByServer']} closed by the server, last at {r['closeMs']['max']} ms",
              end=" ")
        self.assertEqual(r["opened"], 300, r)
        self.assertEqual(r["closedByServer"], 300, r)
        self.assertLessEqual(r["closeMs"]["max"], (limit + 4) * 1000, r)
        self.assertEqual(get_status(self.c, 3000, "/health")[0], 200)

    def test_4_idle_connections_beyond_the_cap_make_room(self):
        # More idle connections than the cap: the oldest that has not sent a complete
        # request is closed for each new one, so the probe and real clients still get in.
        cap = self.listening().get("limits", {}).get("maxConnections", 1024)
        p = hostile(self.c, "idle", port=3000, n=cap + 100, seconds=6)
        time.sleep(3)
        during = get_status(self.c, 3000, "/")
        check = h.exec_(self.c, "/sbin/kai-init", "check", check=False)
        r = result(p)
        print(f"\n    {cap + 100} idle connections, cap {cap}: {r['closedByServer']} closed", end=" ")
        self.assertEqual(r["opened"], cap + 100, r)
        self.assertGreaterEqual(r["closedByServer"], 100, r)
        self.assertEqual(during[0], 200, during)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def test_5_labels(self):
        labels = h.inspect(image("api"))["Config"]["Labels"]
        check_labels(self, labels, h.build_args("api"))


def check_labels(test, labels, args):
    test.assertEqual(labels.get("org.opencontainers.image.revision"), args["REVISION"])
    test.assertEqual(labels.get("org.opencontainers.image.version"), args["VERSION"])
    test.assertTrue(labels.get("org.opencontainers.image.licenses"))
    test.assertIn("org.opencontainers.image.source", labels)


# ======================================================================= the ML image

# In the ML container: write a model into /models (the directory the worker loads
# from in these tests) and put it in place atomically. argv[1]: "negate" (the current
# model with its output layer negated: every output exactly negated), "overflow"
# (y = 1e30 * x0: finite inputs, a float32 output that overflows to inf),
# "garbage" (not a model at all), or a path to copy.
MODEL_TOOL = r'''
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
dst, tmp = "/models/model.keras", "/models/next.keras"
what = sys.argv[1]
if what == "garbage":
    open(tmp, "wb").write(b"not a model\n")
elif what.startswith("/"):
    open(tmp, "wb").write(open(what, "rb").read())
else:
    import numpy as np, keras
    if what == "negate":
        m = keras.saving.load_model(dst, compile=False)
        y = m.get_layer("y")
        y.set_weights([-w for w in y.get_weights()])
    else:
        m = keras.Sequential([keras.Input(shape=(4,), name="x"), keras.layers.Dense(1, name="y")])
        m.set_weights([np.array([[1e30], [0], [0], [0]], np.float32), np.zeros(1, np.float32)])
    m.save(tmp)
os.replace(tmp, dst)
print("wrote", what)
'''


class MlHostileTests(unittest.TestCase):
    """The ML image with its shipped settings; the model is loaded from /models (a host
    directory) so that SIGHUP can be shown to load a new one."""

    @classmethod
    def setUpClass(cls):
        cls.c = None
        cls.models = tempfile.mkdtemp(prefix="kai-e2e-models-")
        os.chmod(cls.models, 0o777)
        cid = h.docker("create", "--network", "none", "--label", h.LABEL, image("ml")).stdout.strip()
        try:
            h.docker("cp", f"{cid}:/opt/ml/model/model.keras", os.path.join(cls.models, "model.keras"))
            h.docker("cp", f"{cid}:/opt/ml/model/model.keras", os.path.join(cls.models, "original.keras"))
        finally:
            h.docker("rm", "-f", cid, check=False)
        for f in os.listdir(cls.models):
            os.chmod(os.path.join(cls.models, f), 0o666)
        cls.c = h.run_container(image("ml"), f"kai-e2e-{h.RUN_ID}-mlhostile",
                                env_vars={"ML_MODEL": "/models/model.keras"},
                                extra=[*START_PERIOD, "-v", f"{cls.models}:/models"])
        h.wait_for("the ML service to become healthy", lambda: h.health_status(cls.c) == "healthy", START)

    @classmethod
    def tearDownClass(cls):
        if cls.c:
            h.docker("rm", "-f", cls.c, check=False)
        shutil.rmtree(cls.models, ignore_errors=True)

    def predict(self, rows):
        a = call(self.c, [post("/predict", {"inputs": rows})], timeout=120)[0]
        return a.get("status"), (json.loads(a["body"]) if a.get("body", "").startswith("{") else a)

    def ready_line(self):
        return [d for d in log_json(h.logs(self.c), "front") if d.get("msg") == "ready"][-1]

    def reload(self, what):
        before = len(logged(self.c, "worker", "model reloaded")) + \
            len(logged(self.c, "worker", "model reload failed: still serving the previous model"))
        h.exec_(self.c, "python3", "-c", MODEL_TOOL, what, timeout=180)
        h.docker("kill", "-s", "HUP", self.c)
        h.wait_for("the worker to finish the reload", lambda: len(logged(self.c, "worker", "model reloaded")) + len(
            logged(self.c, "worker", "model reload failed: still serving the previous model")) > before, 60)

    def test_1_poison_input_is_refused_and_the_worker_stays_free(self):
        # 1e39 is finite in float64 (JSON) but inf in float32, the model's dtype.
        answers = call(self.c, [dict(path="/predict?x=1e39,1e39,1e39,1e39")], timeout=60)
        self.assertEqual(answers[0].get("status"), 400, answers)
        self.assertIn("float32", answers[0]["body"])
        status, body = self.predict([[1e39, 0, 0, 0]])
        self.assertEqual(status, 400, body)
        # The largest float32 is fine; just past it is not.
        self.assertEqual(self.predict([[3.4028234663852886e38, -3.4028234663852886e38, 0, 1]])[0], 200)
        self.assertEqual(self.predict([[3.5e38, 0, 0, 0]])[0], 400)
        # The next request is served at once, and health never wavers.
        a = call(self.c, [dict(path="/predict?x=0,0,0,0")], timeout=60)[0]
        self.assertEqual(a.get("status"), 200, a)
        self.assertEqual(health(self.c)[0], 200)
        self.assertEqual(h.health_status(self.c), "healthy")

    def test_2_outputs_do_not_depend_on_the_batch(self):
        # Three rows alone, then the same rows inside one request of 64: the same
        # numbers, bit for bit (the worker never runs a single row through the one-row
        # kernel, whose float32 sums round differently). Each time the second element
        # (of magnitude >= 0.5) gets a different nudge, 1e-9 or 2e-9: the same float32
        # input, but a row the result cache has not seen.
        rows = [GOLDEN_INPUTS[0], GOLDEN_INPUTS[2], [1.5, -0.5, 0.75, 1.0]]

        def nudged(k):
            return [[r[0], r[1] + k * 1e-9, r[2], r[3]] for r in rows]
        alone = []
        for row in nudged(1):
            status, body = self.predict([row])
            self.assertEqual(status, 200, body)
            self.assertEqual(body["cached"], 0)
            alone.append(body["outputs"][0])
        others = [[(i % 17) / 4 - 2, (i % 5) / 2 - 1, (i % 7) / 3 - 1, (i % 3) - 1] for i in range(61)]
        status, body = self.predict(others + nudged(2))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["outputs"][-3:], alone)
        # The README's golden value is what the image answers.
        status, body = self.predict([GOLDEN_INPUTS[0]])
        m = re.search(r"`\[0\.5,-1,2,0\.25\]` → `(-?[\d.]+)`", read("README.md"))
        self.assertTrue(m, "README: golden value not found")
        self.assertEqual(float(m.group(1)), body["outputs"][0])
        print(f"\n    golden {GOLDEN_INPUTS[0]} -> {body['outputs'][0]}", end=" ")

    def test_3_burst_of_200_one_row_requests(self):
        before = metrics(self.c, 8080)
        r = result(hostile(self.c, "burst", port=8080, n=200, path="/predict?x={i},0.5,-0.25,1", seconds=60,
                           bodies=True))
        after = metrics(self.c, 8080)
        self.assertEqual(r["statuses"], {"200": 200}, r["statuses"])
        batches = after["ml_batches_total"] - before["ml_batches_total"]
        waits = after["ml_queue_wait_seconds_count"] - before["ml_queue_wait_seconds_count"]
        single = after['ml_batch_rows_bucket{le="1"}'] - before['ml_batch_rows_bucket{le="1"}']
        print(f"\n    200 requests: {batches:.0f} model batches ({single:.0f} of one row), latency {r['latencyMs']}",
              end=" ")
        self.assertEqual(waits, 200, "every request's queue wait is counted")
        self.assertLess(batches, 200, "no request shared a batch")
        # Each request got its own row's answer: the same rows again, 50 to a request.
        got = [json.loads(b)["outputs"] for b in r["bodies"]]
        want = []
        for k in range(0, 200, 50):
            # 0.5 + 1e-9 is 0.5 in float32: the same input, a row the cache has not seen.
            status, body = self.predict([[i, 0.5 + 1e-9, -0.25, 1] for i in range(k, k + 50)])
            self.assertEqual(body["cached"], 0)
            self.assertEqual(status, 200, body)
            want += [[y] for y in body["outputs"]]
        self.assertEqual(got, want)

    def test_4_worker_logs_carry_timestamps(self):
        lines = log_json(h.logs(self.c), "worker")
        self.assertGreaterEqual(len(lines), 3)  # tensorflow, model loaded, ready
        for d in lines:
            self.assertRegex(d.get("t", ""), r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", d)

    def test_5_sighup_reloads_the_model(self):
        status, before = self.predict(GOLDEN_INPUTS)
        self.assertEqual(status, 200, before)
        self.reload("negate")
        line = logged(self.c, "worker", "model reloaded")[-1]
        self.assertEqual(line["path"], "/models/model.keras")
        self.assertRegex(line["sha256"], r"^[0-9a-f]{64}$")
        # The new model answers, and no cached answer of the old one is served.
        status, after = self.predict(GOLDEN_INPUTS)
        self.assertEqual(status, 200, after)
        self.assertEqual(after["outputs"], [-y for y in before["outputs"]], (before, after))
        self.assertEqual(after["cached"], 0)
        self.assertTrue(logged(self.c, "front", "worker reloaded the model"))

    def test_6_a_failed_reload_keeps_the_model(self):
        status, before = self.predict(GOLDEN_INPUTS)
        self.reload("garbage")
        self.assertTrue(logged(self.c, "worker", "model reload failed: still serving the previous model"))
        status, after = self.predict(GOLDEN_INPUTS)
        self.assertEqual((status, after["outputs"]), (200, before["outputs"]))
        self.assertEqual(health(self.c)[0], 200)

    def test_7_non_finite_output_is_500_and_frees_the_worker(self):
        self.reload("overflow")
        try:
            self.assertTrue(logged(self.c, "worker", "model reloaded"))
            status, body = self.predict([[1e10, 0, 0, 0]])        # 1e30 * 1e10: inf in float32
            self.assertEqual(status, 500, body)
            self.assertIn("not finite", body["error"])
            status, body = self.predict([[1e10, 0, 0, 0], [1, 0, 0, 0]])
            self.assertEqual(status, 500, body)
            status, body = self.predict([[1, 0, 0, 0]])
            self.assertEqual(status, 200, body)
            self.assertAlmostEqual(body["outputs"][0] / 1e30, 1, delta=1e-6)
            self.assertEqual(health(self.c)[0], 200)
        finally:
            self.reload("/models/original.keras")

    def test_8_slow_bodies_do_not_exhaust_memory(self):
        # What once took the container from 226 to 805 MiB: 600 connections each
        # holding an unfinished 1 MiB body. Then bodies exactly at the front's limit.
        ready = self.ready_line()
        limits = ready.get("limits", {"bodyBytes": 12288, "maxConnections": 512})
        base = memory(self.c)
        for what, opt in (("1 MiB", dict(declared=MIB, send=MIB - 1, chunk=65536)),
                          ("at the limit", dict(declared=limits["bodyBytes"], send=limits["bodyBytes"] - 1,
                                                chunk=4096))):
            s = Sampler(self.c)
            s.start()
            r = result(hostile(self.c, "bodies", port=8080, n=600, path="/predict", everyMs=0, seconds=20, **opt))
            s.stop()
            grew = (max(s.mem) - base) / MIB
            print(f"\n    600 x {what}: memory +{grew:.0f} MiB (base {base / MIB:.0f} MiB), statuses {r['statuses']},"
                  f" {r['closedByServer']} closed by the server, {r['stillOpen']} still open", end=" ")
            self.assertLess(grew, 64, f"{what}: memory grew {grew:.0f} MiB")
            self.assertLessEqual(r["stillOpen"], limits["maxConnections"], r)
            self.assertTrue(all(code == 0 for code, _ in s.checks), s.checks)
        status, body = self.predict([[1, 2, 3, 4]])
        self.assertEqual(status, 200, body)

    def test_9_dribbled_headers_are_cut(self):
        limit = self.ready_line().get("limits", {}).get("headersTimeoutMs", 5000) / 1000
        r = result(hostile(self.c, "dribble", port=8080, n=200, everyMs=500, seconds=limit + 10))
        print(f"\n    200 dribblers: {r['closedByServer']} closed by the server, last at {r['closeMs']['max']} ms",
              end=" ")
        self.assertEqual(r["closedByServer"], 200, r)
        self.assertLessEqual(r["closeMs"]["max"], (limit + 4) * 1000, r)

    def test_0_labels_start_period_and_node(self):
        img = h.inspect(image("ml"))["Config"]
        check_labels(self, img["Labels"], h.build_args("ml"))
        self.assertGreaterEqual(img["Healthcheck"]["StartPeriod"] / 1e9, 180)
        listening = [d for d in log_json(h.logs(self.c), "front") if d.get("msg") == "listening"][-1]
        self.assertRegex(listening["node"], r"^v22\.")


class MlFrontChannelTests(unittest.TestCase):
    """The front with a worker that answers one request with a line that is not JSON
    (tests/e2e/garbling_worker.py around the real worker): that request fails, the
    rest are served."""

    @classmethod
    def setUpClass(cls):
        cls.c = None
        cls.c = h.run_container(image("ml"), f"kai-e2e-{h.RUN_ID}-mlchannel",
                                env_vars={"ML_WORKER": "/e2e/garbling_worker.py", "ML_TIMEOUT_MS": "4000"},
                                extra=[*START_PERIOD, "-v", f"{HERE}:/e2e:ro"])
        h.wait_for("the ML service to become healthy", lambda: h.health_status(cls.c) == "healthy", START)

    @classmethod
    def tearDownClass(cls):
        if cls.c:
            h.docker("rm", "-f", cls.c, check=False)

    def test_unreadable_answer_fails_that_request_only(self):
        t0 = time.monotonic()
        a = call(self.c, [dict(path="/predict?x=1313,0,0,0")], timeout=60)[0]
        took = time.monotonic() - t0
        self.assertEqual(a.get("status"), 500, a)
        self.assertLess(took, 3, "the front waited for an answer it had already received")
        # The channel is free: the next requests are answered, alone and together with
        # another poisoned one.
        a = call(self.c, [dict(path="/predict?x=0,0,0,0")], timeout=60)[0]
        self.assertEqual(a.get("status"), 200, a)
        r = result(hostile(self.c, "burst", port=8080, n=20, path="/predict?x={i},0,0,0", seconds=30))
        self.assertEqual(r["statuses"], {"200": 20}, r)
        answers = call(self.c, [dict(path="/predict?x=1313,1,0,0")] + [dict(path=f"/predict?x={i},1,0,0")
                                                                       for i in range(5)], timeout=60)
        self.assertEqual([a.get("status") for a in answers], [500, 200, 200, 200, 200, 200], answers)
        self.assertEqual(health(self.c)[0], 200)
        self.assertTrue(logged(self.c, "front", "worker: unreadable answer"))


def suite():
    loader = unittest.TestLoader()
    s = unittest.TestSuite()
    for cls in (ExampleFilesTests, ApiLimitsTests, MlHostileTests, MlFrontChannelTests):
        s.addTests(loader.loadTestsFromTestCase(cls))
    return s
