'use strict';
// Example HTTP API for kai-init images.
//
//   GET /health           200 {"status":"ok"} while serving, 503 while shutting down
//   GET /                 a small JSON document
//   GET /slow?ms=N        answers after N ms (max 30000): an "in-flight" request
//   GET /debug/block?ms=N blocks the event loop for N ms (only with API_DEBUG_ROUTES=1):
//                         a hung application, for health-check tests
//
// Signals (kai-init forwards them to this process's group):
//   SIGTERM / SIGINT  stop accepting connections, finish in-flight requests
//                     (up to SHUTDOWN_GRACE_MS), exit 0
//   SIGHUP            "reload": logged, keeps serving
const http = require('node:http');
const stoppable = require('stoppable');
const { createApp } = require('./app');

const PORT = Number.parseInt(process.env.PORT || '3000', 10);
const HOST = process.env.HOST || '0.0.0.0';
const GRACE_MS = Number.parseInt(process.env.SHUTDOWN_GRACE_MS || '5000', 10);

function log(msg, fields = {}) {
  process.stdout.write(JSON.stringify({ t: new Date().toISOString(), pid: process.pid, msg, ...fields }) + '\n');
}

const state = { shuttingDown: false, inFlight: 0, reloads: 0 };
const app = createApp({ state, log, debugRoutes: process.env.API_DEBUG_ROUTES === '1' });

// stoppable: on stop(), closes idle keep-alive sockets at once, lets in-flight
// requests finish (answering them with Connection: close) and destroys what is
// still open after the grace period.
const server = stoppable(http.createServer(app), GRACE_MS);
server.keepAliveTimeout = 5000;

server.listen(PORT, HOST, () => {
  log('listening', { host: HOST, port: PORT, uid: process.getuid(), node: process.version });
});

function shutdown(signal) {
  if (state.shuttingDown) {
    log('shutdown already in progress', { signal });
    return;
  }
  state.shuttingDown = true;
  log('shutdown: draining', { signal, inFlight: state.inFlight, graceMs: GRACE_MS });
  server.stop((err, gracefully) => {
    if (err) {
      log('shutdown: close failed', { error: String(err) });
      process.exit(1);
    }
    log('shutdown complete', { gracefully });
    process.exit(0);
  });
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
process.on('SIGHUP', () => {
  state.reloads += 1;
  log('SIGHUP received: reloading configuration', { reloads: state.reloads });
});
