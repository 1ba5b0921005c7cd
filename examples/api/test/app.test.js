'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const { createApp, boundedMs, parseTarget, blockThread } = require('../src/app');

function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

// Writes raw bytes on a fresh connection; resolves with everything read until the
// server closes it or a deadline passes.
function raw(port, text, deadlineMs = 5000) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    const timer = setTimeout(() => { s.destroy(); resolve(out); }, deadlineMs);
    s.on('data', (c) => { out += c; if (out.includes('\r\n\r\n') && /content-length: \d+/i.test(out)) { clearTimeout(timer); s.destroy(); resolve(out); } });
    s.on('end', () => { clearTimeout(timer); resolve(out); });
    s.on('error', (e) => { clearTimeout(timer); reject(e); });
  });
}

async function withServer(opts, fn) {
  const state = { shuttingDown: false, inFlight: 0, reloads: 0 };
  const server = http.createServer(createApp({ state, log: () => {}, ...opts }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await fn(server.address().port, state);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

test('boundedMs clamps', () => {
  assert.strictEqual(boundedMs('50', 10), 10);
  assert.strictEqual(boundedMs('-3', 10), 0);
  assert.strictEqual(boundedMs('x', 10), 0);
});

test('parseTarget: a URL or null, never a throw', () => {
  assert.strictEqual(parseTarget('http://['), null);
  assert.strictEqual(parseTarget('/slow?ms=3').pathname, '/slow');
});

test('health follows the shutdown state; debug routes are off by default', async () => {
  await withServer({}, async (port, state) => {
    assert.strictEqual((await get(port, '/health')).status, 200);
    assert.strictEqual((await get(port, '/debug/block?ms=1')).status, 404);
    assert.strictEqual((await get(port, '/debug/orphan?ms=1')).status, 404);
    state.shuttingDown = true;
    assert.strictEqual((await get(port, '/health')).status, 503);
  });
});

test('a request target that is not a URL gets 400 and the server keeps serving', async () => {
  await withServer({}, async (port) => {
    const reply = await raw(port, 'GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.match(reply, /bad request target/);
    assert.strictEqual((await get(port, '/health')).status, 200);
  });
});

test('answers written during the drain say Connection: close; before it, keep-alive', async () => {
  await withServer({}, async (port, state) => {
    const before = await get(port, '/');
    assert.notStrictEqual(before.headers.connection, 'close');
    state.shuttingDown = true;
    const during = await get(port, '/');
    assert.strictEqual(during.status, 200);
    assert.strictEqual(during.headers.connection, 'close');
  });
});

test('blockThread blocks for the time asked without burning CPU', () => {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  blockThread(300);
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  assert.ok(wallMs >= 290, `blocked only ${wallMs} ms`);
  assert.ok(cpuMs < 100, `used ${cpuMs} ms of CPU in ${wallMs} ms`);
});

test('the orphan route starts a process whose parent is gone', async () => {
  await withServer({ debugRoutes: true }, async (port) => {
    const r = await get(port, '/debug/orphan?ms=300');
    assert.strictEqual(r.status, 200, r.body);
    const { orphan } = JSON.parse(r.body);
    assert.ok(Number.isInteger(orphan) && orphan > 1);
    // Its parent (the short-lived node that started it) has exited: it runs on
    // under another parent (PID 1 or a subreaper), not under this test's process.
    const ppid = require('node:fs').readFileSync(`/proc/${orphan}/status`, 'utf8').match(/^PPid:\s+(\d+)/m)[1];
    assert.notStrictEqual(Number(ppid), process.pid);
  });
});
