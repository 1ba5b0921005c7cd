'use strict';
// Node.js front of the ML example: HTTP in, a Python inference worker (Keras on
// TensorFlow) behind it.
//
//   GET  /health              liveness: 200 while the worker loads the model (up to
//                             ML_LOAD_TIMEOUT_MS) and then while it answers (its ping, or a
//                             batch within its time); 503 when it is hung or gone, or stopping
//   GET  /metrics             Prometheus text: batch sizes, queue wait, model time (the
//                             worker's), queue length and connections (the front's)
//   POST /predict             {"inputs": [[x0, x1, x2, x3], ...]}
//                             -> {"outputs": [...], "backend": "tensorflow", "cached": rows from the cache}
//   GET  /predict?x=1,2,3,4   the same for one row (handy with kai-init check / curl)
//
// Status codes: 400 malformed (bad JSON, not an object, wrong row width, non-numbers,
// a number outside the model's input type (float32), empty batch, a malformed URL),
// 413 a body over what ML_MAX_BATCH rows can need or more than ML_MAX_BATCH rows,
// 404/405, 408 a request head or body slower than ML_HEADERS_TIMEOUT_MS /
// ML_REQUEST_TIMEOUT_MS, 503 + Retry-After when not ready, stopping or the queue is
// full (ML_QUEUE_MAX waiting: refused before the body is read), 504 when the worker
// has not answered within ML_TIMEOUT_MS, 500 when the model fails or its output is
// not finite. Every failed request is logged.
//
// Limits (a real request is a few KB; an unauthenticated client must not be able to
// make the front buffer more): the body may be as large as ML_MAX_BATCH rows of the
// model's width can be written in JSON (about 11 KB for 64 x 4), at most
// ML_MAX_CONNECTIONS connections are open (the oldest unfinished one makes room for a
// new one, front/limits.js), a connection that sends nothing is closed after
// ML_HEADERS_TIMEOUT_MS. All are logged with the "ready" line.
//
// Batching: front/worker-client.js sends the worker what waits, up to ML_BATCH_MAX_ROWS
// rows at a time, as soon as the worker is free (ML_BATCH_WAIT_MS > 0: an idle worker
// waits that long for a fuller batch); the worker runs them through one model call.
// ML_BATCH_MAX_ROWS=1 turns it off.
//
// delay_ms (slow inference on demand, for tests) is refused unless ML_DEBUG_DELAY=1,
// and then bounded (integer, 0..10000).
//
// Readiness: with kai-init's --notify fd:N (KAI_INIT_NOTIFY=fd:N), the front writes
// a newline on fd N once the worker has loaded the model AND the server listens;
// kai-init is ready when that has happened and its probe of /health passes.
//
// Process tree under kai-init (PID 1):  kai-init -> node front/server.js -> python3 worker.py
// The front owns its worker: kai-init forwards signals to this process only (its main child).
// SIGTERM/SIGINT: stop accepting, answer everything accepted (the worker works through
//   the queue), then close the worker's stdin; it exits 0, and so does the front.
// SIGHUP: relayed to the worker, which loads the model file (ML_MODEL) again and swaps
//   it in once it has run, or keeps the one it has if the new one fails to load.
// If the worker dies on its own (a crash, kill -9): the front logs it, fails /health,
//   answers what it holds with 503, and exits 1, so kai-init reports it and the
//   container stops; Docker's restart policy or Kubernetes restarts it with a fresh model.
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const stoppable = require('stoppable');
const { WorkerClient, RequestError } = require('./worker-client');
const { guard } = require('./limits');

function intEnv(name, dflt, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) {
    process.stderr.write(`front: ${name}=${JSON.stringify(raw)}: expected an integer in ${min}..${max}\n`);
    process.exit(2);
  }
  return n;
}

const PORT = intEnv('PORT', 8080, 0, 65535);
// No HOST: Node listens on :: (IPv4 and IPv6) where the kernel has IPv6, else 0.0.0.0.
const HOST = process.env.HOST || undefined;
const GRACE_MS = intEnv('SHUTDOWN_GRACE_MS', 5000, 0, 600000);
const MAX_BATCH = intEnv('ML_MAX_BATCH', 64, 1, 100000);
// 0: computed from MAX_BATCH and the model's width (bodyLimit below).
const MAX_BODY_BYTES = intEnv('ML_MAX_BODY_BYTES', 0, 0, 64 << 20);
const MAX_CONNECTIONS = intEnv('ML_MAX_CONNECTIONS', 512, 1, 1000000);
const HEADERS_TIMEOUT_MS = intEnv('ML_HEADERS_TIMEOUT_MS', 5000, 100, 600000);
const REQUEST_TIMEOUT_MS = intEnv('ML_REQUEST_TIMEOUT_MS', 10000, 100, 600000);
const MAX_DELAY_MS = 10000;
const DEBUG_DELAY = process.env.ML_DEBUG_DELAY === '1';
const PYTHON = process.env.ML_PYTHON || 'python3';
const WORKER = process.env.ML_WORKER || path.join(__dirname, '..', 'worker', 'worker.py');

