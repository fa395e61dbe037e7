import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { MetadataStore } from '../../metadata/index.js';
import { APPLY_FLAG_TRIM, RemoteLinkError, type RequestContext } from '../../link/protocol/index.js';
import { primaryOf, secondariesOf } from '../state/index.js';
import {
  attributeProblems,
  GroupError,
  GroupOverflow,
  GroupReceiver,
  newGroupRecord,
  parseGroupRecord,
  PrimaryGroup,
  withDefaults,
  type GroupAttributes,
  type GroupMetrics,
  type GroupMode,
  type GroupRecord,
} from '../group/index.js';
import type { MirrorTimers, PeerConfig } from './types.js';

/** What the group manager needs of the mirror driver (MirrorNode implements it). */
export interface GroupHost {
  readonly array: string;
  readonly root: string;
  readonly sync: boolean;
  readonly timers: MirrorTimers;
  /** Publishes an event on the array's stream (full type, e.g. `group.bypass`). */
  publish(type: string, details: Record<string, unknown>): void;
  /** The member mirror's local image: role, LUN device, secondary arrays, epoch. */
  member(mirrorId: string): MemberInfo | undefined;
  memberByName(ref: string): MemberInfo | undefined;
  peerConfig(array: string): PeerConfig | undefined;
  /** Marks the range in every secondary's fracture log of the mirror and persists them. */
  markFractures(mirrorId: string, offset: number, length: number): Promise<void>;
  /** The same, in memory only (this tick); `persistFractures` writes them. */
  markFracturesNow(mirrorId: string, offset: number, length: number): void;
  persistFractures(mirrorId: string): Promise<void>;
  /** Starts a resync of every secondary of the mirror whose fracture log is not empty. */
  resyncDirty(mirrorId: string): Promise<void>;
  /** Waits until no host write of the mirror is in flight. */
  idle(mirrorId: string): Promise<void>;
  /** True when every secondary of the mirror is connected, unfractured, CONSISTENT or SYNCHRONIZED with an empty fracture log and no resync. */
  inSync(mirrorId: string): boolean;
  promoteMirror(mirrorId: string, force: boolean): Promise<void>;
}

export interface MemberInfo {
  mirrorId: string;
  name: string;
  role: 'primary' | 'secondary';
  lunId: number;
  size: number;
  device: import('../../block/index.js').BlockDevice;
  primaryArray: string;
  secondaryArrays: string[];
  epoch: number;
}

interface GroupEntry {
  record: GroupRecord;
  dir: string;
  store: MetadataStore<GroupRecord>;
  primary: PrimaryGroup | null;
  receiver: GroupReceiver | null;
  chain: Promise<unknown>;
  /** a mode change in progress: new host writes wait for it */
  switching: Promise<void> | null;
  /** entering bypass: fracture logs being written, record being saved */
  bypassing: Promise<void> | null;
  timers: NodeJS.Timeout[];
  lastMetrics: GroupMetrics | null;
}

export interface GroupView {
  record: GroupRecord;
  role: 'primary' | 'secondary';
  members: Array<{ mirrorId: string; name: string; lun: number; secondaries: string[] }>;
  senders: Array<{ array: string; state: string; ackedThrough: number; lastError?: string }>;
  receiver: { nextExpected: number; applied: number; batches: number } | null;
  metrics: GroupMetrics | null;
  /** the secondaries are not a usable point-in-time copy right now, and why */
  incoherent: string | null;
}

const DRAIN_TIMEOUT_MS = 30_000;

/**
 * Consistency groups inside the mirror driver: group records (saved twice, pushed to the
 * secondary arrays), the primary side (PrimaryGroup: writelog and senders) or the receiver, the
 * routing of member host writes by mode, bypass on overflow and back through resync, mode
 * changes without losing or reordering a write, and promote.
 */
export class GroupManager {
  private readonly groups = new Map<string, GroupEntry>();

  constructor(private readonly host: GroupHost) {}

  private get dirRoot(): string {
    return join(this.host.root, 'groups');
  }

  private event(type: string, details: Record<string, unknown>): void {
    this.host.publish(`group.${type}`, details);
  }

  // ---- loading ----

