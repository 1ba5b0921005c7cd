'use strict';
// Spawns the Python worker and talks JSON lines to it.
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const { EventEmitter } = require('node:events');

class WorkerClient extends EventEmitter {
  constructor({ python, script, timeoutMs, log }) {
    super();
    this.python = python;
    this.script = script;
    this.timeoutMs = timeoutMs;
    this.log = log;
    this.pending = new Map();
    this.nextId = 1;
    this.ready = false;
    this.backend = null;
    this.exited = null; // { code, signal } once the worker is gone
  }

  start() {
    // This front owns the worker: kai-init signals only its main child (this
    // process), and the front tells the worker itself (reload(), stop()). Same
    // process group (detached: false), so that if the stop ever outlives
    // --stop-timeout, kai-init's SIGKILL to the group leaves nothing behind.
    this.child = spawn(this.python, ['-u', this.script], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: process.env,
    });
    this.child.on('error', (err) => {
      this.log('worker spawn failed', { error: String(err) });
      this.finish(127, null);
    });
    this.child.on('exit', (code, signal) => this.finish(code, signal));
    this.child.stdin.on('error', () => {}); // EPIPE when the worker is gone: handled by 'exit'
    const rl = readline.createInterface({ input: this.child.stdout });
    rl.on('line', (line) => this.onLine(line));
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
    if (msg.event === 'ready') {
      this.ready = true;
      this.backend = msg.backend;
      this.log('worker ready', { backend: msg.backend, python: msg.python, worker_pid: msg.pid });
      this.emit('ready', msg);
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new Error(msg.error));
    else p.resolve(msg);
  }

  request(body) {
    if (this.exited || !this.ready) return Promise.reject(new Error('worker not ready'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`worker timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.child.stdin.write(JSON.stringify({ ...body, id }) + '\n');
    });
  }

  finish(code, signal) {
    if (this.exited) return;
    this.exited = { code, signal };
    this.ready = false;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error('worker exited'));
    }
    this.pending.clear();
    this.emit('exit', this.exited);
  }

  /** Pass a reload (SIGHUP) on to the worker. */
  reload() {
    if (this.exited || !this.child) return false;
    return this.child.kill('SIGHUP');
  }

  /**
   * Ask the worker to finish and resolve with its exit status. Closing its stdin is
   * the request: the worker answers every request already written to the pipe (the
   * queue), then reads EOF and exits 0. SIGKILL only if it has not gone by graceMs.
   */
  stop(graceMs) {
    if (this.exited) return Promise.resolve(this.exited);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.log('worker did not exit in time: SIGKILL', { graceMs });
        this.child.kill('SIGKILL');
      }, graceMs);
      this.once('exit', (st) => {
        clearTimeout(timer);
        resolve(st);
      });
      this.child.stdin.end();
    });
  }
}

module.exports = { WorkerClient };
