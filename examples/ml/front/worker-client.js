'use strict';
// The front's side of the Python worker: spawns it, owns its queue, talks JSON lines.
//
// The queue lives here, not in the pipe: the worker gets one request at a time, so
//  - the queue is bounded (queueMax waiting requests; more are refused at once),
//  - a request whose client has gone, or that timed out while waiting, is dropped
//    before the worker ever sees it,
//  - a ping (health) goes ahead of waiting predictions and measures the worker itself,
//  - stopping means: take nothing new, let the queue run dry, then close stdin.
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { EventEmitter } = require('node:events');

class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

class WorkerClient extends EventEmitter {
  constructor({ python, script, log, queueMax, timeoutMs, pingTimeoutMs, loadTimeoutMs }) {
    super();
    Object.assign(this, { python, script, log, queueMax, timeoutMs, pingTimeoutMs, loadTimeoutMs });
    this.queue = [];        // jobs waiting for the worker
    this.current = null;    // the job the worker is working on
    this.ping = null;       // the shared ping job, while one is waiting or running
    this.nextId = 1;
    this.ready = false;
    this.info = null;       // the worker's ready line
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
      this.log('worker: unparsable line', { line: line.slice(0, 200) });
      return;
    }
    if (msg && msg.event === 'ready') {
      this.ready = true;
      this.info = msg;
      const { backend, tensorflow, inputs, devices, python, pid, load_ms: loadMs } = msg;
      this.log('worker ready', { backend, tensorflow, inputs, devices, python, worker_pid: pid, load_ms: loadMs });
      this.emit('ready', msg);
      this.dispatch();
      return;
    }
    const job = this.current;
    if (!job || !msg || msg.id !== job.id) {
      this.log('worker: answer to no current request', { id: msg && msg.id });
      return;
    }
    this.current = null;
    if (job === this.ping) this.ping = null;
    job.settle(msg.error ? new RequestError(msg.status || 500, msg.error) : null, msg);
    this.dispatch();
  }

  /** Write the next live job to the worker, pings first. */
  dispatch() {
    if (this.current || !this.ready || this.exited) return;
    if (this.ping && this.ping.done && !this.ping.sentAt) this.ping = null; // timed out waiting
    let job = this.ping && !this.ping.sentAt ? this.ping : null;
    while (!job && this.queue.length) {
      const next = this.queue.shift();
      if (!next.done) job = next;
    }
    if (!job) {
      if (this.closing) this.closeStdin();
      return;
    }
    job.sentAt = Date.now();
    this.current = job;
    this.child.stdin.write(JSON.stringify({ ...job.body, id: job.id }) + '\n');
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

  /**
   * Queue a prediction. Resolves with the worker's answer; rejects with a
   * RequestError (status: 503 not ready / stopping / queue full, 504 timeout,
   * 4xx/500 from the worker). `cancel()` on the returned handle drops it.
   */
  predict(body) {
    if (this.exited || !this.ready) return { promise: Promise.reject(new RequestError(503, 'worker not ready')) };
    if (this.closing) return { promise: Promise.reject(new RequestError(503, 'shutting down')) };
    if (this.queue.length >= this.queueMax) {
      return { promise: Promise.reject(new RequestError(503, `queue full (${this.queueMax} waiting)`)), full: true };
    }
    const job = this.makeJob({ op: 'predict', ...body }, this.timeoutMs);
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

  /**
   * Is the worker alive? Loading the model counts, for loadTimeoutMs (readiness is
   * not this: it waits for the model, see the front's notifyReady). Once loaded it
   * fails when the worker has been on one request longer than a request may take
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
    const cur = this.current;
    const age = cur ? Date.now() - cur.sentAt : 0;
    if (cur && cur !== this.ping) {
      if (age > this.timeoutMs) return { ok: false, reason: `worker stuck on a request for ${age} ms` };
      return { ok: true, state: 'busy' };
    }
    if (cur && age > this.pingTimeoutMs) return { ok: false, reason: `worker silent for ${age} ms` };
    if (!this.ping || (this.ping.done && !this.ping.sentAt)) {
      // One ping at a time, shared by concurrent health checks; it stays the
      // worker's current job until answered, however late.
      this.ping = this.makeJob({ op: 'ping' }, this.pingTimeoutMs);
      this.dispatch();
    }
    try {
      const pong = await this.ping.promise;
      return { ok: true, state: 'idle', predictions: pong.predictions, cache: pong.cache };
    } catch (err) {
      return { ok: false, reason: `worker did not answer a ping within ${this.pingTimeoutMs} ms` };
    }
  }

  finish(code, signal) {
    if (this.exited) return;
    this.exited = { code, signal };
    this.ready = false;
    for (const job of [this.current, this.ping, ...this.queue]) {
      if (job) job.settle(new RequestError(503, 'worker exited'));
    }
    this.queue = [];
    this.current = this.ping = null;
    this.emit('exit', this.exited);
  }

  closeStdin() {
    if (!this.stdinClosed) {
      this.stdinClosed = true;
      this.child.stdin.end();
    }
  }

  /** Pass a reload (SIGHUP) on to the worker. */
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
