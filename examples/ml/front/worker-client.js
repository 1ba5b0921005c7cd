'use strict';
// The front's side of the Python worker: spawns it, owns its queue, forms batches,
// talks JSON lines.
//
// The queue lives here, not in the pipe: the worker gets one message at a time, so
//  - the queue is bounded (queueMax waiting requests; more are refused at once),
//  - a request whose client has gone, or that timed out while waiting, is dropped
//    before the worker ever sees it,
//  - a ping (health) goes ahead of waiting predictions and measures the worker itself,
//  - stopping means: take nothing new, let the queue run dry, then close stdin.
//
// Dynamic batching: when the worker is free, every waiting request that fits in
// batchMaxRows rows goes to it in ONE message, which it runs through one model call
// and answers request by request, in order. Under load batches fill by themselves:
// requests gather while the worker computes the previous batch. With batchWaitMs > 0
// (default 0), an idle worker's next batch that is not full waits up to that long,
// from its oldest request's arrival, for company. batchMaxRows=1 turns batching off
// (one request per message, the behaviour before batching). A request with delay_ms
// (a test knob) is a batch of its own.
//
// Answers come back in the message's order, one line each, so a line the front cannot
// parse (once: a NaN from json.dumps) is the answer to the next request still waiting
// for one: that request fails with 500, and the others are answered as usual. A line
// with id null means the worker could not read our message: every request in it fails.
// Nothing leaves the channel waiting for a line that will never come.
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { EventEmitter } = require('node:events');
const { performance } = require('node:perf_hooks');

class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class WorkerClient extends EventEmitter {
  constructor({ python, script, log, queueMax, timeoutMs, pingTimeoutMs, loadTimeoutMs, batchMaxRows, batchWaitMs }) {
    super();
    Object.assign(this, { python, script, log, queueMax, timeoutMs, pingTimeoutMs, loadTimeoutMs, batchMaxRows,
      batchWaitMs });
    this.queue = [];        // prediction jobs waiting for the worker, oldest first
    this.inflight = null;   // the message the worker is working on: { jobs, pending: Set, sentAt }
    this.ping = null;       // the shared ping job, while one is waiting or running
    this.batchTimer = null; // set while the first waiting request waits for company
    this.nextId = 1;
    this.ready = false;
    this.info = null;       // the worker's ready line, updated by each reload
    this.lastPong = null;
    this.closing = false;   // stop(): no new jobs
    this.exited = null;     // { code, signal } once the worker is gone
  }

