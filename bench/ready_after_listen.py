#!/usr/bin/env python3
"""Time from "the app listens" to "kai-init says ready", for --probe-start-interval.

Runs kai-init --probe http://127.0.0.1:PORT/ with a real Node or Python HTTP app that
starts listening after a random 0.2-0.6 s (so the probe phase is not locked to the app's
start), and measures, in this process, the arrival of the app's "listening" line (stdout)
and kai-init's "first probe passed" line (stderr). Loopback only; each run ends with
SIGTERM. Usage: bench/ready_after_listen.py KAI_INIT_BINARY [RUNS]
"""
import os, random, selectors, signal, socket, statistics, subprocess, sys, time

NODE = r"""
setTimeout(() => require('http').createServer((q, s) => s.end('ok'))
  .listen(+process.env.PORT, '127.0.0.1', () => console.log('listening')), +process.env.DELAY_MS);
"""
PY = r"""
import http.server, os, time
time.sleep(int(os.environ['DELAY_MS']) / 1000)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self): self.send_response(200); self.end_headers(); self.wfile.write(b'ok')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H)
print('listening', flush=True)
s.serve_forever()
"""

def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def once(kai, app, start_interval):
    port = free_port()
    cmd = [kai, '--health-socket=off', f'--probe=http://127.0.0.1:{port}/',
           '--probe-interval=10s', f'--probe-start-interval={start_interval}', '--']
    cmd += ['node', '-e', NODE] if app == 'node' else ['/usr/bin/python3', '-c', PY]
    env = dict(os.environ, PORT=str(port), DELAY_MS=str(random.randint(200, 600)))
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ, 'out')
    sel.register(p.stderr, selectors.EVENT_READ, 'err')
    listened = ready = None
    deadline = time.monotonic() + 20
    try:
        while (listened is None or ready is None) and time.monotonic() < deadline:
            for key, _ in sel.select(timeout=1):
                line = key.fileobj.readline()
                now = time.monotonic()
                if key.data == 'out' and b'listening' in line:
                    listened = now
                if key.data == 'err' and b'first probe passed' in line:
                    ready = now
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    if listened is None or ready is None:
        raise SystemExit(f'{app} {start_interval}: no result within 20 s')
    return ready - listened

def main():
    kai = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 9
    print(f'time to ready after listen, {runs} runs each, ms: median (min-max)')
    for start_interval in ['25ms', '50ms', '100ms', '250ms']:
        for app in ['node', 'python']:
            t = sorted(once(kai, app, start_interval) * 1000 for _ in range(runs))
            print(f'  --probe-start-interval={start_interval:6} {app:6}: '
                  f'{statistics.median(t):6.1f}  ({t[0]:.1f}-{t[-1]:.1f})', flush=True)

if __name__ == '__main__':
    main()