function log(msg, fields = {}) {
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), pid: process.pid, who: 'front', msg, ...fields }) + '\n');
}

const state = { shuttingDown: false, listening: false, notified: false };
const worker = new WorkerClient({
  python: PYTHON,
  script: WORKER,
  log,
  // 256 one-row requests are four full batches: well under a second of work.
  queueMax: intEnv('ML_QUEUE_MAX', 256, 0, 100000),
  timeoutMs: intEnv('ML_TIMEOUT_MS', 15000, 100, 600000),
  pingTimeoutMs: intEnv('ML_PING_TIMEOUT_MS', 1000, 10, 600000),
  loadTimeoutMs: intEnv('ML_LOAD_TIMEOUT_MS', 180000, 1000, 3600000),
  batchMaxRows: intEnv('ML_BATCH_MAX_ROWS', 64, 1, 100000),
  // 0: measured (bench/images-results.md), a wait of 2 ms only added latency: at
  // concurrency 1 p50 0.9 -> 3.5 ms, at 32 3,740 -> 3,519 requests/s. Under load batches
  // fill while the previous one runs, and alone there is no one to wait for.
  batchWaitMs: intEnv('ML_BATCH_WAIT_MS', 0, 0, 1000),
});

/**
 * The most bytes a request body may need: MAX_BATCH rows of the model's width, each
 * number written as long as JSON can write a float64 (24 characters: -2.2250738585072014e-308)
 * plus separators and indentation (40 in all), each row 16 more, 1 KiB for the rest.
 */
function bodyLimit() {
  if (MAX_BODY_BYTES) return MAX_BODY_BYTES;
  const width = (worker.info && worker.info.inputs) || 1;
  return 1024 + MAX_BATCH * (width * 40 + 16);
}

function sendJson(req, res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
    // While stopping, tell keep-alive clients to go elsewhere next time; after an answer
    // given before the body was read (413, a full queue) the rest of it is not worth
    // reading: Node closes the connection once the answer is written.
    ...(state.shuttingDown || !req.complete ? { connection: 'close' } : {}),
    ...headers,
  });
  res.end(data);
  if (status >= 400 && req.url !== '/health') {
    log('request failed', { method: req.method, path: (req.url || '').slice(0, 100), status, error: body.error });
  }
}

/** The body as text; RequestError 413 beyond `limit` bytes (the rest is never read:
 * the answer says Connection: close and Node closes the socket once it is written). */
