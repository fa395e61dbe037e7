/**
 * A LUN's disk fault as the control plane runs it: validates (every problem listed, nothing
 * changed), finds the LUN, applies the fault where the LUN's image is served (this process's
 * DiskFaultTable, or both SP processes through the chassis), publishes `fault.disk-set` and
 * `fault.disk-cleared`, and reports the active faults with their counters (for `status`). A set
 * that turns lose-unflushed off, and a clear, answer only once what was held is written down.
 */
import { ArrayError, type StorageArray } from '../array/index.js';
import type { SpName } from '../array/sp/index.js';
import { describeDiskFault, sumCounters, totalOf, validateDiskFault, type DiskFaultCounters, type DiskFaultSpec, type DiskFaultTable, type DiskFaultView } from '../fault/index.js';

/** One active disk fault as the API shows it. */
export interface DiskFaultReport {
  lun: number;
  name: string;
  spec: DiskFaultSpec;
  /** The spec in one line for people. */
  summary: string;
  since?: string;
  /** Counts since the fault was set (summed over the SPs of a two-SP array). */
  counters: DiskFaultCounters;
  /** Lose-unflushed: bytes held in memory now, in no image yet (what a crash would lose). */
  unflushedBytes: number;
  injected: number;
  delayed: number;
  /** Two-SP arrays: each serving SP's own counters. */
  sps?: { sp: string; counters: DiskFaultCounters; unflushedBytes: number }[];
}

/** Where a LUN's disk fault is applied. */
export interface DiskFaultBackend {
  set(lun: number, spec: DiskFaultSpec): Promise<void>;
  clear(lun: number): Promise<void>;
  /** The active faults with their counters. */
  list(): Promise<Omit<DiskFaultReport, 'name' | 'summary' | 'injected' | 'delayed'>[]>;
}

/** A single-process array: the layer over each image asks this process's table. */
export function localDiskFaults(table: DiskFaultTable): DiskFaultBackend {
  return {
    set: async (lun, spec) => {
      table.set(lun, spec);
      await table.settle(lun);
    },
    clear: async (lun) => {
      table.clear(lun);
      await table.settle(lun);
    },
    list: async () => table.list().map((v) => ({ lun: v.lun, spec: v.spec, since: v.since, counters: v.counters, unflushedBytes: v.unflushedBytes })),
  };
}

/** What the chassis of a two-SP array offers for disk faults (src/array/chassis Chassis). */
export interface ChassisDiskFaults {
  setDiskFault(lun: number, spec: DiskFaultSpec | null): Promise<void>;
  diskFaultsBySp(): Promise<{ sp: SpName; faults: DiskFaultView[] }[]>;
  diskFaultSpecs(): Map<number, DiskFaultSpec>;
}

/** A two-SP array: the chassis gives the fault to both SP processes and collects their counters. */
export function chassisDiskFaults(ch: ChassisDiskFaults): DiskFaultBackend {
  return {
    set: (lun, spec) => ch.setDiskFault(lun, spec),
    clear: (lun) => ch.setDiskFault(lun, null),
    list: async () => {
      const bySp = await ch.diskFaultsBySp();
      return [...ch.diskFaultSpecs()]
        .sort(([a], [b]) => a - b)
        .map(([lun, spec]) => {
          const sps = bySp.flatMap((s) => s.faults.filter((f) => f.lun === lun).map((f) => ({ sp: s.sp, counters: f.counters, unflushedBytes: f.unflushedBytes ?? 0, since: f.since })));
          const unflushedBytes = sps.reduce((n, s) => n + s.unflushedBytes, 0);
          return { lun, spec, since: sps[0]?.since, counters: sumCounters(sps.map((s) => s.counters)), unflushedBytes, sps: sps.map(({ since: _since, ...s }) => s) };
        });
    },
  };
}

export class DiskFaultControl {
  constructor(
    private readonly array: StorageArray,
    private readonly backend: DiskFaultBackend,
  ) {}

  private lun(ref: string): { id: number; name: string; size: number } {
    const l = this.array.getLun(ref);
    if (!l) throw new ArrayError('not-found', `no LUN ${JSON.stringify(ref)} in array ${this.array.name}`);
    return l;
  }

  /** Validates `input` (a DiskFaultInput) against the LUN and puts it in place of any fault it had. */
  async set(ref: string, input: unknown): Promise<DiskFaultReport> {
    const l = this.lun(ref);
    const v = validateDiskFault(input, l.size);
    if (!v.spec) throw new ArrayError('invalid-argument', `bad disk fault for LUN ${l.name}: ${v.problems.join('; ')}`);
    await this.backend.set(l.id, v.spec);
    const s = v.spec;
    this.array.publish('fault.disk-set', { lun: l.id, name: l.name, errors: s.errors, rate: s.rate, errno: s.errno, range: s.range, delay: s.delay, seed: s.seed, loseUnflushed: s.loseUnflushed, maxUnflushed: s.maxUnflushed });
    return (await this.show(ref))!;
  }

  /**
   * Removes the LUN's fault; answers what it was and did (null: it had none, nothing changed).
   * Its `unflushedBytes` is what the clear wrote down before answering.
   */
  async clear(ref: string): Promise<{ lun: number; name: string; cleared: DiskFaultReport | null }> {
    const l = this.lun(ref);
    const was = await this.show(ref);
    if (!was) return { lun: l.id, name: l.name, cleared: null };
    await this.backend.clear(l.id);
    this.array.publish('fault.disk-cleared', { lun: l.id, name: l.name, injected: was.injected, delayed: was.delayed, unflushedBytes: was.unflushedBytes });
    return { lun: l.id, name: l.name, cleared: was };
  }

  async show(ref: string): Promise<DiskFaultReport | null> {
    const l = this.lun(ref);
    return (await this.list()).find((r) => r.lun === l.id) ?? null;
  }

  async list(): Promise<DiskFaultReport[]> {
    return (await this.backend.list()).map((f) => ({
      ...f,
      name: this.array.getLun(f.lun)?.name ?? String(f.lun),
      summary: describeDiskFault(f.spec),
      injected: totalOf(f.counters.injected),
      delayed: totalOf(f.counters.delayed),
    }));
  }
}
