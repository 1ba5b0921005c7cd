"""End-to-end: acting on health (issue 21) on the real engine.

1. `--exit-on-unhealthy` makes Docker's restart policy work: a child that answers
   its probe and then hangs makes kai-init exit 69, and `--restart on-failure`
   restarts the container (Docker never restarts on a failing HEALTHCHECK alone,
   moby #28400). `docker logs` shows the "unhealthy" line.
2. The memory warning under `-m 128m`: the main process grows and holds; kai-init
   (as the image's non-root user, on Docker's read-only cgroupfs, so without a
   kernel event: at its probe ticks) logs exactly one warning naming it, there is
   no OOM kill, and /metrics has the working set.

Both use the API image built by test_images with a small Node program as the
command. Run: KAI_E2E_ONLY=Act tests/e2e/run
"""
import re
import unittest

import harness as h
import test_images

# Serves /health for its first three answers, then accepts and never answers: a
# wedged event loop as a probe sees it.
HANGS_JS = r"""
let n = 0;
require('http').createServer((q, r) => { if (++n <= 3) r.end('ok'); })
  .listen(3000, '127.0.0.1', () => console.log('app: listening'));
setInterval(() => {}, 1 << 30);
"""

# Serves /health and grows by 64 MiB of resident buffers, then holds: with node's own
# ~25 MiB a working set of about 90 MiB, over 55% of 128 MiB (70.4 MiB) with room to
# spare, and far from the limit. (Usage alone would count the image's page cache too;
# the working set does not, so the line is drawn below what usage shows.)
GROWS_JS = r"""
const held = [];
require('http').createServer((q, r) => r.end('ok')).listen(3000, '127.0.0.1', () => {
  for (let i = 0; i < 64; i++) held.push(Buffer.alloc(1 << 20, 1));
  console.log('app: holding ' + held.length + ' MiB');
});
setInterval(() => {}, 1 << 30);
"""

FETCH_JS = r"""
require('http').get({ host: '127.0.0.1', port: 8081, path: process.argv[1] }, (r) => {
  let b = ''; r.on('data', (d) => b += d); r.on('end', () => process.stdout.write(b));
}).on('error', (e) => { console.error(e.message); process.exit(1); });
"""


class ActTests(unittest.TestCase):
    def run_app(self, suffix, js, *extra):
        name = f"kai-e2e-{h.RUN_ID}-act-{suffix}"
        self.addCleanup(h.docker, "rm", "-f", name, check=False)
        h.docker("run", "-d", "--name", name, "--label", h.LABEL, "--network", "none",
                 "--read-only", "--tmpfs", "/tmp", *extra,
                 test_images.image("api"), "node", "-e", js, timeout=60)
        return name

    def test_exit_on_unhealthy_lets_restart_on_failure_restart_the_container(self):
        name = self.run_app(
            "unhealthy", HANGS_JS, "--restart", "on-failure:1",
            "-e", "KAI_INIT_EXIT_ON_UNHEALTHY=1",
            "-e", "KAI_INIT_PROBE=http://127.0.0.1:3000/health",
            "-e", "KAI_INIT_PROBE_INTERVAL=300ms", "-e", "KAI_INIT_PROBE_TIMEOUT=300ms",
            "-e", "KAI_INIT_PROBE_FAILURES=2", "-e", "KAI_INIT_STOP_TIMEOUT=2s")
        # on-failure:1: one restart, then the second run hangs too and the container stays
        # stopped with the exit code of its own.
        def settled():
            info = h.inspect(name)
            state = info["State"]
            return info["RestartCount"] == 1 and not state["Running"] and not state["Restarting"]
        h.wait_for("a restart and a second exit", settled, 120)
        self.assertEqual(h.inspect(name)["State"]["ExitCode"], 69)
        logs = h.logs(name)
        self.assertRegex(logs, r"error: child is unhealthy; stopping it \(--exit-on-unhealthy\) "
                               r'reason="2 probes failed in a row, the last: .*timed out', logs)
        self.assertEqual(logs.count("child is unhealthy"), 2, logs)

    def test_memory_warning_names_the_process_that_grew_once_without_an_oom(self):
        name = self.run_app(
            "memory", GROWS_JS, "-m", "128m", "--memory-swap", "128m",
            "-e", "KAI_INIT_MEMORY_WARN=55", "-e", "KAI_INIT_PROBE_INTERVAL=500ms",
            "-e", "KAI_INIT_HEALTH_LISTEN=127.0.0.1:8081")
        line_rx = re.compile(r"warn: memory: the container's working set is over 55% of its "
                             r"limit working_set=\S+ MiB limit=128 MiB largest=pid (\d+) \(node\)")
        h.wait_for("the memory warning", lambda: line_rx.search(h.logs(name)), 60)
        logs = h.logs(name)
        self.assertIn("app: holding 64 MiB", logs)
        # More probe ticks and a scrape pass over the line: still one warning.
        metrics = h.exec_(name, "node", "-e", FETCH_JS, "/metrics").stdout
        h.exec_(name, "node", "-e", FETCH_JS, "/metrics")
        ws = re.search(r"^kai_init_container_memory_working_set_bytes (\S+)$", metrics, re.M)
        self.assertIsNotNone(ws, metrics)
        self.assertGreater(float(ws.group(1)), 0.55 * 128 * 1024 * 1024)
        self.assertEqual(len(line_rx.findall(h.logs(name))), 1, h.logs(name))
        self.assertNotIn("out of memory", h.logs(name))
        info = h.inspect(name)
        self.assertTrue(info["State"]["Running"])
        self.assertFalse(info["State"]["OOMKilled"])


def suite():
    return unittest.TestLoader().loadTestsFromTestCase(ActTests)
