/**
 * One proxied connection of the link emulator and its two pipes (source -> queue -> destination,
 * one per direction): latency, bandwidth, stalls and cuts are applied here, per chunk.
 */
import { connect, type Socket } from 'node:net';
import { other, type Direction, type DirectionSettings, type ConnectionStatus, type LinkEvent, type RouteConfig } from './types.js';

/** What a connection needs from its emulator (LinkEmulator implements it). */
export interface ConnHost {
  readonly queueBytes: number;
  readonly connectTimeoutMs: number;
  settingsOf(d: Direction): DirectionSettings;
  isCut(d: Direction): boolean;
  anyCut(): boolean;
  stallLeft(d: Direction): number;
  countBytes(d: Direction, n: number): void;
  connClosed(c: Conn, reason: string): void;
  emitEvent(type: string, details: Record<string, unknown>): LinkEvent;
}

interface Chunk {
  buf: Buffer;
  due: number;
}

/** One direction of one connection: source → queue → destination. */
export class Pipe {
  queue: Chunk[] = [];
  queued = 0;
  bytes = 0;
  lastDue = 0;
  tokens = 0;
  tokenTime = performance.now();
  timer: NodeJS.Timeout | undefined;
  waitingDrain = false;
  srcEnded = false;
  destEnded = false;
  paused = false;

  constructor(
    readonly conn: Conn,
    readonly dir: Direction,
  ) {}

  get src(): Socket {
    return this.dir === this.conn.forward ? this.conn.client : this.conn.target!;
  }
  get dest(): Socket | undefined {
    return this.dir === this.conn.forward ? this.conn.target : this.conn.client;
  }

  push(buf: Buffer): void {
    const emu = this.conn.emu;
    const s = emu.settingsOf(this.dir);
    // performance.now(): sub-millisecond, so a 1 ms latency is not rounded up twice
    const now = performance.now();
    const due = Math.max(now + s.latencyMs + (s.jitterMs > 0 ? Math.random() * s.jitterMs : 0), this.lastDue);
    this.lastDue = due;
    this.queue.push({ buf, due });
    this.queued += buf.length;
    this.flowControl();
    this.pump();
  }

  /** Pauses the source over the bound, resumes it below half. */
  flowControl(): void {
    const bound = this.conn.emu.queueBytes;
    const src = this.dir === this.conn.forward ? this.conn.client : this.conn.target;
    if (!src) return;
    if (!this.paused && this.queued >= bound) {
      this.paused = true;
      src.pause();
    } else if (this.paused && this.queued <= bound / 2) {
      this.paused = false;
      src.resume();
    }
  }

  clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  schedule(ms: number): void {
    this.clearTimer();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.pump();
    }, Math.max(1, Math.floor(ms))); // timers fire late, never early: floor, then re-check
  }

  pump(): void {
    const conn = this.conn;
    const emu = conn.emu;
    if (conn.closed || this.waitingDrain) return;
    const dest = this.dest;
    if (!dest || conn.state !== 'open') return;
    if (emu.isCut(this.dir)) return; // restore calls pump
    const stallLeft = emu.stallLeft(this.dir);
    if (stallLeft > 0) return this.schedule(stallLeft);
    const s = emu.settingsOf(this.dir);
    for (let i = 0; i < 10_000 && this.queue.length; i++) {
      const head = this.queue[0]!;
      const now = performance.now();
      if (head.due > now) return this.schedule(head.due - now);
      let n = head.buf.length;
      if (s.bandwidth > 0) {
        const burst = Math.max(16384, s.bandwidth * 0.05);
        this.tokens = Math.min(burst, this.tokens + ((now - this.tokenTime) * s.bandwidth) / 1000);
        this.tokenTime = now;
        if (this.tokens < 1) return this.schedule(((Math.min(n, burst) - this.tokens) * 1000) / s.bandwidth);
        n = Math.min(n, Math.floor(this.tokens));
        this.tokens -= n;
      }
      const piece = n === head.buf.length ? head.buf : head.buf.subarray(0, n);
      if (n === head.buf.length) this.queue.shift();
      else head.buf = head.buf.subarray(n);
      this.queued -= n;
      this.bytes += n;
      emu.countBytes(this.dir, n);
      this.flowControl();
      const ok = dest.write(piece);
      if (!ok) {
        this.waitingDrain = true;
        dest.once('drain', () => {
          this.waitingDrain = false;
          this.pump();
        });
        return;
      }
    }
    if (this.queue.length) return this.schedule(0);
    if (this.srcEnded && !this.destEnded) {
      this.destEnded = true;
      dest.end();
      conn.maybeDone();
    }
  }
}

