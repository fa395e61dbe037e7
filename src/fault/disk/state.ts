/**
 * The live disk fault of one LUN in one process: its spec (or none), the seeded generator of
 * its draws, and its counters. The layer (./layer.ts) asks it per request; the control plane
 * sets and clears it without rebuilding the stack. A process keeps one per LUN in a
 * DiskFaultTable.
 */
import { mulberry32 } from '../../random/index.js';
import { decide, DISK_OPS, type DiskFaultDecision, type DiskFaultSpec, type DiskOp } from './spec.js';

/** The seeded generator of a fault's draws. */
export const seededRandom = mulberry32;

export type OpCounts = Record<DiskOp, number>;

export interface DiskFaultCounters {
  /** Requests failed by the fault, per op. */
  injected: OpCounts;
  /** Requests the fault made wait, per op. */
  delayed: OpCounts;
}

export interface DiskFaultView {
  lun: number;
  spec: DiskFaultSpec;
  counters: DiskFaultCounters;
  since: string;
}

const zeroCounts = (): OpCounts => Object.fromEntries(DISK_OPS.map((op) => [op, 0])) as OpCounts;

export class DiskFaultState {
  private current: DiskFaultSpec | undefined;
  private draw: () => number = seededRandom(1);
  private counts: DiskFaultCounters = { injected: zeroCounts(), delayed: zeroCounts() };
  private since = '';

  constructor(readonly lun: number) {}

  get spec(): DiskFaultSpec | undefined {
    return this.current;
  }

  /** Puts a (validated) fault in place: the generator restarts at its seed, the counters at 0. */
  set(spec: DiskFaultSpec): void {
    this.current = spec;
    this.draw = seededRandom(spec.seed);
    this.counts = { injected: zeroCounts(), delayed: zeroCounts() };
    this.since = new Date().toISOString();
  }

  /** Removes the fault; returns what it was and what it did (undefined: there was none). */
  clear(): DiskFaultView | undefined {
    const v = this.view();
    this.current = undefined;
    return v;
  }

  view(): DiskFaultView | undefined {
    if (!this.current) return undefined;
    return { lun: this.lun, spec: this.current, counters: { injected: { ...this.counts.injected }, delayed: { ...this.counts.delayed } }, since: this.since };
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

  /** Forgets a deleted LUN. */
  remove(lun: number): void {
    this.states.get(lun)?.clear();
    this.states.delete(lun);
  }

  /** The active faults, by LUN id. */
  list(): DiskFaultView[] {
    return [...this.states.values()].map((s) => s.view()).filter((v): v is DiskFaultView => v !== undefined).sort((a, b) => a.lun - b.lun);
  }
}

/** Adds counters (a two-SP array's LUN is faulted in both SP processes). */
export function sumCounters(cs: DiskFaultCounters[]): DiskFaultCounters {
  const out: DiskFaultCounters = { injected: zeroCounts(), delayed: zeroCounts() };
  for (const c of cs) {
    for (const op of DISK_OPS) {
      out.injected[op] += c.injected[op] ?? 0;
      out.delayed[op] += c.delayed[op] ?? 0;
    }
  }
  return out;
}

export function totalOf(counts: OpCounts): number {
  return DISK_OPS.reduce((n, op) => n + (counts[op] ?? 0), 0);
}
