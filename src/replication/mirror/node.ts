import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { BlockError, type BlockDevice } from '../../block/index.js';
import { MetadataStore } from '../../metadata/index.js';
import { RemoteLinkClient, RemoteLinkError, RemoteLinkServer, type LinkHandlers, type RequestContext } from '../../link/protocol/index.js';
import { crc32c, RegionBitmap } from '../../native/index.js';
import { applyOp, MirrorOpError, parseMirrorDb, primaryOf, secondariesOf, compareRecords, DEFAULT_REGION_SIZE, type MirrorDbRecord, type MirrorImage, type MirrorOp } from '../state/index.js';
import { BitmapFile } from './bitmap-file.js';
import { GroupManager, type GroupHost, type MemberInfo } from '../group/index.js';
import { MirrorLayer } from './layer.js';
import { PrimarySide, SecondaryPeer, type CopyChunk, type ResyncRun } from './primary.js';
import { RateLimiter } from './throttle.js';
import {
  DEFAULT_TIMERS,
  MirrorError,
  type AddSecondaryParams,
  type ChangeAttributesParams,
  type CreateMirrorParams,
  type ImageView,
  type MirrorControl,
  type MirrorLun,
  type MirrorNodeOptions,
  type MirrorTimers,
  type MirrorView,
  type PeerConfig,
  type VerifyReport,
} from './types.js';

/** What a demoted (former) primary keeps for the new primary: the regions it may have changed. */
interface Divergence {
  file: BitmapFile;
  /** regions of it whose writes were acknowledged to hosts (not merely in flight) */
  acknowledgedRegions: number;
  forImage: string;
}

interface SplitBrain {
  imageId: string;
  local: RegionBitmap;
  remote: RegionBitmap;
  detectedAt: string;
}

interface Entry {
  id: string;
  db: MirrorDbRecord;
  dir: string;
  store: MetadataStore<MirrorDbRecord>;
  lun: MirrorLun;
  localImageId: string;
  primary: PrimarySide | null;
  divergence: Divergence | null;
  splitBrain: SplitBrain | null;
  /** serializes changes of the record and of the roles */
  chain: Promise<unknown>;
}

const LINK_FAILURES = new Set(['closed', 'peer-dead', 'not-connected', 'timeout']);
const CHUNK_MAX = 1024 * 1024;
/**
 * Granularity of the write-intent log (at least the mirror's region size): like DRBD's activity
 * log extents, coarse enough that the regions a busy workload keeps writing stay marked between
 * lazy clears (a newly marked region costs a pwrite + fdatasync before its write), fine enough
 * that a crash resyncs only the extents written in the last moments.
 */
const WIL_EXTENT = 1024 * 1024;
const WINDOW = { low: 1, medium: 2, high: 4 } as const;
const VERIFY_BATCH_BYTES = 4 * 1024 * 1024;

const safeName = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');

/**
 * The mirror driver of one array (issue 5, 002_7ba041cd47d18dd3.txt): the mirror database records
 * of every mirror with an image here, the replication layer of each such LUN (MirrorLayer), the
 * remote-link listener that receives secondary writes and database updates, one link per
 * secondary on the primary side, the write-intent and fracture logs, resync, verify, promote and
 * split-brain handling. Every change of a record goes through `applyOp` (pure, src/replication/state),
 * is saved (two copies) and pushed to the other members.
 */
export class MirrorNode implements MirrorControl, GroupHost {
  readonly array: string;
  private readonly entries = new Map<string, Entry>();
  private server: RemoteLinkServer | null = null;
  readonly timers: MirrorTimers;
  private closed = false;
  readonly sync: boolean;
  /** consistency groups (issue 6): the asynchronous modes */
  readonly groups: GroupManager;

  private constructor(private readonly opts: MirrorNodeOptions) {
    this.array = opts.array;
    this.timers = { ...DEFAULT_TIMERS, ...opts.timers };
    this.sync = opts.sync !== false;
    this.groups = new GroupManager(this);
  }

  static async open(opts: MirrorNodeOptions): Promise<MirrorNode> {
    const node = new MirrorNode(opts);
    try {
      await node.load();
      await node.groups.load();
      if (opts.listen) await node.listen(opts.listen);
      for (const e of node.entries.values()) if (e.primary) node.startPeers(e);
    } catch (e) {
      await node.close().catch(() => undefined);
      throw e;
    }
    return node;
  }