export class Conn {
  target: Socket | undefined;
  state: 'connecting' | 'held' | 'open' | 'closing' = 'held';
  closed = false;
  readonly pipes: Record<Direction, Pipe>;
  readonly openedAt = new Date();
  heldSince: number | undefined;

  constructor(
    readonly emu: ConnHost,
    readonly id: number,
    readonly route: RouteConfig,
    readonly client: Socket,
  ) {
    this.pipes = { 'a-to-b': new Pipe(this, 'a-to-b'), 'b-to-a': new Pipe(this, 'b-to-a') };
    const up = this.pipes[this.forward];
    client.on('data', (d: Buffer) => up.push(d));
    client.on('end', () => {
      up.srcEnded = true;
      up.pump();
      this.maybeDone();
    });
    // Handled by 'close' (hadError: the other side is reset); the listener keeps it from being thrown.
    client.on('error', () => undefined);
    client.on('close', (hadError) => this.onSocketClose(client, hadError));
  }

  get forward(): Direction {
    return this.route.forward;
  }

  from(): string {
    return `${this.client.remoteAddress}:${this.client.remotePort}`;
  }

  /** Dials the target (unless a cut holds the connection). */
  dial(): void {
    if (this.closed || this.target) return;
    if (this.emu.anyCut()) {
      this.state = 'held';
      this.heldSince ??= Date.now();
      return;
    }
    this.state = 'connecting';
    const t = connect({ host: this.route.target.host, port: this.route.target.port, allowHalfOpen: true });
    this.target = t;
    t.setNoDelay(true);
    const timer = setTimeout(() => t.destroy(new Error('connect timeout')), this.emu.connectTimeoutMs);
    const down = this.pipes[other(this.forward)];
    t.on('connect', () => {
      clearTimeout(timer);
      if (this.closed) return;
      this.state = 'open';
      this.heldSince = undefined;
      this.emu.emitEvent('connection.opened', { id: this.id, route: this.route.name, from: this.from() });
      this.pipes[this.forward].pump();
      down.pump();
    });
    t.on('data', (d: Buffer) => down.push(d));
    t.on('end', () => {
      down.srcEnded = true;
      down.pump();
      this.maybeDone();
    });
    t.on('error', (e: Error) => {
      clearTimeout(timer);
      if (this.state === 'connecting') this.emu.emitEvent('connection.failed', { id: this.id, route: this.route.name, error: e.message });
    });
    t.on('close', (hadError) => {
      clearTimeout(timer);
      this.onSocketClose(t, hadError);
    });
  }

  /** A socket closed: abruptly (error, RST) resets the other side; an orderly close waits for the other pipe. */
  onSocketClose(s: Socket, hadError: boolean): void {
    if (this.closed) return;
    const pipeFromS = s === this.client ? this.pipes[this.forward] : this.pipes[other(this.forward)];
    if (hadError || !pipeFromS.srcEnded) this.destroy('reset-by-peer', true);
    else this.maybeDone();
  }

  maybeDone(): void {
    if (this.closed) return;
    const a = this.pipes['a-to-b'];
    const b = this.pipes['b-to-a'];
    const clientGone = this.client.destroyed;
    const targetGone = !this.target || this.target.destroyed;
    if ((a.destEnded && b.destEnded) || (clientGone && targetGone)) this.destroy('closed', false);
  }

  destroy(reason: string, rst: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.state = 'closing';
    for (const p of Object.values(this.pipes)) {
      p.clearTimer();
      p.queue = [];
      p.queued = 0;
    }
    for (const s of [this.client, this.target]) {
      if (!s || s.destroyed) continue;
      if (rst && typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else if (rst) s.destroy();
      else s.end(() => s.destroy());
    }
    this.emu.connClosed(this, reason);
  }

  status(): ConnectionStatus {
    return {
      id: this.id,
      route: this.route.name,
      from: this.from(),
      state: this.state,
      openedAt: this.openedAt.toISOString(),
      bytes: { 'a-to-b': this.pipes['a-to-b'].bytes, 'b-to-a': this.pipes['b-to-a'].bytes },
      queued: { 'a-to-b': this.pipes['a-to-b'].queued, 'b-to-a': this.pipes['b-to-a'].queued },
    };
  }
}
