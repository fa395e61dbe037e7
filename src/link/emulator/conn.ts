/**
 * One proxied connection of the link emulator: dialing its target (or being held by a cut), its
 * two pipes (./pipe.ts, one per direction, where latency, bandwidth, loss, stalls and cuts apply),
 * and how it closes.
 */
import { connect, type Socket } from 'node:net';
import { Pipe, type PipeHost } from './pipe.js';
import { other, type Direction, type ConnectionStatus, type LinkEvent, type RouteConfig } from './types.js';

/** What a connection needs from its emulator (LinkEmulator implements it). */
export interface ConnHost extends PipeHost {
  readonly connectTimeoutMs: number;
  anyCut(): boolean;
  connClosed(c: Conn, reason: string): void;
  emitEvent(type: string, details: Record<string, unknown>): LinkEvent;
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
      p.cancelWake();
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
