import { promises as fsp } from 'node:fs';
import { ignoreOnClose } from '../../errors/index.js';
import { join } from 'node:path';
import { MetadataStore } from '../../metadata/index.js';
import type { RemoteLinkServer } from '../../link/protocol/index.js';
import { primaryOf, secondariesOf, type MirrorDbRecord } from '../state/index.js';
import { MirrorAdmin } from './admin.js';
import { setHeartbeat } from './heartbeat.js';
import type { LunRole, MirrorDataPath } from './data-path-api.js';
import { DataPath } from './data-path.js';
import { mirrorSize, newEntry, phaseOf, type Entry } from './entry.js';
import { GroupManager, type GroupHost, type MemberInfo, type Range, type SnapshotPort } from '../group/index.js';
import { inSync } from './peer-phase.js';
import { PeerLinks } from './peer-link.js';
import { closePrimarySide, openPrimarySide } from './primary-lifecycle.js';
import { ResyncProtection } from './protection.js';
import { loadRecord, MirrorRecords } from './records.js';
import { Resync } from './resync.js';
import { SecondarySide } from './secondary.js';
import {
  DEFAULT_TIMERS,
  MirrorError,
  type AddSecondaryParams,
  type ChangeAttributesParams,
  type CreateMirrorParams,
  type HeartbeatParams,
  type MirrorControl,
  type MirrorNodeOptions,
  type MirrorTimers,
  type MirrorRegionMap,
  type MirrorView,
  type PeerConfig,
  type VerifyReport,
} from './types.js';

/** A clean close waits this long for the host writes in flight of each primary. */
const closeDrainTimeoutMs = 5000;

/**
 * The mirror driver of one array (issue 5, 002_7ba041cd47d18dd3.txt): the mirror database records
 * of every mirror with an image here (./records.ts), the replication layer of each such LUN
 * (MirrorLayer over ./data-path.ts), the remote-link listener that receives secondary writes and
 * database updates (./secondary.ts), one link per secondary on the primary side (./peer-link.ts),
 * the write-intent and fracture logs, resync (./resync.ts), and the administrative verbs, verify,
 * promote and split-brain handling (./admin.ts). This file opens and closes all of it (start,
 * clean close, power loss, reopen), opens and closes the primary sides (./primary-lifecycle.ts),
 * and wires the parts: each gets the records and a narrow host interface of what it uses of the
 * others.
 */
export class MirrorNode implements MirrorControl, GroupHost {
  readonly array: string;
  readonly timers: MirrorTimers;
  readonly sync: boolean;
  /** consistency groups (issue 6): the asynchronous modes */
  readonly groups: GroupManager;
  private readonly records: MirrorRecords;
  private readonly dataPath: DataPath;
  private readonly links: PeerLinks;
  private readonly resync: Resync;
  private readonly secondary: SecondarySide;
  private readonly admin: MirrorAdmin;
  /** resync protection of this array's secondary images (./protection.ts), over the array's snapshots */
  readonly protection: ResyncProtection;
  readonly snapshots: SnapshotPort | undefined;
  private server: RemoteLinkServer | null = null;
  private closed = false;
  /** between `crash()` and `reopen()` */
  private suspended = false;

