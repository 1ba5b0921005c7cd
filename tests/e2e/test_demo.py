"""scripts/demo, cancelled half-way, leaves no process behind (no app holding port 3000).

Runs on the host (no Docker): the demo builds kai-init, installs the example's
dependencies and starts `kai-init ... -- node examples/api/src/server.js` on
127.0.0.1:3000 and :8081. This test sends the demo SIGTERM once the app listens
(as Ctrl-C or a CI timeout would) and waits for kai-init and the app to be gone.
"""
import os
import queue
import re
import signal
import subprocess
import threading
import time
import unittest

import harness as h


def alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


class DemoTests(unittest.TestCase):

    def test_cancelled_demo_stops_kai_init_and_the_app(self):
        proc = subprocess.Popen([os.path.join(h.REPO, "scripts/demo")], cwd=h.REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        seen, app = [], None
        kai = None
        try:
            deadline = time.monotonic() + 600  # a cold cargo build and npm ci included
            while app is None:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    self.fail(f"the app did not start within the deadline:\n{''.join(seen[-40:])}")
                seen.append(line)
                m = re.search(r'"pid":(\d+),"msg":"listening"', line)
                if m:
                    app = int(m.group(1))
            with open(f"/proc/{app}/status") as f:
                kai = int(re.search(r"^PPid:\s+(\d+)", f.read(), re.M).group(1))
            with open(f"/proc/{kai}/cmdline") as f:
                self.assertIn("kai-init", f.read().split("\0")[0])
            os.kill(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
            h.wait_for("the app to be gone", lambda: not alive(app), 20)
            h.wait_for("kai-init to be gone", lambda: not alive(kai), 20)
        finally:
            # Guard: end what is left, by pid (only what this test saw start).
            for pid in (app, kai):
                if pid and alive(pid):
                    os.kill(pid, signal.SIGKILL)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)


def suite():
    return unittest.TestLoader().loadTestsFromTestCase(DemoTests)