function readBody(req, limit) {
  return new Promise((resolve, reject) => {
    const tooLarge = () => {
      req.removeAllListeners('data');
      req.pause();
      reject(new RequestError(413, `body over ${limit} bytes (${MAX_BATCH} rows of ${worker.info.inputs} numbers)`));
    };
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return tooLarge();
    let size = 0;
    const chunks = [];
    req.on('data', (c) => {
      size += c.length;
      if (size > limit) tooLarge();
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
    return undefined;
  });
}

function bad(msg) {
  return new RequestError(400, msg);
}

/** {inputs, delay_ms} from a request body (POST) or the query (GET), validated. */
async function parseRequest(req, url) {
  let body;
  if (req.method === 'GET') {
    const x = url.searchParams.get('x');
    const row = x === null || x === '' ? [] : x.split(',').map((v) => (/^\s*$/.test(v) ? NaN : Number(v)));
    body = { inputs: [row] };
    const d = url.searchParams.get('delay_ms');
    if (d !== null) body.delay_ms = /^\d{1,6}$/.test(d) ? Number(d) : d;
  } else {
    const text = await readBody(req, bodyLimit());
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw bad(`body is not JSON: ${err.message}`);
    }
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body must be a JSON object');
  }
  const { inputs } = body;
  const { inputs: width, dtype, input_max: max } = worker.info;
  if (!Array.isArray(inputs) || inputs.length === 0) throw bad('inputs must be a non-empty list of rows');
  if (inputs.length > MAX_BATCH) throw new RequestError(413, `at most ${MAX_BATCH} rows per request`);
  inputs.forEach((r, i) => {
    if (!Array.isArray(r) || r.length !== width || !r.every((v) => typeof v === 'number' && Number.isFinite(v))) {
      throw bad(`inputs[${i}] must be a list of ${width} finite numbers`);
    }
    // 1e39 is finite here (float64) but inf in float32, and the model's output NaN.
    // The worker checks too; refusing here keeps the request out of the queue.
    const j = r.findIndex((v) => Math.abs(v) > max);
    if (j >= 0) {
      throw bad(`inputs[${i}][${j}] = ${r[j]} is outside the range of ${dtype}, the model's input type`
        + ` (largest magnitude ${max.toPrecision(8)})`);
    }
  });
  const out = { inputs };
  if (body.delay_ms !== undefined) {
    if (!DEBUG_DELAY) throw bad('delay_ms is a test setting, off in production (ML_DEBUG_DELAY=1 enables it)');
    if (!Number.isInteger(body.delay_ms) || body.delay_ms < 0 || body.delay_ms > MAX_DELAY_MS) {
      throw bad(`delay_ms must be an integer in 0..${MAX_DELAY_MS}`);
    }
    out.delay_ms = body.delay_ms;
  }
  return out;
}

async function predict(req, res, url) {
  const started = Date.now();
  // Before the body is read: a request there is no room for costs no buffering.
  if (!worker.ready || state.shuttingDown) {
    throw new RequestError(503, state.shuttingDown ? 'shutting down' : 'model loading');
  }
  if (worker.full()) throw new RequestError(503, `queue full (${worker.queueMax} waiting)`);
  const body = await parseRequest(req, url);
  log('prediction requested', { rows: body.inputs.length, delay_ms: body.delay_ms || 0 });
  const handle = worker.predict(body);
  // A client that goes away takes its request with it: dropped if still waiting.
  const onClose = () => {
    if (!res.writableFinished && handle.cancel && handle.cancel()) log('prediction dropped: client gone');
  };
  res.on('close', onClose);
  const out = await handle.promise;
  log('prediction served', { rows: out.outputs.length, cached: out.cached, ms: Date.now() - started });
  sendJson(req, res, 200, { outputs: out.outputs, backend: out.backend, cached: out.cached });
}

/** Prometheus text: the worker's histograms (from a fresh ping) and the front's gauges. */
async function metrics(req, res) {
  const pong = await worker.stats();
  const m = pong.metrics;
  const out = [];
  const help = (name, type, text) => out.push(`# HELP ${name} ${text}`, `# TYPE ${name} ${type}`);
  const histogram = (name, text, h) => {
    help(name, 'histogram', text);
    for (const [le, n] of h.buckets) out.push(`${name}_bucket{le="${le}"} ${n}`);
    out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
  };
  histogram('ml_batch_rows', 'Rows per batch the worker ran (cached rows included).', m.batch_rows);
  histogram('ml_batch_requests', 'Requests per batch the worker ran.', m.batch_requests);
  histogram('ml_queue_wait_seconds', 'From a request\'s arrival in the queue to the start of its batch.',
    m.queue_wait_seconds);
  histogram('ml_model_seconds', 'Time of one model call.', m.model_seconds);
  help('ml_batches_total', 'counter', 'Batches the worker ran.');
  out.push(`ml_batches_total ${m.batch_rows.count}`);
  help('ml_requests_total', 'counter', 'Prediction requests the worker answered, by outcome.');
  for (const k of ['ok', 'bad_input', 'non_finite', 'model_error']) out.push(`ml_requests_total{outcome="${k}"} ${m.counts[k]}`);
  help('ml_rows_total', 'counter', 'Rows answered, from the cache or the model.');
  out.push(`ml_rows_total{source="cache"} ${m.counts.cached_rows}`, `ml_rows_total{source="model"} ${m.counts.model_rows}`);
  help('ml_model_reloads_total', 'counter', 'Models loaded on SIGHUP.');
  out.push(`ml_model_reloads_total ${pong.reloads}`);
  help('ml_queue_length', 'gauge', 'Requests waiting for the worker.');
  out.push(`ml_queue_length ${worker.queue.length}`);
  const c = limiter.stats();
  help('ml_connections_open', 'gauge', 'Open HTTP connections.');
  out.push(`ml_connections_open ${c.open}`);
  help('ml_connections_closed_total', 'counter', 'Connections closed at the connection limit.');
  out.push(`ml_connections_closed_total{reason="evicted"} ${c.evicted}`,
    `ml_connections_closed_total{reason="refused"} ${c.refused}`);
  const text = out.join('\n') + '\n';
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4', 'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store' });
  res.end(text);
}

async function health(req, res) {
  const st = state.shuttingDown ? { ok: false, reason: 'shutting down' } : await worker.health();
  sendJson(req, res, st.ok ? 200 : 503, {
    status: st.ok ? 'ok' : 'unavailable',
    backend: worker.info ? worker.info.backend : null,
    worker: st,
    queue: worker.queue.length,
  });
}

function route(req, res) {
  let url;
  try {
    url = new URL(req.url, 'http://localhost');
  } catch {
    throw bad('malformed request target');
  }
  if (url.pathname === '/health') {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new RequestError(405, 'use GET');
    return health(req, res);
  }
  if (url.pathname === '/metrics') {
    if (req.method !== 'GET') throw new RequestError(405, 'use GET');
    return metrics(req, res);
  }
  if (url.pathname === '/predict') {
    if (req.method !== 'GET' && req.method !== 'POST') throw new RequestError(405, 'use GET or POST');
    return predict(req, res, url);
  }
  throw new RequestError(404, 'not found');
}

const server = stoppable(http.createServer({
  headersTimeout: Math.min(HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS), // Node refuses a larger one
  requestTimeout: REQUEST_TIMEOUT_MS,
  // How often Node looks for requests past those timeouts (default 30 s: a 5 s limit
  // could hold for 35).
  connectionsCheckingInterval: 1000,
}, (req, res) => {
  Promise.resolve()
    .then(() => route(req, res))
    .catch((err) => {
      if (err instanceof RequestError) {
        if (err.status === 499) return; // the client is gone: nobody to answer
        const retry = err.status === 503 ? { 'retry-after': '1' } : {};
        sendJson(req, res, err.status, { error: err.message }, retry);
      } else {
        log('internal error', { error: String(err && err.stack) });
        sendJson(req, res, 500, { error: 'internal error' });
      }
    });
}), GRACE_MS);
server.keepAliveTimeout = 65000; // above common load-balancer idle timeouts (60 s)
const limiter = guard(server, { max: MAX_CONNECTIONS, idleMs: HEADERS_TIMEOUT_MS, log });

/** kai-init --notify fd:N: one newline on fd N once the model is loaded and we listen. */
function notifyReady() {
  if (state.notified || !state.listening || !worker.ready) return;
  state.notified = true;
  const m = /^fd:(\d+)$/.exec(process.env.KAI_INIT_NOTIFY || '');
  log('ready', {
    backend: worker.info.backend,
    notify: m ? `fd:${m[1]}` : null,
    limits: {
      bodyBytes: bodyLimit(), maxRows: MAX_BATCH, maxConnections: MAX_CONNECTIONS, headersTimeoutMs: HEADERS_TIMEOUT_MS,
      requestTimeoutMs: REQUEST_TIMEOUT_MS, queueMax: worker.queueMax, batchMaxRows: worker.batchMaxRows,
      batchWaitMs: worker.batchWaitMs,
    },
  });
  if (!m) return;
  try {
    fs.writeSync(Number(m[1]), '\n');
    fs.closeSync(Number(m[1]));
  } catch (err) {
    log('readiness notification failed', { error: String(err) });
  }
}

async function shutdown(signal) {
  if (state.shuttingDown) return;
  state.shuttingDown = true;
  // One budget for the whole tree: the accepted requests, then the worker's exit.
  const deadline = Date.now() + GRACE_MS;
  log('shutdown: draining', { signal, graceMs: GRACE_MS, waiting: worker.queue.length, busy: !!worker.inflight });
  const workerStopped = worker.stop(GRACE_MS + 1000);
  await new Promise((resolve) => server.stop(() => resolve()));
  log('http server closed; waiting for the worker', { msLeft: Math.max(0, deadline - Date.now()) });
  const st = await workerStopped;
  const clean = st.code === 0;
  log('shutdown complete', { worker: st, clean });
  process.exit(clean ? 0 : 1);
}

process.on('SIGTERM', () => { shutdown('SIGTERM'); });
process.on('SIGINT', () => { shutdown('SIGINT'); });
process.on('SIGHUP', () => {
  const relayed = worker.reload();
  log('SIGHUP received: relaying a model reload to the worker', { relayed });
});

worker.on('ready', notifyReady);
worker.on('exit', (st) => {
  if (state.shuttingDown) return;
  log('worker exited unexpectedly: stopping the front', st);
  state.shuttingDown = true;
  server.stop(() => process.exit(1));
});

worker.start();
server.listen(PORT, HOST, () => {
  state.listening = true;
  log('listening', { address: server.address(), uid: process.getuid(), node: process.version });
  notifyReady();
});
