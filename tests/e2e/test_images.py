"""End-to-end tests of Dockerfile.api and Dockerfile.ml on a real Docker engine.

Run through tests/e2e/run (which starts the engine, builds kai-init and the
stand-in base images, and cleans up); the order of the tests matters and is
fixed by suite() below.
"""
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness as h

IMAGES = {}   # kind -> tag of the image built by BuildTests
BUILDS = {}   # kind -> finished harness.Build


def image(kind):
    if kind not in IMAGES:
        raise AssertionError(f"the {kind} image did not build (see the build test)")
    return IMAGES[kind]


# ======================================================================= builds

class BuildTests(unittest.TestCase):
    """Both images build, in parallel, from the repository as it is."""

    @classmethod
    def setUpClass(cls):
        # Two backgrounded builds at once: what `docker buildx bake` (default
        # group) does, without needing buildx.
        running = {kind: h.Build(f"Dockerfile.{kind}", f"kai-e2e/{kind}:{h.RUN_ID}",
                                 build_args=h.build_args(kind))
                   for kind in ("api", "ml")}
        for kind, b in running.items():
            BUILDS[kind] = b.wait()
            if b.rc == 0:
                IMAGES[kind] = b.tag

    def check_build(self, kind):
        b = BUILDS[kind]
        self.assertEqual(b.rc, 0, f"{kind} build failed:\n{b.output[-4000:]}")
        print(f"\n    {kind}: built in {b.seconds:.1f}s", end=" ")

    def test_api_builds(self):
        self.check_build("api")
        cfg = h.inspect(image("api"))["Config"]
        self.assertEqual(cfg["Entrypoint"][0], "/sbin/kai-init")
        self.assertEqual(cfg["Healthcheck"]["Test"], ["CMD", "/sbin/kai-init", "check"])
        self.assertEqual(cfg["User"], "1000:1000")
        self.assertIn("3000/tcp", cfg["ExposedPorts"])

    def test_ml_builds(self):
        self.check_build("ml")
        cfg = h.inspect(image("ml"))["Config"]
        self.assertEqual(cfg["Entrypoint"][0], "/sbin/kai-init")
        self.assertEqual(cfg["Healthcheck"]["Test"], ["CMD", "/sbin/kai-init", "check"])
        self.assertEqual(cfg["User"], "10001:10001")
        self.assertIn("PYTHONUNBUFFERED=1", cfg["Env"])

    def test_api_runtime_has_production_files_only(self):
        img = image("api")
        out = h.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", img, "-c",
                       "ls -A /app; ls -A /app/node_modules; stat -c '%U %a %n' /app /app/dist /app/dist/server.js;"
                       " test -w /app/dist/server.js && echo WRITABLE || echo readonly").stdout
        self.assertIn("dist", out)
        self.assertNotRegex(out, r"(?m)^(test|scripts|src)$", "tests/sources leaked into the runtime image")
        self.assertIn("stoppable", out)
        self.assertIn("root 644 /app/dist/server.js", out)
        self.assertIn("readonly", out)
        # Package managers (able to fetch and run code) stay in the build stages.
        tools = h.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", img, "-c",
                         "for t in npm npx yarn corepack; do command -v $t || echo no-$t; done;"
                         " ls /usr/local/lib/node_modules 2>/dev/null | sed 's/^/module: /'").stdout
        for t in ("npm", "npx", "yarn", "corepack"):
            self.assertIn(f"no-{t}", tools, f"{t} reached the API runtime image")
        self.assertNotIn("module: ", tools, "global node modules left in the API runtime image")

    def test_ml_runtime_has_artifacts_only(self):
        img = image("ml")
        out = h.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", img, "-c",
                       "ls -A /app; ls /opt/venv/lib/python3.11/site-packages; command -v npm || echo no-npm;"
                       " test -w /app/worker/worker.py && echo WRITABLE || echo readonly;"
                       " ls -l /opt/ml/model/model.keras;"
                       " python3 -c 'import sys, cachetools; print(sys.prefix, cachetools.__version__)'").stdout
        self.assertIn("cachetools", out)
        # python3 on PATH is the venv's, and cachetools comes from it.
        self.assertIn("/opt/venv 5.5.0", out)
        self.assertRegex(out, r"root\s+root\s+\d+ .* /opt/ml/model/model\.keras")
        self.assertIn("no-npm", out, "npm (a build tool) reached the ML runtime image")
        self.assertIn("readonly", out)


