/**
 * GroupManager: the consistency groups inside the mirror driver. It keeps the group records
 * (saved twice, pushed to the secondary arrays) and every group's state (./state.ts: every
 * change through `apply`, invariants asserted after it), routes the members' host writes by
 * mode, and hands the verbs to their parts: ./admin.ts, ./copy.ts, ./bypass.ts,
 * ./primary-side.ts, ./role.ts, ./receive.ts.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { APPLY_FLAG_TRIM } from '../../link/protocol/index.js';
import * as admin from './admin.js';
import { enterBypass, enterBypassLater } from './bypass.js';
import type { GroupControl, GroupPerfRecords, GroupSnapshotResult, GroupView, SettableGroupAttributes } from './control.js';
import { backfresh, refresh } from './copy.js';
import { newEntry, openStore, type GroupContext, type GroupEntry } from './entry.js';
import type { GroupHost } from './host.js';
import { assertGroup } from './invariants.js';
import { GroupOverflow, type PrimaryGroup } from './primary-group.js';
import { memberGroup, snapshotGroup, type MemberGroup } from './pit.js';
import { perfPath, perfRecordsSince } from './perf.js';
import { closePrimary } from './primary-side.js';
import { groupLinkHandlers } from './receive.js';
import { GroupError, parseGroupRecord } from './record.js';
import { settleRole } from './role.js';
import { applyGroupOp, inBypass, writeRoute, type GroupEvent, type GroupOp } from './state.js';
import type { GroupAttributes, GroupMode, GroupRecord } from './types.js';
import { groupInfo, groupView } from './view.js';

export class GroupManager implements GroupControl, GroupContext {
  readonly groups = new Map<string, GroupEntry>();

  constructor(readonly host: GroupHost) {}

  get dirRoot(): string {
    return join(this.host.root, 'groups');
  }

  event(type: string, details: Record<string, unknown>): void {
    this.host.publish(`group.${type}`, details);
  }

  publish(g: GroupEntry, events: GroupEvent[]): void {
    for (const e of events) this.event(e.type, { groupId: g.record.groupId, ...e.details });
  }

  apply(g: GroupEntry, ...ops: GroupOp[]): GroupEvent[] {
    const events: GroupEvent[] = [];
    let state = g.state;
    for (const op of ops) {
      const r = applyGroupOp(state, op);
      state = r.state;
      events.push(...r.events);
    }
    g.state = state;
    assertGroup(g.record, g.state);
    return events;
  }

  // ---- loading ----

  async load(): Promise<void> {
    await fsp.mkdir(this.dirRoot, { recursive: true });
    for (const name of await fsp.readdir(this.dirRoot)) {
      const dir = join(this.dirRoot, name);
      if (!(await fsp.stat(dir)).isDirectory()) continue;
      const store = openStore(dir, this.host);
      const loaded = await store.load();
      if (!loaded.data) continue;
      const g = newEntry(parseGroupRecord(loaded.data), dir, store);
      this.groups.set(g.record.groupId, g);
      await settleRole(this, g, 'load');
    }
  }

  // ---- record changes ----

  exclusive<T>(g: GroupEntry, fn: () => Promise<T>): Promise<T> {
    return g.serial.run(fn);
  }

  async save(g: GroupEntry, change: (r: GroupRecord) => void, op?: GroupOp): Promise<GroupEvent[]> {
    const next: GroupRecord = structuredClone(g.record);
    change(next);
    next.generation = g.record.generation + 1;
    next.epoch = this.epochOf(next);
    await g.store.save(next);
    // The state decides bypass: one entered or left (in memory) while this save was on its way stays.
    if (next.bypass.on !== inBypass(g.state)) next.bypass = g.record.bypass;
    g.record = next;
    if (g.primary) g.primary.record = next;
    if (g.receiver) g.receiver.record = next;
    const events = op ? this.apply(g, op) : [];
    assertGroup(g.record, g.state);
    void this.push(g);
    return events;
  }

  epochOf(r: GroupRecord): number {
    return Math.max(0, ...r.members.map((m) => this.host.member(m)?.epoch ?? 0));
  }

  async push(g: GroupEntry): Promise<void> {
    for (const s of g.primary?.senders.values() ?? []) {
      const c = s.client;
      // A record that does not arrive now arrives with the sender's next hello.
      if (c?.connected) await c.request('group-db', { groupId: g.record.groupId, record: g.record as unknown as Record<string, unknown> }).catch((e: unknown) => this.event('push-failed', { groupId: g.record.groupId, array: s.route.array, generation: g.record.generation, error: (e as Error).message }));
    }
  }

  // ---- the data path ----

  groupOf(mirrorId: string): GroupEntry | undefined {
    for (const g of this.groups.values()) if (g.record.members.includes(mirrorId)) return g;
    return undefined;
  }

  /**
   * How a host write of this member goes: 'journal' (asynchronous modes), 'bypass' (every
   * secondary only gets a fracture-log mark), or 'direct' (synchronous, the mirror's own path).
   * Synchronous unless a mode change is in progress (then: wait for it, and ask again), so the
   * caller counts the write in flight in the same tick as the decision.
   */
  route(mirrorId: string): 'journal' | 'bypass' | 'direct' | Promise<void> {
    const g = this.groupOf(mirrorId);
    if (!g?.primary) return 'direct';
    const r = writeRoute(g.state, g.record.mode);
    return r === 'wait' ? g.switched! : r;
  }

  /** The host flushed a member: the journal's records become durable with it. */
  async flush(mirrorId: string): Promise<void> {
    const pg = this.groupOf(mirrorId)?.primary;
    if (pg) await pg.flushJournal();
  }

  /** A member write in an asynchronous mode. Overflow switches the group to bypass (and the write goes that way). */
  async journal(mirrorId: string, offset: number, length: number, data: Buffer | null, trim: boolean, local: () => Promise<void>, fua = false): Promise<'done' | 'bypass'> {
    const g = this.groupOf(mirrorId)!;
    const pg = g.primary!;
    const index = g.record.members.indexOf(mirrorId);
    try {
      await pg.write(index, offset, length, data, trim ? APPLY_FLAG_TRIM : 0, local, fua);
      return 'done';
    } catch (e) {
      if (e instanceof GroupOverflow) {
        await enterBypass(this, g, 'overflow');
        return 'bypass';
      }
      // The local write failed but its record may ship: let the fracture logs make it right.
      await this.host.markFractures(mirrorId, offset, length);
      enterBypassLater(this, g, 'local write failed');
      throw e;
    }
  }

  /**
   * The armed freeze (docs/group.md): the members that stop sending to a secondary array together
   * when one of them stops replicating there. Only a synchronous group with `freeze: armed`, not
   * in bypass (whose writes reach no secondary anyway); null otherwise.
   */
  freezeMembers(mirrorId: string): string[] | null {
    const g = this.groupOf(mirrorId);
    if (!g?.primary || g.record.mode !== 'synchronous' || g.record.freeze !== 'armed' || inBypass(g.state)) return null;
    return [...g.record.members];
  }

  /** A freeze happened (src/replication/mirror/freeze.ts): `group.frozen`. */
  frozen(mirrorId: string, details: { array: string; member: string; op: string; error: string; frozen: string[] }): void {
    const g = this.groupOf(mirrorId);
    if (g) this.event('frozen', { groupId: g.record.groupId, name: g.record.name, ...details });
  }

  /** The group of a member mirror, for its resync protection (./pit.ts). */
  memberGroup(mirrorId: string): MemberGroup | undefined {
    const g = this.groupOf(mirrorId);
    return g ? memberGroup(g) : undefined;
  }

  /** Backfresh holds the members offline to hosts. */
  offline(mirrorId: string): boolean {
    return this.groupOf(mirrorId)?.state.copy === 'backfresh-offline';
  }

  // ---- the secondary side ----

  handlers() {
    return groupLinkHandlers(this);
  }

  /** A member mirror changed role (promote, demotion): the group follows when all members did. */
  async membersChanged(mirrorId: string): Promise<void> {
    const g = this.groupOf(mirrorId);
    if (g) await this.exclusive(g, () => settleRole(this, g, 'member role changed'));
  }

  /** Regions of member `mirrorId` still in the journal (a demoted primary keeps them as divergence). */
  pendingOf(mirrorId: string): Array<{ offset: number; length: number }> {
    const g = this.groupOf(mirrorId);
    if (!g?.primary) return [];
    const index = g.record.members.indexOf(mirrorId);
    return g.primary.pendingRanges().filter((r) => r.index === index);
  }

  // ---- administration ----

  find(ref: string): GroupEntry {
    const g = this.groups.get(ref) ?? [...this.groups.values()].find((x) => x.record.name === ref);
    if (!g) throw new GroupError('not-found', `array ${this.host.array} has no consistency group ${JSON.stringify(ref)}`);
    return g;
  }

  needPrimary(g: GroupEntry, what: string): PrimaryGroup {
    if (!g.primary) throw new GroupError('not-primary', `${what} goes to the primary array of group ${g.record.name}`);
    return g.primary;
  }

  view(g: GroupEntry): GroupView {
    return groupView(this.host, g);
  }

  list(): GroupView[] {
    return [...this.groups.values()].map((g) => this.view(g));
  }

  get(ref: string): GroupView {
    return this.view(this.find(ref));
  }

  info(ref: string): { text: string; view: GroupView } {
    return groupInfo(this.host, this.find(ref));
  }

  async perf(ref: string, opts: { sinceMs?: number } = {}): Promise<GroupPerfRecords> {
    const g = this.find(ref);
    if (!g.primary) throw new GroupError('not-primary', `array ${this.host.array} is not the primary of group ${g.record.name}: its performance records are written on the primary array`);
    const sinceMs = opts.sinceMs ?? null;
    const records = await perfRecordsSince(perfPath(g.dir), sinceMs);
    return { group: g.record.name, groupId: g.record.groupId, perfEveryMs: g.record.perfEveryMs, since: sinceMs === null ? null : new Date(sinceMs).toISOString(), records };
  }

  create(p: { name: string; members: string[]; attributes?: Partial<GroupAttributes> }): Promise<GroupView> {
    return admin.createGroup(this, p);
  }

  setMode(ref: string, mode: GroupMode, nearSync?: Partial<GroupRecord['nearSync']>): Promise<GroupView> {
    return admin.setMode(this, ref, mode, nearSync);
  }

  pause(ref: string, paused: boolean): Promise<GroupView> {
    return admin.pause(this, ref, paused);
  }

  bypass(ref: string, on: boolean): Promise<GroupView> {
    return admin.bypass(this, ref, on);
  }

  setAttributes(ref: string, p: SettableGroupAttributes): Promise<GroupView> {
    return admin.setAttributes(this, ref, p);
  }

  refresh(ref: string): Promise<GroupView> {
    return refresh(this, ref);
  }

  backfresh(ref: string, p: { from?: string } = {}): Promise<GroupView> {
    return backfresh(this, ref, p);
  }

  delete(ref: string): Promise<void> {
    return admin.deleteGroup(this, ref);
  }

  promote(ref: string, p: { force?: boolean; fromSnapshot?: boolean } = {}): Promise<GroupView> {
    return admin.promote(this, ref, p);
  }

  snapshot(ref: string, name: string): Promise<GroupSnapshotResult> {
    return snapshotGroup(this, ref, name);
  }

  /** Drops the in-memory groups (after close with abandon: a reload follows). */
  forget(): void {
    this.groups.clear();
  }

  async close(opts: { abandon?: boolean } = {}): Promise<void> {
    for (const g of this.groups.values()) {
      await g.serial.drained();
      await closePrimary(g, opts.abandon === true);
      await g.receiver?.close();
      g.receiver = null;
    }
  }
}
