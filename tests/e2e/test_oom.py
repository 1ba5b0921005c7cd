"""End-to-end: an OOM kill inside a memory-limited container (issue 9).

The API image built by test_images runs with `-m 96m --memory-swap 96m` and a
small Node program as its command: it serves /health on :3000 (so the image's
own probe passes) and spawns one child that allocates until the kernel's OOM
killer kills it. kai-init must log one OOM line, count it in
`kai_init_oom_kills_total` and health+json, and the main process must keep
running. Docker on this machine uses cgroup v1 and mounts the container's
cgroup read-only, so kai-init notices the kill at its next probe or scrape.

Run: KAI_E2E_ONLY=Oom tests/e2e/run
"""
import json
import re
import unittest

import harness as h
import test_images

LIMIT = 96 * 1024 * 1024

# The main process: a server for the image's probe, and one memory-hungry
# child (Buffer.alloc fills the memory, so it is resident, outside V8's heap).
MAIN_JS = r"""
const http = require('http');
const { spawn } = require('child_process');
http.createServer((q, r) => r.end('ok')).listen(3000, '127.0.0.1', () => {
  console.log('main: listening');
  const hog = "const a = []; setInterval(() => { for (let i = 0; i < 4; i++) a.push(Buffer.alloc(1 << 20, 1)); }, 5);";
  const c = spawn(process.execPath, ['-e', hog], { stdio: 'inherit' });
  console.log('main: started hog ' + c.pid);
  c.on('exit', (code, sig) => console.log('main: hog ended code=' + code + ' signal=' + sig));
});
setInterval(() => {}, 1 << 30);
"""

# GET a path from kai-init's health endpoint, on the TCP listener this test
# turns on (KAI_INIT_HEALTH_LISTEN, loopback of the container's own network).
FETCH_JS = r"""
require('http').get({ host: '127.0.0.1', port: 8081, path: process.argv[1] }, (r) => {
  let b = ''; r.on('data', (d) => b += d); r.on('end', () => process.stdout.write(b));
}).on('error', (e) => { console.error(e.message); process.exit(1); });
"""


class OomTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.name = f"kai-e2e-{h.RUN_ID}-oom"
        h.docker("run", "-d", "--name", cls.name, "--label", h.LABEL, "--network", "none",
                 "--read-only", "--tmpfs", "/tmp", "-m", "96m", "--memory-swap", "96m",
                 "-e", "KAI_INIT_PROBE_INTERVAL=1s", "--health-interval", "1s",
                 "-e", "KAI_INIT_HEALTH_LISTEN=127.0.0.1:8081",
                 test_images.image("api"), "node", "-e", MAIN_JS, timeout=60)

    @classmethod
    def tearDownClass(cls):
        h.docker("rm", "-f", cls.name, check=False)

    def fetch(self, path):
        return h.exec_(self.name, "node", "-e", FETCH_JS, path).stdout

    def metric(self, text, name):
        m = re.search(rf"^{name} (\S+)$", text, re.M)
        self.assertIsNotNone(m, f"no {name} in\n{text}")
        return float(m.group(1))

    def test_oom_kill_is_logged_counted_and_the_app_lives_on(self):
        line_rx = re.compile(r"out of memory: the kernel's OOM killer killed (.+?) limit=96 MiB peak=\S+ MiB")
        h.wait_for("the OOM line", lambda: line_rx.search(h.logs(self.name)), 60)
        logs = h.logs(self.name)
        self.assertIn("main: hog ended code=null signal=SIGKILL", logs)
        self.assertEqual(len(line_rx.findall(logs)), 1, logs)

        metrics = self.fetch("/metrics")
        self.assertEqual(self.metric(metrics, "kai_init_oom_kills_total"), 1.0)
        self.assertEqual(self.metric(metrics, "kai_init_child_up"), 1.0)
        self.assertEqual(self.metric(metrics, "kai_init_container_memory_limit_bytes"), LIMIT)
        self.assertGreater(self.metric(metrics, "kai_init_container_memory_peak_bytes"), LIMIT * 0.9)
        # kai-init and node; the `node -e FETCH_JS` of this exec too.
        self.assertGreaterEqual(self.metric(metrics, "kai_init_container_processes"), 2)
        self.assertGreater(self.metric(metrics, "kai_init_container_rss_bytes"), 10 * 1024 * 1024)
        self.assertGreater(self.metric(metrics, "kai_init_container_cpu_usage_seconds_total"), 0)
        self.assertGreaterEqual(self.metric(metrics, "kai_init_child_open_fds"), 3)

        doc = json.loads(self.fetch("/healthz?format=json"))
        oom = doc["checks"]["memory:oomKills"][0]
        self.assertEqual((oom["status"], oom["observedValue"]), ("warn", 1), doc)
        self.assertIn("memory limit 96 MiB", oom["output"])
        self.assertEqual(doc["status"], "pass", doc)

        # The main process still runs, and Docker saw no OOM of PID 1.
        self.assertTrue(h.find_proc(self.name, r"^node -e"), h.processes(self.name))
        info = h.inspect(self.name)
        self.assertTrue(info["State"]["Running"])
        self.assertFalse(info["State"]["OOMKilled"])
        self.assertEqual(info["HostConfig"]["Memory"], LIMIT)
        self.assertEqual(info["HostConfig"]["MemorySwap"], LIMIT)
        h.wait_for("healthy", lambda: h.health_status(self.name) == "healthy", 30)


def suite():
    return unittest.TestLoader().loadTestsFromTestCase(OomTests)
