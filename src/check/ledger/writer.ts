/**
 * The ledger's writer: opens several NBD connections (to one or several endpoints, e.g. both SP
 * ports), writes sequence-stamped blocks, overwrites the same blocks again and again (seeded
 * random choice, bounded by count and time), and records per block every ack and every write
 * whose outcome is unknown. Connections that die are reconnected, round robin over the
 * endpoints, within a bounded time.
 *
 * Ordering rule it keeps, so that "latest acknowledged" is well defined: at most one write per
 * block is outstanding at any time (blocks are serialized; sequence numbers are global and
 * increase, so per block they follow issue order). A block that had a write lost with a dying
 * connection is frozen for the rest of the run: that write may still be sitting in a server that
 * is alive, and re-writing the block could let it land after a newer acknowledged one without
 * any fault of the array. Frozen blocks are what checks pre-fault data after the fault.
 */
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { ignoreOnClose } from '../../errors/index.js';
import { ConnectionLost, NbdClient, NbdReplyError } from '../nbd-client/index.js';
import { mulberry32, type Random } from '../../random/index.js';
import { encodeBlock } from './block-format.js';
import { Ledger, type InitialContent } from './ledger.js';
import { LatencyWindow, latencyQuantiles, type LatencyWindowSummary } from '../latency-window.js';

export interface WriterOptions {
  endpoints: string[];
  connections?: number;
  depth?: number;
  blocks?: number;
  blockSize?: number;
  baseOffset?: number;
  seed?: number;
  runId?: number;
  maxWrites?: number;
  durationMs?: number;
  prefill?: boolean;
  fuaRatio?: number;
  reconnectTimeoutMs?: number;
  connectTimeoutMs?: number;
  opTimeoutMs?: number;
  initial?: InitialContent;
}
export interface WriterStats {
  issued: number;
  acked: number;
  failed: number;
  inflightAtFault: number;
  pendingAtEnd: number;
  reconnects: number;
  gaveUp: number;
  failedByErrno: Record<string, number>;
  frozenBlocks: number;
  notSent?: number;
}
export interface FaultRecord {
  time: string;
  uri: string;
  reason: string;
  inflight: number;
}
export interface WriteReport extends WriterStats {
  runId: number;
  seed: number;
  endpoints: string[];
  connections: number;
  depth: number;
  blocks: number;
  blockSize: number;
  elapsedMs: number;
  faults: FaultRecord[];
  latencyMs: { p50: number | null; p99: number | null; max: number | null };
}

type Resolved = Required<Omit<WriterOptions, 'runId'>> & { runId?: number };

interface Conn {
  id: number;
  client: NbdClient | null;
  connecting: Promise<NbdClient | null> | null;
  endpointIndex: number;
  dead: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Usage:
 *   const w = new LedgerWriter({ endpoints: ['nbd://127.0.0.1:10809/disk'], blocks: 1024, seed: 1 });
 *   const done = w.run();            // resolves with the report when bounds are reached or stop()
 *   await w.until((s) => s.acked >= 500);   // ... inject a fault ...
 *   const report = await done;
 *   const result = await verifyLedger(w.ledger, { endpoints: [...] });
 */
export class LedgerWriter extends EventEmitter {
  readonly runId: number;
  readonly ledger: Ledger;
  readonly stats: WriterStats = { issued: 0, acked: 0, failed: 0, inflightAtFault: 0, pendingAtEnd: 0, reconnects: 0, gaveUp: 0, failedByErrno: {}, frozenBlocks: 0 };
  readonly faults: FaultRecord[] = [];
  private readonly o: Resolved;
  private readonly rand: Random;
  private nextSeq = 1;
  private readonly busy = new Set<number>();
  private stopped = false;
  private conns: Conn[] = [];
  private readonly latencies: number[] = [];
  private readonly window = new LatencyWindow();
  private deadline = 0;

