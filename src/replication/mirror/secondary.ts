import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { BlockDevice } from '../../block/index.js';
import { MetadataStore } from '../../metadata/index.js';
import { DEFAULT_TIMERS, RemoteLinkError, RemoteLinkServer, type LinkConnection, type LinkHandlers, type RequestContext, type SessionInfo } from '../../link/protocol/index.js';
import { RegionBitmap } from '../../native/index.js';
import { compareRecords, primaryOf, type MirrorDbRecord } from '../state/index.js';
import { BitmapFile } from './bitmap-file.js';
import { divergenceBitmapPath, divergenceMetaPath, mirrorSize, newEntry, safeName, type Divergence, type Entry } from './entry.js';
import type { ResyncProtection } from './protection.js';
import { loadRecord, type MirrorRecords } from './records.js';
import { regionCrcs } from './regions.js';
import { hashRanges } from './resync-csum.js';
import type { MirrorLun, PeerConfig } from './types.js';

/**
 * The secondary side: the remote-link listener and its handlers (writes, zeroes, flushes and
 * reads of a secondary image, checksums, record pushes, the bitmap a former primary offers), and
 * what a pushed record does here: join a mirror, adopt a newer record, leave, or demote this
 * array's primary image.
 */
export interface SecondaryHost {
  readonly array: string;
  readonly root: string;
  readonly sync: boolean;
  readonly peers: readonly PeerConfig[];
  lun(ref: number | string): MirrorLun | undefined;
  /** The consistency groups' own link handlers (group-db and the journal traffic). */
  groupHandlers(): LinkHandlers;
  /** Journal records of the member's group the secondaries never applied (a demoted primary keeps them). */
  groupPending(mirrorId: string): Array<{ offset: number; length: number }>;
  /** The member changed role: its group follows. */
  groupMembersChanged(mirrorId: string): Promise<void>;
  openPrimary(e: Entry, why: 'resolve'): Promise<void>;
  closePrimary(e: Entry, removeFiles: boolean): Promise<void>;
  startPeers(e: Entry): void;
  /** Resync protection of this array's secondary images (./protection.ts). */
  readonly protection: ResyncProtection;
}

/**
 * A peer that opened sessions to this array (the primary of its secondary images) is alive while
 * one of them answered a ping within this long: the link's own limit for a silent peer. A cut link
 * may keep the TCP connection open while nothing crosses it, so an open session proves nothing.
 */
export const PEER_LIVENESS_MS = DEFAULT_TIMERS.deadAfterMs;
/** Every session from a peer is pinged this often. */
const LIVENESS_PROBE_MS = 1000;

/** What this array knows of a peer's reachability through the sessions it opened here. */
export interface PeerLiveness {
  reachable: boolean;
  /** why not, when not */
  why?: string;
}

/** At most this many regions per read-regions request. */
const READ_REGIONS_MAX = 4096;
/** A demoted primary waits this long for its host writes in flight before it closes. */
const demoteDrainTimeoutMs = 10_000;

export class SecondarySide {
  /** open sessions peers opened to this array, for the liveness probe */
  private readonly sessions = new Map<SessionInfo, LinkConnection>();
  private readonly probing = new Set<LinkConnection>();
  /** per peer array: when one of its sessions last answered a ping (or opened) */
  private readonly lastAnswer = new Map<string, number>();
  private probe: NodeJS.Timeout | null = null;

  constructor(
    private readonly records: MirrorRecords,
    private readonly host: SecondaryHost,
  ) {}

  /**
   * Whether `array` can be reached, as the sessions it opened to this array show: one of them
   * answered a ping within PEER_LIVENESS_MS. The view of a secondary image shows its primary so.
   */
  liveness(array: string): PeerLiveness {
    const open = [...this.sessions.entries()].some(([s, c]) => s.peerArray === array && c.isOpen);
    if (!open) return { reachable: false, why: `no remote-link session from ${array}` };
    const age = Date.now() - (this.lastAnswer.get(array) ?? 0);
    if (age > PEER_LIVENESS_MS) return { reachable: false, why: `no answer from ${array} for ${Math.round(age / 1000)} s (limit ${PEER_LIVENESS_MS / 1000} s)` };
    return { reachable: true };
  }

