'use strict';
// server.js as a real process: its drain on SIGTERM, its exit status, its settings.
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const SERVER = path.join(__dirname, '..', 'src', 'server.js');

// Starts server.js on a kernel-chosen port; resolves once it logs "listening".
function start(env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', API_DEBUG_ROUTES: '1', ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = [];
    const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
    let buf = '';
    const deadline = setTimeout(() => { child.kill('SIGKILL'); reject(new Error('server did not listen within 10 s')); }, 10000);
    child.stdout.on('data', (c) => {
      buf += c;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line.msg === 'listening') {
          clearTimeout(deadline);
          resolve({ child, lines, exited, port: line.port });
        }
      }
    });
    child.on('exit', () => { clearTimeout(deadline); reject(new Error(`server exited early: ${JSON.stringify(lines)}`)); });
  });
}

// Every wait ends: the server is killed if it has not exited within ms.
async function exitWithin(srv, ms) {
  const t = setTimeout(() => srv.child.kill('SIGKILL'), ms);
  try {
    return await srv.exited;
  } finally {
    clearTimeout(t);
  }
}

function get(port, p, agent) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: p, agent }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    }).on('error', reject);
  });
}

async function until(what, pred, ms = 5000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('SIGTERM: the in-flight request gets its 200 with Connection: close, then exit 0', async () => {
  const srv = await start({ SHUTDOWN_GRACE_MS: '5000' });
  const agent = new http.Agent({ keepAlive: true });
  try {
    assert.notStrictEqual((await get(srv.port, '/', agent)).headers.connection, 'close');
    const slow = get(srv.port, '/slow?ms=700', agent);
    await until('the slow request', () => srv.lines.some((l) => l.msg === 'slow request started'));
    srv.child.kill('SIGTERM');
    const r = await slow;
    assert.strictEqual(r.status, 200);
    assert.strictEqual(r.headers.connection, 'close');
    const { code } = await exitWithin(srv, 5000);
    assert.strictEqual(code, 0, JSON.stringify(srv.lines));
    assert.ok(srv.lines.some((l) => l.msg === 'shutdown complete' && l.gracefully === true));
  } finally {
    agent.destroy();
    srv.child.kill('SIGKILL');
  }
});

test('SIGTERM: a request longer than the grace is cut, logged, and the exit status says so', async () => {
  const srv = await start({ SHUTDOWN_GRACE_MS: '300' });
  try {
    const slow = get(srv.port, '/slow?ms=3000').then(() => 'answered', (e) => `cut: ${e.code || e.message}`);
    await until('the slow request', () => srv.lines.some((l) => l.msg === 'slow request started'));
    srv.child.kill('SIGTERM');
    const { code } = await exitWithin(srv, 5000);
    assert.strictEqual(code, 1, JSON.stringify(srv.lines));
    assert.match(await slow, /^cut: /);
    const cut = srv.lines.find((l) => l.msg === 'shutdown: grace expired, cutting in-flight requests');
    assert.ok(cut, JSON.stringify(srv.lines));
    assert.strictEqual(cut.inFlight, 1);
  } finally {
    srv.child.kill('SIGKILL');
  }
});

test('a malformed request line does not end the process', async () => {
  const srv = await start();
  try {
    const reply = await new Promise((resolve, reject) => {
      const s = net.connect(srv.port, '127.0.0.1', () => s.end('GET http://[ HTTP/1.1\r\nHost: x\r\n\r\n'));
      let out = '';
      s.setTimeout(5000, () => s.destroy(new Error('no reply within 5 s')));
      s.on('data', (c) => { out += c; });
      s.on('close', () => resolve(out));
      s.on('error', reject);
    });
    assert.match(reply, /^HTTP\/1\.1 400 /);
    assert.strictEqual((await get(srv.port, '/health')).status, 200);
    assert.strictEqual(srv.child.exitCode, null);
  } finally {
    srv.child.kill('SIGKILL');
  }
});

test('keep-alive outlasts common load-balancer idle timeouts (Keep-Alive: timeout=65)', async () => {
  const srv = await start();
  const agent = new http.Agent({ keepAlive: true });
  try {
    const r = await get(srv.port, '/', agent);
    assert.strictEqual(r.headers['keep-alive'], 'timeout=65');
  } finally {
    agent.destroy();
    srv.child.kill('SIGKILL');
  }
});

test('a bad SHUTDOWN_GRACE_MS ends start-up with one line and exit 2', async () => {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, PORT: '0', SHUTDOWN_GRACE_MS: '5s' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  const code = await new Promise((r) => child.on('exit', r));
  clearTimeout(t);
  assert.strictEqual(code, 2);
  assert.match(out, /"msg":"bad setting","name":"SHUTDOWN_GRACE_MS","value":"5s"/);
});

// A raw connection that records when the server closes it.
function rawConnection(port, onOpen = () => {}) {
  const c = { closed: false, data: '' };
  c.socket = net.connect(port, '127.0.0.1', () => onOpen(c.socket));
  c.socket.on('data', (d) => { c.data += d; });
  c.socket.on('error', () => {});
  c.socket.on('close', () => { c.closed = true; });
  return c;
}

test('a connection that sends nothing, or dribbles its head, is closed after API_HEADERS_TIMEOUT_MS', async () => {
  const srv = await start({ API_HEADERS_TIMEOUT_MS: '400' });
  let dribble;
  try {
    const idle = rawConnection(srv.port);
    dribble = rawConnection(srv.port, (s) => {
      s.write('GET / HTTP/1.1\r\nHost: x\r\nX-a: ');
      const t = setInterval(() => (s.destroyed ? clearInterval(t) : s.write('a')), 100);
    });
    const t0 = Date.now();
    await until('both to be closed', () => idle.closed && dribble.closed, 5000);
    assert.ok(Date.now() - t0 < 3000, `closed only after ${Date.now() - t0} ms`);
    assert.strictEqual((await get(srv.port, '/health')).status, 200);
  } finally {
    if (dribble) dribble.socket.destroy();
    srv.child.kill('SIGKILL');
  }
});

test('at API_MAX_CONNECTIONS the oldest unfinished connection makes room for a new one', async () => {
  const srv = await start({ API_MAX_CONNECTIONS: '4' });
  const conns = [];
  try {
    for (let i = 0; i < 4; i++) {
      conns.push(rawConnection(srv.port));
      await new Promise((r) => setTimeout(r, 20)); // in order: the first is the oldest
    }
    await until('4 connections', () => conns.every((c) => c.socket.readyState === 'open'));
    // A fifth client with a whole request is served; the oldest idle one is closed for it.
    const r = await get(srv.port, '/health');
    assert.strictEqual(r.status, 200);
    await until('the oldest to be closed', () => conns[0].closed);
    assert.deepStrictEqual(conns.slice(1).map((c) => c.closed), [false, false, false]);
    const line = srv.lines.find((l) => l.msg.startsWith('connection limit reached'));
    assert.ok(line, JSON.stringify(srv.lines));
  } finally {
    for (const c of conns) c.socket.destroy();
    srv.child.kill('SIGKILL');
  }
});

test('/slow is a debug route: 404 without API_DEBUG_ROUTES=1', async () => {
  const srv = await start({ API_DEBUG_ROUTES: '' });
  try {
    assert.strictEqual((await get(srv.port, '/slow?ms=30000')).status, 404);
  } finally {
    srv.child.kill('SIGKILL');
  }
});
