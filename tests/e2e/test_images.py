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
                self.assertEqual(f, h.BINARY_REL)
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
            declared = set(re.findall(r"^ARG (\w+)", args, re.M))
            used = set(re.findall(r"^\s+(\w+)\s*=", re.search(r"args = \{(.*?)\}", body.group(1), re.S).group(1),
                                  re.M))
            self.assertEqual(used, declared, f"bake args vs the ARGs of {dockerfile}")
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
            m = re.search(r'name: SHUTDOWN_GRACE_MS\s*\n\s*value: "(\d+)"', y)
            if m:
                self.assertLess(int(m.group(1)) / 1000, stop, f"{name}: app drain not below the stop timeout")


# ======================================================================= per image

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

    # ---- 4: repeated HEALTHCHECK runs leave no zombies
    def test_4_no_zombies_after_healthchecks(self):
        h.wait_for("5 health checks", lambda: len(self.health_log(self.main)) >= 5, 30)
        first = {p["pid"] for p in h.processes(self.main) if p["state"] == "Z"}
        time.sleep(1.5)   # at least one more health check in between
        second = [p for p in h.processes(self.main) if p["state"] == "Z"]
        lasting = [p for p in second if p["pid"] in first]
        self.assertEqual(lasting, [], "zombie processes left in the container")
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
    hup_lines = (r"SIGHUP received: reloading configuration",)
    # The k8s way: the health endpoint on TCP, `kai-init check` follows
    # KAI_INIT_HEALTH_LISTEN (the ML container uses the default abstract socket).
    main_env = {"KAI_INIT_HEALTH_LISTEN": "0.0.0.0:8081"}
    hang_env = {"API_DEBUG_ROUTES": "1"}
    stop_expect = (r'"msg":"shutdown: draining","signal":"SIGTERM","inFlight":[1-9]',
                   r'"msg":"in-flight request finished","ms":2000',
                   r'"msg":"shutdown complete","gracefully":true')

    def test_1b_kubernetes_endpoints(self):
        # What the k8s probes ask for, on the --health-listen port.
        self.wait_healthy(self.main)
        for path in ("/livez", "/readyz", "/startupz", "/healthz"):
            p = h.exec_(self.main, "/sbin/kai-init", "check", f"http://127.0.0.1:8081{path}", check=False)
            self.assertEqual(p.returncode, 0, f"{path}: {p.stdout}{p.stderr}")
        p = h.exec_(self.main, "/sbin/kai-init", "check", "http://127.0.0.1:3000/health", check=False)
        self.assertEqual(p.returncode, 0, f"app /health: {p.stdout}{p.stderr}")

    def make_hang(self, name):
        # A request that blocks the event loop for two minutes (debug route).
        h.exec_(name, "node", "-e",
                "require('http').get('http://127.0.0.1:3000/debug/block?ms=120000').on('error',()=>{})",
                detach=True)
        h.wait_for("the event loop to block", lambda: "blocking the event loop" in h.logs(name), 10)

    def start_in_flight(self, name):
        h.exec_(name, "node", "-e",
                "require('http').get('http://127.0.0.1:3000/slow?ms=2000',r=>r.resume()).on('error',()=>{})",
                detach=True)
        h.wait_for("the slow request to start", lambda: "slow request started" in h.logs(name), 10)


class MlTests(ImageTests, unittest.TestCase):
    kind = "ml"
    app_pattern = r"^node front/server\.js"
    # kai-init signals the front only; the front relays the reload to its worker.
    hup_lines = (r'"who":"front","msg":"SIGHUP received: reloading configuration","relayed_to_worker":true',
                 r'"msg": "SIGHUP received: reloading model configuration"')
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
    for cls in (BakeAndManifestTests, ContextTests, BuildTests, RebuildTests, ApiTests, MlTests,
                SourceBuildTests):
        s.addTests(loader.loadTestsFromTestCase(cls))
    return s