  private probeSessions(): void {
    for (const [s, c] of this.sessions) {
      if (!c.isOpen || this.probing.has(c)) continue;
      this.probing.add(c);
      c.request('ping', { t: Date.now() }, undefined, { timeoutMs: PEER_LIVENESS_MS }).then(
        () => {
          this.probing.delete(c);
          this.lastAnswer.set(s.peerArray, Date.now());
        },
        () => this.probing.delete(c),
      );
    }
  }

  /** Stops the liveness probe (the listener closes). */
  stopProbe(): void {
    if (this.probe) clearInterval(this.probe);
    this.probe = null;
    this.sessions.clear();
    this.probing.clear();
  }

  private event(type: string, details: Record<string, unknown>): void {
    this.records.event(type, details);
  }

  /** Listens on the remote-link port; the caller owns (and closes) the server. */
  async listen(l: { bind: string; port: number }): Promise<RemoteLinkServer> {
    this.stopProbe(); // a listener of before a power loss: its sessions are gone
    const server = new RemoteLinkServer({
      array: this.host.array,
      peers: this.host.peers.map((p) => ({ array: p.array, secret: p.secret })),
      mirrorFor: (mirrorId) => {
        const e = this.records.entries.get(mirrorId);
        return e ? { secondarySize: e.lun.size } : undefined;
      },
      handlers: this.handlers(),
    });
    server.on('refused', ({ remote, error }: { remote: string; error: RemoteLinkError }) => this.event('link-refused', { remote, code: error.code, error: error.message }));
    server.on('session', (s: SessionInfo, c: LinkConnection) => {
      this.sessions.set(s, c);
      this.lastAnswer.set(s.peerArray, Date.now()); // it just completed the handshake
      this.event('link-session', { peer: s.peerArray });
    });
    server.on('session-closed', (s: SessionInfo) => this.sessions.delete(s));
    await server.listen(l.port, l.bind);
    this.probe = setInterval(() => this.probeSessions(), LIVENESS_PROBE_MS);
    this.probe.unref();
    return server;
  }

