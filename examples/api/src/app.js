'use strict';
// Request handling, kept apart from the server so it can be unit-tested.

function sendJson(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(data),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(data);
}

function boundedMs(value, max) {
  const n = Number.parseInt(value || '0', 10);
  if (!Number.isFinite(n) || n < 0) return 0;
  return Math.min(n, max);
}

function createApp({ state, log, debugRoutes = false }) {
  return function handle(req, res) {
    const url = new URL(req.url, 'http://localhost');
    state.inFlight += 1;
    res.on('close', () => {
      state.inFlight -= 1;
    });

    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET, HEAD' });
    }

    switch (url.pathname) {
      case '/health':
        if (state.shuttingDown) return sendJson(res, 503, { status: 'shutting down' });
        return sendJson(res, 200, { status: 'ok' });

      case '/':
        return sendJson(res, 200, { service: 'kai-example-api', reloads: state.reloads });

      case '/slow': {
        const ms = boundedMs(url.searchParams.get('ms'), 30000);
        log('slow request started', { ms });
        setTimeout(() => {
          sendJson(res, 200, { waited: ms });
          log('in-flight request finished', { ms });
        }, ms);
        return undefined;
      }

      case '/debug/block': {
        if (!debugRoutes) return sendJson(res, 404, { error: 'not found' });
        const ms = boundedMs(url.searchParams.get('ms'), 600000);
        log('blocking the event loop', { ms });
        const until = Date.now() + ms;
        while (Date.now() < until) {
          // Busy wait on purpose: nothing else runs, health checks time out.
        }
        return sendJson(res, 200, { blocked: ms });
      }

      default:
        return sendJson(res, 404, { error: 'not found' });
    }
  };
}

module.exports = { createApp, boundedMs };
