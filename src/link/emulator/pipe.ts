/**
 * One direction of one proxied connection: source -> delay queue -> destination. Every chunk read
 * gets its due time from the Pacer (cap, latency, jitter, loss) and is written to the destination
 * when the emulator's Wakeups call back at that time; a stall or a cut holds delivery, a token
 * bucket meters it at the cap (so what waited behind a stall or a cut goes out at the cap, not at
 * once), and a destination that does not drain holds it too.
 */
import type { Socket } from 'node:net';
import type { Random } from '../../random/index.js';
import { Pacer, pieceBytes } from './pacer.js';
import type { Direction, DirectionSettings } from './types.js';
import type { Wakeable, Wakeups } from './wakeups.js';

/** What a pipe needs from its emulator (LinkEmulator implements it). */
export interface PipeHost {
  readonly queueBytes: number;
  readonly wakeups: Wakeups;
  readonly random: Random;
  settingsOf(d: Direction): DirectionSettings;
  isCut(d: Direction): boolean;
  stallLeft(d: Direction): number;
  countBytes(d: Direction, n: number): void;
  countLoss(d: Direction): void;
}

/** What a pipe needs from its connection (Conn implements it). */
export interface PipeConn {
  readonly emu: PipeHost;
  readonly closed: boolean;
  readonly state: string;
  readonly forward: Direction;
  readonly client: Socket;
  readonly target: Socket | undefined;
  maybeDone(): void;
}

interface Chunk {
  buf: Buffer;
  /** performance.now() ms */
  due: number;
}

/** Pieces delivered in one call before the rest waits a loop turn (I/O keeps flowing). */
const MAX_PIECES_PER_PUMP = 1000;

export class Pipe implements Wakeable {
  queue: Chunk[] = [];
  queued = 0;
  bytes = 0;
  tokens = 0;
  tokenTime = performance.now();
  waitingDrain = false;
  srcEnded = false;
  destEnded = false;
  paused = false;
  private readonly pacer = new Pacer();

  constructor(
    readonly conn: PipeConn,
    readonly dir: Direction,
  ) {}

  get src(): Socket | undefined {
    return this.dir === this.conn.forward ? this.conn.client : this.conn.target;
  }
  get dest(): Socket | undefined {
    return this.dir === this.conn.forward ? this.conn.target : this.conn.client;
  }

  /** A chunk read from the source. */
  push(buf: Buffer): void {
    const emu = this.conn.emu;
    const s = emu.settingsOf(this.dir);
    // An idle link with nothing set: no queue, no clock, straight through (the proxy's own cost).
    if (this.queue.length === 0 && isPassThrough(s) && this.canDeliver() && emu.stallLeft(this.dir) <= 0) {
      this.deliver(buf);
      return;
    }
    const now = performance.now();
    const piece = s.bandwidth > 0 ? pieceBytes(s.bandwidth) : buf.length;
    for (let off = 0; off < buf.length; off += piece) this.enqueue(buf.subarray(off, Math.min(buf.length, off + piece)), now, s);
    this.queued += buf.length;
    this.flowControl();
    this.pump();
  }

  private enqueue(buf: Buffer, now: number, s: DirectionSettings): void {
    const emu = this.conn.emu;
    const due = this.pacer.next(buf.length, now, s, emu.random);
    if (this.pacer.lost) emu.countLoss(this.dir);
    const tail = this.queue[this.queue.length - 1];
    // TCP never reorders: a chunk due before the one ahead of it would overtake it.
    if (tail && due < tail.due) throw new Error(`link emulator: due times went backwards (${due} < ${tail.due})`);
    this.queue.push({ buf, due });
  }

  /** Pauses the source over the bound, resumes it below half. */
  flowControl(): void {
    const bound = this.conn.emu.queueBytes;
    const src = this.src;
    if (!src) return;
    if (!this.paused && this.queued >= bound) {
      this.paused = true;
      src.pause();
    } else if (this.paused && this.queued <= bound / 2) {
      this.paused = false;
      src.resume();
    }
  }

  /** Wakeups calls back here at the time asked for. */
  wake(): void {
    this.pump();
  }

  /** Forgets the pending wake-up (the connection is closing). */
  cancelWake(): void {
    this.conn.emu.wakeups.cancel(this);
  }

  /** Whether bytes may go to the destination now (open, not cut, not waiting for a drain). */
  private canDeliver(): boolean {
    const conn = this.conn;
    return !conn.closed && !this.waitingDrain && conn.state === 'open' && this.dest !== undefined && !conn.emu.isCut(this.dir);
  }

  /** Delivers what is due; asks for a wake-up at the next due time (or the end of a stall). */
  pump(): void {
    if (!this.canDeliver()) return; // a restore, a drain or the connect calls pump again
    const emu = this.conn.emu;
    const stallLeft = emu.stallLeft(this.dir);
    if (stallLeft > 0) return emu.wakeups.at(this, performance.now() + stallLeft);
    const s = emu.settingsOf(this.dir);
    const now = performance.now();
    const dest = this.dest!;
    // Pieces due together leave in one write (writev), as a burst of segments would.
    const corked = this.queue.length > 1;
    if (corked) dest.cork();
    try {
      for (let i = 0; this.queue.length; i++) {
        const head = this.queue[0]!;
        if (head.due > now) return emu.wakeups.at(this, head.due);
        if (i === MAX_PIECES_PER_PUMP) return emu.wakeups.at(this, now);
        const n = this.metered(head.buf.length, now, s);
        if (n === 0) return;
        const piece = n === head.buf.length ? head.buf : head.buf.subarray(0, n);
        if (n === head.buf.length) this.queue.shift();
        else head.buf = head.buf.subarray(n);
        this.queued -= n;
        this.flowControl();
        if (!this.deliver(piece)) return;
      }
    } finally {
      if (corked) dest.uncork();
    }
    if (this.srcEnded && !this.destEnded) {
      this.destEnded = true;
      dest.end();
      this.conn.maybeDone();
    }
  }

  /**
   * How many of `want` bytes the token bucket lets out now (burst: 50 ms of the cap, at least
   * 16 KiB); 0 after asking for a wake-up when it has none. The Pacer already spaces chunks at
   * the cap, so the bucket only binds on bytes that waited behind a stall or a cut.
   */
  private metered(want: number, now: number, s: DirectionSettings): number {
    if (s.bandwidth <= 0) return want;
    const burst = Math.max(16384, s.bandwidth * 0.05);
    this.tokens = Math.min(burst, this.tokens + ((now - this.tokenTime) * s.bandwidth) / 1000);
    this.tokenTime = now;
    if (this.tokens >= 1) {
      const n = Math.min(want, Math.floor(this.tokens));
      this.tokens -= n;
      return n;
    }
    this.conn.emu.wakeups.at(this, now + ((Math.min(want, burst) - this.tokens) * 1000) / s.bandwidth);
    return 0;
  }

  /** Writes to the destination; false when it must drain first (pump resumes on 'drain'). */
  private deliver(piece: Buffer): boolean {
    this.bytes += piece.length;
    this.conn.emu.countBytes(this.dir, piece.length);
    if (this.dest!.write(piece)) return true;
    this.waitingDrain = true;
    this.dest!.once('drain', () => {
      this.waitingDrain = false;
      this.pump();
    });
    return false;
  }
}

/** Settings under which a chunk is due the moment it arrives. */
function isPassThrough(s: DirectionSettings): boolean {
  return s.latencyMs === 0 && s.jitterMs === 0 && s.bandwidth === 0 && s.lossPercent === 0;
}