  private constructor(private readonly opts: MirrorNodeOptions) {
    this.array = opts.array;
    this.timers = { ...DEFAULT_TIMERS, ...opts.timers };
    this.sync = opts.sync !== false;
    this.groups = new GroupManager(this);
    const { array, timers, sync } = this;
    const lun = (ref: number | string) => opts.luns.lun(ref);
    const openPrimary = (e: Entry, why: 'create' | 'promote' | 'resolve') => this.openPrimary(e, why);
    const closePrimary = (e: Entry, removeFiles: boolean) => this.closePrimary(e, removeFiles);
    this.snapshots = opts.snapshots;
    this.protection = new ResyncProtection({ array, sync, snapshots: opts.snapshots, entry: (id) => this.records.entries.get(id), group: (id) => this.groups.memberGroup(id), publish: (t, d) => opts.event(t, d) });
    this.records = new MirrorRecords({ array, event: (t, d) => this.event(t, d), afterChange: (e) => this.resync.afterChange(e), propagate: (e) => this.links.propagate(e) });
    this.resync = new Resync(this.records, {
      timers,
      linkFailure: (e, p, err) => this.dataPath.linkFailure(e, p, err),
      pushInBackground: (e, p, why) => this.links.pushInBackground(e, p, why),
      routeIsDirect: (mirrorId) => this.groups.route(mirrorId) === 'direct',
    });
    this.links = new PeerLinks(this.records, {
      array,
      timers,
      peerConfig: (a) => this.peerConfig(a),
      adopt: (e, rec, why) => this.secondary.adopt(e, rec, why),
      resyncIfDirty: (e, p) => this.resync.resyncIfDirty(e, p),
      afterChange: (e) => this.resync.afterChange(e), linkLost: (e, p, err) => this.dataPath.freeze.stopped(e, p, 'link', err), // ./freeze.ts
    });
    this.dataPath = new DataPath(this.records, {
      timers,
      groups: this.groups,
      pushInBackground: (e, p, why) => this.links.pushInBackground(e, p, why),
      noteUnreachable: (e, p, why, reason) => this.links.noteUnreachable(e, p, why, reason),
      resyncIfDirty: (e, p) => this.resync.resyncIfDirty(e, p),
    });
    this.secondary = new SecondarySide(this.records, {
      array,
      root: this.root,
      sync,
      peers: opts.peers,
      lun,
      groupHandlers: () => this.groups.handlers(),
      groupPending: (mirrorId) => this.groups.pendingOf(mirrorId),
      groupMembersChanged: (mirrorId) => this.groups.membersChanged(mirrorId),
      openPrimary,
      closePrimary,
      startPeers: (e) => this.links.startPeers(e),
      protection: this.protection,
    });
    this.admin = new MirrorAdmin(this.records, {
      array,
      root: this.root,
      sync,
      lun,
      groupName: (mirrorId) => this.groups.groupOf(mirrorId)?.record.name,
      openPrimary,
      closePrimary,
      dropDivergence: (e) => this.secondary.dropDivergence(e),
      liveness: (a) => this.secondary.liveness(a),
      links: this.links,
      resync: this.resync,
      protection: this.protection,
    });
  }

  static async open(opts: MirrorNodeOptions): Promise<MirrorNode> {
    const node = new MirrorNode(opts);
    try {
      await node.start();
    } catch (e) {
      await ignoreOnClose(node.close(), 'closing a node that failed to open');
      throw e;
    }
    return node;
  }

  private async start(): Promise<void> {
    await this.load();
    await this.groups.load();
    if (this.opts.listen) this.server = await this.secondary.listen(this.opts.listen);
    for (const e of this.records.entries.values()) if (e.primary) this.links.startPeers(e);
  }

  get linkPort(): number | undefined {
    return this.server?.port;
  }

  get root(): string {
    return join(this.opts.dir, 'mirrors');
  }

  private event(type: string, details: Record<string, unknown>): void {
    this.opts.event(`mirror.${type}`, details);
  }

  // ---------------------------------------------------------------------------------------------
  // The array's view: the replication layer of a LUN, and what the LUN table must refuse

  roleOf(lunId: number): LunRole | undefined {
    return this.dataPath.roleOf(lunId);
  }

  /** The host write and flush paths of the primaries, for the replication layers (src/stack). */
  get hostDataPath(): MirrorDataPath {
    return this.dataPath;
  }

  /** Why the array must refuse to delete or grow a LUN. */
  guard(lunId: number): string | undefined {
    const e = this.records.entryOfLun(lunId);
    return e ? `it is ${e.primary ? 'the primary' : 'a secondary'} image of mirror ${e.db.name} (${e.id})` : undefined;
  }

  /** Why a LUN may not be rolled back to a snapshot: a mirror image, unless a promote --from-snapshot does it. */
  rollbackGuard(lunId: number): string | undefined {
    return this.protection.rollbackAllowed(lunId) ? undefined : this.guard(lunId);
  }

  // ---------------------------------------------------------------------------------------------
  // GroupHost: what the consistency groups use of the driver

  publish(type: string, details: Record<string, unknown>): void {
    this.opts.event(type, details);
  }

  private memberInfo(e: Entry): MemberInfo {
    return {
      mirrorId: e.id,
      name: e.db.name,
      role: e.primary ? 'primary' : 'secondary',
      lunId: e.lun.id,
      size: mirrorSize(e.db),
      device: e.lun.device,
      primaryArray: primaryOf(e.db).array,
      secondaryArrays: secondariesOf(e.db).map((i) => i.array),
      epoch: e.db.epoch,
      localState: e.db.images.find((i) => i.imageId === e.localImageId)?.state ?? null,
      ...(e.db.heartbeat ? { heartbeat: e.db.heartbeat } : {}),
    };
  }

  member(mirrorId: string): MemberInfo | undefined {
    const e = this.records.entries.get(mirrorId);
    return e ? this.memberInfo(e) : undefined;
  }

  memberByName(ref: string): MemberInfo | undefined {
    const e = this.records.lookup(ref);
    return e ? this.memberInfo(e) : undefined;
  }

  peerConfig(array: string): PeerConfig | undefined {
    return this.opts.peers.find((p) => p.array === array);
  }

