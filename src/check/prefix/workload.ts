/**
 * The dependent-write workload of a consistency group: one NBD connection per LUN, `depth` writes
 * in flight on each, every write to a block never written before in this run, and for every
 * write the number of writes acknowledged when it was issued. A host application that waits for
 * one write before issuing the next (a database's log before its data) makes exactly such
 * dependencies; a copy of the group that holds a write must hold everything it depended on.
 */
import { randomInt } from 'node:crypto';
import { NbdClient, parseNbdUri } from '../nbd-client/index.js';
import { xorshift32, type Random } from '../../random/index.js';
import { PREFIX_BLOCK, type PrefixState, type PrefixWrite } from './state.js';
import { LatencyWindow, type LatencyWindowSummary } from '../latency-window.js';

/** Block content of write k: a header and bytes that depend on (run, k) only. */
export function prefixBlock(run: number, k: number, lun: number): Buffer {
  const b = Buffer.allocUnsafe(PREFIX_BLOCK);
  b.write('PFX1', 0, 'latin1');
  b.writeUInt32LE(run, 4);
  b.writeUInt32LE(k, 8);
  b.writeUInt32LE(lun, 12);
  const r = xorshift32(run * 7919 + k);
  for (let i = 16; i < PREFIX_BLOCK; i += 4) b.writeUInt32LE((r() * 4294967296) >>> 0, i);
  return b;
}

export interface PrefixWriterOptions {
  /** stamp of this run (default random) */
  run?: number;
  /** blocks per LUN; each is written at most once */
  blocks: number;
  /** block order source; default xorshift32(seed) */
  random?: Random;
  seed?: number;
  /** writes in flight per LUN (default 4) */
  depth?: number;
  /** stop issuing after this many writes in all (default: no bound but the blocks) */
  maxWrites?: number;
  connectTimeoutMs?: number;
}

export interface PrefixStats {
  issued: number;
  acked: number;
  /** writes whose connection died or that got an error reply: outcome unknown */
  unknown: number;
  /** connections that closed (the array died, or the link) */
  lostConnections: number;
}

export class PrefixWriter {
  readonly run: number;
  readonly writes: PrefixWrite[] = [];
  /** write indexes in acknowledgement order */
  readonly ackOrder: number[] = [];
  readonly stats: PrefixStats = { issued: 0, acked: 0, unknown: 0, lostConnections: 0 };
  private stopped = false;
  private running: Promise<unknown>[] = [];
  private clients: NbdClient[] = [];
  private uris: string[] = [];
  private startedAt = 0;
  private readonly random: Random;
  private readonly depth: number;
  private readonly window = new LatencyWindow();

  constructor(private readonly o: PrefixWriterOptions) {
    if (!Number.isInteger(o.blocks) || o.blocks <= 0) throw new Error(`blocks must be a positive integer, got ${o.blocks}`);
    this.run = (o.run ?? randomInt(1, 2 ** 31)) >>> 0;
    this.random = o.random ?? xorshift32(o.seed ?? 1);
    this.depth = o.depth ?? 4;
  }

  /** Connects to every LUN (rejects if one cannot be reached) and starts writing. */
  async start(uris: string[]): Promise<void> {
    for (const u of uris) parseNbdUri(u);
    this.uris = uris;
    this.clients = await Promise.all(uris.map((u) => NbdClient.connect(u, { timeoutMs: this.o.connectTimeoutMs ?? 5000 })));
    this.startedAt = Date.now();
    const free = uris.map(() => Array.from({ length: this.o.blocks }, (_, i) => i));
    for (const f of free)
      for (let i = f.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [f[i], f[j]] = [f[j]!, f[i]!];
      }
    this.running = this.clients.map((c, lun) => this.loop(c, lun, free[lun]!));
  }

  /** Export sizes in bytes, once started. */
  get sizes(): number[] {
    return this.clients.map((c) => c.size);
  }

  /** Resolves when every LUN's loop has ended (stopped, connection lost, or out of fresh blocks). */
  async finished(): Promise<void> {
    await Promise.allSettled(this.running);
  }

  private async loop(c: NbdClient, lun: number, free: number[]): Promise<void> {
    const inflight = new Set<Promise<void>>();
    while (!this.stopped && !c.closed) {
      while (inflight.size >= this.depth && !this.stopped) await Promise.race(inflight);
      if (this.stopped || c.closed) break;
      if (this.writes.length >= (this.o.maxWrites ?? Infinity)) break;
      const block = free.pop();
      if (block === undefined) break;
      const w: PrefixWrite = { k: this.writes.length, lun, block, ackedAt: null, dependsOn: this.ackOrder.length };
      this.writes.push(w);
      this.stats.issued++;
      const data = prefixBlock(this.run, w.k, lun);
      // Issue time lives in the closure the ack needs anyway: no extra object per write.
      const issuedAt = performance.now();
      const p = c.write(block * PREFIX_BLOCK, data).then(
        () => {
          this.window.add(performance.now() - issuedAt);
          w.ackedAt = Date.now();
          this.ackOrder.push(w.k);
          this.stats.acked++;
        },
        () => {
          this.stats.unknown++;
        },
      );
      const tracked: Promise<void> = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await Promise.allSettled([...inflight]);
    if (c.closed && !this.stopped) this.stats.lostConnections++;
  }

  /** Acks and their latency (issue to reply) since the previous call (the progress ticks of `--progress-json`). */
  takeLatencyWindow(): LatencyWindowSummary {
    return this.window.take();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.running);
    for (const c of this.clients) c.destroy();
  }

  /** What a verify needs (see state.ts); `complete` once stopped. */
  state(seed: number | null = this.o.seed ?? null): PrefixState {
    return {
      run: this.run,
      blocks: this.o.blocks,
      luns: this.uris.map((uri) => ({ uri, name: parseNbdUri(uri).name })),
      seed,
      startedAt: this.startedAt,
      savedAt: Date.now(),
      complete: this.stopped,
      writes: this.writes.map((w) => ({ ...w })),
      ackOrder: [...this.ackOrder],
    };
  }
}