class RebuildTests(unittest.TestCase):
    """After a change to application code only, the dependency layers are reused."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kai-e2e-ctx-")
        h.copy_context(cls.tmp)
        with open(os.path.join(cls.tmp, "examples/api/src/app.js"), "a") as f:
            f.write(f"\n// e2e rebuild {h.RUN_ID}\n")
        with open(os.path.join(cls.tmp, "examples/ml/front/server.js"), "a") as f:
            f.write(f"\n// e2e rebuild {h.RUN_ID}\n")
        with open(os.path.join(cls.tmp, "examples/ml/worker/worker.py"), "a") as f:
            f.write(f"\n# e2e rebuild {h.RUN_ID}\n")
        cls.builds = {}
        if not IMAGES:
            return
        running = {kind: h.Build(f"Dockerfile.{kind}", f"kai-e2e/{kind}-rebuild:{h.RUN_ID}",
                                 context=cls.tmp, build_args=h.build_args(kind))
                   for kind in ("api", "ml") if kind in IMAGES}
        cls.builds = {k: b.wait() for k, b in running.items()}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def rebuilt(self, kind):
        image(kind)
        b = self.builds[kind]
        self.assertEqual(b.rc, 0, f"rebuild failed:\n{b.output[-4000:]}")
        print(f"\n    {kind}: rebuilt in {b.seconds:.1f}s", end=" ")
        return b

    def assert_cached(self, b, needle, cached=True):
        st = b.step_status(needle)
        self.assertTrue(st, f"no build step matching {needle!r}:\n{b.output[-3000:]}")
        for title, c in st:
            self.assertEqual(c, cached, f"step {title!r} should {'' if cached else 'not '}be CACHED")

    def test_api_rebuild_reuses_npm_layer(self):
        b = self.rebuilt("api")
        self.assert_cached(b, "npm ci --no-audit")             # deps
        self.assert_cached(b, "npm ci --omit=dev")             # prod-deps
        self.assert_cached(b, "COPY examples/api/ ./", cached=False)  # the change is seen

    def test_ml_rebuild_reuses_pip_and_npm_layers(self):
        b = self.rebuilt("ml")
        self.assert_cached(b, "pip install -r /tmp/requirements.txt")
        self.assert_cached(b, "build_model.py /opt/ml/model/model.keras")
        self.assert_cached(b, "npm ci --omit=dev")
        self.assert_cached(b, "groupadd")
        self.assert_cached(b, "COPY examples/ml/front ./front", cached=False)


class ContextTests(unittest.TestCase):
    """.dockerignore: the context holds what the Dockerfiles need, and the prebuilt binary."""

    def test_dockerignore_context(self):
        dockerfile = (f"FROM {h.STANDINS['node-alpine']}\nCOPY . /ctx\n"
                      "RUN cd /ctx && find . -type f | sort && du -sk . | sed 's/^/CTX-KB /'\n")
        with tempfile.NamedTemporaryFile("w", suffix=".Dockerfile", delete=False) as f:
            f.write(dockerfile)
        try:
            p = h.docker("build", "--network", "host", "--progress", "plain", "--no-cache",
                         "-f", f.name, "--label", h.LABEL, "-t", f"kai-e2e/ctx:{h.RUN_ID}", h.REPO,
                         timeout=300)
        finally:
            os.unlink(f.name)
        out = p.stdout + p.stderr
        files = set(re.findall(r"^#\d+ [\d.]+ \./(\S+)$", out, re.M))
        for needed in (h.BINARY_REL, "Cargo.toml", "Cargo.lock", "src/main.rs",
                       "examples/api/package-lock.json", "examples/api/src/server.js",
                       "examples/ml/requirements.txt", "examples/ml/worker/worker.py"):
            self.assertIn(needed, files)
        for f in files:
            self.assertFalse(re.match(r"(\.git/|tests/|fuzz/|bench/|scripts/|examples/k8s/|.*node_modules/"
                                      r"|.*__pycache__/|README\.md$)", f), f"{f} is in the build context")
            if f.startswith("target/"):
                self.assertIn(f, (h.BINARY_REL, h.BINARY_ARM64_REL))
        kb = re.search(r"CTX-KB (\d+)", out)
        print(f"\n    build context: {len(files)} files, {kb.group(1) if kb else '?'} KiB", end=" ")


class BakeAndManifestTests(unittest.TestCase):
    """docker-bake.hcl and examples/k8s agree with the Dockerfiles and the image settings."""

    def read(self, rel):
        with open(os.path.join(h.REPO, rel)) as f:
            return f.read()

    def test_bake_file_matches_dockerfiles(self):
        bake = self.read("docker-bake.hcl")
        self.assertRegex(bake, r'group "default" \{\s*targets\s*=\s*\["api", "ml"\]')
        for target, dockerfile in (("api", "Dockerfile.api"), ("ml", "Dockerfile.ml")):
            body = re.search(r'target "%s" \{(.*?)\n\}' % target, bake, re.S)
            self.assertTrue(body, f"target {target} missing")
            self.assertIn(f'dockerfile = "{dockerfile}"', body.group(1))
            args = self.read(dockerfile)
            # Less the platform ARGs (TARGETARCH, BUILDARCH...): BuildKit sets those itself.
            declared = {a for a in re.findall(r"^ARG (\w+)", args, re.M)
                        if not re.fullmatch(r"(TARGET|BUILD)(PLATFORM|OS|ARCH|VARIANT)", a)}
            used = set(re.findall(r"^\s+(\w+)\s*=", re.search(r"args = \{(.*?)\}", body.group(1), re.S).group(1),
                                  re.M))
            self.assertEqual(used, declared, f"bake args vs the ARGs of {dockerfile}")
            # CI runners start cold: each target reads and writes a build cache.
            self.assertIn(f'cache-from = cache_from("{target}")', body.group(1))
            self.assertIn(f'cache-to   = cache_to("{target}")', body.group(1))
        self.assertRegex(bake, r'result = CACHE_REF == "" \? \[\] : \["type=registry,ref=\$\{CACHE_REF\}:\$\{name\},mode=max"\]')
        # With buildx available, let bake itself parse the file.
        if h.docker("buildx", "version", check=False).returncode == 0:
            h.docker("buildx", "bake", "-f", os.path.join(h.REPO, "docker-bake.hcl"), "--print")

    def test_k8s_probes_and_grace_period(self):
        for name, image_env in (("api", "Dockerfile.api"), ("ml", "Dockerfile.ml")):
            y = self.read(f"examples/k8s/{name}.yaml")
            for probe, path in (("startupProbe", "/startupz"), ("readinessProbe", "/readyz"),
                                ("livenessProbe", "/livez")):
                m = re.search(probe + r":\s*\n\s*httpGet:\s*\n\s*path: (\S+)\s*\n\s*port: (\S+)", y)
                self.assertTrue(m, f"{name}: {probe} is not an httpGet probe")
                self.assertEqual(m.group(1), path)
                self.assertEqual(m.group(2), "health")
            listen = re.search(r'name: KAI_INIT_HEALTH_LISTEN\s*\n\s*value: "([^"]+)"', y).group(1)
            port = int(listen.rsplit(":", 1)[1])
            self.assertRegex(y, r"- name: health\s*\n\s*containerPort: %d\b" % port)

            def seconds(var):
                m = re.search(r'name: %s\s*\n\s*value: "(\d+)s"' % var, y)
                if m:
                    return int(m.group(1))
                m = re.search(r"%s=(\d+)s" % var, self.read(image_env))
                return int(m.group(1)) if m else 0
            drain, stop = seconds("KAI_INIT_DRAIN_DELAY"), seconds("KAI_INIT_STOP_TIMEOUT")
            grace = int(re.search(r"terminationGracePeriodSeconds: (\d+)", y).group(1))
            self.assertGreaterEqual(grace, drain + stop + 2,
                                    f"{name}: terminationGracePeriodSeconds {grace} < drain {drain} + stop {stop} + 2")
            m = re.search(r'name: SHUTDOWN_GRACE_MS\s*\n\s*value: "(\d+)"', y) or \
                re.search(r"SHUTDOWN_GRACE_MS=(\d+)", self.read(image_env))
            if m:
                self.assertLess(int(m.group(1)) / 1000, stop, f"{name}: app drain not below the stop timeout")

    def test_k8s_manifests_avoid_known_traps(self):
        for name in ("api", "ml"):
            y = self.read(f"examples/k8s/{name}.yaml")
            # /readyz fails on the first failed app probe: one failure must not flap the pod.
            ready = re.search(r"readinessProbe:.*?failureThreshold: (\d+)", y, re.S)
            self.assertTrue(ready, f"{name}: readinessProbe has no failureThreshold")
            self.assertGreaterEqual(int(ready.group(1)), 2, f"{name}: readiness flaps on one failed probe")
            # A moving tag with IfNotPresent runs whatever a node cached last.
            for image, policy in re.findall(r"image: (\S+)\s*\n\s*imagePullPolicy: (\S+)", y):
                self.assertFalse(image.endswith(":latest") and policy == "IfNotPresent", f"{name}: {image} {policy}")
                self.assertRegex(image, r":[^:/]+$|@sha256:", f"{name}: {image} has no tag")
            # IPv6-only clusters: kai-init's health listener on the dual-stack wildcard.
            listen = re.search(r'name: KAI_INIT_HEALTH_LISTEN\s*\n\s*value: "([^"]+)"', y).group(1)
            self.assertTrue(listen.startswith("[::]:"), f"{name}: KAI_INIT_HEALTH_LISTEN {listen} is IPv4-only")
        ml = self.read("examples/k8s/ml.yaml")
        pdb = re.search(r"kind: PodDisruptionBudget\n(.*?)(?:\n---|\Z)", ml, re.S)
        self.assertTrue(pdb, "ml: no PodDisruptionBudget for the single replica")
        self.assertIn("app.kubernetes.io/name: kai-ml", pdb.group(1))
        self.assertRegex(ml, r"maxUnavailable: 0")
        # The documented GPU variant: the device request and TensorFlow's memory growth.
        self.assertRegex(ml, r"#\s*nvidia\.com/gpu: 1")
        self.assertRegex(ml, r"TF_FORCE_GPU_ALLOW_GROWTH")


# ======================================================================= per image

ORPHAN_SECONDS = 4


def orphan_via_exec(name, seconds=ORPHAN_SECONDS):
    """Leaves a `sleep` behind in the container, orphaned at once; returns its pid.
    Its stdio goes to /dev/null so that `docker exec` does not wait for it."""
    out = h.exec_(name, "sh", "-c", f"sleep {seconds} </dev/null >/dev/null 2>&1 & echo $!").stdout
    return int(out.strip())


def proc_status(name, pid):
    """(state letter, ppid) of pid in the container, or None once it is gone."""
    st = h.exec_(name, "cat", f"/proc/{pid}/status", check=False).stdout
    state, ppid = re.search(r"^State:\s+(\S)", st, re.M), re.search(r"^PPid:\s+(\d+)", st, re.M)
    return (state.group(1), int(ppid.group(1))) if state and ppid else None


def assert_adopted_and_reaped(test, name, pid, seconds=ORPHAN_SECONDS):
    seen = proc_status(name, pid)
    test.assertIsNotNone(seen, f"orphan {pid} was gone before it could be seen")
    test.assertEqual(seen[1], 1, f"orphan {pid} is not PID 1's child: {seen}")
    # It exits after `seconds`; PID 1 must then collect it (no lasting zombie).
    h.wait_for(f"orphan {pid} to be reaped", lambda: proc_status(name, pid) is None, seconds + 10)

class ImageTests:
    """Mixed into ApiTests/MlTests; tests run in name order (test_1_..., test_2_...)."""
    kind = None
    app_pattern = None          # regex on cmdline of the application's main process
    hup_lines = ()              # log lines that prove SIGHUP reached the application
    main_env = {}
    stop_expect = ()            # log lines of a graceful stop

    @classmethod
    def setUpClass(cls):
        cls.main = cls.hang = None
        img = image(cls.kind)
        cls.main = h.run_container(img, f"kai-e2e-{h.RUN_ID}-{cls.kind}", env_vars=cls.main_env)
        cls.hang = h.run_container(img, f"kai-e2e-{h.RUN_ID}-{cls.kind}-hang", env_vars=cls.hang_env)

    @classmethod
    def tearDownClass(cls):
        for c in (cls.main, cls.hang):
            if c:
                h.docker("rm", "-f", c, check=False)

    def wait_healthy(self, name, timeout=45, recovering=False):
        def healthy():
            st = h.health_status(name)
            if st == "unhealthy" and not recovering:
                raise AssertionError(f"{name} turned unhealthy")
            if not h.inspect(name)["State"]["Running"]:
                raise AssertionError(f"{name} exited")
            return st == "healthy"
        try:
            h.wait_for(f"{name} to become healthy", healthy, timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nhealth log: {self.health_log(name)}\n{h.logs(name)[-2000:]}") from None

    def health_log(self, name):
        hl = h.inspect(name)["State"].get("Health") or {}
        return [(e["ExitCode"], e["Output"].strip()[:200]) for e in hl.get("Log", [])]

    def app_proc(self, name):
        procs = h.find_proc(name, self.app_pattern)
        self.assertTrue(procs, f"no process matching {self.app_pattern!r}: {h.processes(name)}")
        return procs[0]

    # ---- 1: healthy through kai-init check
    def test_1_becomes_healthy(self):
        self.wait_healthy(self.main)
        log = self.health_log(self.main)
        self.assertTrue(log and log[-1][0] == 0, f"last health check did not pass: {log}")

    # ---- 2: kai-init is PID 1, the application runs as non-root
    def test_2_pid1_and_nonroot(self):
        cmd = h.exec_(self.main, "cat", "/proc/1/cmdline").stdout.split("\0")
        self.assertEqual(cmd[0], "/sbin/kai-init", f"PID 1 is {cmd}")
        procs = h.processes(self.main)
        app = self.app_proc(self.main)
        status = h.exec_(self.main, "cat", f"/proc/{app['pid']}/status").stdout
        uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M)
        self.assertTrue(uid and all(int(u) != 0 for u in uid.groups()), f"application uids: {uid and uid.groups()}")
        self.assertEqual(app["ppid"], 1, "the application is not kai-init's child")
        root_procs = [p for p in procs if p["uid"] == 0]
        self.assertEqual(root_procs, [], "processes running as root in the container")

    # ---- 3: docker kill -s HUP reaches the application
    def test_3_hup_reaches_application(self):
        h.docker("kill", "-s", "HUP", self.main)
        for line in self.hup_lines:
            h.wait_for(f"{line!r} in the logs", lambda: re.search(line, h.logs(self.main)), 10)
        self.assertTrue(h.inspect(self.main)["State"]["Running"], "SIGHUP stopped the container")

    # ---- 4: an orphan is adopted by PID 1 and reaped
    def test_4_orphan_is_adopted_and_reaped(self):
        # HEALTHCHECK and `docker exec` processes themselves are children of the shim
        # (PPid 0 here) and reaped by it, whatever PID 1 does. Their orphans are not:
        # the kernel hands an orphan to the nearest subreaper *in its own PID
        # namespace*, else to that namespace's PID 1; the shim is outside it. So an
        # exec'd shell that leaves a background sleep behind makes an orphan only PID 1
        # can reap (ApiTests.test_4c shows a PID 1 that does not reap failing this).
        pid = orphan_via_exec(self.main)
        assert_adopted_and_reaped(self, self.main, pid)
        h.wait_for("5 health checks", lambda: len(self.health_log(self.main)) >= 5, 30)
        self.assertTrue(all(code == 0 for code, _ in self.health_log(self.main)[-3:]),
                        f"health checks failing: {self.health_log(self.main)}")

    # ---- 5: a hung application turns the container unhealthy
    def test_5_hang_turns_unhealthy(self):
        self.wait_healthy(self.hang)
        self.make_hang(self.hang)
        t0 = time.monotonic()
        h.wait_for(f"{self.hang} to become unhealthy", lambda: h.health_status(self.hang) == "unhealthy", 40)
        print(f"\n    unhealthy {time.monotonic() - t0:.1f}s after the hang", end=" ")
        self.after_hang(self.hang)

    def after_hang(self, name):
        pass

    # ---- 6: docker stop ends it gracefully, well within its timeout
    def test_6_stop_is_graceful(self):
        clients = self.start_in_flight(self.main)
        t0 = time.monotonic()
        h.docker("stop", "-t", "10", self.main, timeout=40)
        took = time.monotonic() - t0
        st = h.inspect(self.main)["State"]
        out = h.logs(self.main)
        print(f"\n    docker stop took {took:.1f}s, exit code {st['ExitCode']}", end=" ")
        self.assertEqual(st["ExitCode"], 0, f"exit code {st['ExitCode']}\n{out[-3000:]}")
        self.assertFalse(st["OOMKilled"])
        self.assertLess(took, 7.0, "stop took too long (the 10 s timeout almost reached)")
        for line in self.stop_expect:
            self.assertRegex(out, line)
        self.check_in_flight(clients, out)

    def check_in_flight(self, clients, out):
        pass


class ApiTests(ImageTests, unittest.TestCase):
    kind = "api"
    app_pattern = r"^node dist/server\.js"
    # The example has no configuration to reload: HUP is counted and said to be so.
    hup_lines = (r'"msg":"SIGHUP received: nothing to reload","reloads":1',)
    # The k8s way (examples/k8s/api.yaml): the health endpoint on TCP, dual-stack, and
    # the HEALTHCHECK's `kai-init check` follows KAI_INIT_HEALTH_LISTEN, here in a
    # container with IPv6 off (no ::1; check falls back to 127.0.0.1). The ML container
    # uses the default abstract socket. API_DEBUG_ROUTES for /debug/orphan (test_4b) and
    # /slow (the in-flight requests of test_6).
    main_env = {"KAI_INIT_HEALTH_LISTEN": "[::]:8081", "API_DEBUG_ROUTES": "1"}
    hang_env = {"API_DEBUG_ROUTES": "1"}
    stop_expect = (r'"msg":"shutdown: draining","signal":"SIGTERM","inFlight":3',
                   r'"msg":"shutdown complete","gracefully":true')

    def test_2c_listens_dual_stack(self):
        # HOST unset: Node listens on :: (IPv4 and IPv6; IPv6-only clusters need it),
        # and the probe's 127.0.0.1 reaches it through the same socket.
        self.wait_healthy(self.main)
        self.assertRegex(h.logs(self.main), r'"msg":"listening","host":"::","port":3000')

    def test_3b_malformed_request_line_gets_400(self):
        # `GET http://[ HTTP/1.1` passes Node's parser but is no URL: it once ended the app.
        script = ("const s = require('net').connect(3000, '127.0.0.1', () => s.end('GET http://[ HTTP/1.1\\r\\n"
                  "Host: x\\r\\n\\r\\n')); let b = ''; s.on('data', (c) => { b += c; });"
                  " s.on('close', () => console.log(b.split('\\r\\n')[0]));")
        out = h.exec_(self.main, "node", "-e", script).stdout
        self.assertEqual(out.strip(), "HTTP/1.1 400 Bad Request")
        p = h.exec_(self.main, "/sbin/kai-init", "check", "http://127.0.0.1:3000/health", check=False)
        self.assertEqual(p.returncode, 0, f"the app stopped answering: {p.stdout}{p.stderr}")
        self.assertTrue(h.inspect(self.main)["State"]["Running"])

    def test_1b_kubernetes_endpoints(self):
        # What the k8s probes ask for, on the --health-listen port.
        self.wait_healthy(self.main)
        for path in ("/livez", "/readyz", "/startupz", "/healthz"):
            p = h.exec_(self.main, "/sbin/kai-init", "check", f"http://127.0.0.1:8081{path}", check=False)
            self.assertEqual(p.returncode, 0, f"{path}: {p.stdout}{p.stderr}")
        p = h.exec_(self.main, "/sbin/kai-init", "check", "http://127.0.0.1:3000/health", check=False)
        self.assertEqual(p.returncode, 0, f"app /health: {p.stdout}{p.stderr}")

    def make_hang(self, name):
        # A request that blocks the event loop for 60 s (debug route): longer than the
        # 40 s the test waits, and asleep in Atomics.wait, so no core spins meanwhile.
        h.exec_(name, "node", "-e",
                "require('http').get('http://127.0.0.1:3000/debug/block?ms=60000').on('error',()=>{})",
                detach=True)
        h.wait_for("the event loop to block", lambda: "blocking the event loop" in h.logs(name), 10)
        self.hung = (time.monotonic(), self.cpu_seconds(name))

    def cpu_seconds(self, name):
        """User + system CPU time the app's main process has used so far."""
        stat = h.exec_(name, "cat", f"/proc/{self.app_proc(name)['pid']}/stat").stdout
        fields = stat[stat.rfind(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def after_hang(self, name):
        # The blocked process sleeps (Atomics.wait) instead of spinning: over the seconds
        # it took to turn unhealthy it used a small share of one core (a busy loop: ~100 %).
        time.sleep(1)  # at least a second of hang to measure, whatever the health timing
        t0, cpu0 = self.hung
        wall, cpu = time.monotonic() - t0, self.cpu_seconds(name) - cpu0
        print(f"CPU {cpu:.2f}s in {wall:.1f}s hung", end=" ")
        self.assertLess(cpu, 0.2 * wall, f"the hung app used {cpu:.2f}s of CPU in {wall:.1f}s")

    clients = 3             # concurrent slow requests in flight at `docker stop`
    slow_ms = 2000

    def start_in_flight(self, name, ms=None, clients=None):
        return api_clients(name, image(self.kind), ms or self.slow_ms, clients or self.clients)

    def check_in_flight(self, proc, out):
        replies = finish_clients(proc)
        ok = [r for r in replies if re.match(r"client \d+: 200 connection=close \{\"waited\":\d+\}$", r)]
        print(f"{len(ok)}/{self.clients} in-flight requests answered 200 with Connection: close", end=" ")
        self.assertEqual(len(ok), self.clients, f"clients got: {replies}\n{out[-3000:]}")

    # ---- 4b: an orphan from the application's own tree is reaped too
    def test_4b_orphan_from_the_app_is_reaped(self):
        out = h.exec_(self.main, "node", "-e",
                      "require('http').get('http://127.0.0.1:3000/debug/orphan?ms=%d',r=>{let b='';"
                      "r.on('data',c=>b+=c);r.on('end',()=>console.log(r.statusCode,b))})" % (ORPHAN_SECONDS * 1000)
                      ).stdout
        m = re.match(r'200 \{"orphan":(\d+)', out)
        self.assertTrue(m, out)
        assert_adopted_and_reaped(self, self.main, int(m.group(1)))

    # ---- 4c: the orphan check fails with a PID 1 that does not reap
    def test_4c_orphan_check_fails_without_a_reaping_pid1(self):
        # The same image with node itself as PID 1 (no kai-init): the orphan is adopted
        # by node, which never waits for it, so it stays a zombie. What test_4 asserts
        # is therefore something kai-init does, not something Docker does.
        name = f"kai-e2e-{h.RUN_ID}-api-node-pid1"
        h.docker("run", "-d", "--name", name, "--label", h.LABEL, "--network", "none", "--no-healthcheck",
                 "--entrypoint", "node", image(self.kind), "dist/server.js")
        try:
            h.wait_for(f"{name} to listen", lambda: '"msg":"listening"' in h.logs(name), 30)
            self.assertEqual(h.exec_(name, "cat", "/proc/1/cmdline").stdout.split("\0")[0], "node")
            pid = orphan_via_exec(name, seconds=1)
            h.wait_for(f"orphan {pid} to exit", lambda: proc_status(name, pid) == ("Z", 1), 15)
            with self.assertRaises(AssertionError):
                h.wait_for(f"orphan {pid} to be reaped", lambda: proc_status(name, pid) is None, 3)
        finally:
            h.docker("rm", "-f", name, check=False)

    # ---- 7: a drain cut by SHUTDOWN_GRACE_MS is reported, not hidden
    def test_7_cut_drain_exits_nonzero(self):
        name = f"kai-e2e-{h.RUN_ID}-api-cut"
        h.run_container(image(self.kind), name, env_vars={"SHUTDOWN_GRACE_MS": "1000", "API_DEBUG_ROUTES": "1"},
                        health=False)
        try:
            h.wait_for(f"{name} to listen", lambda: '"msg":"listening"' in h.logs(name), 30)
            proc = api_clients(name, image(self.kind), 6000, 1)
            h.docker("stop", "-t", "10", name, timeout=40)
            replies = finish_clients(proc)
            st, out = h.inspect(name)["State"], h.logs(name)
            self.assertEqual(st["ExitCode"], 1, out[-3000:])
            self.assertRegex(out, r'"msg":"shutdown: grace expired, cutting in-flight requests","inFlight":1')
            self.assertEqual(len(replies), 1, replies)
            self.assertRegex(replies[0], r"^client 0: error ", "the cut request was reported as answered")
        finally:
            h.docker("rm", "-f", name, check=False)


def api_clients(name, img, ms, clients):
    """`clients` concurrent GET /slow?ms=... to the API container `name`, from a client
    container that shares only its network namespace (its own PID namespace, so the
    clients outlive a stop and report what each got). Returns once the app has logged
    every request as started."""
    script = (
        "const http = require('http'); const n = +process.argv[1]; let left = n;"
        "const agent = new http.Agent({ keepAlive: true });"
        "const done = () => { if (--left === 0) process.exit(0); };"
        "for (let i = 0; i < n; i++) {"
        f"  http.get({{ host: '127.0.0.1', port: 3000, path: '/slow?ms={ms}', agent }}, (r) => {{"
        "    let b = ''; r.on('data', (c) => { b += c; });"
        "    r.on('end', () => { console.log(`client ${i}: ${r.statusCode} connection=${r.headers.connection} ${b}`);"
        "      done(); });"
        "  }).on('error', (e) => { console.log(`client ${i}: error ${e.code || e.message}`); done(); });"
        "}")
    cmd = [h.DOCKER, "run", "--rm", "--name", f"{name}-clients", "--label", h.LABEL,
           "--network", f"container:{name}", "--entrypoint", "node", img, "-e", script, str(clients)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.env())
    want = f'"msg":"slow request started","ms":{ms}'
    try:
        h.wait_for(f"{clients} slow requests to start", lambda: h.logs(name).count(want) >= clients, 30)
    except AssertionError:
        proc.kill()  # our own child, by its Popen handle
        proc.communicate(timeout=30)
        raise
    return proc


def finish_clients(proc):
    """The `client N: ...` lines of an api_clients run, once it has ended (bounded)."""
    try:
        stdout, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, _ = proc.communicate(timeout=30)
    return sorted(line for line in stdout.splitlines() if line.startswith("client "))


class MlTests(ImageTests, unittest.TestCase):
    kind = "ml"
    app_pattern = r"^node front/server\.js"
    # kai-init signals the front only; the front relays the reload to its worker, which
    # loads the model file again (here the same one).
    hup_lines = (r'"who":"front","msg":"SIGHUP received: relaying a model reload to the worker","relayed":true',
                 r'"msg": "model reloaded", "path": "/opt/ml/model/model.keras"',
                 r'"who":"front","msg":"worker reloaded the model"')
    # delay_ms (slow predictions for the stop test) is a test setting, off by default.
    main_env = {"ML_DEBUG_DELAY": "1"}
    hang_env = {}
    # The front drains, then closes the worker's stdin; the worker answers its queue and
    # exits 0 on EOF; the front exits 0 once it has.
    stop_expect = (r'"msg":"shutdown: draining","signal":"SIGTERM"',
                   r'"msg":"http server closed; waiting for the worker"',
                   r'"msg": "stdin closed, exiting"',
                   r'"msg":"shutdown complete","worker":\{"code":0',
                   r'"clean":true')
    clients = 3             # concurrent slow predictions in flight at `docker stop`
    delay_ms = 1000         # each; the worker answers them one after another
    # Importing TensorFlow and loading the model takes ~20 s on an idle machine and
    # minutes on a loaded one: Docker's start period and our waits cover that.
    START = 300

    @classmethod
    def setUpClass(cls):
        cls.main = cls.hang = None
        img = image(cls.kind)
        extra = ["--health-start-period", f"{cls.START}s"]
        cls.main = h.run_container(img, f"kai-e2e-{h.RUN_ID}-{cls.kind}", env_vars=cls.main_env, extra=extra)
        cls.hang = h.run_container(img, f"kai-e2e-{h.RUN_ID}-{cls.kind}-hang", env_vars=cls.hang_env, extra=extra)

    def wait_healthy(self, name, timeout=START, recovering=False):
        super().wait_healthy(name, timeout, recovering)

    def test_2b_process_tree(self):
        # kai-init -> node front -> python worker, all non-root, one process group.
        front = self.app_proc(self.main)
        workers = h.find_proc(self.main, r"python3? -u /app/worker/worker\.py")
        self.assertEqual(len(workers), 1, h.processes(self.main))
        self.assertEqual(workers[0]["ppid"], front["pid"])
        self.assertNotEqual(workers[0]["uid"], 0)
        out = h.exec_(self.main, "node", "-e",
                      "require('http').get('http://127.0.0.1:8080/predict?x=1,2,3,4',r=>{let b='';"
                      "r.on('data',c=>b+=c);r.on('end',()=>console.log(r.statusCode,b))})").stdout
        self.assertRegex(out, r'^200 \{"outputs":\[-?\d+\.\d+\],"backend":"tensorflow"')

    def make_hang(self, name):
        # A hung worker (the front's event loop runs on): the front's /health pings the
        # worker, so kai-init's probe of it fails.
        [worker] = h.find_proc(name, r"python3? -u /app/worker/worker\.py")
        self.stopped = worker["pid"]
        h.exec_(name, "sh", "-c", f"kill -STOP {self.stopped}")

    def after_hang(self, name):
        # ...and healthy again once the process runs again.
        h.exec_(name, "sh", "-c", f"kill -CONT {self.stopped}")
        t0 = time.monotonic()
        self.wait_healthy(name, timeout=30, recovering=True)
        print(f"healthy again {time.monotonic() - t0:.1f}s after SIGCONT", end=" ")

    def start_in_flight(self, name):
        """Concurrent slow /predict requests from a client container that shares only the
        main container's network namespace (loopback): its own PID namespace, so the
        clients outlive the stop and report what they got."""
        script = (
            "const http = require('http'); let left = +process.argv[1];"
            "const done = () => { if (--left === 0) process.exit(0); };"
            "for (let i = 0; i < +process.argv[1]; i++) {"
            f"  http.get(`http://127.0.0.1:8080/predict?x=${{i + 1}},0,0,0&delay_ms={self.delay_ms}`, (r) => {{"
            "    let b = ''; r.on('data', (c) => { b += c; });"
            "    r.on('end', () => { console.log(`client ${i}: ${r.statusCode} ${b}`); done(); });"
            "  }).on('error', (e) => { console.log(`client ${i}: error ${e.message}`); done(); });"
            "}")
        cmd = [h.DOCKER, "run", "--rm", "--name", f"{name}-clients", "--label", h.LABEL,
               "--network", f"container:{name}", "--entrypoint", "node", image(self.kind),
               "-e", script, str(self.clients)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.env())
        want = f'"msg":"prediction requested","rows":1,"delay_ms":{self.delay_ms}'
        try:
            h.wait_for(f"{self.clients} predictions to reach the front",
                       lambda: h.logs(name).count(want) >= self.clients, 30)
        except AssertionError:
            proc.kill()  # our own child, by its Popen handle
            proc.communicate(timeout=30)
            raise
        return proc

    def check_in_flight(self, proc, out):
        try:
            stdout, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate(timeout=30)
        replies = [line for line in stdout.splitlines() if line.startswith("client ")]
        ok = [line for line in replies if re.match(r'client \d+: 200 \{"outputs":\[', line)]
        print(f"{len(ok)}/{self.clients} in-flight predictions answered 200", end=" ")
        self.assertEqual(len(ok), self.clients, f"clients got: {replies}\n{stderr[-1000:]}\n{out[-3000:]}")
        # The worker was stopped by its front (stdin EOF), never by a signal from kai-init.
        self.assertNotRegex(out, r'"msg": "SIG(TERM|INT): ')


class ApiNode20Tests(unittest.TestCase):
    """Dockerfile.api on Node 20 (NODE_IMAGE=node:20-alpine, the platform's base before Node 20
    left support; the default is Node 22): the build's `npm test` runs on Node 20, and the image
    serves and stops cleanly."""

    def test_api_builds_and_runs_on_node20(self):
        image("api")
        args = dict(h.build_args("api"), NODE_IMAGE=h.STANDINS["node-alpine"])
        b = h.Build("Dockerfile.api", f"kai-e2e/api-node20:{h.RUN_ID}", build_args=args).wait()
        self.assertEqual(b.rc, 0, f"build failed:\n{b.output[-4000:]}")
        passed = re.search(r"# pass (\d+)", b.output)
        self.assertTrue(passed and int(passed.group(1)) > 0, f"the unit tests did not run:\n{b.output[-3000:]}")
        self.assertRegex(b.output, r"# fail 0\b")
        print(f"\n    api on node 20: built in {b.seconds:.1f}s, {passed.group(1)} unit tests passed", end=" ")
        name = h.run_container(b.tag, f"kai-e2e-{h.RUN_ID}-api-node20")
        try:
            h.wait_for(f"{name} to become healthy", lambda: h.health_status(name) == "healthy", 45)
            self.assertRegex(h.logs(name), r'"msg":"listening".*"node":"v20\.')
            h.docker("stop", "-t", "10", name, timeout=40)
            self.assertEqual(h.inspect(name)["State"]["ExitCode"], 0, h.logs(name)[-3000:])
        finally:
            h.docker("rm", "-f", name, check=False)


class SourceBuildTests(unittest.TestCase):
    """KAI_INIT_FROM=source (the default users get): kai-init compiled in the
    Rust stage from this repository, with cache mounts, into both images."""

    def test_api_with_kai_init_from_source(self):
        image("api")
        args = dict(h.build_args("api"), KAI_INIT_FROM="source", RUST_IMAGE=h.STANDINS["rust"])
        b = h.Build("Dockerfile.api", f"kai-e2e/api-source:{h.RUN_ID}", build_args=args).wait()
        self.assertEqual(b.rc, 0, f"build failed:\n{b.output[-4000:]}")
        print(f"\n    api with kai-init from source: built in {b.seconds:.1f}s", end=" ")
        self.assertTrue(b.step_status("cargo build --release --locked"), "no cargo build step ran")
        self.assertIn("Finished `release` profile", b.output)
        # The image's kai-init is a static binary and the same version as the repository's.
        cid = h.docker("create", "--network", "none", "--label", h.LABEL, b.tag).stdout.strip()
        with tempfile.TemporaryDirectory() as d:
            h.docker("cp", f"{cid}:/sbin/kai-init", os.path.join(d, "kai-init"))
            h.docker("rm", cid)
            f = subprocess.run(["file", os.path.join(d, "kai-init")], capture_output=True, text=True).stdout
            self.assertRegex(f, r"static(-pie)? linked|statically linked")
        out = h.docker("run", "--rm", "--network", "none", "--entrypoint", "/sbin/kai-init", b.tag,
                       "--version").stdout
        self.assertRegex(out, r"^kai-init \d+\.\d+\.\d+")

    def test_ml_with_kai_init_from_source(self):
        image("ml")
        args = dict(h.build_args("ml"), KAI_INIT_FROM="source", RUST_IMAGE=h.STANDINS["rust"])
        b = h.Build("Dockerfile.ml", f"kai-e2e/ml-source:{h.RUN_ID}", build_args=args).wait()
        self.assertEqual(b.rc, 0, f"build failed:\n{b.output[-4000:]}")
        out = h.docker("run", "--rm", "--network", "none", "--entrypoint", "/sbin/kai-init", b.tag,
                       "--version").stdout
        self.assertRegex(out, r"^kai-init \d+\.\d+\.\d+")


def suite():
    loader = unittest.TestLoader()
    s = unittest.TestSuite()
    for cls in (BakeAndManifestTests, ContextTests, BuildTests, RebuildTests, ApiTests, ApiNode20Tests, MlTests,
                SourceBuildTests):
        s.addTests(loader.loadTestsFromTestCase(cls))
    return s
