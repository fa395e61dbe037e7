// A hand-written GroupControl that records every call, for tests of the API layer and the CLI.
import type { GroupControl, GroupPerfRecords, GroupView } from '../../src/replication/group/index.js';
import { DEFAULT_GROUP_ATTRIBUTES, GroupError, newGroupRecord, withDefaults, type GroupMetrics } from '../../src/replication/group/index.js';

export interface Call {
  op: string;
  args: unknown[];
}

export function metrics(over: Partial<GroupMetrics> = {}): GroupMetrics {
  return {
    time: '2026-01-01T00:00:00.000Z',
    netkbps: 210.5,
    dataKbps: 200,
    entriesPerSec: 12,
    entriesWaiting: 3,
    writelogBytes: 12288,
    pctwl: 0.02,
    pctcpu: 1.5,
    oldestEntryAgeMs: 250,
    nextSeq: 101,
    ackedThrough: 97,
    writesDelayed: 0,
    delayedMs: 0,
    senderSleepMs: 15,
    ackDelayMs: 0,
    ...over,
  };
}

export function groupView(name = 'g0', over: Partial<GroupView> = {}): GroupView {
  const record = newGroupRecord(`${name}-0a1b2c3d`, name, ['m1-id', 'm2-id'], structuredClone(DEFAULT_GROUP_ATTRIBUTES));
  return {
    record,
    role: 'primary',
    members: [
      { mirrorId: 'm1-id', name: 'm1', lun: 1, secondaries: ['bravo'] },
      { mirrorId: 'm2-id', name: 'm2', lun: 2, secondaries: ['bravo'] },
    ],
    senders: [{ array: 'bravo', state: 'running', ackedThrough: 97 }],
    receiver: null,
    metrics: metrics(),
    incoherent: null,
    ...over,
  };
}

/** The same group as a secondary array sees it: a receiver, no sender. */
export function secondaryView(name = 'g0'): GroupView {
  return groupView(name, { role: 'secondary', senders: [], receiver: { nextExpected: 98, applied: 97, batches: 9 }, metrics: null });
}

/** Records calls; `fail` makes the next call throw that error. */
export class FakeGroups implements GroupControl {
  calls: Call[] = [];
  fail: Error | undefined;
  views = new Map<string, GroupView>([['g0', groupView('g0')]]);
  /** what refresh leaves in record.refresh, and how getGroup advances it */
  refreshSteps: Array<GroupView['record']['refresh']> = [];

  private rec(op: string, ...args: unknown[]): void {
    this.calls.push({ op, args });
    const f = this.fail;
    if (f) {
      this.fail = undefined;
      throw f;
    }
  }
  private one(ref: string): GroupView {
    const v = this.views.get(ref) ?? [...this.views.values()].find((x) => x.record.groupId === ref);
    if (!v) throw new GroupError('not-found', `array alpha has no consistency group ${JSON.stringify(ref)}`);
    return v;
  }
  list(): GroupView[] {
    this.rec('list');
    return [...this.views.values()];
  }
  get(ref: string): GroupView {
    this.rec('get', ref);
    const v = this.one(ref);
    if (this.refreshSteps.length) v.record.refresh = this.refreshSteps.shift()!;
    return v;
  }
  async create(p: Parameters<GroupControl['create']>[0]): Promise<GroupView> {
    this.rec('create', p);
    if (this.views.has(p.name)) throw new GroupError('exists', `array alpha already has a group named ${p.name}`);
    const v = groupView(p.name);
    Object.assign(v.record, withDefaults(p.attributes ?? {}));
    this.views.set(p.name, v);
    return v;
  }
  async setMode(ref: string, mode: Parameters<GroupControl['setMode']>[1], nearSync?: Parameters<GroupControl['setMode']>[2]): Promise<GroupView> {
    this.rec('setMode', ref, mode, nearSync);
    const v = this.one(ref);
    v.record.mode = mode;
    return v;
  }
  async setAttributes(ref: string, p: Parameters<GroupControl['setAttributes']>[1]): Promise<GroupView> {
    this.rec('setAttributes', ref, p);
    return this.one(ref);
  }
  async pause(ref: string, paused: boolean): Promise<GroupView> {
    this.rec('pause', ref, paused);
    return this.one(ref);
  }
  async bypass(ref: string, on: boolean): Promise<GroupView> {
    this.rec('bypass', ref, on);
    return this.one(ref);
  }
  async refresh(ref: string): Promise<GroupView> {
    this.rec('refresh', ref);
    const v = this.one(ref);
    v.record.refresh = { running: true, bytesDone: 0, bytesTotal: 8 << 20 };
    return v;
  }
  async backfresh(ref: string, p?: { from?: string }): Promise<GroupView> {
    this.rec('backfresh', ref, p);
    return this.one(ref);
  }
  async promote(ref: string, p?: { force?: boolean }): Promise<GroupView> {
    this.rec('promote', ref, p);
    return this.one(ref);
  }
  info(ref: string): { text: string; view: GroupView } {
    this.rec('info', ref);
    const v = this.one(ref);
    return { text: `group ${v.record.name}  (${v.record.mode})\n  state:     replicating\n`, view: v };
  }
  /** what perf answers (records at or after sinceMs of these) */
  perfRecords: GroupMetrics[] = [metrics()];
  async perf(ref: string, opts: { sinceMs?: number } = {}): Promise<GroupPerfRecords> {
    this.rec('perf', ref, opts);
    const v = this.one(ref);
    if (v.role !== 'primary') throw new GroupError('not-primary', `array alpha is not the primary of group ${v.record.name}`);
    const since = opts.sinceMs;
    return {
      group: v.record.name,
      groupId: v.record.groupId,
      perfEveryMs: v.record.perfEveryMs,
      since: since === undefined ? null : new Date(since).toISOString(),
      records: this.perfRecords.filter((m) => since === undefined || Date.parse(m.time) >= since),
    };
  }
  async delete(ref: string): Promise<void> {
    this.rec('delete', ref);
    const v = this.one(ref);
    this.views.delete(v.record.name);
  }
}
