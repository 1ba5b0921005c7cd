'use strict';
// Example HTTP API for kai-init images.
//
//   GET /health             200 {"status":"ok"} while serving, 503 while shutting down
//   GET /                   a small JSON document
//   Only with API_DEBUG_ROUTES=1 (for tests; off in the image, 404 without it):
//   GET /slow?ms=N          answers after N ms (max 30000): an "in-flight" request
//   GET /debug/block?ms=N   blocks the event loop for N ms without using CPU: a hung application
//   GET /debug/orphan?ms=N  starts a process that is orphaned at once and exits after N ms:
//                           whoever is PID 1 must reap it
//   A request target that is not a URL gets 400; it never ends the process.
//
// Environment:
//   PORT               3000
//   HOST               unset: :: (dual-stack, IPv4 and IPv6) when the kernel has IPv6,
//                      else 0.0.0.0 (Node's own choice); set it to pin one address
//   SHUTDOWN_GRACE_MS  7000: how long the drain waits for in-flight requests. Keep it
//                      below kai-init's --stop-timeout (KAI_INIT_STOP_TIMEOUT, 8s in the
//                      image), which is below `docker stop -t` (10 s) and below
//                      terminationGracePeriodSeconds minus the drain delay in Kubernetes,
//                      so the app, not a SIGKILL, decides how the drain ends.
//   API_MAX_CONNECTIONS     1024: open connections at most; at the limit the oldest one
//                           without a complete request is closed for each new one
//                           (src/limits.js), so idle or slow clients cannot lock others out
//   API_HEADERS_TIMEOUT_MS  10000: a request head must arrive within this (from its first
//                           byte; a connection that sends nothing is closed after it too)
//   API_REQUEST_TIMEOUT_MS  15000: the whole request must arrive within this
//
// Signals (kai-init forwards them to this process, its main child):
//   SIGTERM / SIGINT  stop accepting connections, close idle keep-alive connections,
//                     answer in-flight requests with `Connection: close`; exit 0 once all
//                     are answered, or exit 1 with a log line naming how many were cut
//                     when SHUTDOWN_GRACE_MS runs out first
//   SIGHUP            this example has no configuration to reload: counted (GET / shows
//                     the count), logged as such, keeps serving
const http = require('node:http');
const stoppable = require('stoppable');
const { createApp } = require('./app');
const { guard } = require('./limits');

function log(msg, fields = {}) {
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), pid: process.pid, msg, ...fields }) + '\n');
}

// A whole number from the environment, or the default; anything else ends start-up
// with one line naming the variable (exit 2), never a silent fallback.
function intFromEnv(name, fallback, min, max) {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    log('bad setting', { name, value: text, expected: `a whole number from ${min} to ${max}` });
    process.exit(2);
  }
  return n;
}

const PORT = intFromEnv('PORT', 3000, 0, 65535);
const HOST = process.env.HOST || undefined;
const GRACE_MS = intFromEnv('SHUTDOWN_GRACE_MS', 7000, 0, 3600000);
const MAX_CONNECTIONS = intFromEnv('API_MAX_CONNECTIONS', 1024, 1, 1000000);
const HEADERS_TIMEOUT_MS = intFromEnv('API_HEADERS_TIMEOUT_MS', 10000, 100, 600000);
const REQUEST_TIMEOUT_MS = intFromEnv('API_REQUEST_TIMEOUT_MS', 15000, 100, 600000);

const state = { shuttingDown: false, inFlight: 0, reloads: 0 };
const app = createApp({ state, log, debugRoutes: process.env.API_DEBUG_ROUTES === '1' });

// stoppable: on stop(), closes idle keep-alive sockets at once, ends each busy one
// after its last response, and destroys what is still open after the grace period
// (then reporting gracefully=false).
const server = stoppable(http.createServer({
  // Node measures both from a request's first byte: an idle keep-alive connection
  // waiting for its next request is bounded by keepAliveTimeout alone. (Node refuses a
  // headersTimeout above requestTimeout.)
  headersTimeout: Math.min(HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS),
  requestTimeout: REQUEST_TIMEOUT_MS,
  // How often Node looks for requests past those timeouts (default 30 s: a 10 s limit
  // could hold for 40).
  connectionsCheckingInterval: 1000,
}, app), GRACE_MS);
// Above the idle timeouts of common load balancers (60 s: AWS ALB, nginx, GCP's
// 600 s aside), so that the balancer, not this server, closes an idle connection:
// otherwise it may send a request just as the server closes the socket (a 502).
server.keepAliveTimeout = 65000;
guard(server, { max: MAX_CONNECTIONS, idleMs: HEADERS_TIMEOUT_MS, log });

server.listen(PORT, HOST, () => {
  const a = server.address();
  log('listening', {
    host: a.address,
    port: a.port,
    uid: process.getuid(),
    node: process.version,
    limits: { maxConnections: MAX_CONNECTIONS, headersTimeoutMs: HEADERS_TIMEOUT_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS },
  });
});

function shutdown(signal) {
  if (state.shuttingDown) {
    log('shutdown already in progress', { signal });
    return;
  }
  state.shuttingDown = true;
  log('shutdown: draining', { signal, inFlight: state.inFlight, graceMs: GRACE_MS });
  // Created before stoppable's own timer of the same length, so it runs first and
  // sees the requests that are about to be cut.
  const cut = setTimeout(() => {
    log('shutdown: grace expired, cutting in-flight requests', { inFlight: state.inFlight, graceMs: GRACE_MS });
  }, GRACE_MS);
  cut.unref();
  server.stop((err, gracefully) => {
    clearTimeout(cut);
    if (err) {
      log('shutdown: close failed', { error: String(err) });
      process.exit(1);
    }
    log('shutdown complete', { gracefully });
    // A drain that had to cut requests is not a clean stop: say so in the exit status.
    process.exit(gracefully ? 0 : 1);
  });
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => {
  state.reloads += 1;
  log('SIGHUP received: nothing to reload', { reloads: state.reloads });
});