  private handlers(): LinkHandlers {
    return {
      // A write waits for a resync protection being cut (decided when the record's frame, or
      // this resync write, arrived: frames are dispatched in arrival order): ./protection.ts.
      write: (args, bin, ctx) => {
        const e = this.secondaryEntry(args.mirrorId, args.imageId, ctx, args.epoch);
        const fua = args.flags?.fua === true;
        const ext = args.extents; // scattered pieces of a resync (checksum or small chunks); absent: one piece (a host write, a resync chunk)
        if (ext) {
          for (const [o, l] of ext) if (o + l > e.lun.size) throw new RemoteLinkError('bad-request', `write ${o}+${l} beyond the image (${e.lun.size} bytes)`);
        } else if (args.offset + bin.length > e.lun.size) throw new RemoteLinkError('bad-request', `write ${args.offset}+${bin.length} beyond the image (${e.lun.size} bytes)`);
        const result = { result: { mirrorId: e.id, imageId: args.imageId, offset: args.offset, length: bin.length } };
        const write = () => (ext ? writeScattered(e.lun.device, ext, bin, fua) : e.lun.device.write(args.offset, bin, { fua })).then(() => result);
        const wait = this.host.protection.beforeWrite(e, args.flags?.resync === true);
        return wait ? wait.then(write) : write();
      },
      zero: (args, _bin, ctx) => {
        const e = this.secondaryEntry(args.mirrorId, args.imageId, ctx, args.epoch);
        if (args.offset + args.length > e.lun.size) throw new RemoteLinkError('bad-request', `zero ${args.offset}+${args.length} beyond the image (${e.lun.size} bytes)`);
        const dev = e.lun.device;
        const zero = () => (args.trim && dev.capabilities.trim ? dev.trim(args.offset, args.length) : dev.writeZeroes(args.offset, args.length, { noHole: false })).then(() => ({ result: { mirrorId: e.id, imageId: args.imageId, offset: args.offset, length: args.length } }));
        const wait = this.host.protection.beforeWrite(e, false);
        return wait ? wait.then(zero) : zero();
      },
      flush: (args, _bin, ctx) => {
        const e = this.secondaryEntry(args.mirrorId, args.imageId, ctx, args.epoch);
        return e.lun.device.flush().then(() => ({ result: {} }));
      },
      'read-regions': async (args) => {
        const e = this.imageEntry(args.mirrorId, args.imageId);
        if (args.regionSize !== e.db.regionSize) throw new RemoteLinkError('bad-request', `region size ${args.regionSize}, the mirror's is ${e.db.regionSize}`);
        if (args.ranges) {
          const h = await hashRanges(e.lun.device, mirrorSize(e.db), args.ranges, args.chunkSize!); // a checksum resync (./resync-csum.ts)
          return { result: { regionSize: args.regionSize, checksums: [], hash: args.hash, pieces: h.pieces, scatterWrites: true }, bin: h.bin };
        }
        const checksums: Array<{ region: number; crc: number }> = [];
        let count = 0;
        for (const [first, n] of args.regions) {
          count += n;
          if (count > READ_REGIONS_MAX) throw new RemoteLinkError('bad-request', `at most ${READ_REGIONS_MAX} regions per request`);
          checksums.push(...(await regionCrcs(e.lun.device, mirrorSize(e.db), args.regionSize, first, n)));
        }
        return { result: { regionSize: args.regionSize, checksums } };
      },
      // every answer says this array takes scattered writes (a resync batches small chunks)
      'mirror-db': (args, _bin, ctx) => this.receiveRecord(args.mirrorId, args.record, ctx).then((r) => ({ result: { ...r.result, scatterWrites: true } })),
      bitmap: (args) => this.answerBitmap(args.mirrorId, args.imageId),
      read: async (args) => {
        const e = this.imageEntry(args.mirrorId, args.imageId);
        if (e.primary) throw new RemoteLinkError('stale-epoch', `image ${args.imageId} is a primary: read it through NBD`);
        if (args.offset + args.length > mirrorSize(e.db)) throw new RemoteLinkError('bad-request', `read ${args.offset}+${args.length} beyond the image`);
        return { result: {}, bin: await e.lun.device.read(args.offset, args.length) };
      },
      ...this.host.groupHandlers(),
      'lun-info': (args) => {
        const lun = this.host.lun(args.lun);
        if (!lun) throw new RemoteLinkError('not-found', `array ${this.host.array} has no LUN ${JSON.stringify(args.lun)}`);
        return { result: { id: lun.id, name: lun.name, size: lun.size, blockSize: lun.blockSize, mirrorId: this.records.entryOfLun(lun.id)?.id ?? null } };
      },
    };
  }

  /** The local image a request addresses. */
  private imageEntry(mirrorId: string, imageId: string): Entry {
    const e = this.records.entries.get(mirrorId);
    if (!e || e.localImageId !== imageId) throw new RemoteLinkError('wrong-mirror', `no image ${imageId} of mirror ${mirrorId} on ${this.host.array}`);
    return e;
  }

