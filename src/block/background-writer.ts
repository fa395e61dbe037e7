/**
 * Writes nobody waits on soon (a write cache destaging: `WriteOptions.background`), done off
 * the event loop by one worker thread per process, in batches: the writes requested during one
 * run of the event loop's microtasks go to the worker as one message (their data copied once
 * into one SharedArrayBuffer), the worker pwrites them in order and answers once. A destage
 * batch of 64 random pages so costs the event loop two messages instead of 64 thread-pool
 * requests, each of which woke a pool thread (and 64 callbacks).
 *
 * Each write's promise settles with its own result (an fs error with its `code`, as writeSync
 * throws it). The worker is referenced only while writes are pending, so it never keeps a
 * process alive by itself; if it dies, every pending write rejects and the next write starts a
 * new one.
 */
import { Worker } from 'node:worker_threads';

/** The worker: pwrite each request [fd, position, at, length] of the batch from the shared buffer. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
parentPort.on('message', (m) => {
  const buf = Buffer.from(m.sab);
  const failed = [];
  const r = m.reqs;
  for (let i = 0; i < r.length / 4; i++) {
    const fd = r[4 * i], pos = r[4 * i + 1], at = r[4 * i + 2], len = r[4 * i + 3];
    try {
      let done = 0;
      while (done < len) done += fs.writeSync(fd, buf, at + done, len - done, pos + done);
    } catch (e) {
      failed.push([i, String(e && e.code || 'EIO'), String(e && e.message || e)]);
    }
  }
  parentPort.postMessage({ id: m.id, failed });
});
`;

interface Request {
  fd: number;
  position: number;
  data: Buffer;
  resolve: () => void;
  reject: (e: Error) => void;
}

class BackgroundWriter {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly inflight = new Map<number, Request[]>();
  private queue: Request[] = [];

  /** Queues a pwrite of `data` at `position`; the data is copied before the caller next yields. */
  write(fd: number, position: number, data: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.queue.length === 0) queueMicrotask(this.send);
      this.queue.push({ fd, position, data, resolve, reject });
    });
  }

  private readonly send = (): void => {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    let bytes = 0;
    for (const r of batch) bytes += r.data.length;
    const sab = new SharedArrayBuffer(bytes);
    const buf = Buffer.from(sab);
    const reqs = new Float64Array(batch.length * 4);
    let at = 0;
    batch.forEach((r, i) => {
      r.data.copy(buf, at);
      reqs.set([r.fd, r.position, at, r.data.length], 4 * i);
      at += r.data.length;
    });
    const id = this.nextId++;
    let w: Worker;
    try {
      w = this.ensureWorker();
    } catch (e) {
      for (const r of batch) r.reject(e as Error);
      return;
    }
    this.inflight.set(id, batch);
    if (this.inflight.size === 1) w.ref();
    w.postMessage({ id, sab, reqs });
  };

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.unref();
    w.on('message', (m: { id: number; failed: [number, string, string][] }) => this.answered(w, m));
    w.on('error', (e) => this.died(w, e));
    w.on('exit', (code) => this.died(w, new Error(`background writer thread exited (code ${code})`)));
    this.worker = w;
    return w;
  }

  private answered(w: Worker, m: { id: number; failed: [number, string, string][] }): void {
    const batch = this.inflight.get(m.id);
    if (!batch) throw new Error(`background writer: answer for unknown batch ${m.id}`);
    this.inflight.delete(m.id);
    if (this.inflight.size === 0) w.unref();
    const failed = new Map(m.failed.map(([i, code, message]) => [i, Object.assign(new Error(message), { code })]));
    batch.forEach((r, i) => {
      const e = failed.get(i);
      if (e) r.reject(e);
      else r.resolve();
    });
  }

  private died(w: Worker, e: Error): void {
    if (this.worker !== w) return;
    this.worker = null;
    const lost = [...this.inflight.values()].flat();
    this.inflight.clear();
    for (const r of lost) r.reject(Object.assign(new Error(`background write lost: ${e.message}`), { code: 'EIO' }));
  }
}

let shared: BackgroundWriter | null = null;

/** pwrite of `data` at `position` of `fd` on the process's background writer thread. */
export function backgroundWrite(fd: number, position: number, data: Buffer): Promise<void> {
  shared ??= new BackgroundWriter();
  return shared.write(fd, position, data);
}