  start() {
    // Same process group (detached: false): if the stop ever outlives kai-init's
    // --stop-timeout, its SIGKILL to the group leaves nothing behind.
    this.child = spawn(this.python, ['-u', this.script], { stdio: ['pipe', 'pipe', 'inherit'], env: process.env });
    this.child.on('error', (err) => {
      this.log('worker spawn failed', { error: String(err) });
      this.finish(127, null);
    });
    this.child.on('exit', (code, signal) => this.finish(code, signal));
    this.child.stdin.on('error', () => {}); // EPIPE when the worker is gone: handled by 'exit'
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => this.onLine(line));
    this.startedAt = Date.now();
    this.log('worker spawned', { worker_pid: this.child.pid, python: this.python });
  }

  onLine(line) {
    let msg;
    try {
      msg = JSON.parse(line);
    } catch {
      msg = undefined;
    }
    if (msg !== null && typeof msg === 'object' && !Array.isArray(msg) && typeof msg.event === 'string') {
      this.onEvent(msg);
      return;
    }
    const inf = this.inflight;
    if (!inf) {
      this.log('worker: line with no request in flight', { line: line.slice(0, 200) });
      return;
    }
    const [next] = inf.pending;
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      this.log('worker: unreadable answer', { id: next.id, line: line.slice(0, 200) });
      this.answer(next, new RequestError(500, 'the worker sent an answer that could not be read'));
    } else if (msg.id === null || msg.id === undefined) {
      this.log('worker: message refused', { error: String(msg.error).slice(0, 200), requests: inf.pending.size });
      for (const job of [...inf.pending]) this.answer(job, new RequestError(500, 'the worker could not read the request'));
    } else {
      const job = msg.id === next.id ? next : [...inf.pending].find((j) => j.id === msg.id);
      if (!job) {
        this.log('worker: answer to no request in flight', { id: msg.id });
        return;
      }
      if (job !== next) this.log('worker: answer out of order', { id: msg.id, expected: next.id });
      this.answer(job, msg.error ? new RequestError(msg.status || 500, msg.error) : null, msg);
    }
    if (inf.pending.size === 0) {
      this.inflight = null;
      this.dispatch();
    }
  }

  onEvent(msg) {
    if (msg.event === 'ready') {
      this.ready = true;
      this.info = msg;
      const { backend, tensorflow, inputs, dtype, devices, python, pid, load_ms: loadMs } = msg;
      this.log('worker ready', { backend, tensorflow, inputs, dtype, devices, python, worker_pid: pid, load_ms: loadMs });
      this.emit('ready', msg);
      this.dispatch();
    } else if (msg.event === 'reload') {
      if (msg.ok) {
        this.info = { ...this.info, ...msg };
        const { path, sha256, inputs, dtype, load_ms: loadMs } = msg;
        this.log('worker reloaded the model', { path, sha256, inputs, dtype, load_ms: loadMs });
      } else {
        this.log('worker could not reload the model: still serving the previous one', { error: msg.error });
      }
    } else {
      this.log('worker: unknown event', { event: String(msg.event).slice(0, 50) });
    }
  }

  answer(job, err, msg) {
    this.inflight.pending.delete(job);
    if (job === this.ping) {
      this.ping = null;
      if (!err) this.lastPong = msg;
    }
    job.settle(err, msg);
  }

  /** Send the next message: the ping if one waits, else a batch of waiting predictions. */
  dispatch() {
    if (this.inflight || !this.ready || this.exited) return;
    if (this.batchTimer) {
      clearTimeout(this.batchTimer);
      this.batchTimer = null;
    }
    if (this.ping && this.ping.done && !this.ping.sentAt) this.ping = null; // timed out waiting
    if (this.ping && !this.ping.sentAt) {
      this.send([this.ping], { id: this.ping.id, op: 'ping' });
      return;
    }
    this.queue = this.queue.filter((j) => !j.done);
    if (this.queue.length === 0) {
      if (this.closing) this.closeStdin();
      return;
    }
    const first = this.queue[0];
    const batch = [];
    let rows = 0;
    for (const job of this.queue) {
      if (batch.length && (first.body.delay_ms || job.body.delay_ms || rows + job.rows > this.batchMaxRows)) break;
      batch.push(job);
      rows += job.rows;
    }
    // The worker is idle and everything waiting fits: give it a moment to fill up.
    const wait = this.batchWaitMs - (performance.now() - first.queuedAt);
    if (wait > 0 && rows < this.batchMaxRows && batch.length === this.queue.length && !first.body.delay_ms
        && !this.closing) {
      this.batchTimer = setTimeout(() => {
        this.batchTimer = null;
        this.dispatch();
      }, Math.ceil(wait));
      return;
    }
    this.queue.splice(0, batch.length);
    this.send(batch, {
      op: 'batch',
      requests: batch.map((j) => ({
        id: j.id, inputs: j.body.inputs, t_us: j.tUs, ...(j.body.delay_ms ? { delay_ms: j.body.delay_ms } : {}),
      })),
    });
  }

  send(jobs, msg) {
    const now = Date.now();
    for (const job of jobs) job.sentAt = now;
    this.inflight = { jobs, pending: new Set(jobs), sentAt: now, ping: jobs[0] === this.ping };
    this.child.stdin.write(JSON.stringify(msg) + '\n');
  }

  makeJob(body, timeoutMs) {
    const job = { id: this.nextId++, body, sentAt: 0, done: false };
    job.promise = new Promise((resolve, reject) => {
      job.settle = (err, value) => {
        if (job.done) return;
        job.done = true;
        clearTimeout(job.timer);
        if (err) reject(err);
        else resolve(value);
      };
    });
    job.timer = setTimeout(() => {
      // Waiting: dropped, the worker never sees it. Running: the worker finishes
      // it (the front cannot interrupt it) and the answer is discarded.
      job.settle(new RequestError(504, `no answer from the worker within ${timeoutMs} ms`));
      this.removeWaiting(job);
    }, timeoutMs);
    return job;
  }

  removeWaiting(job) {
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
  }

  /** No room for one more request: refused before its body is even read. */
  full() {
    return this.queue.length >= this.queueMax;
  }

  /**
   * Queue a prediction. Resolves with the worker's answer; rejects with a
   * RequestError (status: 503 not ready / stopping / queue full, 504 timeout,
   * 4xx/500 from the worker). `cancel()` on the returned handle drops it.
   */
  predict(body) {
    if (this.exited || !this.ready) return { promise: Promise.reject(new RequestError(503, 'worker not ready')) };
    if (this.closing) return { promise: Promise.reject(new RequestError(503, 'shutting down')) };
    if (this.full()) {
      return { promise: Promise.reject(new RequestError(503, `queue full (${this.queueMax} waiting)`)), full: true };
    }
    const job = this.makeJob(body, this.timeoutMs);
    job.rows = body.inputs.length;
    job.queuedAt = performance.now();
    // CLOCK_MONOTONIC in microseconds: the worker reads the same clock, and measures
    // each request's queue wait up to its model call.
    job.tUs = Number(process.hrtime.bigint() / 1000n);
    this.queue.push(job);
    this.dispatch();
    return {
      promise: job.promise,
      cancel: () => {
        if (job.done) return false;
        const waiting = !job.sentAt;
        job.settle(new RequestError(499, 'client closed the connection'));
        this.removeWaiting(job);
        return waiting; // true: dropped before the worker saw it
      },
    };
  }

  /** The shared ping job: a new one unless one is waiting or running. */
  pingJob() {
    if (!this.ping || (this.ping.done && !this.ping.sentAt)) {
      // One ping at a time, shared by concurrent callers; once sent it stays in
      // flight until answered, however late.
      this.ping = this.makeJob({ op: 'ping' }, this.pingTimeoutMs);
      this.dispatch();
    }
    return this.ping;
  }

  /**
   * Is the worker alive? Loading the model counts, for loadTimeoutMs (readiness is
   * not this: it waits for the model, see the front's notifyReady). Once loaded it
   * fails when the worker has been on one batch longer than a request may take
   * (timeoutMs), or does not answer a ping within pingTimeoutMs of being free to.
   * A busy worker within its time counts as alive.
   */
  async health() {
    if (this.exited) return { ok: false, reason: 'worker exited' };
    if (!this.ready) {
      const age = Date.now() - this.startedAt;
      if (age > this.loadTimeoutMs) return { ok: false, reason: `model still loading after ${age} ms` };
      return { ok: true, state: 'loading' };
    }
    const inf = this.inflight;
    const age = inf ? Date.now() - inf.sentAt : 0;
    if (inf && !inf.ping) {
      if (age > this.timeoutMs) return { ok: false, reason: `worker stuck on a batch for ${age} ms` };
      return { ok: true, state: 'busy', ...this.summary(this.lastPong) };
    }
    if (inf && age > this.pingTimeoutMs) return { ok: false, reason: `worker silent for ${age} ms` };
    try {
      const pong = await this.pingJob().promise;
      return { ok: true, state: 'idle', ...this.summary(pong) };
    } catch (err) {
      return { ok: false, reason: `worker did not answer a ping within ${this.pingTimeoutMs} ms` };
    }
  }

  summary(pong) {
    if (!pong) return {};
    const m = pong.metrics || {};
    const rows = m.batch_rows || { count: 0, sum: 0 };
    return {
      predictions: pong.predictions,
      cache: pong.cache,
      reloads: pong.reloads,
      model: pong.model && { path: pong.model.path, sha256: pong.model.sha256 },
      batches: rows.count,
      mean_batch_rows: rows.count ? Math.round((rows.sum / rows.count) * 100) / 100 : null,
    };
  }

  /** The worker's pong (its metrics), asked for now. */
  async stats() {
    if (!this.ready || this.exited) throw new RequestError(503, 'worker not ready');
    try {
      return await this.pingJob().promise;
    } catch {
      throw new RequestError(503, `worker did not answer a ping within ${this.pingTimeoutMs} ms`);
    }
  }

  finish(code, signal) {
    if (this.exited) return;
    this.exited = { code, signal };
    this.ready = false;
    clearTimeout(this.batchTimer);
    const inflight = this.inflight ? [...this.inflight.pending] : [];
    for (const job of [...inflight, this.ping, ...this.queue]) {
      if (job) job.settle(new RequestError(503, 'worker exited'));
    }
    this.queue = [];
    this.inflight = this.ping = null;
    this.emit('exit', this.exited);
  }

  closeStdin() {
    if (!this.stdinClosed) {
      this.stdinClosed = true;
      this.child.stdin.end();
    }
  }

  /** Pass a reload (SIGHUP) on to the worker: it loads its model file again. */
  reload() {
    if (this.exited || !this.child) return false;
    return this.child.kill('SIGHUP');
  }

  /**
   * Take no new requests, let the worker answer every one already queued, then
   * close its stdin (the worker exits 0 on EOF). Resolves with its exit status;
   * SIGKILL only if it is still there after graceMs.
   */
  stop(graceMs) {
    if (this.exited) return Promise.resolve(this.exited);
    this.closing = true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.log('worker did not exit in time: SIGKILL', { graceMs, waiting: this.queue.length });
        this.child.kill('SIGKILL');
      }, graceMs);
      this.once('exit', (st) => {
        clearTimeout(timer);
        resolve(st);
      });
      if (!this.ready) this.closeStdin(); // still loading: nothing queued
      else this.dispatch();               // closes stdin now if idle, else once the queue is done
    });
  }
}

module.exports = { WorkerClient, RequestError };