  /** The local secondary image a data request addresses, checked against sender and epoch. */
  private secondaryEntry(mirrorId: string, imageId: string, ctx: RequestContext, epoch: number | undefined): Entry {
    const e = this.imageEntry(mirrorId, imageId);
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
      rec = loadRecord(raw);
    } catch (err) {
      throw new RemoteLinkError('bad-request', (err as Error).message);
    }
    if (rec.mirrorId !== mirrorId) throw new RemoteLinkError('bad-request', `record of mirror ${rec.mirrorId} sent as ${mirrorId}`);
    if (!rec.images.some((i) => i.array === ctx.session.peerArray)) throw new RemoteLinkError('bad-request', `${ctx.session.peerArray} is not a member of mirror ${rec.name}`);
    const e = this.records.entries.get(mirrorId);
    if (!e) return this.join(rec).then(() => ({ result: { applied: true, generation: rec.generation } }));
    // Now, in arrival order: a record that starts a resync cuts the protection before any write
    // that follows it lands; the record is answered once the cut is done.
    const protecting = compareRecords(rec, e.db) > 0 ? this.host.protection.onRecord(e, rec) : null;
    return this.records.exclusive(e, async () => {
      if (protecting) await protecting;
      const cmp = compareRecords(rec, e.db);
      if (cmp < 0) return { result: { applied: false, generation: e.db.generation, record: e.db as unknown as Record<string, unknown> } };
      if (cmp === 0) return { result: { applied: true, generation: e.db.generation } };
      await this.adopt(e, rec, `record from ${ctx.session.peerArray}`);
      return { result: { applied: true, generation: rec.generation } };
    });
  }

  /** This array is added to a mirror as a secondary (the primary pushed the record). */
  private async join(rec: MirrorDbRecord): Promise<void> {
    const array = this.host.array;
    const mine = rec.images.find((i) => i.array === array);
    if (!mine) return;
    if (mine.role !== 'secondary') throw new RemoteLinkError('bad-request', `a new mirror cannot make ${array} its primary`);
    const lun = this.host.lun(mine.lun);
    if (!lun) throw new RemoteLinkError('not-found', `array ${array} has no LUN ${mine.lun}`);
    const other = this.records.entryOfLun(lun.id);
    if (other) throw new RemoteLinkError('exists', `LUN ${lun.name} of ${array} is already an image of mirror ${other.db.name}`);
    if (lun.size < mirrorSize(rec)) throw new RemoteLinkError('size-mismatch', `LUN ${lun.name} of ${array} (${lun.size} bytes) is smaller than the primary (${mirrorSize(rec)} bytes)`);
    const dir = join(this.host.root, safeName(rec.mirrorId));
    await fsp.mkdir(dir, { recursive: true });
    const store = new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: !this.host.sync });
    await store.load();
    await store.save(rec);
    const e = newEntry(rec, dir, store, lun, mine.imageId);
    await this.host.protection.open(e);
    this.records.entries.set(e.id, e);
    this.event('joined', { mirrorId: e.id, name: rec.name, imageId: mine.imageId, lun: lun.id, primary: primaryOf(rec).imageId });
  }

  /** Takes a newer record; the local image may change role. Runs inside `exclusive(e)`. */
  async adopt(e: Entry, rec: MirrorDbRecord, why: string): Promise<void> {
    const mine = rec.images.find((i) => i.array === this.host.array);
    if (!mine) {
      // removed from the mirror
      await this.host.closePrimary(e, true);
      await this.dropDivergence(e);
      await this.host.protection.forget(e);
      this.records.entries.delete(e.id);
      await fsp.rm(e.dir, { recursive: true, force: true });
      this.event('left', { mirrorId: e.id, name: rec.name, why });
      return;
    }
    const wasPrimary = e.primary !== null;
    if (wasPrimary && mine.role === 'secondary') await this.demote(e, rec);
    await this.records.save(e, rec);
    e.localImageId = mine.imageId;
    this.event('record-adopted', { mirrorId: e.id, generation: rec.generation, epoch: rec.epoch, role: mine.role, why });
    if (!wasPrimary && mine.role === 'primary') {
      await this.host.openPrimary(e, 'resolve');
      this.host.startPeers(e);
      this.event('became-primary', { mirrorId: e.id, imageId: mine.imageId, epoch: rec.epoch, why });
    }
    if (mine.role === 'secondary' && e.divergence && !mine.fractured) await this.dropDivergence(e);
    this.host.protection.afterAdopt(e, wasPrimary);
    if (wasPrimary !== (mine.role === 'primary')) void this.host.groupMembersChanged(e.id).catch((err) => this.event('change-failed', { mirrorId: e.id, op: 'group role', error: (err as Error).message }));
  }

  /**
   * This array's primary image was superseded. Waits for the host writes in flight, keeps the
   * regions the new primary may lack (write-intent log, and the new primary's fracture log here:
   * writes acknowledged to hosts that never reached it), and stops acting as primary.
   */
  private async demote(e: Entry, rec: MirrorDbRecord): Promise<void> {
    const ps = e.primary!;
    ps.closed = true; // no new host write starts
    await Promise.race([ps.idle(), new Promise((r) => setTimeout(r, demoteDrainTimeoutMs))]);
    const newPrimary = primaryOf(rec).imageId;
    const size = mirrorSize(rec);
    const { file } = await BitmapFile.open(divergenceBitmapPath(e), size, rec.regionSize, { sync: this.host.sync });
    if (e.divergence) file.bitmap.union(e.divergence.file.bitmap);
    for (const r of ps.wil.bitmap.runs()) file.bitmap.mark(r.offset, r.length);
    const peer = ps.peers.get(newPrimary);
    // Writes acknowledged here that the new primary lacks: its fracture log, and in the
    // asynchronous modes the group's journal records it never applied.
    const pending = RegionBitmap.create(size, rec.regionSize);
    if (peer) pending.union(peer.fracture.bitmap);
    for (const r of this.host.groupPending(e.id)) pending.mark(r.offset, r.length);
    // all of it diverges, but regions only maybe written (a crash's write-intent log) were never acknowledged
    const acked = RegionBitmap.create(size, rec.regionSize);
    acked.union(pending);
    if (peer?.maybeDirty) for (const r of peer.maybeDirty.runs()) acked.clear(r.offset, r.length);
    for (const r of this.host.groupPending(e.id)) acked.mark(r.offset, r.length);
    const acknowledged = acked.countRegions();
    file.bitmap.union(pending);
    file.touch();
    await file.persist();
    await fsp.writeFile(divergenceMetaPath(e), JSON.stringify({ acknowledgedRegions: acknowledged, forImage: newPrimary }));
    await e.divergence?.file.close();
    e.divergence = { file, acknowledgedRegions: acknowledged, forImage: newPrimary };
    await this.host.closePrimary(e, true);
    this.event('demoted', { mirrorId: e.id, imageId: e.localImageId, newPrimary, epoch: rec.epoch, divergentRegions: file.bitmap.countRegions(), acknowledgedRegions: acknowledged });
  }

  /** The divergence a demoted primary kept (read at load), or null. */
  async openDivergence(e: Entry): Promise<Divergence | null> {
    let info: { acknowledgedRegions: number; forImage: string };
    try {
      info = JSON.parse(await fsp.readFile(divergenceMetaPath(e), 'utf8'));
    } catch {
      return null; // no divergence kept (the usual case)
    }
    const { file, lost } = await BitmapFile.open(divergenceBitmapPath(e), primaryOf(e.db).size, e.db.regionSize, { sync: this.host.sync });
    if (lost) file.bitmap.mark(0, file.bitmap.lunSize);
    return { file, acknowledgedRegions: info.acknowledgedRegions, forImage: info.forImage };
  }

  async dropDivergence(e: Entry): Promise<void> {
    if (!e.divergence) return;
    await e.divergence.file.remove();
    await fsp.rm(divergenceMetaPath(e), { force: true });
    e.divergence = null;
  }

  private answerBitmap(mirrorId: string, _imageId: string): Promise<{ result: { regionSize: number; lunSize: number; epoch: number; acknowledgedRegions: number }; bin: Buffer }> {
    const e = this.records.entries.get(mirrorId);
    if (!e) throw new RemoteLinkError('wrong-mirror', `no mirror ${mirrorId} on ${this.host.array}`);
    return this.records.exclusive(e, async () => {
      const size = mirrorSize(e.db);
      const bm = e.divergence?.file.bitmap ?? RegionBitmap.create(size, e.db.regionSize);
      return { result: { regionSize: e.db.regionSize, lunSize: size, epoch: e.db.epoch, acknowledgedRegions: e.divergence?.acknowledgedRegions ?? 0 }, bin: bm.serialize(0) };
    });
  }
}

/** The pieces of a scattered write, side by side (disjoint: their order does not matter). */
function writeScattered(dev: BlockDevice, extents: Array<[number, number]>, bin: Buffer, fua: boolean): Promise<unknown> {
  let at = 0;
  return Promise.all(extents.map(([o, l]) => dev.write(o, bin.subarray(at, (at += l)), { fua })));
}
