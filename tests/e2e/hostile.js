'use strict';
// Clients for the example images' hostile-traffic tests and the ML load benchmark.
// Run with node inside the target container's network namespace (a client container
// started with `--network container:<target>`, or `docker exec`): loopback only.
//
//   node hostile.js MODE 'JSON options'      prints one JSON line: what the clients saw
//
// Every mode is bounded in count and time: at most `n` connections, and everything
// still open at `seconds` is destroyed by the client itself.
//
//   dribble  {port, n, everyMs, seconds}            headers that never end: one byte every everyMs
//   idle     {port, n, seconds}                     connections that send nothing
//   bodies   {port, n, path, declared, send, chunk, everyMs, seconds}
//            POSTs declaring Content-Length `declared`, of which `send` bytes are sent,
//            `chunk` bytes every everyMs (0: as fast as the socket takes them); then held
//   burst    {port, n, path, seconds}               n requests at once, one connection each;
//            `{i}` in path is the request's index
//   load     {port, concurrency, seconds, warmup, path}   closed loop: `concurrency` clients on
//            keep-alive connections, each sends its next request when the last is answered;
//            `{i}` in path is a per-request counter. Latencies of the measured part only.
const net = require('node:net');
const http = require('node:http');

const [mode, raw] = process.argv.slice(2);
const opt = JSON.parse(raw || '{}');
const HOST = opt.host || '127.0.0.1';
const t0 = Date.now();
const ms = () => Date.now() - t0;

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function summary(conns) {
  const closeMs = conns.filter((c) => c.closedAt !== null && c.byServer).map((c) => c.closedAt).sort((a, b) => a - b);
  const statuses = {};
  for (const c of conns) if (c.status) statuses[c.status] = (statuses[c.status] || 0) + 1;
  return {
    opened: conns.filter((c) => c.connected).length,
    connectErrors: conns.filter((c) => c.error && !c.connected).length,
    closedByServer: closeMs.length,
    stillOpen: conns.filter((c) => c.connected && c.closedAt === null).length,
    closeMs: { min: closeMs[0] ?? null, p50: pct(closeMs, 50), max: closeMs[closeMs.length - 1] ?? null },
    statuses,
    sentBytes: conns.reduce((s, c) => s + c.sent, 0),
  };
}

// One raw connection: `onOpen(c)` starts its traffic; the server's side is recorded.
function connection(port, onOpen) {
  const c = { connected: false, closedAt: null, byServer: false, status: null, sent: 0, error: null, timers: [] };
  const s = net.connect(port, HOST);
  c.socket = s;
  let head = '';
  s.on('connect', () => { c.connected = true; onOpen(c); });
  s.on('data', (d) => {
    if (c.status === null) {
      head += d.toString('latin1');
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      if (m) c.status = Number(m[1]);
    }
  });
  const closed = (byServer) => {
    if (c.closedAt === null) {
      c.closedAt = ms();
      c.byServer = byServer;
    }
    for (const t of c.timers) clearInterval(t);
  };
  s.on('end', () => { closed(true); s.destroy(); });
  s.on('close', () => closed(!c.mine));
  s.on('error', (e) => { c.error = e.code || e.message; });
  c.write = (buf) => {
    if (s.destroyed || !s.writable) return false;
    c.sent += buf.length;
    return s.write(buf);
  };
  return c;
}

