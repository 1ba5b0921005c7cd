"""End-to-end: how soon the API image is ready with the settings it ships (issue 9).

The image probes its app every KAI_INIT_PROBE_INTERVAL=5s, but until the first
pass every --probe-start-interval (100ms by default), so kai-init's /readyz
passes about as soon as the app listens, not a whole interval later. Measured
from the engine's own clocks: the container's State.StartedAt and the
timestamps `docker logs -t` gives the app's "listening" line and kai-init's
"child is ready" line. No setting of the image is overridden here.

Run: KAI_E2E_ONLY=Ready tests/e2e/run
"""
import datetime
import re
import unittest

import harness as h
import test_images


def when(stamp):
    """Docker's RFC 3339 time with nanoseconds, as a datetime (microseconds kept)."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", stamp)
    if not m:
        raise AssertionError(f"not a docker timestamp: {stamp!r}")
    micros = int((m.group(2) or "0")[:6].ljust(6, "0"))
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S")
    return base.replace(microsecond=micros, tzinfo=datetime.timezone.utc)


class ReadyTests(unittest.TestCase):
    def test_api_is_ready_within_a_second_of_its_start(self):
        name = f"kai-e2e-{h.RUN_ID}-ready"
        h.docker("run", "-d", "--name", name, "--label", h.LABEL, "--network", "none",
                 "--read-only", "--tmpfs", "/tmp", test_images.image("api"), timeout=60)
        try:
            def ready_line():
                # kai-init's lines are on stderr, the app's on stdout: both, each stamped.
                p = h.docker("logs", "-t", name, check=False)
                out = p.stdout + p.stderr
                return re.search(r"^(\S+) kai-init: info: child is ready", out, re.M) and out
            logs = h.wait_for("kai-init's 'child is ready' line", ready_line, 60)
            started = when(h.inspect(name)["State"]["StartedAt"])
            ready = when(re.search(r"^(\S+) kai-init: info: child is ready", logs, re.M).group(1))
            listening = re.search(r'^(\S+) .*"msg":"listening"', logs, re.M)
            self.assertIsNotNone(listening, f"no listening line from the app:\n{logs}")
            listens = when(listening.group(1))
            after_start = (ready - started).total_seconds()
            after_listen = (ready - listens).total_seconds()
            print(f"\n    ready {after_start:.3f} s after the container started, "
                  f"{after_listen:.3f} s after the app listened", end=" ")
            self.assertLessEqual(after_start, 1.0, logs)
            # Readiness follows the app, not the 5 s probe interval.
            self.assertLess(after_listen, 0.5, logs)
            self.assertGreaterEqual(after_listen, 0.0, logs)
            # And `kai-init check`, the image's HEALTHCHECK, says so.
            p = h.exec_(name, "/sbin/kai-init", "check", check=False)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            h.docker("rm", "-f", name, check=False)


def suite():
    return unittest.TestLoader().loadTestsFromTestCase(ReadyTests)