  async markFractures(mirrorId: string, offset: number, length: number): Promise<void> {
    const e = this.records.entries.get(mirrorId);
    if (e) await this.dataPath.markFractures(e, offset, length);
  }

  markFracturesNow(mirrorId: string, offset: number, length: number): void {
    const e = this.records.entries.get(mirrorId);
    if (e) this.dataPath.markFracturesNow(e, offset, length);
  }

  async persistFractures(mirrorId: string): Promise<void> {
    const e = this.records.entries.get(mirrorId);
    if (e) await this.dataPath.persistFractures(e);
  }

  async readSecondary(mirrorId: string, array: string, offset: number, length: number): Promise<Buffer> {
    const e = this.records.entries.get(mirrorId);
    if (!e) throw new MirrorError('not-found', `mirror ${mirrorId} has no secondary on ${array}`);
    return this.links.readSecondary(e, array, offset, length);
  }

  async clearFractures(mirrorId: string): Promise<void> {
    const e = this.records.entries.get(mirrorId);
    if (e) await this.dataPath.clearFractures(e);
  }

  async resyncDirty(mirrorId: string): Promise<void> {
    const e = this.records.entries.get(mirrorId);
    if (e) await this.resync.resyncDirty(e);
  }

  async idle(mirrorId: string): Promise<void> {
    await this.records.entries.get(mirrorId)?.primary?.idle();
  }

  inSync(mirrorId: string): boolean {
    const e = this.records.entries.get(mirrorId);
    const ps = e?.primary;
    if (!e || !ps) return false;
    return secondariesOf(e.db).every((img) => {
      const p = ps.peers.get(img.imageId);
      return p !== undefined && inSync(phaseOf(e, p));
    });
  }

  async promoteMirror(mirrorId: string, force: boolean, rolledBack?: Range[], steppedDown?: boolean): Promise<void> {
    const e = this.records.entries.get(mirrorId);
    if (!e) throw new MirrorError('not-found', `no mirror ${mirrorId} on ${this.array}`);
    if (e.primary) return; // promoted already (a retried group promote)
    await this.admin.promoteEntry(e, { force, ...(rolledBack ? { rolledBack } : {}), ...(steppedDown ? { steppedDown } : {}) });
  }

  async stepDownOldPrimary(mirrorId: string): Promise<void> {
    const e = this.records.entries.get(mirrorId);
    if (!e) throw new MirrorError('not-found', `no mirror ${mirrorId} on ${this.array}`);
    if (e.primary) return; // promoted already (a retried group promote)
    await this.admin.stepDownOldPrimary(e);
  }

  // ---------------------------------------------------------------------------------------------
  // Loading, and the primary side of a mirror

