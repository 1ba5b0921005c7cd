'use strict';
// Request handling, kept apart from the server so it can be unit-tested.
const { spawn } = require('node:child_process');

// Answers written once the drain has begun say `Connection: close`, so that a
// client on a keep-alive connection opens its next request elsewhere instead of
// sending it to a process that is going away.
function sendJson(res, status, body, headers = {}, state = undefined) {
  const data = JSON.stringify(body);
  const closing = state && state.shuttingDown ? { connection: 'close' } : {};
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
    ...headers,
    ...closing,
  });
  res.end(data);
}

function boundedMs(value, max) {
  const n = Number.parseInt(value || '0', 10);
  if (!Number.isFinite(n) || n < 0) return 0;
  return Math.min(n, max);
}

// The request target as a URL, or null when it is not one (`GET http://[ HTTP/1.1`
// passes Node's HTTP parser but makes `new URL` throw: uncaught, it would end the process).
function parseTarget(target) {
  try {
    return new URL(target, 'http://localhost');
  } catch {
    return null;
  }
}

// Blocks this thread for ms without spinning a core: Atomics.wait on a value nobody
// changes sleeps in the kernel (a futex) until the timeout, and nothing else in the
// process runs meanwhile, which is what a hung event loop looks like from outside.
function blockThread(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// Starts a process whose parent exits at once, leaving it an orphan that lives for
// ms and then exits: the kernel gives it to the nearest subreaper or PID 1, which
// must reap it (kai-init does; a PID 1 that does not keeps it as a zombie).
// Resolves with the orphan's pid, as its short-lived parent reported it.
function spawnOrphan(ms) {
  const grandchild = `setTimeout(() => {}, ${ms})`;
  const parent = `const c = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}],`
    + " { detached: true, stdio: 'ignore' }); c.unref(); process.stdout.write(String(c.pid));";
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', parent], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (c) => { out += c; });
    p.on('error', reject);
    p.on('close', (code) => {
      const pid = Number.parseInt(out, 10);
      if (code === 0 && Number.isInteger(pid)) resolve(pid);
      else reject(new Error(`orphan's parent exited ${code} and printed ${JSON.stringify(out)}`));
    });
  });
}

function createApp({ state, log, debugRoutes = false }) {
  return function handle(req, res) {
    state.inFlight += 1;
    res.on('close', () => {
      state.inFlight -= 1;
    });
    const send = (status, body, headers) => sendJson(res, status, body, headers, state);

    const url = parseTarget(req.url);
    if (url === null) {
      log('bad request target', { method: req.method, target: String(req.url).slice(0, 200) });
      return send(400, { error: 'bad request target' });
    }

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
    }

    switch (url.pathname) {
      case '/health':
        if (state.shuttingDown) return send(503, { status: 'shutting down' });
        return send(200, { status: 'ok' });

      case '/':
        return send(200, { service: 'kai-example-api', reloads: state.reloads });

      case '/slow': {
        // Debug only: anyone who can reach it can hold a request open for 30 s, and
        // so force a cut drain (exit 1) on the next stop.
        if (!debugRoutes) return send(404, { error: 'not found' });
        const ms = boundedMs(url.searchParams.get('ms'), 30000);
        log('slow request started', { ms });
        setTimeout(() => {
          send(200, { waited: ms });
          log('in-flight request finished', { ms });
        }, ms);
        return undefined;
      }

      case '/debug/block': {
        if (!debugRoutes) return send(404, { error: 'not found' });
        const ms = boundedMs(url.searchParams.get('ms'), 600000);
        log('blocking the event loop', { ms });
        blockThread(ms);
        return send(200, { blocked: ms });
      }

      case '/debug/orphan': {
        if (!debugRoutes) return send(404, { error: 'not found' });
        const ms = boundedMs(url.searchParams.get('ms'), 60000);
        spawnOrphan(ms).then(
          (pid) => {
            log('orphan started', { pid, ms });
            send(200, { orphan: pid, ms });
          },
          (err) => send(500, { error: String(err.message) }),
        );
        return undefined;
      }

      default:
        return send(404, { error: 'not found' });
    }
  };
}

module.exports = { createApp, boundedMs, parseTarget, blockThread };
