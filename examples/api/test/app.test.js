'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { createApp, boundedMs } = require('../src/app');

function get(port, path) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('boundedMs clamps', () => {
  assert.strictEqual(boundedMs('50', 10), 10);
  assert.strictEqual(boundedMs('-3', 10), 0);
  assert.strictEqual(boundedMs('x', 10), 0);
});

test('health follows the shutdown state; debug routes are off by default', async () => {
  const state = { shuttingDown: false, inFlight: 0, reloads: 0 };
  const server = http.createServer(createApp({ state, log: () => {} }));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  try {
    assert.strictEqual((await get(port, '/health')).status, 200);
    assert.strictEqual((await get(port, '/debug/block?ms=1')).status, 404);
    state.shuttingDown = true;
    assert.strictEqual((await get(port, '/health')).status, 503);
  } finally {
    server.close();
  }
});