  constructor(opts: WriterOptions) {
    super();
    const o: Resolved = {
      connections: 4,
      depth: 4,
      blocks: 256,
      blockSize: 4096,
      baseOffset: 0,
      seed: 1,
      maxWrites: 20000,
      durationMs: 10_000,
      prefill: true,
      fuaRatio: 0,
      reconnectTimeoutMs: 15_000,
      connectTimeoutMs: 3000,
      opTimeoutMs: 30_000,
      initial: 'zero',
      ...opts,
    };
    if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) throw new Error('LedgerWriter: at least one endpoint');
    this.o = o;
    this.runId = (o.runId ?? randomInt(1, 2 ** 31)) >>> 0;
    this.ledger = new Ledger({ runId: this.runId, blockSize: o.blockSize, baseOffset: o.baseOffset, blocks: o.blocks, initial: o.initial });
    this.ledger.run = { seed: o.seed, endpoints: o.endpoints, startedAt: new Date().toISOString(), complete: false };
    this.rand = mulberry32(o.seed);
  }

  /** Acks and their latency since the previous call (the progress ticks of `--progress-json`). */
  takeLatencyWindow(): LatencyWindowSummary {
    return this.window.take();
  }

  stop(): void {
    this.stopped = true;
    this.emit('progress', this.stats);
  }

