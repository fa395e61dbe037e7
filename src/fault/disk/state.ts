/**
 * The live disk fault of one LUN in one process: its spec (or none), the seeded generator of
 * its draws, its counters, and the LUN's volatile disk (./volatile.ts: the overlay of writes held
 * by lose-unflushed, shared by every layer over the image). The layer (./layer.ts) asks it per
 * request; the control plane sets and clears it without rebuilding the stack. A process keeps
 * one per LUN in a DiskFaultTable.
 */
import type { BlockDevice } from '../../block/index.js';
import { mulberry32 } from '../../random/index.js';
import { decide, DEFAULT_MAX_UNFLUSHED, DISK_OPS, type DiskFaultDecision, type DiskFaultSpec, type DiskOp } from './spec.js';
import { VolatileDisk, zeroUnflushed, type UnflushedCounters, type VolatileMode } from './volatile.js';

/** The seeded generator of a fault's draws. */
export const seededRandom = mulberry32;

export type OpCounts = Record<DiskOp, number>;

export interface DiskFaultCounters {
  /** Requests failed by the fault, per op. */
  injected: OpCounts;
  /** Requests the fault made wait, per op. */
  delayed: OpCounts;
  /** Lose-unflushed: writes held, bytes written down. */
  unflushed: UnflushedCounters;
}

export interface DiskFaultView {
  lun: number;
  spec: DiskFaultSpec;
  counters: DiskFaultCounters;
  /** Bytes held in the overlay now, in no image yet: what a crash would lose. */
  unflushedBytes: number;
  since: string;
}

const zeroCounts = (): OpCounts => Object.fromEntries(DISK_OPS.map((op) => [op, 0])) as OpCounts;

export class DiskFaultState {
  private current: DiskFaultSpec | undefined;
  private draw: () => number = seededRandom(1);
  private counts: Omit<DiskFaultCounters, 'unflushed'> = { injected: zeroCounts(), delayed: zeroCounts() };
  private since = '';
  private disk: VolatileDisk | undefined;

  constructor(readonly lun: number) {}

  get spec(): DiskFaultSpec | undefined {
    return this.current;
  }

  /**
   * The LUN's volatile disk over its image, made by the first layer and shared by the others (a
   * single-process array has one layer on the host path and one on the mirror driver's).
   */
  volatileOver(lower: BlockDevice): VolatileDisk {
    if (this.disk && this.disk.lower !== lower) {
      if (!this.disk.idle) throw new Error(`LUN ${this.lun}: a disk fault layer over another device while writes are held over the first`);
      this.disk = undefined;
    }
    return (this.disk ??= new VolatileDisk(lower, () => this.mode()));
  }

  private mode(): VolatileMode {
    const s = this.current;
    return { hold: s?.loseUnflushed === true, maxBytes: s?.maxUnflushed ?? DEFAULT_MAX_UNFLUSHED };
  }

  /**
   * Puts a (validated) fault in place: the generator restarts at its seed, the counters at 0.
   * What the overlay holds stays (a new fault that still loses unflushed writes keeps holding
   * them; otherwise the caller writes them down: DiskFaultTable.settle).
   */
  set(spec: DiskFaultSpec): void {
    this.current = spec;
    this.draw = seededRandom(spec.seed);
    this.counts = { injected: zeroCounts(), delayed: zeroCounts() };
    this.disk?.resetCounters();
    this.since = new Date().toISOString();
  }

  /** Writes whatever the overlay holds down and flushes below (nothing held: nothing to do). */
  async writeDown(): Promise<void> {
    if (this.disk && !this.disk.idle) await this.disk.flush();
  }

  /** Forgets what the overlay holds (the LUN and its image are gone). */
  drop(): void {
    this.disk?.drop();
  }

  /** Removes the fault; returns what it was and what it did (undefined: there was none). */
  clear(): DiskFaultView | undefined {
    const v = this.view();
    this.current = undefined;
    return v;
  }

  view(): DiskFaultView | undefined {
    if (!this.current) return undefined;
    const counters = { injected: { ...this.counts.injected }, delayed: { ...this.counts.delayed }, unflushed: { ...(this.disk?.counters ?? zeroUnflushed()) } };
    return { lun: this.lun, spec: this.current, counters, unflushedBytes: this.disk?.unflushedBytes ?? 0, since: this.since };
  }

  /** The decision for one request (draws twice, counts what it decided); undefined: no fault. */
  next(op: DiskOp, offset: number, length: number): DiskFaultDecision | undefined {
    const spec = this.current;
    if (!spec) return undefined;
    const d = decide(spec, op, offset, length, { error: this.draw(), jitter: this.draw() });
    if (d.fail) this.counts.injected[op]++;
    if (d.delayMs > 0) this.counts.delayed[op]++;
    return d;
  }
}

/** Every LUN's disk fault in one process, by LUN id. */
export class DiskFaultTable {
  private readonly states = new Map<number, DiskFaultState>();

  /** The LUN's state (made on first use; the layer holds it for the LUN's life). */
  state(lun: number): DiskFaultState {
    let s = this.states.get(lun);
    if (!s) this.states.set(lun, (s = new DiskFaultState(lun)));
    return s;
  }

  set(lun: number, spec: DiskFaultSpec): DiskFaultView {
    const s = this.state(lun);
    s.set(spec);
    return s.view()!;
  }

  clear(lun: number): DiskFaultView | undefined {
    return this.states.get(lun)?.clear();
  }

  /**
   * After a set or a clear: writes the LUN's overlay down unless its fault (still) loses
   * unflushed writes, so turning the mode off or clearing the fault loses nothing.
   */
  async settle(lun: number): Promise<void> {
    const s = this.states.get(lun);
    if (s && !s.spec?.loseUnflushed) await s.writeDown();
  }

  /** Writes every LUN's overlay down (an orderly stop loses nothing; only a crash does). */
  async writeDownAll(): Promise<void> {
    await Promise.all([...this.states.values()].map((s) => s.writeDown()));
  }

  /** Forgets a deleted LUN (and what its overlay held). */
  remove(lun: number): void {
    this.states.get(lun)?.clear();
    this.states.get(lun)?.drop();
    this.states.delete(lun);
  }

  /** The active faults, by LUN id. */
  list(): DiskFaultView[] {
    return [...this.states.values()].map((s) => s.view()).filter((v): v is DiskFaultView => v !== undefined).sort((a, b) => a.lun - b.lun);
  }
}

/** Adds counters (a two-SP array's LUN is faulted in both SP processes). */
export function sumCounters(cs: DiskFaultCounters[]): DiskFaultCounters {
  const out: DiskFaultCounters = { injected: zeroCounts(), delayed: zeroCounts(), unflushed: zeroUnflushed() };
  for (const c of cs) {
    for (const op of DISK_OPS) {
      out.injected[op] += c.injected[op] ?? 0;
      out.delayed[op] += c.delayed[op] ?? 0;
    }
    for (const k of ['held', 'flushedBytes', 'destagedBytes'] as const) out.unflushed[k] += c.unflushed?.[k] ?? 0;
  }
  return out;
}

export function totalOf(counts: OpCounts): number {
  return DISK_OPS.reduce((n, op) => n + (counts[op] ?? 0), 0);
}