  async load(): Promise<void> {
    await fsp.mkdir(this.dirRoot, { recursive: true });
    for (const name of await fsp.readdir(this.dirRoot)) {
      const dir = join(this.dirRoot, name);
      if (!(await fsp.stat(dir)).isDirectory()) continue;
      const store = new MetadataStore<GroupRecord>(dir, { basename: 'db', noSync: !this.host.sync });
      const loaded = await store.load();
      if (!loaded.data) continue;
      const record = parseGroupRecord(loaded.data);
      const g: GroupEntry = { record, dir, store, primary: null, receiver: null, chain: Promise.resolve(), switching: null, bypassing: null, timers: [], lastMetrics: null };
      this.groups.set(record.groupId, g);
      await this.settleRole(g, 'load');
    }
  }

  /** Opens the primary side or the receiver, whichever the members' roles say. */
  private async settleRole(g: GroupEntry, why: string): Promise<void> {
    const infos = g.record.members.map((m) => this.host.member(m));
    if (infos.some((i) => !i)) {
      this.event('load-failed', { groupId: g.record.groupId, problem: 'a member mirror is not on this array' });
      return;
    }
    const primaries = infos.filter((i) => i!.role === 'primary').length;
    if (primaries === infos.length && !g.primary) {
      await g.receiver?.close();
      g.receiver = null;
      await this.openPrimary(g, why);
    } else if (primaries === 0 && !g.receiver) {
      if (g.primary) {
        // Demoted: the journal's records are in the divergence the new primary takes; a later
        // promotion must not replay them.
        await this.closePrimary(g, true);
        for (const f of await fsp.readdir(g.dir)) if (f.startsWith('writelog')) await fsp.rm(join(g.dir, f), { force: true });
      }
      g.receiver = await GroupReceiver.open(g.dir, g.record, (id) => this.receiverMember(id), { sync: this.host.sync });
      this.event('receiver-started', { groupId: g.record.groupId, name: g.record.name, nextExpected: g.receiver.nextExpected, why });
    }
  }

  private receiverMember(mirrorId: string) {
    const m = this.host.member(mirrorId);
    if (!m || m.role !== 'secondary') return undefined;
    return { mirrorId, device: m.device, size: m.size, primaryArray: m.primaryArray };
  }

  private async openPrimary(g: GroupEntry, why: string): Promise<void> {
    const members = g.record.members.map((id, index) => {
      const m = this.host.member(id)!;
      return { mirrorId: id, index, size: m.size, device: m.device };
    });
    const pg = PrimaryGroup.open(g.dir, g.record, members, { sync: this.host.sync });
    g.primary = pg;
    const rec = pg.writelog.recovery;
    if (rec && rec.records > 0) {
      // The last stop was not clean: the journal's records may be missing locally.
      const n = await pg.replayLocal();
      this.event('replayed', { groupId: g.record.groupId, records: n, firstSeq: rec.firstSeq, lastSeq: rec.lastSeq, torn: rec.torn });
    }
    pg.on('write-delayed', (ms: number) => {
      if (ms > 50) this.event('write-delayed', { groupId: g.record.groupId, ms: Math.round(ms) });
    });
    pg.on('gap', (s: { route: { array: string } }, expected: number, oldest: number) => {
      this.event('gap', { groupId: g.record.groupId, array: s.route.array, expected, oldest, action: 'bypass: the secondary is resynchronized from the fracture logs' });
      void this.enterBypass(g, 'gap').catch(() => undefined);
    });
    pg.on('sender-state', (s: { route: { array: string }; state: string; lastError?: string }) => this.event('sender', { groupId: g.record.groupId, array: s.route.array, state: s.state, error: s.lastError }));
    const arrays = new Set(members.flatMap((m) => this.host.member(m.mirrorId)!.secondaryArrays));
    for (const a of arrays) {
      const cfg = this.host.peerConfig(a);
      if (!cfg) {
        this.event('sender', { groupId: g.record.groupId, array: a, state: 'refused', error: `no remote link to array ${a} is configured` });
        continue;
      }
      const s = pg.startSender(cfg, this.host.array, { initialMs: this.host.timers.reconnectInitialMs, maxMs: this.host.timers.reconnectMaxMs });
      if (why !== 'load') s.baseOnHello = pg.writelog.next;
    }
    g.timers.push(setInterval(() => this.sample(g), g.record.perfEveryMs));
    g.timers.push(setInterval(() => void this.maybeLeaveBypass(g), 500));
    for (const t of g.timers) t.unref();
    this.event('primary-started', { groupId: g.record.groupId, name: g.record.name, mode: g.record.mode, nextSeq: pg.writelog.next, why });
  }

  private async closePrimary(g: GroupEntry, abandon: boolean): Promise<void> {
    for (const t of g.timers) clearInterval(t);
    g.timers = [];
    const pg = g.primary;
    g.primary = null;
    await pg?.close({ abandon });
  }