  /** Resolves once pred(stats) holds (checked on every settled write), or rejects after timeoutMs. */
  until(pred: (s: WriterStats) => boolean, timeoutMs = 30_000): Promise<void> {
    if (pred(this.stats)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('progress', on);
        reject(new Error(`LedgerWriter.until: timed out after ${timeoutMs} ms (${JSON.stringify(this.stats)})`));
      }, timeoutMs);
      const on = (s: WriterStats) => {
        if (pred(s)) {
          clearTimeout(t);
          this.off('progress', on);
          resolve();
        }
      };
      this.on('progress', on);
    });
  }

  async run(): Promise<WriteReport> {
    const o = this.o;
    const t0 = Date.now();
    this.deadline = t0 + o.durationMs;
    this.conns = Array.from({ length: o.connections }, (_, i) => ({ id: i, client: null, connecting: null, endpointIndex: i % o.endpoints.length, dead: false }));
    try {
      // Open every connection first: a bad endpoint is an error, not a fault.
      await Promise.all(this.conns.map((c) => this.connect(c, o.connectTimeoutMs, false)));
      if (o.prefill) await this.prefill();
      const lanes: Promise<void>[] = [];
      for (const c of this.conns) for (let d = 0; d < o.depth; d++) lanes.push(this.lane(c));
      await Promise.all(lanes);
    } finally {
      for (const c of this.conns) if (c.client) await ignoreOnClose(c.client.close(1000), 'closing a ledger connection');
      for (const e of this.ledger.entries.values()) if (e.uncertain.some((u) => u.state === 'pending')) this.stats.pendingAtEnd++;
      this.ledger.run.complete = true;
    }
    return this.report(Date.now() - t0);
  }

  private report(elapsedMs: number): WriteReport {
    let frozen = 0;
    for (const e of this.ledger.entries.values()) if (e.frozen) frozen++;
    this.stats.frozenBlocks = frozen;
    return {
      runId: this.runId,
      seed: this.o.seed,
      endpoints: this.o.endpoints,
      connections: this.o.connections,
      depth: this.o.depth,
      blocks: this.o.blocks,
      blockSize: this.o.blockSize,
      elapsedMs,
      ...this.stats,
      faults: this.faults,
      latencyMs: latencyQuantiles([...this.latencies]),
    };
  }

  /** Makes sure `c` has a live client; tries endpoints round robin until the timeout. */
  private async connect(c: Conn, timeoutMs: number, isReconnect = true): Promise<NbdClient | null> {
    if (c.client && !c.client.closed) return c.client;
    if (c.dead) return null;
    if (c.connecting) return c.connecting;
    c.connecting = (async () => {
      const o = this.o;
      const give = Date.now() + timeoutMs;
      let lastErr: unknown = null;
      let tries = 0;
      while (Date.now() < give && (!this.stopped || !isReconnect)) {
        const uri = o.endpoints[c.endpointIndex % o.endpoints.length]!;
        try {
          c.client = await NbdClient.connect(uri, { timeoutMs: Math.min(o.connectTimeoutMs, Math.max(200, give - Date.now())) });
          if (isReconnect) {
            this.stats.reconnects++;
            this.emit('reconnect', { conn: c.id, uri });
          }
          return c.client;
        } catch (e) {
          lastErr = e;
          tries++;
          if (isReconnect) c.endpointIndex++;
          if (!isReconnect && tries >= 3) break;
          await sleep(Math.min(50 * tries, 250));
        }
      }
      if (!isReconnect) throw lastErr ?? new ConnectionLost('connect failed');
      c.dead = true;
      this.stats.gaveUp++;
      return null;
    })().finally(() => {
      c.connecting = null;
    });
    return c.connecting;
  }

  private async prefill(): Promise<void> {
    const o = this.o;
    let next = 0;
    const lane = async (c: Conn) => {
      while (!this.stopped && !c.dead && next < o.blocks && this.stats.issued < o.maxWrites && Date.now() < this.deadline) {
        const b = next++;
        this.busy.add(b);
        await this.writeOne(c, b);
      }
    };
    const lanes: Promise<void>[] = [];
    for (const c of this.conns) for (let d = 0; d < o.depth; d++) lanes.push(lane(c));
    await Promise.all(lanes);
  }

  private pickBlock(): number {
    for (let i = 0; i < 16; i++) {
      const b = Math.floor(this.rand() * this.o.blocks);
      if (this.busy.has(b)) continue;
      if (this.ledger.entries.get(b)?.frozen) continue;
      return b;
    }
    return -1;
  }

  private async lane(c: Conn): Promise<void> {
    const o = this.o;
    while (!this.stopped && !c.dead && this.stats.issued < o.maxWrites && Date.now() < this.deadline) {
      const b = this.pickBlock();
      if (b < 0) {
        await sleep(1);
        continue;
      }
      this.busy.add(b);
      await this.writeOne(c, b);
    }
  }

  /** One write of block `b` (already marked busy) on connection `c`; never throws. */
  private async writeOne(c: Conn, b: number): Promise<void> {
    const o = this.o;
    try {
      const client = await this.connect(c, o.reconnectTimeoutMs);
      if (!client) return;
      const seq = this.nextSeq++;
      const data = encodeBlock(this.runId, c.id, b, seq, o.blockSize);
      const fua = o.fuaRatio > 0 && this.rand() < o.fuaRatio;
      this.ledger.issued(b, seq, c.id);
      this.stats.issued++;
      const t = performance.now();
      let timer: NodeJS.Timeout | undefined;
      try {
        await Promise.race([
          client.write(this.ledger.offsetOf(b), data, { fua }),
          new Promise((_, rej) => {
            timer = setTimeout(() => {
              // A reply that never comes: treat the connection as dead (its writes are in flight).
              client.destroy(`no reply within ${o.opTimeoutMs} ms`);
              rej(new ConnectionLost('op timeout'));
            }, o.opTimeoutMs);
          }),
        ]);
        const ms = performance.now() - t;
        this.latencies.push(ms);
        this.window.add(ms);
        this.ledger.settle(b, seq, 'acked');
        this.stats.acked++;
      } catch (e) {
        if (e instanceof ConnectionLost && e.notSent) {
          // The connection was already gone: nothing reached the wire.
          this.ledger.settle(b, seq, 'failed');
          this.stats.notSent = (this.stats.notSent ?? 0) + 1;
        } else if (e instanceof NbdReplyError) {
          this.ledger.settle(b, seq, 'failed');
          this.stats.failed++;
          this.stats.failedByErrno[e.errno] = (this.stats.failedByErrno[e.errno] ?? 0) + 1;
        } else {
          this.ledger.settle(b, seq, 'inflight');
          this.stats.inflightAtFault++;
          this.noteFault(client, e as Error);
        }
      } finally {
        clearTimeout(timer);
      }
    } finally {
      this.busy.delete(b);
      this.emit('progress', this.stats);
    }
  }

  private noteFault(client: NbdClient, err: Error): void {
    if (client.faultNoted) {
      client.faultNoted.inflight++;
      return;
    }
    client.faultNoted = { time: new Date().toISOString(), uri: client.uri, reason: client.closeReason || err.message, inflight: 1 };
    this.faults.push(client.faultNoted);
    this.emit('fault', client.faultNoted);
  }
}
