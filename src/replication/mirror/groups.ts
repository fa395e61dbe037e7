import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { MetadataStore } from '../../metadata/index.js';
import { APPLY_FLAG_TRIM, RemoteLinkError, type RequestContext } from '../../link/protocol/index.js';
import { primaryOf, secondariesOf } from '../state/index.js';
import {
  attributeProblems,
  formatQdsinfo,
  GroupError,
  GroupOverflow,
  GroupReceiver,
  newGroupRecord,
  newWindow,
  parseGroupRecord,
  parseThrottles,
  PerfRecorder,
  PrimaryGroup,
  runThrottleCommand,
  throttleCommandEnv,
  ThrottleEngine,
  ThrottleState,
  withDefaults,
  type MetricsWindow,
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
  /** Reads `length` bytes of the mirror's secondary image on `array` (backfresh). */
  readSecondary(mirrorId: string, array: string, offset: number, length: number): Promise<Buffer>;
  /** Empties every fracture log of the mirror (primary and secondaries are identical). */
  clearFractures(mirrorId: string): Promise<void>;
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
  /** primary side: throttles, performance records, refresh and backfresh in progress */
  throttle: { engine: ThrottleEngine; state: ThrottleState; win: MetricsWindow } | null;
  perf: { recorder: PerfRecorder; win: MetricsWindow } | null;
  copy: { kind: 'refresh' | 'backfresh'; stop: boolean; done: Promise<void>; window: { index: number; offset: number; length: number; touched: boolean } | null } | null;
  /** backfresh: the members are offline to hosts */
  offline: boolean;
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

/** What the management API and `sanbox group` call (GroupManager implements it; MirrorNode.groups). */
export interface GroupControl {
  list(): GroupView[];
  /** by group id or name; GroupError 'not-found' */
  get(ref: string): GroupView;
  /** members: mirror names or ids, all primary on this array, replicating to the same arrays */
  create(p: { name: string; members: string[]; attributes?: Partial<GroupAttributes> }): Promise<GroupView>;
  setMode(ref: string, mode: GroupMode, nearSync?: Partial<GroupRecord['nearSync']>): Promise<GroupView>;
  /** throttles, throttleEveryMs, perfEveryMs, perfMaxBytes, nearSync (not mode, not writelog size) */
  setAttributes(ref: string, p: Partial<Pick<GroupAttributes, 'throttles' | 'throttleEveryMs' | 'perfEveryMs' | 'perfMaxBytes' | 'nearSync'>>): Promise<GroupView>;
  /** pause or resume the sender(s) */
  pause(ref: string, paused: boolean): Promise<GroupView>;
  bypass(ref: string, on: boolean): Promise<GroupView>;
  /** copy every allocated region of the primary to the secondaries through the writelog (long: progress in the view and events) */
  refresh(ref: string): Promise<GroupView>;
  /** copy the secondary's image back to the primary (the primary's members are offline meanwhile) */
  backfresh(ref: string, p?: { from?: string }): Promise<GroupView>;
  /** run on a secondary array */
  promote(ref: string, p?: { force?: boolean }): Promise<GroupView>;
  /** the qdsinfo report: text and the view it was made from */
  info(ref: string): { text: string; view: GroupView };
  delete(ref: string): Promise<void>;
}

/**
 * Consistency groups inside the mirror driver: group records (saved twice, pushed to the
 * secondary arrays), the primary side (PrimaryGroup: writelog and senders) or the receiver, the
 * routing of member host writes by mode, bypass on overflow and back through resync, mode
 * changes without losing or reordering a write, and promote.
 */
export class GroupManager implements GroupControl {
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
      const g: GroupEntry = { record, dir, store, primary: null, receiver: null, chain: Promise.resolve(), switching: null, bypassing: null, timers: [], lastMetrics: null, throttle: null, perf: null, copy: null, offline: false };
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
    pg.on('host-write', (index: number, offset: number, length: number) => {
      const w = g.copy?.window;
      if (w && w.index === index && offset < w.offset + w.length && w.offset < offset + length) w.touched = true;
    });
    this.startTimers(g);
    this.event('primary-started', { groupId: g.record.groupId, name: g.record.name, mode: g.record.mode, nextSeq: pg.writelog.next, why });
  }

  /** Throttle evaluation, performance records, the bypass check: restarted when intervals change. */
  private startTimers(g: GroupEntry): void {
    for (const t of g.timers) clearInterval(t);
    g.timers = [];
    g.throttle = { engine: new ThrottleEngine(g.record.throttles), state: new ThrottleState({ senderSleepMs: g.primary?.senderSleepMs, ackDelayMs: g.primary?.ackDelayMs }), win: newWindow() };
    if (!g.perf) g.perf = { recorder: new PerfRecorder(join(g.dir, 'perf.jsonl'), g.record.perfMaxBytes), win: newWindow() };
    g.timers.push(setInterval(() => this.sample(g), g.record.perfEveryMs));
    if (g.record.throttles.length) g.timers.push(setInterval(() => this.evaluateThrottles(g), g.record.throttleEveryMs));
    g.timers.push(setInterval(() => void this.maybeLeaveBypass(g), 500));
    for (const t of g.timers) t.unref();
  }

  /** The source's throttles: test a measurement, run up to sixteen actions. */
  private evaluateThrottles(g: GroupEntry): void {
    const pg = g.primary;
    const t = g.throttle;
    if (!pg || !t) return;
    const m = pg.metrics(t.win);
    const fired = t.engine.evaluate(m);
    if (!fired.length) return;
    const results = t.state.apply(
      fired,
      {
        chainExtension: () => pg.writelog.chainSpare(),
        releaseExtension: () => pg.writelog.releaseSpare(),
        log: (msg) => this.event('throttle-log', { groupId: g.record.groupId, message: msg }),
        event: (msg, d) => this.event('throttle', { groupId: g.record.groupId, message: msg, throttle: d.throttle }),
        command: (cmd) =>
          void runThrottleCommand(cmd, throttleCommandEnv(m, { SANBOX_GROUP: g.record.name }), 30_000).then((r) =>
            this.event('throttle-command', { groupId: g.record.groupId, command: cmd, exitCode: r.code, timedOut: r.timedOut, ...(r.error ? { error: r.error } : {}) }),
          ),
      },
      m,
    );
    const changed = pg.senderSleepMs !== t.state.senderSleepMs || pg.ackDelayMs !== t.state.ackDelayMs;
    pg.senderSleepMs = t.state.senderSleepMs;
    pg.ackDelayMs = t.state.ackDelayMs;
    // A throttle that fires without effect (easing off a sleep that is already 0) is no state change.
    const knobs = new Set(['sleep-set', 'sleep-incr', 'sleep-decr', 'delay-set', 'delay-incr', 'delay-decr']);
    if (!changed && results.every((r) => r.ok && knobs.has(r.action.do))) return;
    this.event('throttled', { groupId: g.record.groupId, netkbps: Math.round(m.netkbps), pctcpu: Math.round(m.pctcpu), pctwl: Math.round(m.pctwl), senderSleepMs: pg.senderSleepMs, ackDelayMs: pg.ackDelayMs, actions: results.map((r) => ({ throttle: r.throttle, do: r.action.do, ok: r.ok, ...(r.error ? { error: r.error } : {}) })) });
  }

  private async closePrimary(g: GroupEntry, abandon: boolean): Promise<void> {
    for (const t of g.timers) clearInterval(t);
    g.timers = [];
    if (g.copy) {
      g.copy.stop = true;
      await g.copy.done.catch(() => undefined);
    }
    await g.perf?.recorder.close();
    g.perf = null;
    g.throttle = null;
    const pg = g.primary;
    g.primary = null;
    await pg?.close({ abandon });
  }

  /** A performance record: to the group's file (size-limited, one previous generation) and as an event. */
  private sample(g: GroupEntry): void {
    if (!g.primary || !g.perf) return;
    g.lastMetrics = g.primary.metrics(g.perf.win);
    void g.perf.recorder.append(g.lastMetrics);
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
    if (!g.record.members.every((m) => this.host.inSync(m))) {
      // Host writes during bypass mark the fracture logs again: keep resynchronizing them.
      for (const m of g.record.members) await this.host.resyncDirty(m);
      return;
    }
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
    // Leaving for the synchronous mode, the fracture logs may still hold regions: resync them.
    for (const m of g.record.members) await this.host.resyncDirty(m);
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
      g = { record: rec, dir, store, primary: null, receiver: null, chain: Promise.resolve(), switching: null, bypassing: null, timers: [], lastMetrics: null, throttle: null, perf: null, copy: null, offline: false };
      this.groups.set(groupId, g);
      await this.settleRole(g, `joined: record from ${ctx.session.peerArray}`);
      return { result: { applied: true, generation: rec.generation } };
    }
    const cur = g;
    return this.exclusive(cur, async () => {
      const newer = rec.epoch > cur.record.epoch || (rec.epoch === cur.record.epoch && rec.generation > cur.record.generation);
      if (!newer) return { result: { applied: false, generation: cur.record.generation } };
      if (rec.deleted) {
        await cur.receiver?.close();
        this.groups.delete(groupId);
        await fsp.rm(cur.dir, { recursive: true, force: true });
        this.event('deleted', { groupId, name: rec.name, why: `deleted on ${ctx.session.peerArray}` });
        return { result: { applied: true, generation: rec.generation } };
      }
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
      metrics: this.liveMetrics(g),
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
    const g: GroupEntry = { record, dir, store, primary: null, receiver: null, chain: Promise.resolve(), switching: null, bypassing: null, timers: [], lastMetrics: null, throttle: null, perf: null, copy: null, offline: false };
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

  setAttributes(ref: string, p: Partial<Pick<GroupAttributes, 'throttles' | 'throttleEveryMs' | 'perfEveryMs' | 'perfMaxBytes' | 'nearSync'>>): Promise<GroupView> {
    const g = this.find(ref);
    return this.exclusive(g, async () => {
      this.needPrimary(g, 'changing attributes');
      const allowed = ['throttles', 'throttleEveryMs', 'perfEveryMs', 'perfMaxBytes', 'nearSync'];
      for (const k of Object.keys(p)) if (!allowed.includes(k)) throw new GroupError('invalid', `attribute ${JSON.stringify(k)} cannot be changed here (mode: setMode; writelog size: fixed at create)`);
      let throttles = g.record.throttles;
      if (p.throttles !== undefined) {
        const parsed = parseThrottles(p.throttles, 'throttles');
        if (parsed.problems.length) throw new GroupError('invalid', parsed.problems.join('; '));
        throttles = parsed.throttles;
      }
      const next = { ...g.record, ...p, throttles, nearSync: { ...g.record.nearSync, ...(p.nearSync ?? {}) } };
      const problems = attributeProblems(next);
      if (problems.length) throw new GroupError('invalid', problems.join('; '));
      await this.save(g, (r) => Object.assign(r, { throttles, throttleEveryMs: next.throttleEveryMs, perfEveryMs: next.perfEveryMs, perfMaxBytes: next.perfMaxBytes, nearSync: next.nearSync }));
      if (p.perfMaxBytes !== undefined && g.perf) {
        await g.perf.recorder.close();
        g.perf = null;
      }
      if (p.throttles !== undefined && throttles.length === 0 && g.primary) {
        // No throttle left to ease them off: back to no sleep and no delay.
        g.primary.senderSleepMs = 0;
        g.primary.ackDelayMs = 0;
      }
      this.startTimers(g);
      this.event('attributes', { groupId: g.record.groupId, changed: Object.keys(p) });
      return this.view(g);
    });
  }

  /** Gauges as of now (backlog, sequence numbers), rates as of the last performance record. */
  private liveMetrics(g: GroupEntry): GroupMetrics | null {
    if (!g.primary) return null;
    const m = g.primary.metrics(newWindow());
    const last = g.lastMetrics;
    Object.assign(m, last ? { netkbps: last.netkbps, dataKbps: last.dataKbps, entriesPerSec: last.entriesPerSec, pctcpu: last.pctcpu, writesDelayed: last.writesDelayed, delayedMs: last.delayedMs } : { netkbps: 0, dataKbps: 0, entriesPerSec: 0, pctcpu: 0, writesDelayed: 0, delayedMs: 0 });
    return m;
  }

  info(ref: string): { text: string; view: GroupView } {
    const g = this.find(ref);
    const v = this.view(g);
    const pg = g.primary;
    const metrics = v.metrics;
    const u = pg?.writelog.usage();
    const text = formatQdsinfo({
      name: g.record.name,
      mode: g.record.mode,
      paused: g.record.paused,
      bypass: g.record.bypass,
      members: v.members.map((m) => ({ mirror: m.name, lun: String(m.lun), secondary: m.secondaries.join(',') })),
      metrics: metrics as GroupMetrics,
      writelog: { capacity: u?.capacity ?? g.record.writelog.capacity, extensionsInUse: u?.extensionsInUse ?? 0, extensionsFree: u?.extensionsFree ?? g.record.writelog.extensions },
      refresh: g.record.refresh,
      nearSync: g.record.nearSync,
      throttles: g.record.throttles.length,
    });
    return { text, view: v };
  }

  /**
   * Refresh: every allocated region of every member goes through the writelog to the
   * secondaries while host I/O goes on, paced so the writelog stays below half full. The
   * secondaries are incoherent until it completes (the view says so).
   */
  refresh(ref: string): Promise<GroupView> {
    const g = this.find(ref);
    return this.exclusive(g, async () => {
      const pg = this.needPrimary(g, 'refresh');
      if (g.copy) throw new GroupError('state', `a ${g.copy.kind} of group ${g.record.name} is running`);
      if (g.record.mode === 'synchronous' || g.record.bypass.on) throw new GroupError('state', `refresh goes through the writelog: the group must journal (asynchronous or near-synchronous, not in bypass), it is ${g.record.bypass.on ? 'in bypass' : g.record.mode}`);
      let total = 0;
      const plan: Array<{ index: number; offset: number; length: number; hole: boolean }> = [];
      for (let index = 0; index < g.record.members.length; index++) {
        const m = pg.member(index);
        for (let off = 0; off < m.size; ) {
          const ext = await m.device.blockStatus(off, Math.min(m.size - off, 1 << 30));
          if (!ext.length) break;
          for (const x of ext) {
            plan.push({ index, offset: off, length: x.length, hole: x.hole });
            if (!x.hole) total += x.length;
            off += x.length;
          }
        }
      }
      const copy: NonNullable<GroupEntry['copy']> = { kind: 'refresh', stop: false, done: Promise.resolve(), window: null };
      g.copy = copy;
      await this.save(g, (r) => (r.refresh = { running: true, bytesDone: 0, bytesTotal: total }));
      this.event('refresh-started', { groupId: g.record.groupId, bytesTotal: total });
      copy.done = this.refreshLoop(g, pg, plan, total).then(
        async () => {
          g.copy = null;
          await this.exclusive(g, () => this.save(g, (r) => (r.refresh = null)));
          this.event('refresh-done', { groupId: g.record.groupId, bytes: total });
        },
        async (err) => {
          g.copy = null;
          await this.exclusive(g, () => this.save(g, (r) => (r.refresh = r.refresh ? { ...r.refresh, running: false } : null))).catch(() => undefined);
          this.event('refresh-failed', { groupId: g.record.groupId, error: (err as Error).message });
        },
      );
      return this.view(g);
    });
  }

  private async refreshLoop(g: GroupEntry, pg: PrimaryGroup, plan: Array<{ index: number; offset: number; length: number; hole: boolean }>, total: number): Promise<void> {
    const CHUNK = 256 * 1024;
    let done = 0;
    let lastReport = performance.now();
    for (const run of plan) {
      for (let off = run.offset; off < run.offset + run.length; ) {
        if (g.copy?.stop || !g.primary) throw new Error('stopped');
        if (g.record.bypass.on) throw new Error('the group went to bypass: the fracture logs carry the rest');
        // Flow control: never fill the writelog past half.
        while (pg.writelog.usage().percent > 50) {
          if (g.copy?.stop || pg.closed) throw new Error('stopped');
          await new Promise((r) => setTimeout(r, 5));
        }
        const len = Math.min(CHUNK, run.offset + run.length - off);
        if (run.hole) pg.appendCopy(run.index, off, len, null);
        else {
          // A host write that lands while the chunk is read would be overtaken by the older
          // copy: read again until none did (the append is in the same tick as the check).
          const w = { index: run.index, offset: off, length: len, touched: false };
          g.copy!.window = w;
          for (;;) {
            w.touched = false;
            const data = await pg.member(run.index).device.read(off, len);
            if (w.touched) continue;
            pg.appendCopy(run.index, off, len, data);
            break;
          }
          g.copy!.window = null;
          done += len;
        }
        off += len;
        if (performance.now() - lastReport > 1000) {
          lastReport = performance.now();
          g.record.refresh = { running: true, bytesDone: done, bytesTotal: total };
          this.event('refresh-progress', { groupId: g.record.groupId, bytesDone: done, bytesTotal: total });
        }
      }
    }
    await pg.drained();
  }

  /**
   * Backfresh: the secondary's image comes back to the primary. The members are offline to
   * hosts meanwhile; unsent journal records are dropped (the secondary's data wins); afterwards
   * primary and secondary are identical and the group journals again from a new base.
   */
  backfresh(ref: string, p: { from?: string } = {}): Promise<GroupView> {
    const g = this.find(ref);
    return this.exclusive(g, async () => {
      const pg = this.needPrimary(g, 'backfresh');
      if (g.copy) throw new GroupError('state', `a ${g.copy.kind} of group ${g.record.name} is running`);
      const arrays = this.host.member(g.record.members[0]!)!.secondaryArrays;
      const from = p.from ?? arrays[0];
      if (!from || !arrays.includes(from)) throw new GroupError('invalid', `backfresh from ${JSON.stringify(p.from)}: the group replicates to ${arrays.join(', ')}`);
      g.offline = true;
      this.event('backfresh-started', { groupId: g.record.groupId, from });
      try {
        for (const m of g.record.members) await this.host.idle(m);
        pg.discard();
        let total = 0;
        for (const id of g.record.members) total += this.host.member(id)!.size;
        let done = 0;
        for (let index = 0; index < g.record.members.length; index++) {
          const id = g.record.members[index]!;
          const m = pg.member(index);
          for (let off = 0; off < m.size; ) {
            const len = Math.min(4 * 1024 * 1024, m.size - off);
            const data = await this.host.readSecondary(id, from, off, len);
            if (data.every((b) => b === 0)) await m.device.writeZeroes(off, len);
            else await m.device.write(off, data);
            off += len;
            done += len;
            if (done % (64 * 1024 * 1024) === 0) this.event('backfresh-progress', { groupId: g.record.groupId, bytesDone: done, bytesTotal: total });
          }
          await m.device.flush();
          await this.host.clearFractures(id);
        }
        for (const s of pg.senders.values()) {
          s.baseOnHello = pg.writelog.next;
          s.client?.dropConnection();
        }
        this.event('backfresh-done', { groupId: g.record.groupId, from, bytes: done });
      } finally {
        g.offline = false;
      }
      return this.view(g);
    });
  }

  /** Backfresh holds the members offline to hosts. */
  offline(mirrorId: string): boolean {
    return this.groupOf(mirrorId)?.offline === true;
  }

  async delete(ref: string): Promise<void> {
    const g = this.find(ref);
    this.needPrimary(g, 'delete');
    // The journal must be empty: the members go on as synchronous mirrors.
    if (g.record.mode !== 'synchronous') await this.setMode(ref, 'synchronous');
    await this.exclusive(g, async () => {
      await this.save(g, (r) => (r.deleted = true));
      await this.push(g);
      await this.closePrimary(g, false);
      this.groups.delete(g.record.groupId);
      await fsp.rm(g.dir, { recursive: true, force: true });
      this.event('deleted', { groupId: g.record.groupId, name: g.record.name });
    });
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
