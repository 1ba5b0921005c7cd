"""The API image on Podman (Debian's podman 4.3, as root): readiness through
--sdnotify=container, `podman healthcheck run`, `podman stop`.

Run through tests/e2e/run (which installs podman when it is missing) after
test_images has built the API image: `KAI_E2E_ONLY=Podman tests/e2e/run`.

Everything Podman creates lives in a private store (--root/--runroot/--tmpdir
under one temporary directory), so the machine's own Podman store is never
touched and the clean-up is `podman system reset` of that store plus removing
the directory. Settings this sandbox needs: --cgroup-manager cgroupfs (no
systemd), --events-backend file (no journald), --network none, and --ulimit
nofile/nproc (Podman's defaults would raise rlimits above what the sandbox allows).
"""
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import harness as h
import test_images

PODMAN = shutil.which("podman") or "/usr/bin/podman"


class PodmanTests(unittest.TestCase):
    """Tests run in name order and share one container."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="kai-e2e-podman-")
        cls.podman = [PODMAN, "--root", os.path.join(cls.tmp, "root"), "--runroot", os.path.join(cls.tmp, "run"),
                      "--tmpdir", os.path.join(cls.tmp, "tmp"),
                      "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
        cls.name = f"kai-e2e-{h.RUN_ID}-podman-api"
        cls.sock = None
        # systemd's NOTIFY_SOCKET, played by a datagram socket of ours: a path (Podman
        # bind-mounts it into the container) that the image's non-root user may write to.
        cls.sock_path = os.path.join(cls.tmp, "notify.sock")
        cls.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        cls.sock.bind(cls.sock_path)
        os.chmod(cls.sock_path, 0o777)
        os.chmod(cls.tmp, 0o755)
        cls.datagrams = []
        # docker save | podman load: the image test_images built, moved as a tar stream.
        img = test_images.image("api")
        save = subprocess.Popen([h.DOCKER, "save", img], stdout=subprocess.PIPE)
        try:
            load = subprocess.run(cls.podman + ["load"], stdin=save.stdout, capture_output=True, text=True,
                                  timeout=300)
        finally:
            save.stdout.close()
            save_rc = save.wait(timeout=60)
        if save_rc != 0 or load.returncode != 0:
            raise AssertionError(f"docker save | podman load: {save_rc}/{load.returncode}: {load.stderr[-2000:]}")
        m = re.search(r"Loaded image(?:\(s\))?: (\S+)", load.stdout)
        if not m:
            raise AssertionError(f"podman load said: {load.stdout}{load.stderr}")
        cls.image = m.group(1)

    @classmethod
    def tearDownClass(cls):
        subprocess.run(cls.podman + ["rm", "-f", "-t", "0", cls.name], capture_output=True, timeout=120)
        # Everything in the private store: containers, the image, layers, volumes.
        subprocess.run(cls.podman + ["system", "reset", "--force"], capture_output=True, timeout=300)
        if cls.sock:
            cls.sock.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_podman(self, *args, timeout=60, env=None):
        p = subprocess.run(self.podman + list(args), capture_output=True, text=True, timeout=timeout,
                           env=env or os.environ)
        return p

    def receive_until(self, needle, timeout):
        """Reads datagrams from the notify socket until one holds `needle` (bounded)."""
        deadline = time.monotonic() + timeout
        while not any(needle in d for d in self.datagrams):
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {needle} within {timeout}s; got {self.datagrams}")
            self.sock.settimeout(left)
            try:
                self.datagrams.append(self.sock.recv(4096).decode(errors="replace"))
            except socket.timeout:
                pass

    def test_1_ready_through_sdnotify(self):
        env = dict(os.environ, NOTIFY_SOCKET=self.sock_path)
        t0 = time.monotonic()
        p = self.run_podman(
            "run", "-d", "--name", self.name, "--network", "none",
            "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=4096:4096",
            "--sdnotify=container", "--read-only", "--tmpfs", "/tmp",
            "-e", "KAI_INIT_PROBE_INTERVAL=1s", "-e", "KAI_INIT_PROBE_TIMEOUT=500ms",
            self.image, env=env, timeout=120)
        self.assertEqual(p.returncode, 0, f"podman run: {p.stderr[-2000:]}")
        self.receive_until("READY=1", 60)
        print(f"\n    READY=1 {time.monotonic() - t0:.1f}s after podman run", end=" ")
        logs = self.run_podman("logs", self.name).stdout
        # Ready means the app listens and its probe passed: the listening line came first.
        self.assertIn('"msg":"listening"', logs)
        top = self.run_podman("exec", self.name, "cat", "/proc/1/cmdline").stdout.split("\0")
        self.assertEqual(top[0], "/sbin/kai-init")

    def test_2_healthcheck_run(self):
        p = self.run_podman("healthcheck", "run", self.name, timeout=60)
        self.assertEqual(p.returncode, 0, f"podman healthcheck run: {p.returncode} {p.stdout}{p.stderr}")
        self.assertEqual(self.run_podman("inspect", "--format", "{{.State.Health.Status}}", self.name).stdout.strip(),
                         "healthy")

    def test_3_stop(self):
        t0 = time.monotonic()
        p = self.run_podman("stop", "-t", "10", self.name, timeout=60)
        took = time.monotonic() - t0
        self.assertEqual(p.returncode, 0, f"podman stop: {p.stderr}")
        code = self.run_podman("inspect", "--format", "{{.State.ExitCode}}", self.name).stdout.strip()
        logs = self.run_podman("logs", self.name).stdout
        print(f"\n    podman stop took {took:.1f}s, exit code {code}", end=" ")
        self.assertEqual(code, "0", logs[-3000:])
        self.assertLess(took, 9.0, "the stop came close to podman's own SIGKILL")
        self.assertRegex(logs, r'"msg":"shutdown complete","gracefully":true')
        # (kai-init also sends STOPPING=1 upstream, but Podman 4.3's notify proxy stops
        # listening once READY=1 has arrived, so it never reaches this socket.)


def suite():
    return unittest.TestLoader().loadTestsFromTestCase(PodmanTests)
