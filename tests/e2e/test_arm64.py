"""End-to-end: kai-init on arm64 (issue 18), on this x86_64 machine's Docker engine.

scripts/test-arm64 prepare (run first, idempotent) installs qemu-user-static, registers
qemu-aarch64 with binfmt_misc with the F flag (the kernel opens the interpreter when it
is registered, so arm64 programs run inside containers, where no qemu file exists),
fetches Debian's busybox-static for arm64 and builds kai-init for aarch64. Then:

1. Arm64ImageTests: an arm64 image (tests/e2e/arm64/Dockerfile: FROM scratch, COPY of
   kai-init for aarch64 and busybox for arm64, nothing pulled) run by Docker with
   --platform linux/arm64, emulated: exit codes 0/3/126/127 pass through, TERM is
   forwarded (the child's own code, 143 without a handler), the HEALTHCHECK goes
   healthy through `kai-init check`, `docker stop` drains, orphans are reaped by kai-init
   as PID 1, and the child runs as an unprivileged user when asked.
2. CrossBuildTests: both Dockerfiles give an arm64 image the aarch64 kai-init: from
   source (Dockerfile.api's Rust stage on the build platform, cross-compiling and
   linking with rust-lld) and prebuilt (the per-architecture COPY), both platforms.
3. BakeTests: docker-bake.hcl builds both images for linux/amd64 and linux/arm64 (read
   from the file: buildx is not installable on these machines); the Dockerfiles name
   an architecture only where they map TARGETARCH; the arm64 TensorFlow pin exists on
   PyPI for aarch64 (and tensorflow-cpu, the x86_64 package, does not).

Run: KAI_E2E_ONLY=arm64 tests/e2e/run
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import unittest

import harness as h

PLATFORM = "linux/arm64"
BUSYBOX = os.path.join(h.REPO, "target/arm64/busybox")  # scripts/test-arm64 prepare
DOCKERFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "arm64", "Dockerfile")


def prepare():
    """scripts/test-arm64 prepare: the set-up and the aarch64 build, once per run."""
    p = subprocess.run([os.path.join(h.REPO, "scripts/test-arm64"), "prepare"], capture_output=True,
                       text=True, timeout=900)
    if p.returncode != 0:
        raise AssertionError(f"scripts/test-arm64 prepare failed:\n{(p.stdout + p.stderr)[-3000:]}")


def file_kind(path):
    return subprocess.run(["file", "-b", path], capture_output=True, text=True, check=True).stdout.strip()


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def rootfs(root):
    """kai-init for aarch64 and busybox for arm64 with its applets, passwd and group."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    tmp = os.path.join(root, "tmp")
    os.makedirs(tmp)
    os.chmod(tmp, 0o1777)
    shutil.copy2(os.path.join(h.REPO, h.BINARY_ARM64_REL), os.path.join(root, "sbin/kai-init"))
    shutil.copy2(BUSYBOX, os.path.join(root, "bin/busybox"))
    # The arm64 busybox lists its applets itself, here through binfmt_misc as well.
    applets = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True,
                             timeout=60).stdout.split()
    if "bin/sh" not in applets:
        raise AssertionError(f"busybox --list-full has no bin/sh: {applets[:20]}")
    for a in applets:
        p = os.path.join(root, a)
        if not os.path.lexists(p):
            os.makedirs(os.path.dirname(p), exist_ok=True)
            os.symlink("/bin/busybox", p)
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")