  get remoteTimeoutMs(): number {
    return this.timers.remoteWriteTimeoutMs;
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
      size: this.mirrorSize(e.db),
      device: e.lun.device,
      primaryArray: primaryOf(e.db).array,
      secondaryArrays: secondariesOf(e.db).map((i) => i.array),
      epoch: e.db.epoch,
    };
  }

  member(mirrorId: string): MemberInfo | undefined {
    const e = this.entries.get(mirrorId);
    return e ? this.memberInfo(e) : undefined;
  }

  memberByName(ref: string): MemberInfo | undefined {
    const e = this.entries.get(ref) ?? [...this.entries.values()].find((x) => x.db.name === ref);
    return e ? this.memberInfo(e) : undefined;
  }

  peerConfig(array: string): PeerConfig | undefined {
    return this.opts.peers.find((p) => p.array === array);
  }

  async markFractures(mirrorId: string, offset: number, length: number): Promise<void> {
    const ps = this.entries.get(mirrorId)?.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) {
      p.touch(offset, length);
      p.fracture.mark(offset, length);
    }
    await Promise.all([...ps.peers.values()].map((p) => p.fracture.persist()));
  }

  markFracturesNow(mirrorId: string, offset: number, length: number): void {
    const ps = this.entries.get(mirrorId)?.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) {
      p.touch(offset, length);
      p.fracture.mark(offset, length);
    }
  }

  async persistFractures(mirrorId: string): Promise<void> {
    const ps = this.entries.get(mirrorId)?.primary;
    if (ps) await Promise.all([...ps.peers.values()].map((p) => p.fracture.persist()));
  }

  async readSecondary(mirrorId: string, array: string, offset: number, length: number): Promise<Buffer> {
    const e = this.entries.get(mirrorId);
    const p = e?.primary ? [...e.primary.peers.values()].find((x) => x.array === array) : undefined;
    if (!e || !p) throw new MirrorError('not-found', `mirror ${mirrorId} has no secondary on ${array}`);
    if (!p.client?.connected) throw new MirrorError('unreachable', `the secondary of ${e.db.name} on ${array} is not connected (${p.linkError ?? p.link})`);
    const { bin } = await p.client.request('read', { mirrorId: e.id, imageId: p.imageId, offset, length }, undefined, { timeoutMs: 60_000 });
    if (bin.length !== length) throw new MirrorError('unreachable', `read of ${length} bytes from ${array} returned ${bin.length}`);
    return bin;
  }

  async clearFractures(mirrorId: string): Promise<void> {
    const ps = this.entries.get(mirrorId)?.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) {
      p.fracture.clearAll();
      await p.fracture.persist();
    }
  }

  async resyncDirty(mirrorId: string): Promise<void> {
    const e = this.entries.get(mirrorId);
    if (!e?.primary) return;
    for (const p of e.primary.peers.values()) if (p.link === 'connected' && !p.failed) await this.exclusive(e, () => this.resyncIfDirty(e, p)).catch(() => undefined);
  }

  async idle(mirrorId: string): Promise<void> {
    await this.entries.get(mirrorId)?.primary?.idle();
  }

  inSync(mirrorId: string): boolean {
    const e = this.entries.get(mirrorId);
    const ps = e?.primary;
    if (!e || !ps) return false;
    return secondariesOf(e.db).every((img) => {
      const p = ps.peers.get(img.imageId);
      return (
        p !== undefined &&
        p.link === 'connected' &&
        !p.failed &&
        !img.fractured &&
        (img.state === 'CONSISTENT' || img.state === 'SYNCHRONIZED') &&
        !p.resync &&
        p.fracture.bitmap.countRegions() === 0
      );
    });
  }

  async promoteMirror(mirrorId: string, force: boolean): Promise<void> {
    const e = this.entries.get(mirrorId);
    if (!e) throw new MirrorError('not-found', `no mirror ${mirrorId} on ${this.array}`);
    if (e.primary) return; // promoted already (a retried group promote)
    await this.promoteEntry(e, force);
  }

  // ---------------------------------------------------------------------------------------------
  // Loading and persistence

  private async load(): Promise<void> {
    await fsp.mkdir(this.root, { recursive: true });
    for (const name of await fsp.readdir(this.root)) {
      const dir = join(this.root, name);
      if (!(await fsp.stat(dir)).isDirectory()) continue;
      const store = new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: !this.sync });
      const loaded = await store.load();
      if (!loaded.data) continue;
      const db = parseMirrorDb(loaded.data);
      const mine = db.images.find((i) => i.array === this.array);
      const lun = mine ? this.opts.luns.lun(mine.lun) : undefined;
      if (!mine || !lun) {
        this.event('load-failed', { mirrorId: db.mirrorId, problem: mine ? `LUN ${mine.lun} of image ${mine.imageId} is not online` : 'no image on this array' });
        continue;
      }
      const e: Entry = { id: db.mirrorId, db, dir, store, lun, localImageId: mine.imageId, primary: null, divergence: null, splitBrain: null, chain: Promise.resolve() };
      this.entries.set(e.id, e);
      e.divergence = await this.openDivergence(e);
      if (mine.role === 'primary') await this.openPrimary(e, 'load');
      this.event('loaded', { mirrorId: e.id, name: db.name, role: mine.role, epoch: db.epoch, state: db.state });
    }
  }

  private async openDivergence(e: Entry): Promise<Divergence | null> {
    const meta = join(e.dir, 'divergence.json');
    let info: { acknowledgedRegions: number; forImage: string };
    try {
      info = JSON.parse(await fsp.readFile(meta, 'utf8'));
    } catch {
      return null;
    }
    const { file, lost } = await BitmapFile.open(join(e.dir, 'divergence.bitmap'), e.db.images.find((i) => i.role === 'primary')!.size, e.db.regionSize, { sync: this.sync });
    if (lost) file.bitmap.mark(0, file.bitmap.lunSize);
    return { file, acknowledgedRegions: info.acknowledgedRegions, forImage: info.forImage };
  }

  private async save(e: Entry, db: MirrorDbRecord): Promise<void> {
    await e.store.save(db);
    e.db = db;
  }

  private mirrorSize(db: MirrorDbRecord): number {
    return primaryOf(db).size;
  }

  private fracturePath(e: Entry, imageId: string): string {
    return join(e.dir, `fracture-${safeName(imageId)}.bitmap`);
  }

  /**
   * Becomes the primary side of `e`: opens the write-intent log and a fracture log per
   * secondary. A write-intent log that is not empty means the last stop was not clean: its
   * regions may differ on any image, so they go into every secondary's fracture log.
   */
  private async openPrimary(e: Entry, why: 'load' | 'create' | 'promote' | 'resolve'): Promise<void> {
    if (e.primary) throw new Error(`mirror ${e.id}: primary side already open`);
    const size = this.mirrorSize(e.db);
    const rs = e.db.regionSize;
    const wil = await BitmapFile.open(join(e.dir, 'wil.bitmap'), size, Math.max(rs, WIL_EXTENT), { sync: this.sync });
    const ps = new PrimarySide(wil.file);
    const unclean = wil.lost ? size : wil.file.bitmap.dirtyBytes();
    for (const img of secondariesOf(e.db)) {
      const f = await BitmapFile.open(this.fracturePath(e, img.imageId), size, rs, { sync: this.sync });
      const peer = new SecondaryPeer(img.imageId, img.array, img.lun, f.file);
      peer.failed = true; // until connected
      if (f.lost) {
        await this.markFull(e, peer, `fracture log lost (${f.lost})`);
      } else if (f.created && why === 'load') {
        await this.markFull(e, peer, 'fracture log missing');
      }
      ps.peers.set(img.imageId, peer);
    }
    if (unclean > 0 && why === 'load') {
      for (const p of ps.peers.values()) {
        for (const r of wil.file.bitmap.runs()) p.fracture.mark(r.offset, r.length);
        p.fracture.touch();
        await p.fracture.persist();
      }
      this.event('unclean-stop', { mirrorId: e.id, regions: wil.file.bitmap.countRegions(), bytes: unclean, detail: wil.lost ?? 'write-intent log regions added to every fracture log' });
      wil.file.clearAll();
      await wil.file.persist();
    }
    e.primary = ps;
    ps.timers.push(setInterval(() => this.clearWil(e), this.timers.wilClearMs));
    ps.timers.push(setInterval(() => this.checkQuiesce(e), Math.max(50, this.timers.quiesceMs / 2)));
    ps.timers.push(setInterval(() => this.publishProgress(e), this.timers.progressMs));
    for (const t of ps.timers) t.unref();
  }

  /** Marks every allocated region of the primary for `peer` (a full synchronization). */
  private async markFull(e: Entry, peer: SecondaryPeer, reason: string): Promise<void> {
    const size = this.mirrorSize(e.db);
    let off = 0;
    let allocated = 0;
    while (off < size) {
      const ext = await e.lun.device.blockStatus(off, Math.min(size - off, 1 << 30));
      if (!ext.length) break;
      for (const x of ext) {
        if (!x.hole) {
          peer.fracture.mark(off, x.length);
          allocated += x.length;
        }
        off += x.length;
      }
    }
    // Holes of the primary are zeroed on the secondary too (a reused LUN may hold old data);
    // they go as zero requests without payload. The fracture log marks them so they are visited.
    peer.fracture.mark(0, size);
    await peer.fracture.persist();
    peer.fullReason = reason;
    this.event('full-sync-needed', { mirrorId: e.id, imageId: peer.imageId, reason, allocatedBytes: allocated, size });
  }

  private async closePrimary(e: Entry, removeFiles: boolean): Promise<void> {
    const ps = e.primary;
    if (!ps) return;
    e.primary = null;
    ps.closed = true;
    for (const t of ps.timers) clearInterval(t);
    for (const p of ps.peers.values()) {
      if (p.resync) p.resync.stop = true;
      p.client?.close();
    }
    for (const p of ps.peers.values()) await p.resync?.done.catch(() => undefined);
    for (const p of ps.peers.values()) await (removeFiles ? p.fracture.remove() : p.fracture.close());
    if (!removeFiles) {
      ps.wil.flushClears();
      ps.wilFile.touch();
    }
    await (removeFiles ? ps.wilFile.remove() : ps.wilFile.close());
  }

  // ---------------------------------------------------------------------------------------------
  // Record changes

  /** Serialized per mirror: `fn` runs after every earlier change of `e` finished. */
  private exclusive<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    const run = e.chain.then(fn);
    e.chain = run.catch(() => undefined);
    return run;
  }

  /** Applies `op` (throws MirrorError, nothing changes), saves, publishes, propagates. */
  private async change(e: Entry, op: MirrorOp, propagate = true): Promise<MirrorDbRecord> {
    let r;
    try {
      r = applyOp(e.db, op);
    } catch (err) {
      if (err instanceof MirrorOpError) throw new MirrorError(err.code === 'exists' ? 'exists' : err.code, err.message);
      throw err;
    }
    if (!r.db) throw new Error(`applyOp ${op.op} returned no record`);
    await this.save(e, r.db);
    for (const ev of r.events) {
      const { type, ...rest } = ev;
      this.event(type, rest);
    }
    this.afterChange(e);
    if (propagate) this.propagate(e);
    return r.db;
  }

  /** Best-effort: a change on an operational path must not throw into the data path. */
  private changeQuietly(e: Entry, op: MirrorOp): void {
    void this.exclusive(e, () => this.change(e, op)).catch((err) => {
      if (!(err instanceof MirrorError && err.code === 'state')) this.event('change-failed', { mirrorId: e.id, op: op.op, error: (err as Error).message });
    });
  }

  /** The record's runtime consequences on the primary side: start resyncs. */
  private afterChange(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    for (const img of secondariesOf(e.db)) {
      const p = ps.peers.get(img.imageId);
      if (!p) continue;
      if (img.state === 'SYNCHRONIZING' && !p.resync && !p.failed && p.link === 'connected') this.startResync(e, p);
      if (p.limiter) p.limiter.setRate(img.syncRate ?? e.db.syncRate);
    }
  }

  /** Pushes the record to every reachable member (the unreachable ones get it on reconnect). */
  private propagate(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) if (p.link === 'connected') void this.pushRecord(e, p).catch(() => undefined);
  }

  private async pushRecord(e: Entry, p: SecondaryPeer): Promise<void> {
    const client = p.client;
    if (!client?.connected) return;
    const { result } = await client.request('mirror-db', { mirrorId: e.id, record: e.db as unknown as Record<string, unknown> });
    if (!result.applied && result.record) await this.adoptNewer(e, result.record, `${p.array} holds a newer record`);
    else if (result.generation !== undefined) p.memberGeneration = result.generation;
  }

  /**
   * The record of a member has a higher epoch (or generation): this array's view was stale.
   * Adopting it may demote this array's primary image.
   */
  private async adoptNewer(e: Entry, raw: unknown, why: string): Promise<void> {
    const rec = parseMirrorDb(raw);
    await this.exclusive(e, async () => {
      if (compareRecords(rec, e.db) <= 0) return;
      await this.adopt(e, rec, why);
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Links to the secondaries (primary side)

  private startPeers(e: Entry): void {
    for (const p of e.primary!.peers.values()) this.connectPeer(e, p);
  }

  private connectPeer(e: Entry, p: SecondaryPeer): void {
    const cfg = this.opts.peers.find((x) => x.array === p.array);
    if (!cfg) {
      p.link = 'refused';
      p.linkError = `no remote link to array ${p.array} is configured`;
      this.noteUnreachable(e, p, p.linkError);
      return;
    }
    const client = new RemoteLinkClient({
      array: this.array,
      peer: p.array,
      secret: cfg.secret,
      host: cfg.host,
      port: cfg.port,
      mirrors: [{ mirrorId: e.id, primarySize: this.mirrorSize(e.db) }],
      reconnect: { initialMs: this.timers.reconnectInitialMs, maxMs: this.timers.reconnectMaxMs },
    });
    p.client = client;
    p.link = 'connecting';
    client.on('connected', () => {
      if (p.client !== client) return;
      void this.peerConnected(e, p).catch((err) => {
        this.event('rejoin-failed', { mirrorId: e.id, imageId: p.imageId, error: (err as Error).message });
        client.dropConnection();
      });
    });
    client.on('disconnected', (err: RemoteLinkError | null) => {
      if (p.client !== client) return;
      p.link = 'down';
      p.linkError = err?.message;
      this.peerLost(e, p, err?.message ?? 'closed');
    });
    client.on('refused', (err: RemoteLinkError) => {
      if (p.client !== client) return;
      p.link = 'refused';
      p.linkError = `${err.code}: ${err.message}`;
      this.event('link-refused', { mirrorId: e.id, imageId: p.imageId, code: err.code, error: err.message });
      this.peerLost(e, p, p.linkError);
    });
    client.on('reconnecting', () => {
      if (p.client !== client || p.link === 'refused') return;
      p.link = 'connecting';
      // an attempt failed: whatever the record says, the image cannot be reached now
      this.noteUnreachable(e, p, 'connection attempt failed');
    });
    client.start();
  }

  private peerLost(e: Entry, p: SecondaryPeer, why: string): void {
    p.failed = true;
    if (p.resync) p.resync.stop = true;
    this.noteUnreachable(e, p, why);
  }

  private noteUnreachable(e: Entry, p: SecondaryPeer, why: string): void {
    const img = e.db.images.find((i) => i.imageId === p.imageId);
    if (img && img.reachability === 'REACHABLE') {
      this.event('image-lost', { mirrorId: e.id, imageId: p.imageId, why });
      this.changeQuietly(e, { op: 'image-unreachable', imageId: p.imageId });
    }
  }

  /**
   * A secondary is connected again: give it the current record, take its unreplicated regions
   * (a former primary's write-intent and fracture logs), detect split brain, then let it resync.
   */
  private async peerConnected(e: Entry, p: SecondaryPeer): Promise<void> {
    await this.pushRecord(e, p);
    if (!e.primary || e.primary.peers.get(p.imageId) !== p) return; // demoted meanwhile
    const client = p.client!;
    const { result, bin } = await client.request('bitmap', { mirrorId: e.id, imageId: e.localImageId });
    await this.exclusive(e, async () => {
      if (!e.primary) return;
      const theirs = RegionBitmap.load(bin).bitmap;
      if (theirs.regionSize !== e.db.regionSize || theirs.lunSize !== this.mirrorSize(e.db)) throw new Error(`bitmap of ${p.imageId} has another geometry`);
      const theirRegions = theirs.countRegions();
      if (result.acknowledgedRegions > 0) {
        const ours = RegionBitmap.create(theirs.lunSize, theirs.regionSize);
        ours.union(p.fracture.bitmap);
        e.splitBrain = { imageId: p.imageId, local: ours, remote: theirs, detectedAt: new Date().toISOString() };
        p.link = 'connected';
        this.event('split-brain', {
          mirrorId: e.id,
          imageId: p.imageId,
          localRegions: ours.countRegions(),
          remoteRegions: theirRegions,
          remoteAcknowledgedRegions: result.acknowledgedRegions,
          action: 'automatic resync refused: choose the surviving side with "sanbox mirror resolve"',
        });
        const img = e.db.images.find((i) => i.imageId === p.imageId)!;
        if (img.reachability === 'UNREACHABLE') await this.change(e, { op: 'image-reachable', imageId: p.imageId });
        if (!img.fractured && e.db.images.find((i) => i.imageId === p.imageId)?.fractured === false) await this.change(e, { op: 'fracture', imageId: p.imageId }).catch(() => undefined);
        return;
      }
      if (theirRegions > 0) {
        p.fracture.bitmap.union(theirs);
        p.fracture.touch();
        await p.fracture.persist();
        this.event('rejoin-regions', { mirrorId: e.id, imageId: p.imageId, regions: theirRegions, bytes: theirs.dirtyBytes() });
      }
      p.link = 'connected';
      p.linkError = undefined;
      p.failed = false;
      const img = e.db.images.find((i) => i.imageId === p.imageId)!;
      if (img.reachability === 'UNREACHABLE') await this.change(e, { op: 'image-reachable', imageId: p.imageId });
      // A former primary waits for this check (no split brain); now it may resynchronize.
      const now = e.db.images.find((i) => i.imageId === p.imageId)!;
      if (now.fractured && now.fractureReason === 'promote' && e.db.state === 'ACTIVE') await this.change(e, { op: 'synchronize', imageId: p.imageId });
      await this.resyncIfDirty(e, p);
      this.afterChange(e);
      this.event('image-connected', { mirrorId: e.id, imageId: p.imageId });
    });
  }

  /**
   * A reachable, unfractured secondary whose fracture log is not empty must be resynchronized
   * whatever its recorded state (a host write may have missed it before the record caught up).
   */
  private async resyncIfDirty(e: Entry, p: SecondaryPeer): Promise<void> {
    const img = e.db.images.find((i) => i.imageId === p.imageId);
    if (!img || img.fractured || img.reachability !== 'REACHABLE' || e.db.state !== 'ACTIVE') return;
    if (p.fracture.bitmap.countRegions() === 0) return;
    if (img.state === 'SYNCHRONIZED') await this.change(e, { op: 'primary-write' });
    const now = e.db.images.find((i) => i.imageId === p.imageId)!;
    if (now.state === 'CONSISTENT') await this.change(e, { op: 'updates-lost', imageId: p.imageId });
    else if (now.state === 'UNSYNCHRONIZED') await this.change(e, { op: 'synchronize', imageId: p.imageId });
  }

  // ---------------------------------------------------------------------------------------------
  // The data path (primary side), called by MirrorLayer

  /** This LUN's mirror entry, if the LUN is an image of a mirror. */
  entryOfLun(lunId: number): Entry | undefined {
    for (const e of this.entries.values()) if (e.lun.id === lunId) return e;
    return undefined;
  }

  roleOf(lunId: number): { role: 'primary' | 'secondary'; allowReads: boolean; offline: boolean } | undefined {
    const e = this.entryOfLun(lunId);
    if (!e) return undefined;
    return { role: e.primary ? 'primary' : 'secondary', allowReads: e.db.allowSecondaryReads, offline: this.groups.offline(e.id) };
  }

  layer(lunId: number, device: BlockDevice): BlockDevice {
    return new MirrorLayer(this, lunId, device);
  }

  /** Why the array must refuse to delete or grow a LUN. */
  guard(lunId: number): string | undefined {
    const e = this.entryOfLun(lunId);
    return e ? `it is ${e.primary ? 'the primary' : 'a secondary'} image of mirror ${e.db.name} (${e.id})` : undefined;
  }

  private sendable(e: Entry, p: SecondaryPeer, offset: number, length: number): boolean {
    if (p.failed || p.link !== 'connected' || !p.client?.connected) return false;
    const img = e.db.images.find((i) => i.imageId === p.imageId);
    if (!img || img.fractured || img.state === 'UNSYNCHRONIZED') return false;
    return !p.fracture.bitmap.test(offset, length);
  }

  /**
   * One host write or zeroing on the primary: write-intent mark (persisted before anything is
   * written), local write ∥ every sendable secondary, and for the others a persisted fracture-log
   * mark. The host is acknowledged once all of that is in; a secondary that fails is fractured,
   * never the host write.
   */
  async hostModify(
    lunId: number,
    offset: number,
    length: number,
    local: () => Promise<void>,
    remote: (p: SecondaryPeer, e: Entry) => Promise<unknown>,
    journal: { data: Buffer | null; trim: boolean; fua?: boolean },
  ): Promise<void> {
    const e = this.entryOfLun(lunId);
    const ps = e?.primary;
    if (!e || !ps || ps.closed) throw new BlockError('EPERM', 'this LUN is no longer the primary image of its mirror');
    if (this.groups.groupOf(e.id)) {
      let route = this.groups.route(e.id);
      while (typeof route !== 'string') {
        await route;
        route = this.groups.route(e.id);
      }
      if (route === 'journal') {
        ps.begin();
        try {
          if ((await this.groups.journal(e.id, offset, length, journal.data, journal.trim, local, journal.fua === true)) === 'done') return;
        } finally {
          ps.end();
        }
        // the writelog overflowed: the group is in bypass now, and the write goes that way
      }
      if (route !== 'direct') return this.bypassModify(e, ps, offset, length, local);
    }
    ps.begin();
    const wil = ps.wil;
    let begun = false;
    try {
      const fresh = wil.bitmap.countRegions(offset, length) < regionsIn(wil.bitmap.regionSize, offset, length);
      wil.begin(offset, length);
      begun = true;
      if (fresh) {
        ps.wilFile.touch();
        await ps.wilFile.persist();
      }
      const waits: Promise<unknown>[] = [local().catch((err) => this.localFailed(e, ps, offset, length, err))];
      const marked: SecondaryPeer[] = [];
      for (const p of ps.peers.values()) {
        if (this.sendable(e, p, offset, length)) {
          p.inflight++;
          waits.push(
            remote(p, e).then(
              () => {
                p.inflight--;
              },
              (err) => {
                p.inflight--;
                return this.remoteFailed(e, p, offset, length, err);
              },
            ),
          );
        } else {
          p.touch(offset, length);
          p.fracture.mark(offset, length);
          marked.push(p);
        }
      }
      for (const p of marked) waits.push(p.fracture.persist());
      const settled = await Promise.allSettled(waits);
      const bad = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
      if (bad) throw bad.reason;
    } finally {
      if (begun) wil.end(offset, length);
      ps.end();
    }
    this.noteWrite(e, ps);
  }

  /**
   * A member write while its group is in bypass: no journal, no remote write; every secondary's
   * fracture log takes the range (marked in the same tick the route was chosen, persisted before
   * the ack) and the resync brings the secondaries back.
   */
  private async bypassModify(e: Entry, ps: PrimarySide, offset: number, length: number, local: () => Promise<void>): Promise<void> {
    ps.begin();
    try {
      for (const p of ps.peers.values()) {
        p.touch(offset, length);
        p.fracture.mark(offset, length);
      }
      const settled = await Promise.allSettled([local(), ...[...ps.peers.values()].map((p) => p.fracture.persist())]);
      const bad = settled.find((x) => x.status === 'rejected') as PromiseRejectedResult | undefined;
      if (bad) throw bad.reason;
    } finally {
      ps.end();
    }
  }

  /**
   * The local write failed while the secondaries may take it: the range may now differ on every
   * image, so it goes into every fracture log (before the host hears of the failure) and the
   * connected ones are resynchronized from it. The host gets the local error.
   */
  private async localFailed(e: Entry, ps: PrimarySide, offset: number, length: number, err: unknown): Promise<never> {
    for (const p of ps.peers.values()) {
      p.touch(offset, length);
      p.fracture.mark(offset, length);
    }
    await Promise.all([...ps.peers.values()].map((p) => p.fracture.persist()));
    this.event('local-write-failed', { mirrorId: e.id, offset, length, error: (err as Error)?.message });
    for (const p of ps.peers.values()) if (p.link === 'connected' && !p.failed) void this.exclusive(e, () => this.resyncIfDirty(e, p)).catch(() => undefined);
    throw err;
  }

  async hostFlush(lunId: number, local: () => Promise<void>): Promise<void> {
    const e = this.entryOfLun(lunId);
    const ps = e?.primary;
    if (!e || !ps) return local();
    const waits: Promise<unknown>[] = [local(), this.groups.flush(e.id)];
    for (const p of ps.peers.values()) {
      if (p.failed || p.link !== 'connected' || !p.client?.connected) continue;
      waits.push(
        p.client.request('flush', { mirrorId: e.id, imageId: p.imageId, epoch: e.db.epoch }, undefined, { timeoutMs: this.timers.remoteWriteTimeoutMs }).catch((err) => {
          // Writes it acknowledged may not be stable there: treat it like a failed write.
          p.failed = true;
          this.linkFailure(e, p, err);
        }),
      );
    }
    const settled = await Promise.allSettled(waits);
    const bad = settled.find((s) => s.status === 'rejected') as PromiseRejectedResult | undefined;
    if (bad) throw bad.reason;
  }

  private async remoteFailed(e: Entry, p: SecondaryPeer, offset: number, length: number, err: unknown): Promise<void> {
    const code = (err as RemoteLinkError)?.code;
    if (code === 'stale-epoch') {
      // A newer primary exists: this array must not acknowledge writes any more.
      void this.pushRecord(e, p).catch(() => undefined);
      throw new BlockError('EPERM', `mirror ${e.db.name}: ${p.array} holds a newer primary (epoch); this image is no longer primary`);
    }
    p.failed = true;
    p.touch(offset, length);
    p.fracture.mark(offset, length);
    await p.fracture.persist();
    this.linkFailure(e, p, err);
  }

  private linkFailure(e: Entry, p: SecondaryPeer, err: unknown): void {
    const code = (err as RemoteLinkError)?.code ?? 'io';
    if (p.resync) p.resync.stop = true;
    this.event('remote-write-failed', { mirrorId: e.id, imageId: p.imageId, code, error: (err as Error)?.message });
    this.noteUnreachable(e, p, `${code}: ${(err as Error)?.message}`);
    // A connection that is still up (timeout, an error of the secondary) is dropped so the
    // image comes back through the reconnect path (record push, bitmap exchange, resync).
    if (!LINK_FAILURES.has(code) || code === 'timeout') p.client?.dropConnection();
  }

  private noteWrite(e: Entry, ps: PrimarySide): void {
    ps.lastWriteAt = performance.now();
    if (ps.wroteSinceQuiesce) return;
    ps.wroteSinceQuiesce = true;
    if (e.db.state === 'ACTIVE' && secondariesOf(e.db).some((i) => i.state === 'SYNCHRONIZED')) this.changeQuietly(e, { op: 'primary-write' });
  }

  private checkQuiesce(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    // A connected, unfractured secondary whose fracture log holds regions with no resync running
    // (e.g. marked by a failed local write, or left by a group's bypass) is resynchronized.
    for (const p of ps.peers.values()) {
      const img = e.db.images.find((i) => i.imageId === p.imageId);
      if (!img || p.resync || p.failed || p.link !== 'connected' || img.fractured || img.state === 'SYNCHRONIZING' || e.db.state !== 'ACTIVE') continue;
      if (p.fracture.bitmap.countRegions() > 0 && this.groups.route(e.id) === 'direct') void this.exclusive(e, () => this.resyncIfDirty(e, p)).catch(() => undefined);
    }
    if (!ps.wroteSinceQuiesce || ps.inflight > 0) return;
    if (performance.now() - ps.lastWriteAt < this.timers.quiesceMs) return;
    ps.wroteSinceQuiesce = false;
    if (e.db.state !== 'ACTIVE') return;
    for (const img of secondariesOf(e.db)) {
      const p = ps.peers.get(img.imageId);
      if (!p || img.state !== 'CONSISTENT' || img.fractured || img.reachability !== 'REACHABLE' || p.failed || p.resync) continue;
      if (p.fracture.bitmap.countRegions() > 0) continue;
      this.changeQuietly(e, { op: 'quiesced', imageId: img.imageId });
    }
  }

  private clearWil(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    if (ps.wil.flushClears() > 0) {
      ps.wilFile.touch();
      void ps.wilFile.persist().catch((err) => this.event('bitmap-write-failed', { mirrorId: e.id, file: 'wil', error: (err as Error).message }));
    }
    for (const p of ps.peers.values())
      if (p.fracture.pendingWrite && !p.resync) void p.fracture.persist().catch((err) => this.event('bitmap-write-failed', { mirrorId: e.id, file: p.imageId, error: (err as Error).message }));
  }

  // ---------------------------------------------------------------------------------------------
  // Resync

  private startResync(e: Entry, p: SecondaryPeer): void {
    const img = e.db.images.find((i) => i.imageId === p.imageId)!;
    const bytesTotal = p.fracture.bitmap.dirtyBytes();
    const run: ResyncRun = {
      full: p.fullReason !== null,
      reason: p.fullReason ?? 'fracture log',
      bytesTotal,
      bytesDone: 0,
      bytesCopied: 0,
      bytesZeroed: 0,
      startedAt: Date.now(),
      lastRateAt: performance.now(),
      lastRateBytes: 0,
      rate: 0,
      stop: false,
      done: Promise.resolve(),
    };
    p.resync = run;
    p.limiter = new RateLimiter(img.syncRate ?? e.db.syncRate);
    this.event('resync-started', { mirrorId: e.id, imageId: p.imageId, full: run.full, reason: run.reason, bytesTotal, regions: p.fracture.bitmap.countRegions(), rate: p.limiter.bytesPerSecond });
    run.done = this.resyncLoop(e, p, run).then(
      async (finished) => {
        p.resync = null;
        if (!finished) {
          this.event('resync-stopped', { mirrorId: e.id, imageId: p.imageId, bytesDone: run.bytesDone, bytesLeft: p.fracture.bitmap.dirtyBytes() });
          return;
        }
        p.fullReason = null;
        await p.fracture.persist();
        this.event('resync-done', { mirrorId: e.id, imageId: p.imageId, full: run.full, bytesDone: run.bytesDone, bytesCopied: run.bytesCopied, bytesZeroed: run.bytesZeroed, seconds: (Date.now() - run.startedAt) / 1000 });
        await this.exclusive(e, () => this.change(e, { op: 'sync-done', imageId: p.imageId })).catch((err) => this.event('change-failed', { mirrorId: e.id, op: 'sync-done', error: (err as Error).message }));
      },
      (err) => {
        p.resync = null;
        this.event('resync-stopped', { mirrorId: e.id, imageId: p.imageId, error: (err as Error).message });
      },
    );
  }

  /** Copies marked regions in chunks, `WINDOW[priority]` at a time, until the fracture log is empty. */
  private async resyncLoop(e: Entry, p: SecondaryPeer, run: ResyncRun): Promise<boolean> {
    const size = this.mirrorSize(e.db);
    const rs = e.db.regionSize;
    const chunkMax = Math.max(rs, Math.floor(CHUNK_MAX / rs) * rs);
    let cursor = 0;
    let failure: unknown = null;
    const stopped = () => run.stop || failure !== null || p.failed || !e.primary || e.db.images.find((i) => i.imageId === p.imageId)?.state !== 'SYNCHRONIZING';
    const nextChunk = (): CopyChunk | null => {
      for (let pass = 0; pass < 2; pass++) {
        let from = cursor;
        for (;;) {
          const run = from < size ? p.fracture.bitmap.nextDirtyRun(from) : null;
          if (!run) break;
          // skip what is on the wire already
          const busy = [...p.copying].find((c) => run.offset < c.offset + c.length && c.offset < run.offset + run.length);
          if (busy) {
            from = busy.offset + busy.length;
            continue;
          }
          const c = { offset: run.offset, length: Math.min(run.length, chunkMax), touched: false };
          cursor = c.offset + c.length;
          return c;
        }
        cursor = 0;
      }
      return null;
    };
    // In flight: up to `width` MiB of chunks (scattered regions make small chunks: many of them
    // may be on the wire at once, or a link round trip would cap the rate at width x 64 KiB).
    const budget = (WINDOW[e.db.syncPriority] ?? 2) * chunkMax;
    let used = 0;
    const waiting: Array<() => void> = [];
    const worker = async (): Promise<void> => {
      while (!stopped()) {
        while (used >= budget && !stopped()) await new Promise<void>((r) => waiting.push(r));
        const c = stopped() ? null : nextChunk();
        if (!c) {
          for (const w of waiting.splice(0)) w(); // nothing left to take: let the others see it too
          return;
        }
        p.copying.add(c);
        used += c.length;
        try {
          if (!(await this.copyChunk(e, p, run, c, stopped))) {
            for (const w of waiting.splice(0)) w();
            return;
          }
          if (!c.touched) p.fracture.clear(c.offset, c.length);
          run.bytesDone += c.length;
        } catch (err) {
          failure ??= err;
        } finally {
          p.copying.delete(c);
          used -= c.length;
          waiting.shift()?.();
        }
      }
    };
    const img = e.db.images.find((i) => i.imageId === p.imageId);
    const width = (WINDOW[e.db.syncPriority] ?? 2) * 16;
    for (;;) {
      await Promise.all(Array.from({ length: width }, worker));
      if (failure !== null) {
        await this.remoteFailedQuiet(e, p, failure);
        return false;
      }
      if (stopped()) return false;
      // Chunks that were touched during their copy are marked again; go round once more.
      if (p.fracture.bitmap.countRegions() === 0) return img !== undefined;
    }
  }

  private async remoteFailedQuiet(e: Entry, p: SecondaryPeer, err: unknown): Promise<void> {
    if ((err as RemoteLinkError)?.code === 'stale-epoch') {
      void this.pushRecord(e, p).catch(() => undefined);
      return;
    }
    p.failed = true;
    this.linkFailure(e, p, err);
  }

  /**
   * Copies one chunk: data runs as writes (throttled), holes and zero runs as zero requests
   * (no payload, not throttled: they do not load the link). False when stopped while throttled.
   */
  private async copyChunk(e: Entry, p: SecondaryPeer, run: ResyncRun, c: CopyChunk, stopped: () => boolean): Promise<boolean> {
    const client = p.client!;
    const dev = e.lun.device;
    let off = c.offset;
    const end = c.offset + c.length;
    const ext = await dev.blockStatus(c.offset, c.length);
    const t = this.timers.remoteWriteTimeoutMs * 2;
    for (const x of ext) {
      if (off >= end) break;
      const len = Math.min(x.length, end - off);
      if (x.hole || x.zero) {
        await client.request('zero', { mirrorId: e.id, imageId: p.imageId, offset: off, length: len, trim: x.hole, epoch: e.db.epoch }, undefined, { timeoutMs: t });
        run.bytesZeroed += len;
      } else {
        if (!(await p.limiter!.take(len, stopped))) return false;
        const data = await dev.read(off, len);
        await client.request('write', { mirrorId: e.id, imageId: p.imageId, offset: off, flags: { resync: true }, epoch: e.db.epoch }, data, { timeoutMs: t });
        run.bytesCopied += len;
      }
      off += len;
    }
    if (off < end) throw new Error(`block status of ${c.offset}+${c.length} covered only up to ${off}`);
    return true;
  }

  private publishProgress(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) {
      const r = p.resync;
      if (!r) continue;
      const now = performance.now();
      const dt = (now - r.lastRateAt) / 1000;
      if (dt > 0) r.rate = (r.bytesDone - r.lastRateBytes) / dt;
      r.lastRateAt = now;
      r.lastRateBytes = r.bytesDone;
      r.bytesTotal = r.bytesDone + p.fracture.bitmap.dirtyBytes();
      const v = p.resyncView()!;
      this.event('resync-progress', { mirrorId: e.id, imageId: p.imageId, ...v });
      const img = e.db.images.find((i) => i.imageId === p.imageId);
      if (img?.state === 'SYNCHRONIZING') this.changeQuietly(e, { op: 'sync-progress', imageId: p.imageId, bytesDone: Math.min(r.bytesDone, r.bytesTotal), bytesTotal: r.bytesTotal });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // The remote-link listener (secondary side)

  private async listen(l: { bind: string; port: number }): Promise<void> {
    const handlers: LinkHandlers = {
      write: (args, bin, ctx) => {
        const e = this.secondaryEntry(args.mirrorId, args.imageId, ctx, args.epoch);
        if (args.offset + bin.length > e.lun.size) throw new RemoteLinkError('bad-request', `write ${args.offset}+${bin.length} beyond the image (${e.lun.size} bytes)`);
        return e.lun.device.write(args.offset, bin, { fua: args.flags?.fua === true }).then(() => ({ result: { mirrorId: e.id, imageId: args.imageId, offset: args.offset, length: bin.length } }));
      },
      zero: (args, _bin, ctx) => {
        const e = this.secondaryEntry(args.mirrorId, args.imageId, ctx, args.epoch);
        if (args.offset + args.length > e.lun.size) throw new RemoteLinkError('bad-request', `zero ${args.offset}+${args.length} beyond the image (${e.lun.size} bytes)`);
        const dev = e.lun.device;
        const done = args.trim && dev.capabilities.trim ? dev.trim(args.offset, args.length) : dev.writeZeroes(args.offset, args.length, { noHole: false });
        return done.then(() => ({ result: { mirrorId: e.id, imageId: args.imageId, offset: args.offset, length: args.length } }));
      },
      flush: (args, _bin, ctx) => {
        const e = this.secondaryEntry(args.mirrorId, args.imageId, ctx, args.epoch);
        return e.lun.device.flush().then(() => ({ result: {} }));
      },
      'read-regions': async (args) => {
        const e = this.entries.get(args.mirrorId);
        if (!e || e.localImageId !== args.imageId) throw new RemoteLinkError('wrong-mirror', `no image ${args.imageId} of mirror ${args.mirrorId} on ${this.array}`);
        if (args.regionSize !== e.db.regionSize) throw new RemoteLinkError('bad-request', `region size ${args.regionSize}, the mirror's is ${e.db.regionSize}`);
        const checksums: Array<{ region: number; crc: number }> = [];
        let count = 0;
        for (const [first, n] of args.regions) {
          count += n;
          if (count > 4096) throw new RemoteLinkError('bad-request', 'at most 4096 regions per request');
          checksums.push(...(await regionCrcs(e.lun.device, this.mirrorSize(e.db), args.regionSize, first, n)));
        }
        return { result: { regionSize: args.regionSize, checksums } };
      },
      'mirror-db': (args, _bin, ctx) => this.receiveRecord(args.mirrorId, args.record, ctx),
      bitmap: (args) => this.answerBitmap(args.mirrorId, args.imageId),
      read: async (args) => {
        const e = this.entries.get(args.mirrorId);
        if (!e || e.localImageId !== args.imageId) throw new RemoteLinkError('wrong-mirror', `no image ${args.imageId} of mirror ${args.mirrorId} on ${this.array}`);
        if (e.primary) throw new RemoteLinkError('stale-epoch', `image ${args.imageId} is a primary: read it through NBD`);
        if (args.offset + args.length > this.mirrorSize(e.db)) throw new RemoteLinkError('bad-request', `read ${args.offset}+${args.length} beyond the image`);
        return { result: {}, bin: await e.lun.device.read(args.offset, args.length) };
      },
      ...this.groups.handlers(),
      'lun-info': (args) => {
        const lun = this.opts.luns.lun(args.lun);
        if (!lun) throw new RemoteLinkError('not-found', `array ${this.array} has no LUN ${JSON.stringify(args.lun)}`);
        return { result: { id: lun.id, name: lun.name, size: lun.size, blockSize: lun.blockSize, mirrorId: this.entryOfLun(lun.id)?.id ?? null } };
      },
    };
    const server = new RemoteLinkServer({
      array: this.array,
      peers: this.opts.peers.map((p) => ({ array: p.array, secret: p.secret })),
      mirrorFor: (mirrorId) => {
        const e = this.entries.get(mirrorId);
        return e ? { secondarySize: e.lun.size } : undefined;
      },
      handlers,
    });
    server.on('refused', ({ remote, error }: { remote: string; error: RemoteLinkError }) => this.event('link-refused', { remote, code: error.code, error: error.message }));
    server.on('session', (s: { peerArray: string }) => this.event("link-session", { peer: s.peerArray }));
    await server.listen(l.port, l.bind);
    this.server = server;
  }

  /** The local secondary image a data request addresses, checked against sender and epoch. */
  private secondaryEntry(mirrorId: string, imageId: string, ctx: RequestContext, epoch: number | undefined): Entry {
    const e = this.entries.get(mirrorId);
    if (!e || e.localImageId !== imageId) throw new RemoteLinkError('wrong-mirror', `no image ${imageId} of mirror ${mirrorId} on ${this.array}`);
    if (e.primary) throw new RemoteLinkError('stale-epoch', `image ${imageId} is the primary of mirror ${e.db.name} (epoch ${e.db.epoch}); writes from ${ctx.session.peerArray} refused`);
    if (epoch === undefined || epoch < e.db.epoch) throw new RemoteLinkError('stale-epoch', `write with epoch ${epoch}, mirror ${e.db.name} is at epoch ${e.db.epoch}`);
    if (epoch > e.db.epoch) throw new RemoteLinkError('stale-record', `write with epoch ${epoch}, this array knows epoch ${e.db.epoch}: send the record first`);
    const primary = primaryOf(e.db);
    if (primary.array !== ctx.session.peerArray) throw new RemoteLinkError('stale-epoch', `${ctx.session.peerArray} is not the primary of mirror ${e.db.name} (${primary.array} is)`);
    return e;
  }

  private receiveRecord(mirrorId: string, raw: Record<string, unknown>, ctx: RequestContext): Promise<{ result: { applied: boolean; generation?: number; record?: Record<string, unknown> } }> {
    let rec: MirrorDbRecord;
    try {
      rec = parseMirrorDb(raw);
    } catch (err) {
      throw new RemoteLinkError('bad-request', (err as Error).message);
    }
    if (rec.mirrorId !== mirrorId) throw new RemoteLinkError('bad-request', `record of mirror ${rec.mirrorId} sent as ${mirrorId}`);
    if (!rec.images.some((i) => i.array === ctx.session.peerArray)) throw new RemoteLinkError('bad-request', `${ctx.session.peerArray} is not a member of mirror ${rec.name}`);
    const e = this.entries.get(mirrorId);
    if (!e) return this.join(rec).then(() => ({ result: { applied: true, generation: rec.generation } }));
    return this.exclusive(e, async () => {
      const cmp = compareRecords(rec, e.db);
      if (cmp < 0) return { result: { applied: false, generation: e.db.generation, record: e.db as unknown as Record<string, unknown> } };
      if (cmp === 0) return { result: { applied: true, generation: e.db.generation } };
      await this.adopt(e, rec, `record from ${ctx.session.peerArray}`);
      return { result: { applied: true, generation: rec.generation } };
    });
  }

  /** This array is added to a mirror as a secondary (the primary pushed the record). */
  private async join(rec: MirrorDbRecord): Promise<void> {
    const mine = rec.images.find((i) => i.array === this.array);
    if (!mine) return;
    if (mine.role !== 'secondary') throw new RemoteLinkError('bad-request', `a new mirror cannot make ${this.array} its primary`);
    const lun = this.opts.luns.lun(mine.lun);
    if (!lun) throw new RemoteLinkError('not-found', `array ${this.array} has no LUN ${mine.lun}`);
    const other = this.entryOfLun(lun.id);
    if (other) throw new RemoteLinkError('exists', `LUN ${lun.name} of ${this.array} is already an image of mirror ${other.db.name}`);
    if (lun.size < this.mirrorSize(rec)) throw new RemoteLinkError('size-mismatch', `LUN ${lun.name} of ${this.array} (${lun.size} bytes) is smaller than the primary (${this.mirrorSize(rec)} bytes)`);
    const dir = join(this.root, safeName(rec.mirrorId));
    await fsp.mkdir(dir, { recursive: true });
    const store = new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: !this.sync });
    await store.load();
    await store.save(rec);
    const e: Entry = { id: rec.mirrorId, db: rec, dir, store, lun, localImageId: mine.imageId, primary: null, divergence: null, splitBrain: null, chain: Promise.resolve() };
    this.entries.set(e.id, e);
    this.event('joined', { mirrorId: e.id, name: rec.name, imageId: mine.imageId, lun: lun.id, primary: primaryOf(rec).imageId });
  }

  /** Takes a newer record; the local image may change role. Runs inside `exclusive(e)`. */
  private async adopt(e: Entry, rec: MirrorDbRecord, why: string): Promise<void> {
    const mine = rec.images.find((i) => i.array === this.array);
    if (!mine) {
      // removed from the mirror
      await this.closePrimary(e, true);
      await this.dropDivergence(e);
      this.entries.delete(e.id);
      await fsp.rm(e.dir, { recursive: true, force: true });
      this.event('left', { mirrorId: e.id, name: rec.name, why });
      return;
    }
    const wasPrimary = e.primary !== null;
    if (wasPrimary && mine.role === 'secondary') await this.demote(e, rec);
    await this.save(e, rec);
    e.localImageId = mine.imageId;
    this.event('record-adopted', { mirrorId: e.id, generation: rec.generation, epoch: rec.epoch, role: mine.role, why });
    if (!wasPrimary && mine.role === 'primary') {
      await this.openPrimary(e, 'resolve');
      this.startPeers(e);
      this.event('became-primary', { mirrorId: e.id, imageId: mine.imageId, epoch: rec.epoch, why });
    }
    if (mine.role === 'secondary' && e.divergence && !mine.fractured) await this.dropDivergence(e);
    if (wasPrimary !== (mine.role === 'primary')) void this.groups.membersChanged(e.id).catch((err) => this.event('change-failed', { mirrorId: e.id, op: 'group role', error: (err as Error).message }));
  }

  /**
   * This array's primary image was superseded. Waits for the host writes in flight, keeps the
   * regions the new primary may lack (write-intent log, and the new primary's fracture log here:
   * writes acknowledged to hosts that never reached it), and stops acting as primary.
   */
  private async demote(e: Entry, rec: MirrorDbRecord): Promise<void> {
    const ps = e.primary!;
    ps.closed = true; // no new host write starts
    await Promise.race([ps.idle(), new Promise((r) => setTimeout(r, 10_000))]);
    const newPrimary = primaryOf(rec).imageId;
    const size = this.mirrorSize(rec);
    const { file } = await BitmapFile.open(join(e.dir, 'divergence.bitmap'), size, rec.regionSize, { sync: this.sync });
    if (e.divergence) file.bitmap.union(e.divergence.file.bitmap);
    for (const r of ps.wil.bitmap.runs()) file.bitmap.mark(r.offset, r.length);
    const peer = ps.peers.get(newPrimary);
    // Writes acknowledged here that the new primary lacks: its fracture log, and in the
    // asynchronous modes the group's journal records it never applied.
    const pending = RegionBitmap.create(size, rec.regionSize);
    if (peer) pending.union(peer.fracture.bitmap);
    for (const r of this.groups.pendingOf(e.id)) pending.mark(r.offset, r.length);
    const acknowledged = pending.countRegions();
    file.bitmap.union(pending);
    file.touch();
    await file.persist();
    await fsp.writeFile(join(e.dir, 'divergence.json'), JSON.stringify({ acknowledgedRegions: acknowledged, forImage: newPrimary }));
    await e.divergence?.file.close();
    e.divergence = { file, acknowledgedRegions: acknowledged, forImage: newPrimary };
    await this.closePrimary(e, true);
    this.event('demoted', { mirrorId: e.id, imageId: e.localImageId, newPrimary, epoch: rec.epoch, divergentRegions: file.bitmap.countRegions(), acknowledgedRegions: acknowledged });
  }

  private async dropDivergence(e: Entry): Promise<void> {
    if (!e.divergence) return;
    await e.divergence.file.remove();
    await fsp.rm(join(e.dir, 'divergence.json'), { force: true });
    e.divergence = null;
  }

  private answerBitmap(mirrorId: string, _imageId: string): Promise<{ result: { regionSize: number; lunSize: number; epoch: number; acknowledgedRegions: number }; bin: Buffer }> {
    const e = this.entries.get(mirrorId);
    if (!e) throw new RemoteLinkError('wrong-mirror', `no mirror ${mirrorId} on ${this.array}`);
    return this.exclusive(e, async () => {
      const size = this.mirrorSize(e.db);
      const bm = e.divergence?.file.bitmap ?? RegionBitmap.create(size, e.db.regionSize);
      return { result: { regionSize: e.db.regionSize, lunSize: size, epoch: e.db.epoch, acknowledgedRegions: e.divergence?.acknowledgedRegions ?? 0 }, bin: bm.serialize(0) };
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Administration (MirrorControl)

  private find(ref: string): Entry {
    const e = this.entries.get(ref) ?? [...this.entries.values()].find((x) => x.db.name === ref);
    if (!e) throw new MirrorError('not-found', `array ${this.array} has no mirror ${JSON.stringify(ref)}`);
    return e;
  }

  private needPrimary(e: Entry, what: string): PrimarySide {
    if (!e.primary) throw new MirrorError('not-primary', `${what} goes to the primary of mirror ${e.db.name}: ${primaryOf(e.db).array} (this array holds a secondary image)`);
    return e.primary;
  }

  private imageRef(e: Entry, ref: string): MirrorImage {
    const img = e.db.images.find((i) => i.imageId === ref) ?? e.db.images.filter((i) => i.array === ref)[0];
    if (!img) throw new MirrorError('not-found', `mirror ${e.db.name} has no image ${JSON.stringify(ref)} (give an image id like ${e.db.images[0]!.imageId} or an array name)`);
    return img;
  }

  private view(e: Entry): MirrorView {
    const ps = e.primary;
    const images: ImageView[] = e.db.images.map((img) => {
      const p = ps?.peers.get(img.imageId);
      const v: ImageView = {
        ...img,
        link: img.imageId === e.localImageId ? 'local' : p ? p.link : 'down',
        ...(p?.linkError ? { linkError: p.linkError } : {}),
        fractureLog: p ? { regions: p.fracture.bitmap.countRegions(), bytes: p.fracture.bitmap.dirtyBytes() } : null,
        resync: p?.resyncView() ?? null,
        recordGeneration: img.imageId === e.localImageId ? e.db.generation : (p?.memberGeneration ?? null),
      };
      if (e.splitBrain && e.splitBrain.imageId === img.imageId) v.splitBrain = { local: summarize(e.splitBrain.local), remote: summarize(e.splitBrain.remote) };
      return v;
    });
    return {
      record: structuredClone(e.db),
      local: { imageId: e.localImageId, role: ps ? 'primary' : 'secondary', lun: e.lun.id, lunName: e.lun.name },
      images,
      writeIntentLog: ps ? { regions: ps.wil.bitmap.countRegions(), bytes: ps.wil.bitmap.dirtyBytes(), inFlight: ps.inflight } : null,
      splitBrain: e.splitBrain !== null,
    };
  }

  list(): MirrorView[] {
    return [...this.entries.values()].map((e) => this.view(e));
  }

  get(ref: string): MirrorView {
    return this.view(this.find(ref));
  }

  async create(p: CreateMirrorParams): Promise<MirrorView> {
    const lun = this.opts.luns.lun(p.lun);
    if (!lun) throw new MirrorError('not-found', `array ${this.array} has no LUN ${JSON.stringify(p.lun)}`);
    const other = this.entryOfLun(lun.id);
    if (other) throw new MirrorError('exists', `LUN ${lun.name} is already an image of mirror ${other.db.name}`);
    const name = p.name ?? lun.name;
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw new MirrorError('invalid', `mirror name ${JSON.stringify(name)}: use 1-64 letters, digits, dot, dash, underscore`);
    if ([...this.entries.values()].some((x) => x.db.name === name)) throw new MirrorError('exists', `array ${this.array} already has a mirror named ${name}`);
    const regionSize = p.regionSize ?? DEFAULT_REGION_SIZE;
    if (!Number.isSafeInteger(regionSize) || regionSize < 4096 || regionSize > 64 * 1024 * 1024 || (regionSize & (regionSize - 1)) !== 0)
      throw new MirrorError('invalid', `region size ${regionSize}: a power of two from 4 KiB to 64 MiB`);
    if (p.attributes?.writePolicy && p.attributes.writePolicy !== 'synchronous')
      throw new MirrorError('invalid', `write policy ${p.attributes.writePolicy}: this build replicates synchronously only (the asynchronous modes come with consistency groups)`);
    const mirrorId = `${name}-${randomBytes(4).toString('hex')}`;
    let r;
    try {
      r = applyOp(null, { op: 'create', mirrorId, name, primary: { imageId: `${this.array}:${lun.id}`, array: this.array, lun: lun.id, size: lun.size }, attributes: p.attributes, regionSize });
    } catch (err) {
      if (err instanceof MirrorOpError) throw new MirrorError(err.code, err.message);
      throw err;
    }
    const dir = join(this.root, safeName(mirrorId));
    await fsp.mkdir(dir, { recursive: true });
    const store = new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: !this.sync });
    await store.load();
    await store.save(r.db!);
    const e: Entry = { id: mirrorId, db: r.db!, dir, store, lun, localImageId: `${this.array}:${lun.id}`, primary: null, divergence: null, splitBrain: null, chain: Promise.resolve() };
    await this.openPrimary(e, 'create');
    this.entries.set(mirrorId, e);
    this.event('created', { mirrorId, name, lun: lun.id, lunName: lun.name, regionSize, size: lun.size });
    return this.view(e);
  }

  /** A one-shot link to `array` for requests outside any negotiated mirror. */
  private async withControlLink<T>(array: string, fn: (c: RemoteLinkClient) => Promise<T>): Promise<T> {
    const cfg = this.opts.peers.find((x) => x.array === array);
    if (!cfg) throw new MirrorError('invalid', `array ${this.array} has no remote link to array ${array} (configure it in the lab file)`);
    const c = new RemoteLinkClient({ array: this.array, peer: array, secret: cfg.secret, host: cfg.host, port: cfg.port, mirrors: [], reconnect: false });
    try {
      await c.connect();
    } catch (err) {
      const le = err as RemoteLinkError;
      throw new MirrorError(le.code === 'auth-failed' || le.code === 'wrong-peer' ? 'refused' : 'unreachable', `remote link to ${array}: ${le.code}: ${le.message}`);
    }
    try {
      return await fn(c);
    } catch (err) {
      if (err instanceof RemoteLinkError) {
        const code = err.code === 'size-mismatch' ? 'size-mismatch' : err.code === 'not-found' ? 'not-found' : err.code === 'exists' ? 'exists' : LINK_FAILURES.has(err.code) ? 'unreachable' : 'refused';
        throw new MirrorError(code, `${array}: ${err.message}`);
      }
      throw err;
    } finally {
      c.close();
    }
  }

  addSecondary(ref: string, p: AddSecondaryParams): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'add-secondary');
      if (p.array === this.array) throw new MirrorError('invalid', `a secondary must be on another array than the primary (${this.array})`);
      await this.withControlLink(p.array, async (c) => {
        const { result: info } = await c.request('lun-info', { lun: p.lun });
        if (info.mirrorId) throw new MirrorError('exists', `LUN ${info.name} of ${p.array} is already an image of mirror ${info.mirrorId}`);
        let r;
        try {
          r = applyOp(e.db, { op: 'add-secondary', image: { imageId: `${p.array}:${info.id}`, array: p.array, lun: info.id, size: info.size }, initialState: p.synchronized ? 'SYNCHRONIZED' : 'UNSYNCHRONIZED', recoveryPolicy: p.recoveryPolicy });
          if (p.syncRate !== undefined) r = applyOp(r.db, { op: 'change-attributes', image: { imageId: `${p.array}:${info.id}`, syncRate: p.syncRate } });
        } catch (err) {
          if (err instanceof MirrorOpError) throw new MirrorError(err.code, err.message);
          throw err;
        }
        const db = r.db!;
        const img = db.images.find((i) => i.imageId === `${p.array}:${info.id}`)!;
        img.size = this.mirrorSize(db); // the mirror's extent is the primary's size
        // The member must accept before anything changes here (it checks LUN, size, membership).
        await c.request('mirror-db', { mirrorId: e.id, record: db as unknown as Record<string, unknown> });
        const f = await BitmapFile.open(this.fracturePath(e, img.imageId), this.mirrorSize(db), db.regionSize, { sync: this.sync });
        const peer = new SecondaryPeer(img.imageId, img.array, img.lun, f.file);
        peer.failed = true;
        f.file.clearAll();
        if (!p.synchronized) await this.markFull(e, peer, 'new secondary: initial synchronization');
        else await f.file.persist();
        ps.peers.set(img.imageId, peer);
        await this.save(e, db);
        this.event('image-added', { mirrorId: e.id, imageId: img.imageId, state: img.state, lun: info.id, lunName: info.name });
        this.connectPeer(e, peer);
      });
      return this.view(e);
    });
  }

  removeSecondary(ref: string, image: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'remove-secondary');
      const img = this.imageRef(e, image);
      const peer = ps.peers.get(img.imageId);
      const db = await this.change(e, { op: 'remove-secondary', imageId: img.imageId, mode: p.force ? 'forced' : 'graceful' }, false);
      if (peer) {
        if (peer.resync) peer.resync.stop = true;
        // graceful: let its outstanding writes finish, then tell it it left the mirror
        const deadline = Date.now() + 10_000;
        while (!p.force && peer.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        if (peer.client?.connected) await peer.client.request('mirror-db', { mirrorId: e.id, record: db as unknown as Record<string, unknown> }).catch(() => undefined);
        ps.peers.delete(img.imageId);
        peer.client?.close();
        await peer.resync?.done.catch(() => undefined);
        await peer.fracture.remove();
      }
      if (e.splitBrain?.imageId === img.imageId) e.splitBrain = null;
      this.propagate(e);
      return this.view(e);
    });
  }

  async promote(ref: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    const e = this.find(ref);
    const g = this.groups.groupOf(e.id);
    if (g) throw new MirrorError('state', `mirror ${e.db.name} belongs to consistency group ${g.record.name}: promote the group (its members move together)`);
    return this.promoteEntry(e, p.force === true).then(() => this.view(e));
  }

  private promoteEntry(e: Entry, force: boolean): Promise<void> {
    const p = { force };
    return this.exclusive(e, async () => {
      if (e.primary) throw new MirrorError('state', `image ${e.localImageId} is already the primary of mirror ${e.db.name}`);
      const oldPrimary = primaryOf(e.db).imageId;
      await this.change(e, { op: 'promote', imageId: e.localImageId, force: p.force === true }, false);
      await this.dropDivergence(e);
      await this.openPrimary(e, 'promote');
      const ps = e.primary!;
      for (const img of secondariesOf(e.db)) {
        const peer = ps.peers.get(img.imageId)!;
        peer.fracture.clearAll();
        // Other secondaries: the new primary cannot know which of their regions differ from it.
        if (img.imageId !== oldPrimary && img.state === 'UNSYNCHRONIZED') await this.markFull(e, peer, `promotion of ${e.localImageId}: no bitmap relates this image to the new primary`);
        else await peer.fracture.persist();
      }
      this.event('became-primary', { mirrorId: e.id, imageId: e.localImageId, epoch: e.db.epoch, forced: p.force === true, oldPrimary });
      this.startPeers(e);
    });
  }

  synchronize(ref: string, image?: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'synchronize');
      const targets = image ? [this.imageRef(e, image)] : secondariesOf(e.db).filter((i) => i.fractured || i.state === 'UNSYNCHRONIZED' || i.state === 'CONSISTENT');
      if (!targets.length) throw new MirrorError('state', `mirror ${e.db.name}: no secondary needs synchronizing`);
      for (const img of targets) {
        if (e.splitBrain?.imageId === img.imageId) throw new MirrorError('split-brain', `image ${img.imageId} diverged (split brain): choose the survivor with "sanbox mirror resolve ${e.db.name} --survivor ARRAY"`);
        const peer = ps.peers.get(img.imageId);
        if (peer && peer.link !== 'connected') throw new MirrorError('unreachable', `image ${img.imageId} is not connected (${peer.linkError ?? peer.link})`);
        if (peer && img.state === 'SYNCHRONIZED' && peer.fracture.bitmap.countRegions() > 0 && e.db.state === 'ACTIVE') await this.change(e, { op: 'primary-write' });
        await this.change(e, { op: 'synchronize', imageId: img.imageId, force: p.force === true });
        if (peer) {
          peer.failed = false;
          await this.resyncIfDirty(e, peer);
        }
      }
      this.afterChange(e);
      return this.view(e);
    });
  }

  fracture(ref: string, image?: string): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'fracture');
      const targets = image ? [this.imageRef(e, image)] : secondariesOf(e.db).filter((i) => !i.fractured);
      if (!targets.length) throw new MirrorError('state', `mirror ${e.db.name}: every secondary is fractured already`);
      for (const img of targets) {
        const peer = ps.peers.get(img.imageId);
        // From now on writes only mark the fracture log (sendable() reads the record).
        await this.change(e, { op: 'fracture', imageId: img.imageId });
        if (peer?.resync) peer.resync.stop = true;
      }
      return this.view(e);
    });
  }

  activate(ref: string): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      this.needPrimary(e, 'activate');
      await this.change(e, { op: 'activate' });
      for (const p of e.primary!.peers.values()) if (p.link === 'connected') await this.resyncIfDirty(e, p);
      return this.view(e);
    });
  }

  deactivate(ref: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      this.needPrimary(e, 'deactivate');
      await this.change(e, { op: 'deactivate', force: p.force === true });
      return this.view(e);
    });
  }

  async destroy(ref: string): Promise<void> {
    const e = this.find(ref);
    await this.exclusive(e, async () => {
      this.needPrimary(e, 'destroy');
      try {
        applyOp(e.db, { op: 'destroy' });
      } catch (err) {
        if (err instanceof MirrorOpError) throw new MirrorError(err.code, err.message);
        throw err;
      }
      await this.closePrimary(e, true);
      await this.dropDivergence(e);
      this.entries.delete(e.id);
      await fsp.rm(e.dir, { recursive: true, force: true });
      this.event('mirror-destroyed', { mirrorId: e.id, name: e.db.name });
    });
  }

  setAttributes(ref: string, p: ChangeAttributesParams): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      this.needPrimary(e, 'change attributes');
      const { image, recoveryPolicy, imageSyncRate, ...attrs } = p;
      if (attrs.writePolicy && attrs.writePolicy !== 'synchronous') throw new MirrorError('invalid', `write policy ${attrs.writePolicy}: this build replicates synchronously only`);
      if ((recoveryPolicy !== undefined || imageSyncRate !== undefined) && !image) throw new MirrorError('invalid', 'recoveryPolicy and imageSyncRate need an image');
      const img = image ? this.imageRef(e, image) : undefined;
      await this.change(e, {
        op: 'change-attributes',
        ...(Object.keys(attrs).length ? { attributes: attrs } : {}),
        ...(img ? { image: { imageId: img.imageId, ...(recoveryPolicy !== undefined ? { recoveryPolicy } : {}), ...(imageSyncRate !== undefined ? { syncRate: imageSyncRate } : {}) } } : {}),
      });
      return this.view(e);
    });
  }

  async verify(ref: string, image?: string, opts: { onProgress?: (done: number, total: number) => void } = {}): Promise<VerifyReport> {
    const e = this.find(ref);
    const ps = this.needPrimary(e, 'verify');
    const img = image ? this.imageRef(e, image) : secondariesOf(e.db)[0];
    if (!img || img.role !== 'secondary') throw new MirrorError('invalid', `mirror ${e.db.name} has no secondary${image ? ` ${image}` : ''} to verify`);
    const peer = ps.peers.get(img.imageId)!;
    if (peer.link !== 'connected' || !peer.client?.connected) throw new MirrorError('unreachable', `image ${img.imageId} is not connected (${peer.linkError ?? peer.link})`);
    const size = this.mirrorSize(e.db);
    const rs = e.db.regionSize;
    const n = Math.ceil(size / rs);
    const per = Math.max(1, Math.min(4096, Math.floor(VERIFY_BATCH_BYTES / rs)));
    const suspects: number[] = [];
    let skipped = 0;
    const compare = async (first: number, count: number): Promise<number[]> => {
      const [local, remote] = await Promise.all([
        regionCrcs(e.lun.device, size, rs, first, count),
        peer.client!.request('read-regions', { mirrorId: e.id, imageId: img.imageId, regionSize: rs, regions: [[first, count]] }, undefined, { timeoutMs: 60_000 }),
      ]);
      const theirs = new Map(remote.result.checksums.map((c) => [c.region, c.crc]));
      return local.filter((c) => theirs.get(c.region) !== c.crc).map((c) => c.region);
    };
    try {
      for (let first = 0; first < n; first += per) {
        const count = Math.min(per, n - first);
        for (const r of await compare(first, count)) {
          // regions that are known dirty (fracture log) or written right now are not errors
          if (peer.fracture.bitmap.test(r * rs, Math.min(rs, size - r * rs))) skipped++;
          else suspects.push(r);
        }
        opts.onProgress?.(Math.min(n, first + count) * rs, n * rs);
      }
      // A host write in flight during the comparison can differ for a moment: compare again.
      const mismatched: number[] = [];
      for (const r of suspects) {
        await ps.idle();
        if ((await compare(r, 1)).length) mismatched.push(r);
      }
      const report: VerifyReport = {
        mirrorId: e.id,
        imageId: img.imageId,
        regionSize: rs,
        regionsCompared: n - skipped,
        bytesCompared: size,
        mismatched: mismatched.map((r) => ({ region: r, offset: r * rs, length: Math.min(rs, size - r * rs) })),
        identical: mismatched.length === 0 && skipped === 0,
        skipped,
      };
      this.event('verified', { mirrorId: e.id, imageId: img.imageId, regions: n, mismatched: mismatched.length, skipped });
      return report;
    } catch (err) {
      if (err instanceof RemoteLinkError) throw new MirrorError('unreachable', `verify ${img.imageId}: ${err.code}: ${err.message}`);
      throw err;
    }
  }

  resolveSplitBrain(ref: string, p: { survivor: string }): Promise<MirrorView> {
    const e = this.find(ref);
    return this.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'resolve');
      const sb = e.splitBrain;
      if (!sb) throw new MirrorError('state', `mirror ${e.db.name} is not in split brain`);
      const other = e.db.images.find((i) => i.imageId === sb.imageId)!;
      if (p.survivor !== this.array && p.survivor !== other.array) throw new MirrorError('invalid', `survivor must be ${this.array} or ${other.array}`);
      const peer = ps.peers.get(sb.imageId)!;
      e.splitBrain = null;
      if (p.survivor === this.array) {
        // Keep this side: the other side's divergent regions are overwritten from here.
        peer.fracture.bitmap.union(sb.remote);
        peer.fracture.touch();
        await peer.fracture.persist();
        this.event('split-brain-resolved', { mirrorId: e.id, survivor: this.array, discarded: other.array, regions: peer.fracture.bitmap.countRegions() });
        if (peer.link === 'connected') peer.failed = false;
        await this.change(e, { op: 'synchronize', imageId: sb.imageId, force: true });
        await this.resyncIfDirty(e, peer);
        this.afterChange(e);
        return this.view(e);
      }
      // Keep the other side: it becomes primary (new epoch); this array becomes its secondary and
      // offers every region that differs, as acknowledged-free divergence (no second split brain).
      const db = applyOp(e.db, { op: 'promote', imageId: sb.imageId, force: true }).db!;
      const size = this.mirrorSize(e.db);
      const { file } = await BitmapFile.open(join(e.dir, 'divergence.bitmap'), size, e.db.regionSize, { sync: this.sync });
      file.bitmap.union(sb.local);
      file.bitmap.union(sb.remote);
      for (const r of ps.wil.bitmap.runs()) file.bitmap.mark(r.offset, r.length);
      file.touch();
      await file.persist();
      await fsp.writeFile(join(e.dir, 'divergence.json'), JSON.stringify({ acknowledgedRegions: 0, forImage: sb.imageId }));
      const client = peer.client;
      ps.closed = true;
      await ps.idle();
      const pushed = client?.connected ? client.request('mirror-db', { mirrorId: e.id, record: db as unknown as Record<string, unknown> }) : Promise.reject(new MirrorError('unreachable', `${other.array} is not connected`));
      await pushed.catch((err) => {
        ps.closed = false;
        throw err instanceof MirrorError ? err : new MirrorError('unreachable', `${other.array}: ${(err as Error).message}`);
      });
      await e.divergence?.file.close();
      e.divergence = { file, acknowledgedRegions: 0, forImage: sb.imageId };
      await this.closePrimary(e, true);
      await this.save(e, db);
      this.event('split-brain-resolved', { mirrorId: e.id, survivor: other.array, discarded: this.array, regions: file.bitmap.countRegions() });
      return this.view(e);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.server?.close().catch(() => undefined);
    if (this.suspended) return; // crash() closed every file already
    await this.groups.close();
    for (const e of this.entries.values()) {
      await e.chain.catch(() => undefined);
      const ps = e.primary;
      if (ps) {
        await Promise.race([ps.idle(), new Promise((r) => setTimeout(r, 5000))]);
        await this.closePrimary(e, false);
      }
      await e.divergence?.file.close();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Whole-array power failure (two-SP arrays: the chassis calls these)

  private suspended = false;

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
    const entries = [...this.entries.values()];
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
    await server?.close().catch(() => undefined);
    await this.groups.close({ abandon: true });
    for (const e of entries) {
      const ps = e.primary;
      if (ps) {
        for (const p of ps.peers.values()) await p.resync?.done.catch(() => undefined);
        for (const p of ps.peers.values()) await p.fracture.close().catch(() => undefined);
        await ps.wilFile.close().catch(() => undefined); // marks only: flushClears() is not called
      }
      await e.divergence?.file.close().catch(() => undefined);
    }
    this.event('crashed', { mirrors: entries.length, detail: 'array power lost: links dropped, write-intent log kept as on disk' });
  }

  /** Power is back: reload every mirror from disk as at a start after an unclean stop. */
  async reopen(): Promise<void> {
    if (this.closed || !this.suspended) return;
    this.entries.clear();
    this.groups.forget();
    this.suspended = false;
    await this.load();
    await this.groups.load();
    if (this.opts.listen) await this.listen(this.opts.listen);
    for (const e of this.entries.values()) if (e.primary) this.startPeers(e);
    this.event('reopened', { mirrors: this.entries.size });
  }
}

