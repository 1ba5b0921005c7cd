'use strict';
// Node.js front of the ML example: HTTP in, a Python inference worker behind it.
//
//   GET  /health          200 once the worker is ready; 503 before that and while stopping
//   POST /predict         {"inputs": [[1,2,3]], "delay_ms": 0} -> {"outputs": [...], "backend": "..."}
//   GET  /predict?x=1,2,3 the same for one row (handy with kai-init check / curl)
//
// Process tree under kai-init (PID 1):   kai-init -> node front/server.js -> python3 worker.py
// The front owns its worker, as a real parent does: kai-init signals only its main
// child (this process), and the front tells the worker.
// SIGTERM/SIGINT: the front stops accepting, waits for its in-flight predictions (the
//   worker answers them in order), then closes the worker's stdin; the worker exits 0 on
//   EOF, and the front exits 0 once it has.
// SIGHUP: the front logs a reload and relays SIGHUP to the worker, which reloads too.
// If the worker dies on its own, the front exits 1, so the container stops and the
// orchestrator restarts it (kai-init passes the exit code through).
const http = require('node:http');
const path = require('node:path');
const stoppable = require('stoppable');
const { WorkerClient } = require('./worker-client');

const PORT = Number.parseInt(process.env.PORT || '8080', 10);
const HOST = process.env.HOST || '0.0.0.0';
const GRACE_MS = Number.parseInt(process.env.SHUTDOWN_GRACE_MS || '5000', 10);
const PYTHON = process.env.ML_PYTHON || 'python3';
const WORKER = process.env.ML_WORKER || path.join(__dirname, '..', 'worker', 'worker.py');

function log(msg, fields = {}) {
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), pid: process.pid, who: 'front', msg, ...fields }) + '\n');
}

const state = { shuttingDown: false };
const worker = new WorkerClient({
  python: PYTHON,
  script: WORKER,
  timeoutMs: Number.parseInt(process.env.ML_WORKER_TIMEOUT_MS || '30000', 10),
  log,
});

function sendJson(res, status, body) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
  });
  res.end(data);
}

function readBody(req, limit = 1 << 20) {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function predict(req, res, url) {
  let body;
  if (req.method === 'GET') {
    const x = (url.searchParams.get('x') || '').split(',').filter(Boolean).map(Number);
    body = { inputs: [x], delay_ms: Number(url.searchParams.get('delay_ms') || 0) };
  } else {
    try {
      body = JSON.parse(await readBody(req));
    } catch (err) {
      return sendJson(res, 400, { error: `bad request: ${err.message}` });
    }
  }
  const rows = Array.isArray(body.inputs) ? body.inputs.length : 0;
  log('prediction requested', { rows, delay_ms: Number(body.delay_ms) || 0 });
  try {
    const started = Date.now();
    const out = await worker.request({ op: 'predict', inputs: body.inputs, delay_ms: body.delay_ms });
    log('prediction served', { rows: out.outputs.length, ms: Date.now() - started });
    return sendJson(res, 200, { outputs: out.outputs, backend: out.backend });
  } catch (err) {
    const status = worker.ready ? 422 : 503;
    return sendJson(res, status, { error: err.message });
  }
}

const server = stoppable(http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/health') {
    const ok = worker.ready && !state.shuttingDown;
    return sendJson(res, ok ? 200 : 503, { status: ok ? 'ok' : 'unavailable', backend: worker.backend });
  }
  if (url.pathname === '/predict' && (req.method === 'GET' || req.method === 'POST')) {
    predict(req, res, url).catch((err) => sendJson(res, 500, { error: String(err) }));
    return undefined;
  }
  return sendJson(res, 404, { error: 'not found' });
}), GRACE_MS);

async function shutdown(signal) {
  if (state.shuttingDown) return;
  state.shuttingDown = true;
  // One budget for the whole tree: HTTP drain, then the worker's current request.
  const deadline = Date.now() + GRACE_MS;
  log('shutdown: draining', { signal, graceMs: GRACE_MS });
  await new Promise((resolve) => server.stop(() => resolve()));
  log('http server closed; waiting for the worker');
  const st = await worker.stop(Math.max(500, deadline - Date.now()));
  // The worker exits 0 on stdin EOF once its queue is answered.
  const clean = st.code === 0;
  log('shutdown complete', { worker: st, clean });
  process.exit(clean ? 0 : 1);
}

process.on('SIGTERM', () => { shutdown('SIGTERM'); });
process.on('SIGINT', () => { shutdown('SIGINT'); });
process.on('SIGHUP', () => {
  const relayed = worker.reload();
  log('SIGHUP received: reloading configuration', { relayed_to_worker: relayed });
});

worker.on('exit', (st) => {
  if (state.shuttingDown) return;
  log('worker exited unexpectedly: stopping the front', st);
  state.shuttingDown = true;
  server.stop(() => process.exit(1));
});

worker.start();
server.listen(PORT, HOST, () => {
  log('listening', { host: HOST, port: PORT, uid: process.getuid(), node: process.version });
});
