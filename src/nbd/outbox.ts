import type { Socket } from 'node:net';
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
}

/**
 * The replies of one NBD session on their way out. Everything queued in one turn of the event
 * loop leaves in one socket write (or one corked writev), and each reply stays charged to the
 * server's memory budget until the socket has written it (the write callbacks come in order).
 */
export class Outbox {
  /** bytes queued and not yet handed to the socket */
  queuedBytes = 0;
  private queued: Buffer[] = [];
  /** charges of the socket writes not yet completed, oldest first */
  private writing: number[] = [];
  private flushQueued = false;

  constructor(private readonly hooks: OutboxHooks) {}

  /**
   * Queues a reply; it is charged to the budget until written. `prepaid` bytes of it were
   * charged already (a read's data, when the read was admitted) and change hands, not count twice.
   */
  send(buf: Buffer, prepaid = 0): void {
    if (this.hooks.closed()) return this.hooks.uncharge(prepaid);
    this.queued.push(buf);
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
    this.queued = [];
    this.queuedBytes = 0;
    this.writing.push(bytes);
    const socket = this.hooks.socket();
    if (out.length === 1) {
      socket.write(out[0]!, this.written);
    } else if (bytes < JOIN_REPLIES_BELOW) {
      socket.write(Buffer.concat(out, bytes), this.written);
    } else {
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
    this.writing = [];
    this.queued = [];
    this.queuedBytes = 0;
    return held;
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
    this.hooks.uncharge(n);
    this.hooks.onWritten();
  };
}