class Arm64ImageTests(unittest.TestCase):
    """The arm64 image on the real engine, through binfmt_misc emulation."""

    @classmethod
    def setUpClass(cls):
        prepare()
        cls.names = []
        cls.tag = f"kai-e2e/arm64:{h.RUN_ID}"
        ctx = tempfile.mkdtemp(prefix="kai-e2e-arm64-")
        try:
            rootfs(os.path.join(ctx, "rootfs"))
            shutil.copy2(DOCKERFILE, os.path.join(ctx, "Dockerfile"))
            t0 = time.monotonic()
            h.docker("build", "--network", "none", "--platform", PLATFORM, "--label", h.LABEL,
                     "-t", cls.tag, ctx, timeout=300)
            cls.build_seconds = time.monotonic() - t0
        finally:
            shutil.rmtree(ctx, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        for n in cls.names:
            h.docker("rm", "-f", n, check=False, timeout=60)

    def name(self, tag):
        n = f"kai-e2e-{h.RUN_ID}-arm64-{tag}"
        self.names.append(n)
        return n

    def run_to_end(self, *cmd, env=None, extra=(), timeout=60):
        """docker run --rm (foreground): (exit code, stdout, stderr)."""
        args = ["run", "--rm", "--network", "none", "--platform", PLATFORM, "--label", h.LABEL]
        for k, v in (env or {}).items():
            args += ["-e", f"{k}={v}"]
        args += [*extra, self.tag, *cmd]
        p = h.docker(*args, check=False, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def start(self, tag, *cmd, extra=()):
        """docker run -d with a fast HEALTHCHECK (the image's own command)."""
        n = self.name(tag)
        h.docker("run", "-d", "--name", n, "--label", h.LABEL, "--network", "none", "--platform", PLATFORM,
                 "--health-interval", "1s", "--health-timeout", "10s", "--health-retries", "3",
                 "--health-start-period", "30s", *extra, self.tag, *cmd, timeout=60)
        return n

    def wait_exit(self, name, timeout=60):
        return int(h.docker("wait", name, timeout=timeout).stdout.strip())

    def test_1_the_image_is_arm64_and_runs_emulated(self):
        print(f"\n    arm64 image built in {self.build_seconds:.1f}s", end=" ")
        info = h.inspect(self.tag)
        self.assertEqual((info["Os"], info["Architecture"]), ("linux", "arm64"))
        self.assertIn("ARM aarch64", file_kind(os.path.join(h.REPO, h.BINARY_ARM64_REL)))
        self.assertIn("ARM aarch64", file_kind(BUSYBOX))
        # qemu-user answers uname(2) for the emulated machine.
        code, out, err = self.run_to_end("uname", "-m")
        self.assertEqual((code, out.strip()), (0, "aarch64"), err)
        code, out, err = self.run_to_end("/sbin/kai-init", "--version", extra=["--entrypoint", ""])
        self.assertEqual(code, 0, err)
        self.assertRegex(out, r"^kai-init \d+\.\d+\.\d+")

    def test_2_exit_codes_pass_through(self):
        for cmd, want, line in ((["sh", "-c", "exit 0"], 0, "child exited code=0"),
                                (["sh", "-c", "exit 3"], 3, "child exited code=3"),
                                (["/bin"], 126, "cannot execute '/bin': is a directory"),
                                (["kai-e2e-no-such-command"], 127,
                                 "cannot run 'kai-e2e-no-such-command': command not found")):
            code, _, err = self.run_to_end(*cmd)
            self.assertEqual(code, want, f"{cmd}: {err}")
            self.assertIn(line, err, cmd)
            self.assertNotIn("subreaper", err, "kai-init is PID 1 in the container, not a subreaper")

    def test_3_term_is_forwarded(self):
        # A child with a TERM handler: its own exit code is the container's.
        handler = self.start("term-handler", "sh", "-c",
                             "trap 'echo got TERM; exit 42' TERM; echo up; while :; do sleep 1 & wait $!; done")
        # No handler: the child dies of the forwarded TERM, and kai-init exits 128+15.
        plain = self.start("term-plain", "sleep", "600")
        h.wait_for("the handler child to be up", lambda: "up" in h.logs(handler), 30)
        h.wait_for("sleep to run", lambda: "started child" in h.logs(plain), 30)
        for n in (handler, plain):
            h.docker("kill", "--signal", "TERM", n)
        self.assertEqual(self.wait_exit(handler), 42, h.logs(handler))
        self.assertIn("got TERM", h.logs(handler))
        self.assertEqual(self.wait_exit(plain), 143, h.logs(plain))
        for n in (handler, plain):
            self.assertIn("stopping child signal=SIGTERM", h.logs(n))

    def test_4_healthcheck_goes_healthy_through_kai_init_check(self):
        # A file probe: the app is healthy while /tmp/ready exists.
        n = self.start("health", "sh", "-c", "touch /tmp/ready; echo up; exec sleep 600",
                       extra=["-e", "KAI_INIT_PROBE=file:/tmp/ready", "-e", "KAI_INIT_PROBE_INTERVAL=500ms",
                              "-e", "KAI_INIT_PROBE_FAILURES=2"])
        t0 = time.monotonic()
        h.wait_for(f"{n} to become healthy", lambda: h.health_status(n) == "healthy", 60)
        print(f"\n    healthy {time.monotonic() - t0:.1f}s after docker run returned", end=" ")
        log = h.inspect(n)["State"]["Health"]["Log"]
        self.assertEqual(log[-1]["ExitCode"], 0, log)
        self.assertIn("200", log[-1]["Output"])
        p = h.exec_(n, "/sbin/kai-init", "check", check=False)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # The probe fails: /healthz answers 503, `kai-init check` exits 1 (never 2) and
        # Docker's HEALTHCHECK, the same command, turns the container unhealthy.
        h.exec_(n, "rm", "/tmp/ready")
        h.wait_for(f"{n} to become unhealthy", lambda: h.health_status(n) == "unhealthy", 60)
        p = h.exec_(n, "/sbin/kai-init", "check", check=False)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("503", p.stdout + p.stderr)
        h.exec_(n, "touch", "/tmp/ready")
        h.wait_for(f"{n} to become healthy again", lambda: h.health_status(n) == "healthy", 60)

    def test_5_docker_stop_drains(self):
        n = self.start("drain", "sh", "-c",
                       "trap 'echo draining; sleep 2; echo drained; exit 0' TERM; echo up;"
                       " while :; do sleep 1 & wait $!; done")
        h.wait_for("the child to be up", lambda: "up" in h.logs(n), 30)
        t0 = time.monotonic()
        h.docker("stop", "--time", "10", n, timeout=60)
        took = time.monotonic() - t0
        print(f"\n    docker stop took {took:.1f}s (drain of 2 s)", end=" ")
        state = h.inspect(n)["State"]
        logs = h.logs(n)
        self.assertEqual(state["ExitCode"], 0, logs)
        self.assertFalse(state["OOMKilled"])
        self.assertLess(logs.index("draining"), logs.index("drained"), logs)
        # The child's own drain ended it, well before Docker's SIGKILL at 10 s.
        self.assertGreaterEqual(took, 2.0)
        self.assertLess(took, 8.0, logs)
        self.assertIn("child exited code=0", logs)

    def test_6_orphans_are_reaped_as_pid1(self):
        # Each ( sleep 0.2 & ) leaves a background process whose parent exits at once: it
        # is reparented to PID 1, kai-init under qemu, which must reap it when it ends.
        n = self.start("orphans", "sh", "-c",
                       "for i in 1 2 3 4 5; do ( sleep 0.2 & ); done; echo spawned; exec sleep 600",
                       extra=["-e", "KAI_INIT_HEALTH_LISTEN=127.0.0.1:8081"])
        h.wait_for("the orphans to be spawned", lambda: "spawned" in h.logs(n), 30)

        def reaped():
            # kai-init's own count, from its metrics endpoint, fetched in the container.
            metrics = h.exec_(n, "wget", "-qO-", "http://127.0.0.1:8081/metrics").stdout
            m = re.search(r"^kai_init_zombies_reaped_total (\S+)$", metrics, re.M)
            self.assertTrue(m, metrics)
            return float(m.group(1)) >= 5
        h.wait_for("kai-init to reap the five orphans", reaped, 30)
        stats = h.exec_(n, "sh", "-c", "cat /proc/[0-9]*/stat 2>/dev/null").stdout
        self.assertFalse(re.findall(r"^\d+ \(.*\) Z ", stats, re.M), f"zombies left:\n{stats}")
        # Left: kai-init as 1 and one child of it, the main one (this exec's processes
        # have a parent outside the namespace, 0 here).
        self.assertRegex(stats, r"(?m)^1 \(kai-init\) ")
        self.assertEqual(len(re.findall(r"(?m)^\d+ \(.*?\) \S+ 1 ", stats)), 1, stats)
        # Exactly the five: the subshells were the shell's own children, reaped by it.
        metrics = h.exec_(n, "wget", "-qO-", "http://127.0.0.1:8081/metrics").stdout
        total = re.search(r"^kai_init_zombies_reaped_total (\S+)$", metrics, re.M).group(1)
        self.assertEqual(float(total), 5.0, metrics)

    def test_7_the_child_runs_unprivileged(self):
        code, out, err = self.run_to_end("sh", "-c", "id -u; id -g; grep -E '^(Uid|Gid|Groups):' /proc/self/status",
                                         env={"KAI_INIT_USER": "nobody"})
        self.assertEqual(code, 0, err)
        lines = out.split()
        self.assertEqual(lines[:2], ["65534", "65534"], out)
        self.assertRegex(out, r"Uid:\s+65534\s+65534\s+65534\s+65534")


class CrossBuildTests(unittest.TestCase):
    """Dockerfile.api and Dockerfile.ml put the image's architecture's kai-init in it."""

    @classmethod
    def setUpClass(cls):
        prepare()

    def kai_init_stage(self, dockerfile, platform, **args):
        """Build the kai-init stage for `platform`, export /kai-init: (path, build seconds)."""
        out = tempfile.mkdtemp(prefix="kai-e2e-cross-")
        self.addCleanup(shutil.rmtree, out, ignore_errors=True)
        cmd = ["build", "--network", "host", "--progress", "plain", "--platform", platform,
               "-f", os.path.join(h.REPO, dockerfile), "--target", "kai-init", "--output", f"type=local,dest={out}"]
        for k, v in args.items():
            cmd += ["--build-arg", f"{k}={v}"]
        t0 = time.monotonic()
        p = h.docker(*cmd, h.REPO, timeout=900)
        path = os.path.join(out, "kai-init")
        self.assertTrue(os.path.exists(path), f"no /kai-init exported:\n{(p.stdout + p.stderr)[-3000:]}")
        return path, time.monotonic() - t0, p.stdout + p.stderr

    def test_prebuilt_takes_the_binary_of_the_target_architecture(self):
        want = {"linux/amd64": h.BINARY_REL, "linux/arm64": h.BINARY_ARM64_REL}
        for dockerfile in ("Dockerfile.api", "Dockerfile.ml"):
            for platform, rel in want.items():
                path, _, _ = self.kai_init_stage(dockerfile, platform, KAI_INIT_FROM="prebuilt")
                self.assertEqual(sha256(path), sha256(os.path.join(h.REPO, rel)), f"{dockerfile} {platform}")

    def test_arm64_kai_init_from_source_is_cross_compiled(self):
        path, seconds, out = self.kai_init_stage("Dockerfile.api", PLATFORM, KAI_INIT_FROM="source",
                                                 RUST_IMAGE=h.STANDINS["rust"])
        print(f"\n    arm64 kai-init from source: {seconds:.1f}s", end=" ")
        kind = file_kind(path)
        self.assertIn("ARM aarch64", kind)
        self.assertIn("statically linked", kind)
        # Compiled by the build platform's toolchain (no emulated rustc), linked by rust-lld.
        self.assertIn("Finished `release` profile", out)
        self.assertIn("aarch64-unknown-linux-musl", out)
        v = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
        self.assertRegex(v.stdout, r"^kai-init \d+\.\d+\.\d+", v.stderr)
        size = os.path.getsize(path)
        self.assertLessEqual(size, 1200 * 1024, f"{size} bytes")


def read(rel):
    with open(os.path.join(h.REPO, rel)) as f:
        return f.read()


def hcl_list(body, key):
    m = re.search(rf"^\s*{key}\s*=\s*\[(.*?)\]", body, re.M | re.S)
    return re.findall(r'"([^"]*)"', m.group(1)) if m else None


class BakeTests(unittest.TestCase):
    """docker-bake.hcl and the Dockerfiles, read: what buildx would build."""

    def platforms(self, bake, target, seen=()):
        """A target's platforms: its own, else those of what it inherits (first that has them)."""
        self.assertNotIn(target, seen, "inheritance loop")
        m = re.search(r'^target "%s" \{(.*?)^\}' % re.escape(target), bake, re.M | re.S)
        self.assertTrue(m, f"no target {target!r} in docker-bake.hcl")
        own = hcl_list(m.group(1), "platforms")
        if own is not None:
            return own
        for parent in hcl_list(m.group(1), "inherits") or []:
            got = self.platforms(bake, parent, (*seen, target))
            if got is not None:
                return got
        return None

    def test_bake_builds_both_images_for_amd64_and_arm64(self):
        bake = read("docker-bake.hcl")
        default = re.search(r'^group "default" \{(.*?)^\}', bake, re.M | re.S)
        self.assertTrue(default)
        targets = hcl_list(default.group(1), "targets")
        self.assertEqual(sorted(targets), ["api", "ml"])
        for t in targets:
            self.assertEqual(sorted(self.platforms(bake, t) or []), ["linux/amd64", "linux/arm64"], t)

    # Where a Dockerfile may name an architecture: where it maps TARGETARCH to one.
    MAPPING = [
        r"FROM scratch AS kai-init-prebuilt-(amd64|arm64)",
        r"COPY target/(x86_64|aarch64)-unknown-linux-musl/release/kai-init /kai-init",
        r"(amd64|arm64)\) target=(x86_64|aarch64)-unknown-linux-musl"
        r" linker=CARGO_TARGET_(X86_64|AARCH64)_UNKNOWN_LINUX_MUSL_LINKER ;; \\",
        r'\*\) echo "kai-init builds for amd64 and arm64, not TARGETARCH=\$TARGETARCH" >&2; exit 1 ;; \\',
        r"FROM \$\{TF_IMAGE\} AS tf-amd64",
        r"FROM \$\{TF_ARM64_IMAGE\} AS tf-arm64",
        r"ARG TF_ARM64_(IMAGE|VERSION)(=.*)?",
        r'python3 -m pip install "tensorflow==\$\{TF_ARM64_VERSION\}"',
    ]

    def test_dockerfiles_name_an_architecture_only_to_map_targetarch(self):
        arch = re.compile(r"x86_64|X86_64|amd64|aarch64|AARCH64|arm64|ARM64")
        for dockerfile in ("Dockerfile.api", "Dockerfile.ml"):
            text = read(dockerfile)
            for line in text.splitlines():
                code = line.strip()
                if code.startswith("#") or not arch.search(code):
                    continue
                self.assertTrue(any(re.fullmatch(p, code) for p in self.MAPPING),
                                f"{dockerfile}: architecture named outside the TARGETARCH mapping: {code}")
            # Both architectures on each side of each mapping.
            for line in ("FROM scratch AS kai-init-prebuilt-amd64", "FROM scratch AS kai-init-prebuilt-arm64",
                         "FROM kai-init-prebuilt-${TARGETARCH} AS kai-init-prebuilt",
                         "FROM --platform=$BUILDPLATFORM ${RUST_IMAGE} AS kai-init-build"):
                self.assertTrue(re.search(rf"^{re.escape(line)}$", text, re.M), f"{dockerfile}: no {line!r}")
        ml = read("Dockerfile.ml")
        # Every stage on the TensorFlow base takes the one of the image's architecture.
        for line in ("FROM tf-${TARGETARCH} AS tf", "FROM tf AS python-deps", "FROM tf AS model",
                     "FROM tf AS runtime"):
            self.assertTrue(re.search(rf"^{re.escape(line)}$", ml, re.M), f"Dockerfile.ml: no {line!r}")

    def test_the_arm64_tensorflow_pin_has_an_aarch64_wheel(self):
        ml = read("Dockerfile.ml")
        version = re.search(r"^ARG TF_ARM64_VERSION=(\S+)$", ml, re.M).group(1)
        image = re.search(r"^ARG TF_ARM64_IMAGE=python:(\d+)\.(\d+)\S*$", ml, re.M)
        self.assertTrue(image, "TF_ARM64_IMAGE is expected to be a python:X.Y image")
        py = f"{image.group(1)}.{image.group(2)}"

        def aarch64_versions(package):
            """Versions of `package` with a manylinux aarch64 wheel for this CPython (PyPI, via pip)."""
            p = subprocess.run(["/usr/bin/python3", "-m", "pip", "index", "versions", "--disable-pip-version-check",
                                "--only-binary=:all:", "--platform", "manylinux2014_aarch64", "--python-version", py,
                                "--implementation", "cp", package], capture_output=True, text=True, timeout=120)
            m = re.search(r"^Available versions: (.*)$", p.stdout, re.M)
            if p.returncode != 0 and "No matching distribution" in p.stderr:
                return []
            self.assertTrue(m, f"pip index versions {package}: {p.stdout}{p.stderr}")
            return [v.strip() for v in m.group(1).split(",")]
        self.assertIn(version, aarch64_versions("tensorflow"), f"tensorflow {version}, cp{py}, aarch64")
        # Why the arm64 stage installs `tensorflow`: the CPU-only package has no aarch64 wheels.
        self.assertNotIn(version, aarch64_versions("tensorflow-cpu"))


def suite():
    loader = unittest.TestLoader()
    s = unittest.TestSuite()
    for cls in (BakeTests, Arm64ImageTests, CrossBuildTests):
        s.addTests(loader.loadTestsFromTestCase(cls))
    return s