  private async load(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    for (const name of await fsp.readdir(this.root)) {
      const dir = join(this.root, name);
      if (!(await fsp.stat(dir)).isDirectory()) continue;
      const store = new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: !this.sync });
      const loaded = await store.load();
      if (!loaded.data) continue;
      const db = loadRecord(loaded.data);
      const mine = db.images.find((i) => i.array === this.array);
      const lun = mine ? this.opts.luns.lun(mine.lun) : undefined;
      if (!mine || !lun) {
        this.event('load-failed', { mirrorId: db.mirrorId, problem: mine ? `LUN ${mine.lun} of image ${mine.imageId} is not online` : 'no image on this array' });
        continue;
      }
      const e = newEntry(db, dir, store, lun, mine.imageId);
      this.records.entries.set(e.id, e);
      e.divergence = await this.secondary.openDivergence(e);
      await this.protection.open(e);
      if (mine.role === 'primary') await this.openPrimary(e, 'load');
      this.event('loaded', { mirrorId: e.id, name: db.name, role: mine.role, epoch: db.epoch, state: db.state });
    }
  }

  /** Becomes the primary side of `e` (./primary-lifecycle.ts). */
  private openPrimary(e: Entry, why: 'load' | 'create' | 'promote' | 'resolve'): Promise<void> {
    return openPrimarySide(e, why, { sync: this.sync, timers: this.timers, resync: this.resync, dataPath: this.dataPath, event: (t, d) => this.event(t, d) });
  }

  private closePrimary(e: Entry, removeFiles: boolean): Promise<void> {
    return closePrimarySide(e, removeFiles);
  }

  // ---------------------------------------------------------------------------------------------
  // Administration (MirrorControl): ./admin.ts

  list(): MirrorView[] {
    return this.admin.list();
  }
  get(ref: string): MirrorView {
    return this.admin.get(ref);
  }
  regionMap(ref: string, buckets: number): MirrorRegionMap {
    return this.admin.regionMap(ref, buckets);
  }
  create(p: CreateMirrorParams): Promise<MirrorView> {
    return this.admin.create(p);
  }
  addSecondary(ref: string, p: AddSecondaryParams): Promise<MirrorView> {
    return this.admin.addSecondary(ref, p);
  }
  removeSecondary(ref: string, image: string, p?: { force?: boolean }): Promise<MirrorView> {
    return this.admin.removeSecondary(ref, image, p);
  }
  promote(ref: string, p?: { force?: boolean; fromSnapshot?: boolean }): Promise<MirrorView> {
    return this.admin.promote(ref, p);
  }
  synchronize(ref: string, image?: string, p?: { force?: boolean; checksum?: boolean; full?: boolean }): Promise<MirrorView> {
    return this.admin.synchronize(ref, image, p);
  }
  fracture(ref: string, image?: string): Promise<MirrorView> {
    return this.admin.fracture(ref, image);
  }
  activate(ref: string): Promise<MirrorView> {
    return this.admin.activate(ref);
  }
  deactivate(ref: string, p?: { force?: boolean }): Promise<MirrorView> {
    return this.admin.deactivate(ref, p);
  }
  destroy(ref: string): Promise<void> {
    return this.admin.destroy(ref);
  }
  setAttributes(ref: string, p: ChangeAttributesParams): Promise<MirrorView> {
    return this.admin.setAttributes(ref, p);
  }
  verify(ref: string, image?: string, p?: { onProgress?: (done: number, total: number) => void }): Promise<VerifyReport> {
    return this.admin.verify(ref, image, p);
  }
  resolveSplitBrain(ref: string, p: { survivor: string }): Promise<MirrorView> {
    return this.admin.resolveSplitBrain(ref, p);
  }
  heartbeat(ref: string, p: HeartbeatParams): Promise<MirrorView> {
    return setHeartbeat(this.records, ref, p, (id) => this.groups.groupOf(id)?.record.name).then((e) => this.admin.view(e));
  }

  // ---------------------------------------------------------------------------------------------
  // Close, and whole-array power failure (two-SP arrays: the chassis calls crash and reopen)

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.secondary.stopProbe();
    await ignoreOnClose(this.server?.close(), 'closing the remote-link listener');
    if (this.suspended) return; // crash() closed every file already
    await this.groups.close();
    for (const e of this.records.entries.values()) {
      await e.serial.drained();
      const ps = e.primary;
      if (ps) {
        await Promise.race([ps.idle(), new Promise((r) => setTimeout(r, closeDrainTimeoutMs))]);
        await this.closePrimary(e, false);
      }
      await e.divergence?.file.close();
    }
  }

  /** True between `crash()` and `reopen()`: the array is without power. */
  get crashed(): boolean {
    return this.suspended;
  }

  /**
   * The array lost power: behave as if this process died. New host writes fail (the primary
   * sides are closed), links and the remote-link listener drop, resyncs stop; the write-intent
   * log is NOT cleared (no lazy clear runs), so what is on disk is what a crash leaves. Nothing
   * is pushed to the other members. `reopen()` brings everything back from disk.
   */
  async crash(): Promise<void> {
    if (this.closed || this.suspended) return;
    this.suspended = true;
    const server = this.server;
    this.server = null;
    const entries = [...this.records.entries.values()];
    for (const e of entries) {
      const ps = e.primary;
      if (!ps) continue;
      ps.closed = true;
      for (const t of ps.timers) clearInterval(t);
      for (const p of ps.peers.values()) {
        if (p.resync) p.resync.stop = true;
        const c = p.client;
        p.client = null; // its events are ignored from now on (no record change on the way down)
        c?.close();
      }
    }
    this.secondary.stopProbe();
    await ignoreOnClose(server?.close(), 'closing the remote-link listener at power loss');
    await this.groups.close({ abandon: true });
    for (const e of entries) {
      const ps = e.primary;
      if (ps) {
        for (const p of ps.peers.values()) await ignoreOnClose(p.resync?.done, `stopping the resync of ${p.imageId} at power loss`);
        for (const p of ps.peers.values()) await ignoreOnClose(p.fracture.close(), `closing the fracture log of ${p.imageId} at power loss`);
        await ignoreOnClose(ps.wilFile.close(), 'closing the write-intent log at power loss'); // marks only: flushClears() is not called
      }
      await ignoreOnClose(e.divergence?.file.close(), 'closing the divergence bitmap at power loss');
    }
    this.event('crashed', { mirrors: entries.length, detail: 'array power lost: links dropped, write-intent log kept as on disk' });
  }

  /** Power is back: reload every mirror from disk as at a start after an unclean stop. */
  async reopen(): Promise<void> {
    if (this.closed || !this.suspended) return;
    this.records.entries.clear();
    this.groups.forget();
    this.suspended = false;
    await this.start();
    this.event('reopened', { mirrors: this.records.entries.size });
  }
}
