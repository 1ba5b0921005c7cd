#!/usr/bin/env python3
"""Time from "the app listens" to "kai-init says ready", for --probe-start-interval.

Runs kai-init --probe http://127.0.0.1:PORT/ with a real Node or Python HTTP app that
starts listening after a random 0.2-0.6 s (so the probe phase is not locked to the app's
start), and measures, in this process, the arrival of the app's "listening" line (stdout)
and kai-init's "first probe passed" line (stderr). Loopback only; each run ends with
SIGTERM. Usage: bench/ready_after_listen.py KAI_INIT_BINARY [RUNS] [--intervals 25ms,default]
[--json OUT] ("default": kai-init's own --probe-start-interval, the flag not given).
"""
import argparse, json, os, random, selectors, signal, socket, statistics, subprocess, sys, time

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
           '--probe-interval=10s', '--']
    if start_interval != 'default':
        cmd.insert(-1, f'--probe-start-interval={start_interval}')
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
    ap = argparse.ArgumentParser()
    ap.add_argument('kai')
    ap.add_argument('runs', nargs='?', type=int, default=9)
    ap.add_argument('--intervals', default='25ms,50ms,100ms,250ms')
    ap.add_argument('--json')
    a = ap.parse_args()
    print(f'time to ready after listen, {a.runs} runs each, ms: median (min-max)')
    out = []
    for start_interval in a.intervals.split(','):
        for app in ['node', 'python']:
            t = sorted(once(a.kai, app, start_interval) * 1000 for _ in range(a.runs))
            print(f'  --probe-start-interval={start_interval:7} {app:6}: '
                  f'{statistics.median(t):6.1f}  ({t[0]:.1f}-{t[-1]:.1f})', flush=True)
            out.append({'start_interval': start_interval, 'app': app, 'runs': a.runs,
                        'median_ms': round(statistics.median(t), 1), 'max_ms': round(t[-1], 1)})
    if a.json:
        with open(a.json, 'w') as f:
            json.dump(out, f, indent=1)

if __name__ == '__main__':
    main()