function finish(conns, extra = {}) {
  const out = { mode, ...summary(conns), ...extra, ms: ms() };
  for (const c of conns) {
    if (c.closedAt === null) {
      c.mine = true;
      c.socket.destroy();
    }
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
}

function open(n, port, onOpen) {
  const conns = [];
  for (let i = 0; i < n; i++) conns.push(connection(port, onOpen));
  return conns;
}

function dribble() {
  const conns = open(opt.n, opt.port, (c) => {
    c.write(Buffer.from('GET /health HTTP/1.1\r\nHost: x\r\nX-Dribble: '));
    c.timers.push(setInterval(() => c.write(Buffer.from('a')), opt.everyMs));
  });
  setTimeout(() => finish(conns), opt.seconds * 1000);
}

function idle() {
  const conns = open(opt.n, opt.port, () => {});
  setTimeout(() => finish(conns), opt.seconds * 1000);
}

function bodies() {
  const head = `POST ${opt.path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`
    + `Content-Length: ${opt.declared}\r\n\r\n`;
  const chunk = Buffer.alloc(opt.chunk, 0x20); // spaces: valid JSON padding, were the body ever read whole
  const conns = open(opt.n, opt.port, (c) => {
    c.write(Buffer.from(head));
    let left = opt.send;
    const step = () => {
      // Fast: write while the socket takes it, then wait for 'drain'.
      while (left > 0 && c.status === null && !c.socket.destroyed) {
        const b = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= b.length;
        if (!c.write(b)) {
          c.socket.once('drain', step);
          return;
        }
        if (opt.everyMs) return;
      }
    };
    if (opt.everyMs) c.timers.push(setInterval(step, opt.everyMs));
    else step();
  });
  setTimeout(() => finish(conns), opt.seconds * 1000);
}

function request(port, path, agent) {
  return new Promise((resolve) => {
    const start = process.hrtime.bigint();
    const done = (status, body) => resolve({ status, body, ms: Number(process.hrtime.bigint() - start) / 1e6 });
    const req = http.get({ host: HOST, port, path, agent }, (res) => {
      let b = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { b += d; });
      res.on('end', () => done(res.statusCode, b));
      res.on('error', (e) => done(`error ${e.code || e.message}`, ''));
    });
    req.on('error', (e) => done(`error ${e.code || e.message}`, ''));
    req.setTimeout(opt.seconds * 1000, () => req.destroy(new Error('client timeout')));
  });
}

function latencies(results) {
  const l = results.map((r) => r.ms).sort((a, b) => a - b);
  const r3 = (x) => (x === null ? null : Math.round(x * 1000) / 1000);
  return { p50: r3(pct(l, 50)), p90: r3(pct(l, 90)), p99: r3(pct(l, 99)), max: r3(l[l.length - 1] ?? null) };
}

function count(results) {
  const statuses = {};
  for (const r of results) statuses[r.status] = (statuses[r.status] || 0) + 1;
  return statuses;
}

async function burst() {
  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  const hard = setTimeout(() => { process.stdout.write(JSON.stringify({ mode, error: 'burst did not finish' }) + '\n'); process.exit(1); },
    (opt.seconds + 5) * 1000);
  const results = await Promise.all(Array.from({ length: opt.n },
    (_, i) => request(opt.port, opt.path.replaceAll('{i}', String(i)), agent)));
  clearTimeout(hard);
  process.stdout.write(JSON.stringify({
    mode, n: opt.n, statuses: count(results), latencyMs: latencies(results), ms: ms(),
    bodies: opt.bodies ? results.map((r) => r.body) : undefined,
  }) + '\n');
  process.exit(0);
}

async function load() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opt.concurrency });
  const warmEnd = Date.now() + (opt.warmup || 0) * 1000;
  const end = warmEnd + opt.seconds * 1000;
  const results = [];
  let n = 0;
  let measureStart = null;
  let measureEnd = null;
  const client = async () => {
    while (Date.now() < end) {
      const r = await request(opt.port, opt.path.replaceAll('{i}', String(n++)), agent);
      const now = Date.now();
      if (now >= warmEnd && now <= end) {
        measureStart ??= warmEnd;
        results.push(r);
      }
      measureEnd = now;
    }
  };
  await Promise.all(Array.from({ length: opt.concurrency }, client));
  const seconds = Math.max(0.001, (Math.min(measureEnd, end) - measureStart) / 1000);
  const ok = results.filter((r) => r.status === 200).length;
  process.stdout.write(JSON.stringify({
    mode, concurrency: opt.concurrency, seconds: Math.round(seconds * 100) / 100, requests: results.length,
    ok, throughput: Math.round((ok / seconds) * 10) / 10, statuses: count(results), latencyMs: latencies(results),
  }) + '\n');
  process.exit(0);
}

({ dribble, idle, bodies, burst, load }[mode] || (() => { throw new Error(`unknown mode ${mode}`); }))();