function regionsIn(rs: number, offset: number, length: number): number {
  if (length <= 0) return 0;
  return Math.floor((offset + length - 1) / rs) - Math.floor(offset / rs) + 1;
}

function summarize(bm: RegionBitmap): { regions: number; bytes: number; ranges: Array<[number, number]> } {
  const ranges: Array<[number, number]> = [];
  for (const r of bm.runs()) {
    if (ranges.length >= 64) break;
    ranges.push([r.offset, r.length]);
  }
  return { regions: bm.countRegions(), bytes: bm.dirtyBytes(), ranges };
}

/** CRC32C of each region [first, first+count) of `dev` (the last one may be short). */
async function regionCrcs(dev: BlockDevice, size: number, rs: number, first: number, count: number): Promise<Array<{ region: number; crc: number }>> {
  const out: Array<{ region: number; crc: number }> = [];
  const n = Math.ceil(size / rs);
  if (first + count > n) throw new RemoteLinkError('bad-request', `regions ${first}+${count} beyond the ${n} regions of the image`);
  const start = first * rs;
  const end = Math.min(size, (first + count) * rs);
  const step = Math.max(rs, Math.floor(VERIFY_BATCH_BYTES / rs) * rs);
  for (let off = start; off < end; off += step) {
    const len = Math.min(step, end - off);
    const buf = await dev.read(off, len);
    for (let o = 0; o < len; o += rs) out.push({ region: (off + o) / rs, crc: crc32c(buf.subarray(o, Math.min(len, o + rs))) });
  }
  return out;
}