  private sample(g: GroupEntry): void {
    if (!g.primary) return;
    g.lastMetrics = g.primary.metrics();
    this.event('metrics', { groupId: g.record.groupId, ...g.lastMetrics });
  }

  // ---- record changes ----

  private exclusive<T>(g: GroupEntry, fn: () => Promise<T>): Promise<T> {
    const run = g.chain.then(fn);
    g.chain = run.catch(() => undefined);
    return run;
  }

  private async save(g: GroupEntry, change: (r: GroupRecord) => void): Promise<void> {
    const next: GroupRecord = structuredClone(g.record);
    change(next);
    next.generation = g.record.generation + 1;
    next.epoch = this.epochOf(next);
    await g.store.save(next);
    g.record = next;
    if (g.primary) g.primary.record = next;
    if (g.receiver) g.receiver.record = next;
    void this.push(g);
  }

  private epochOf(r: GroupRecord): number {
    return Math.max(0, ...r.members.map((m) => this.host.member(m)?.epoch ?? 0));
  }

  /** Sends the record to every secondary array (each sender's link). */
  private async push(g: GroupEntry): Promise<void> {
    for (const s of g.primary?.senders.values() ?? []) {
      const c = s.client;
      if (c?.connected) await c.request('group-db', { groupId: g.record.groupId, record: g.record as unknown as Record<string, unknown> }).catch(() => undefined);
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
    if (g.switching) return g.switching;
    if (g.record.bypass.on) return 'bypass';
    return g.record.mode === 'synchronous' ? 'direct' : 'journal';
  }

  /** A member write in an asynchronous mode. Overflow switches the group to bypass (and the write goes that way). */
  async journal(mirrorId: string, offset: number, length: number, data: Buffer | null, trim: boolean, local: () => Promise<void>): Promise<'done' | 'bypass'> {
    const g = this.groupOf(mirrorId)!;
    const pg = g.primary!;
    const index = g.record.members.indexOf(mirrorId);
    try {
      await pg.write(index, offset, length, data, trim ? APPLY_FLAG_TRIM : 0, local);
      return 'done';
    } catch (e) {
      if (e instanceof GroupOverflow) {
        await this.enterBypass(g, 'overflow');
        return 'bypass';
      }
      // The local write failed but its record may ship: let the fracture logs make it right.
      await this.host.markFractures(mirrorId, offset, length);
      void this.enterBypass(g, 'local write failed').catch(() => undefined);
      throw e;
    }
  }

  /**
   * Stops journaling: the regions of every record not yet acknowledged go into the members'
   * fracture logs, the journal is dropped, and the secondaries are resynchronized from the logs
   * (they are not a point-in-time copy until that finishes). Host writes never wait for it.
   */
  enterBypass(g: GroupEntry, reason: string): Promise<void> {
    if (g.bypassing) return g.bypassing;
    if (!g.primary || g.record.bypass.on) return Promise.resolve();
    const pg = g.primary;
    // All in this tick: from here on member writes take the bypass route, and every record not
    // yet acknowledged is in the fracture logs before anything else can look at them.
    const ranges = pg.pendingRanges();
    g.record.bypass = { on: true, reason: reason === 'operator' ? 'operator' : 'overflow', since: new Date().toISOString() };
    for (const r of ranges) this.host.markFracturesNow(g.record.members[r.index]!, r.offset, r.length);
    pg.discard();
    for (const s of pg.senders.values()) s.baseOnHello = pg.writelog.next;
    const bypass = g.record.bypass;
    g.bypassing = (async () => {
      for (const m of g.record.members) await this.host.persistFractures(m);
      await this.exclusive(g, () => this.save(g, (r) => (r.bypass = bypass)));
      this.event('bypass', { groupId: g.record.groupId, on: true, reason, records: ranges.length });
      for (const m of g.record.members) await this.host.resyncDirty(m);
    })().finally(() => {
      g.bypassing = null;
    });
    return g.bypassing;
  }

  /** Back to journaling once every member's secondaries are resynchronized (unless the operator holds bypass on). */
  private async maybeLeaveBypass(g: GroupEntry): Promise<void> {
    if (!g.primary || !g.record.bypass.on || g.bypassing || g.record.bypass.reason === 'operator') return;
    if (g.record.mode === 'synchronous') return this.leaveBypass(g, 'synchronous mode');
    if (!g.record.members.every((m) => this.host.inSync(m))) return;
    await this.leaveBypass(g, 'secondaries resynchronized');
  }

  private async leaveBypass(g: GroupEntry, why: string): Promise<void> {
    const pg = g.primary!;
    // Same tick as the check: a member write after this point is journaled.
    g.record.bypass = { on: false, reason: null, since: null };
    for (const s of pg.senders.values()) {
      s.baseOnHello = pg.writelog.next;
      s.client?.dropConnection();
    }
    await this.exclusive(g, () => this.save(g, (r) => (r.bypass = { on: false, reason: null, since: null })));
    this.event('bypass', { groupId: g.record.groupId, on: false, why });
  }

  // ---- receiver side (link handlers) ----

  handlers() {
    return {
      'group-db': (args: { groupId: string; record: Record<string, unknown> }, _bin: Buffer, ctx: RequestContext) => this.receiveRecord(args.groupId, args.record, ctx),
      'group-hello': (args: { groupId: string; members: string[]; base?: number }, _bin: Buffer, ctx: RequestContext) => this.receiverOf(args.groupId).hello(args, ctx.session.peerArray),
      apply: (args: { groupId: string; records: [number, number, number, number, number, number][] }, bin: Buffer, ctx: RequestContext) => this.receiverOf(args.groupId).apply(args, bin, ctx.session.peerArray),
    };
  }

  private receiverOf(groupId: string): GroupReceiver {
    const g = this.groups.get(groupId);
    if (!g?.receiver) throw new RemoteLinkError('wrong-mirror', `array ${this.host.array} has no receiver for group ${groupId}`);
    return g.receiver;
  }

  private async receiveRecord(groupId: string, raw: Record<string, unknown>, ctx: RequestContext): Promise<{ result: { applied: boolean; generation: number } }> {
    let rec: GroupRecord;
    try {
      rec = parseGroupRecord(raw);
    } catch (e) {
      throw new RemoteLinkError('bad-request', (e as Error).message);
    }
    if (rec.groupId !== groupId) throw new RemoteLinkError('bad-request', `record of group ${rec.groupId} sent as ${groupId}`);
    for (const m of rec.members) {
      const info = this.host.member(m);
      if (!info) throw new RemoteLinkError('wrong-mirror', `array ${this.host.array} holds no image of member ${m}`);
      if (info.primaryArray !== ctx.session.peerArray && info.role !== 'primary') throw new RemoteLinkError('stale-epoch', `${ctx.session.peerArray} is not the primary of ${m}`);
    }
    let g = this.groups.get(groupId);
    if (!g) {
      const dir = join(this.dirRoot, groupId.replace(/[^A-Za-z0-9._-]/g, '_'));
      await fsp.mkdir(dir, { recursive: true });
      const store = new MetadataStore<GroupRecord>(dir, { basename: 'db', noSync: !this.host.sync });
      await store.load();
      await store.save(rec);
      g = { record: rec, dir, store, primary: null, receiver: null, chain: Promise.resolve(), switching: null, bypassing: null, timers: [], lastMetrics: null };
      this.groups.set(groupId, g);
      await this.settleRole(g, `joined: record from ${ctx.session.peerArray}`);
      return { result: { applied: true, generation: rec.generation } };
    }
    const cur = g;
    return this.exclusive(cur, async () => {
      const newer = rec.epoch > cur.record.epoch || (rec.epoch === cur.record.epoch && rec.generation > cur.record.generation);
      if (!newer) return { result: { applied: false, generation: cur.record.generation } };
      await cur.store.save(rec);
      cur.record = rec;
      if (cur.receiver) cur.receiver.record = rec;
      await this.settleRole(cur, `record from ${ctx.session.peerArray}`);
      return { result: { applied: true, generation: rec.generation } };
    });
  }

  /** A member mirror changed role (promote, demotion): the group follows when all members did. */
  async membersChanged(mirrorId: string): Promise<void> {
    const g = this.groupOf(mirrorId);
    if (g) await this.exclusive(g, () => this.settleRole(g, 'member role changed'));
  }

  /** Regions of member `mirrorId` still in the journal (a demoted primary keeps them as divergence). */
  pendingOf(mirrorId: string): Array<{ offset: number; length: number }> {
    const g = this.groupOf(mirrorId);
    if (!g?.primary) return [];
    const index = g.record.members.indexOf(mirrorId);
    return g.primary.pendingRanges().filter((r) => r.index === index);
  }

  // ---- administration ----

  private find(ref: string): GroupEntry {
    const g = this.groups.get(ref) ?? [...this.groups.values()].find((x) => x.record.name === ref);
    if (!g) throw new GroupError('not-found', `array ${this.host.array} has no consistency group ${JSON.stringify(ref)}`);
    return g;
  }

  private needPrimary(g: GroupEntry, what: string): PrimaryGroup {
    if (!g.primary) throw new GroupError('not-primary', `${what} goes to the primary array of group ${g.record.name}`);
    return g.primary;
  }

  view(g: GroupEntry): GroupView {
    const members = g.record.members.map((id) => {
      const m = this.host.member(id);
      return { mirrorId: id, name: m?.name ?? id, lun: m?.lunId ?? -1, secondaries: m?.secondaryArrays ?? [] };
    });
    let incoherent: string | null = null;
    if (g.record.bypass.on) incoherent = `bypass (${g.record.bypass.reason}): the secondaries are being resynchronized from the fracture logs`;
    else if (g.record.refresh?.running) incoherent = 'refresh in progress';
    return {
      record: structuredClone(g.record),
      role: g.primary ? 'primary' : 'secondary',
      members,
      senders: [...(g.primary?.senders.values() ?? [])].map((s) => ({ array: s.route.array, state: s.state, ackedThrough: s.ackedThrough, ...(s.lastError ? { lastError: s.lastError } : {}) })),
      receiver: g.receiver ? { nextExpected: g.receiver.nextExpected, applied: g.receiver.applied, batches: g.receiver.batches } : null,
      metrics: g.primary ? g.primary.metrics() : null,
      incoherent,
    };
  }

  list(): GroupView[] {
    return [...this.groups.values()].map((g) => this.view(g));
  }

  get(ref: string): GroupView {
    return this.view(this.find(ref));
  }

  async create(p: { name: string; members: string[]; attributes?: Partial<GroupAttributes> }): Promise<GroupView> {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(p.name ?? '')) throw new GroupError('invalid', `group name ${JSON.stringify(p.name)}: use 1-64 letters, digits, dot, dash, underscore`);
    if ([...this.groups.values()].some((g) => g.record.name === p.name)) throw new GroupError('exists', `array ${this.host.array} already has a group named ${p.name}`);
    if (!Array.isArray(p.members) || p.members.length === 0) throw new GroupError('invalid', 'a group needs at least one member mirror');
    const infos = p.members.map((ref) => {
      const m = this.host.memberByName(ref);
      if (!m) throw new GroupError('not-found', `array ${this.host.array} has no mirror ${JSON.stringify(ref)}`);
      if (m.role !== 'primary') throw new GroupError('not-primary', `mirror ${ref}: this array holds a secondary image; create the group on ${m.primaryArray}`);
      const other = this.groupOf(m.mirrorId);
      if (other) throw new GroupError('exists', `mirror ${ref} is already in group ${other.record.name}`);
      return m;
    });
    if (new Set(infos.map((m) => m.mirrorId)).size !== infos.length) throw new GroupError('invalid', 'a mirror is listed twice');
    const arrays = (m: { secondaryArrays: string[] }) => [...m.secondaryArrays].sort().join(',');
    if (infos.some((m) => arrays(m) !== arrays(infos[0]!))) throw new GroupError('invalid', `the members must replicate to the same arrays (${infos.map((m) => `${m.name}: ${arrays(m) || 'none'}`).join('; ')})`);
    if (!infos[0]!.secondaryArrays.length) throw new GroupError('invalid', 'the members have no secondary image yet');
    const attrs = withDefaults(p.attributes ?? {});
    const problems = attributeProblems(attrs);
    if (problems.length) throw new GroupError('invalid', problems.join('; '));
    const groupId = `${p.name}-${randomBytes(4).toString('hex')}`;
    const dir = join(this.dirRoot, groupId);
    await fsp.mkdir(dir, { recursive: true });
    const store = new MetadataStore<GroupRecord>(dir, { basename: 'db', noSync: !this.host.sync });
    await store.load();
    const record = newGroupRecord(groupId, p.name, infos.map((m) => m.mirrorId), attrs);
    record.epoch = this.epochOf(record);
    // Journaling starts only with every secondary in sync; until then the fracture logs cover it.
    if (record.mode !== 'synchronous' && !record.members.every((m) => this.host.inSync(m))) record.bypass = { on: true, reason: 'overflow', since: new Date().toISOString() };
    await store.save(record);
    const g: GroupEntry = { record, dir, store, primary: null, receiver: null, chain: Promise.resolve(), switching: null, bypassing: null, timers: [], lastMetrics: null };
    this.groups.set(groupId, g);
    await this.openPrimary(g, 'create');
    this.event('created', { groupId, name: p.name, mode: record.mode, members: record.members });
    return this.view(g);
  }

