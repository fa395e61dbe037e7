import type { Socket } from 'node:net';
import type { BufferPool } from './buffer-pool.js';
import { budgetBug } from './memory-budget.js';

/** Below this many bytes the replies of one turn are joined into one buffer (one write call). */
const JOIN_REPLIES_BELOW = 256 * 1024;

/** What the outbox needs of its session. */
export interface OutboxHooks {
  /** the session's id, for error messages */
  readonly id: number;
  /** the socket to write to now (STARTTLS replaces the plain one) */
  socket(): Socket;
  /** the session is closed: replies are dropped, written callbacks ignored */
  closed(): boolean;
  charge(n: number): void;
  uncharge(n: number): void;
  /** a socket write completed and released its bytes */
  onWritten(): void;
  /** where pooled replies go back once written, and where the replies of a turn are joined */
  pool: BufferPool;
}

/**
 * The replies of one NBD session on their way out. Everything queued in one turn of the event
 * loop leaves in one socket write (or one corked writev), and each reply stays charged to the
 * server's memory budget until the socket has written it (the write callbacks come in order).
 * Replies from the pool (read data) go back to it once written, or once copied into the joined
 * buffer, itself pooled: no reply costs a fresh large allocation (see buffer-pool.ts).
 */
export class Outbox {
  /** bytes queued and not yet handed to the socket */
  queuedBytes = 0;
  private queued: Buffer[] = [];
  /** the queued replies that came from the pool */
  private queuedPooled: Buffer[] = [];
  /** charges of the socket writes not yet completed, oldest first */
  private writing: number[] = [];
  /** for each write in `writing`: the pooled buffers it holds until it completes */
  private writingPooled: (Buffer[] | null)[] = [];
  private flushQueued = false;

  constructor(private readonly hooks: OutboxHooks) {}

  /**
   * Queues a reply; it is charged to the budget until written. `prepaid` bytes of it were
   * charged already (a read's data, when the read was admitted) and change hands, not count twice.
   */
  send(buf: Buffer, prepaid = 0, pooled = false): void {
    if (this.hooks.closed()) return this.hooks.uncharge(prepaid);
    this.queued.push(buf);
    if (pooled) this.queuedPooled.push(buf);
    this.queuedBytes += buf.length;
    this.recharge(buf.length - prepaid);
    this.scheduleFlush();
  }

  /** The chunks of one reply, queued and charged at once. */
  sendAll(bufs: Buffer[], prepaid: number): void {
    if (this.hooks.closed()) return this.hooks.uncharge(prepaid);
    let n = 0;
    for (const b of bufs) {
      this.queued.push(b);
      n += b.length;
    }
    this.queuedBytes += n;
    this.recharge(n - prepaid);
    this.scheduleFlush();
  }

  /** Hands everything queued to the socket now. */
  flush(): void {
    this.flushQueued = false;
    if (this.queued.length === 0 || this.hooks.closed()) return;
    const out = this.queued;
    const bytes = this.queuedBytes;
    let pooled: Buffer[] | null = this.queuedPooled.length > 0 ? this.queuedPooled : null;
    this.queued = [];
    this.queuedBytes = 0;
    if (pooled) this.queuedPooled = [];
    const socket = this.hooks.socket();
    if (out.length === 1) {
      this.track(bytes, pooled);
      socket.write(out[0]!, this.written);
    } else if (bytes < JOIN_REPLIES_BELOW) {
      const joined = this.hooks.pool.get(bytes);
      let at = 0;
      for (const b of out) at += b.copy(joined, at);
      if (pooled) for (const b of pooled) this.hooks.pool.put(b);
      pooled = [joined];
      this.track(bytes, pooled);
      socket.write(joined, this.written);
    } else {
      this.track(bytes, pooled);
      socket.cork();
      for (let i = 0; i < out.length - 1; i++) socket.write(out[i]!);
      socket.write(out[out.length - 1]!, this.written);
      socket.uncork();
    }
  }

  /** The session closed: drops what the socket will never write; returns the bytes it held. */
  drop(): number {
    let held = this.queuedBytes;
    for (const n of this.writing) held += n;
    // Pooled buffers are not given back: the socket may still hold the ones being written.
    this.writing = [];
    this.writingPooled = [];
    this.queuedPooled = [];
    this.queued = [];
    this.queuedBytes = 0;
    return held;
  }

  private track(bytes: number, pooled: Buffer[] | null): void {
    this.writing.push(bytes);
    this.writingPooled.push(pooled);
  }

  private recharge(delta: number): void {
    if (delta >= 0) this.hooks.charge(delta);
    else this.hooks.uncharge(-delta);
  }

  private scheduleFlush(): void {
    if (!this.flushQueued) {
      this.flushQueued = true;
      process.nextTick(() => this.flush());
    }
  }

  /** A socket write completed (or failed): its replies no longer hold memory. */
  private readonly written = (): void => {
    if (this.hooks.closed()) return; // drop() released every write still pending
    const n = this.writing.shift();
    if (n === undefined) return budgetBug(`NBD session ${this.hooks.id}: a socket write completed that was never charged`);
    const pooled = this.writingPooled.shift();
    if (pooled) for (const b of pooled) this.hooks.pool.put(b);
    this.hooks.uncharge(n);
    this.hooks.onWritten();
  };
}