  /** Mode changes without losing or reordering a write (see docs). */
  setMode(ref: string, mode: GroupMode, nearSync?: Partial<GroupRecord['nearSync']>): Promise<GroupView> {
    const g = this.find(ref);
    return this.exclusive(g, async () => {
      const pg = this.needPrimary(g, 'a mode change');
      const from = g.record.mode;
      const next = withDefaults({ ...g.record, mode, nearSync: { ...g.record.nearSync, ...(nearSync ?? {}) } });
      const problems = attributeProblems(next);
      if (problems.length) throw new GroupError('invalid', problems.join('; '));
      if (from === mode && !nearSync) return this.view(g);
      let release!: () => void;
      g.switching = new Promise<void>((r) => (release = r));
      try {
        if (from === 'synchronous' && !g.record.bypass.on) {
          // Writes sent directly must be in before the first journaled one can overtake them.
          for (const m of g.record.members) await this.host.idle(m);
          for (const s of pg.senders.values()) {
            s.baseOnHello = pg.writelog.next;
            s.client?.dropConnection();
          }
        } else if (mode === 'synchronous' && from !== 'synchronous' && !g.record.bypass.on) {
          // Journaled writes must reach the secondaries before direct ones start.
          // Journal writes already under way finish first (they may still append).
          for (const m of g.record.members) await this.host.idle(m);
          const drained = await Promise.race([pg.drained().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), DRAIN_TIMEOUT_MS))]);
          if (!drained) await this.enterBypass(g, 'drain timeout');
        }
        await this.save(g, (r) => {
          r.mode = mode;
          r.nearSync = next.nearSync;
        });
        pg.record = g.record;
        this.event('mode', { groupId: g.record.groupId, from, to: mode });
      } finally {
        g.switching = null;
        release();
      }
      return this.view(g);
    });
  }

  pause(ref: string, paused: boolean): Promise<GroupView> {
    const g = this.find(ref);
    return this.exclusive(g, async () => {
      const pg = this.needPrimary(g, paused ? 'pause' : 'resume');
      await this.save(g, (r) => (r.paused = paused));
      for (const s of pg.senders.values()) s.setPaused(paused);
      this.event(paused ? 'paused' : 'resumed', { groupId: g.record.groupId });
      return this.view(g);
    });
  }

  async bypass(ref: string, on: boolean): Promise<GroupView> {
    const g = this.find(ref);
    this.needPrimary(g, 'bypass');
    if (on) await this.enterBypass(g, 'operator');
    else if (g.record.bypass.on) {
      await this.exclusive(g, () => this.save(g, (r) => (r.bypass = { ...r.bypass, reason: 'overflow' })));
      g.record.bypass.reason = 'overflow'; // leaves once the secondaries are resynchronized
      await this.maybeLeaveBypass(g);
    }
    return this.view(g);
  }

  /** Promotes every member on this (secondary) array: the receiver stops after the batch it applies. */
  async promote(ref: string, p: { force?: boolean } = {}): Promise<GroupView> {
    const g = this.find(ref);
    if (g.primary) throw new GroupError('state', `group ${g.record.name} is already primary on ${this.host.array}`);
    await g.receiver?.stop();
    for (const m of g.record.members) await this.host.promoteMirror(m, p.force === true);
    await this.exclusive(g, async () => {
      await g.receiver?.close();
      g.receiver = null;
      // The old primary must be resynchronized before the journal can feed it.
      g.record.bypass = { on: true, reason: 'overflow', since: new Date().toISOString() };
      await this.save(g, (r) => (r.bypass = g.record.bypass));
      await this.settleRole(g, 'promote');
    });
    this.event('promoted', { groupId: g.record.groupId, name: g.record.name });
    return this.view(g);
  }

  /** Drops the in-memory groups (after close with abandon: a reload follows). */
  forget(): void {
    this.groups.clear();
  }

  async close(opts: { abandon?: boolean } = {}): Promise<void> {
    for (const g of this.groups.values()) {
      await g.chain.catch(() => undefined);
      await this.closePrimary(g, opts.abandon === true);
      await g.receiver?.close();
      g.receiver = null;
    }
  }
}
