import { randomBytes } from 'node:crypto';
import { isPlainName } from '../../array/index.js';
import { ignoreOnClose } from '../../errors/index.js';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { MetadataStore } from '../../metadata/index.js';
import { applyOp, assertMirrorChangeInvariants, assertMirrorRecordInvariants, DEFAULT_REGION_SIZE, primaryOf, promotable, requireNoHeartbeat, secondariesOf, type ImageState, type MirrorDbRecord, type MirrorImage } from '../state/index.js';
import type { Range } from '../group/index.js';
import { BitmapFile } from './bitmap-file.js';
import { divergenceBitmapPath, divergenceMetaPath, fracturePath, mirrorSize, newEntry, phaseOf, safeName, type Entry } from './entry.js';
import { SecondaryPeer, type PrimarySide } from './primary.js';
import type { PeerLinks } from './peer-link.js';
import type { ResyncProtection } from './protection.js';
import type { PeerLiveness } from './secondary.js';
import { applyChecked, type MirrorRecords } from './records.js';
import { regionMapOf, summarize } from './regions.js';
import { stepDown } from './step-down.js';
import { verifyImage } from './verify.js';
import type { Resync } from './resync.js';
import {
  MirrorError,
  type AddSecondaryParams,
  type ChangeAttributesParams,
  type CreateMirrorParams,
  type ImageView,
  type MirrorControl,
  type MirrorLun,
  type MirrorRegionMap,
  type MirrorView,
  type VerifyReport,
} from './types.js';

/**
 * The administrative verbs (MirrorControl: what the management API and `sanbox mirror` call),
 * the views they return, verify (its comparison: ./verify.ts), promote (the old primary's step-down:
 * ./step-down.ts) and the resolution of a split brain. Each verb runs inside
 * `exclusive(e)` and changes the record through `change` (./records.ts).
 */
export interface AdminHost {
  readonly array: string;
  readonly root: string;
  readonly sync: boolean;
  lun(ref: number | string): MirrorLun | undefined;
  /** The name of the consistency group the mirror belongs to, if any. */
  groupName(mirrorId: string): string | undefined;
  openPrimary(e: Entry, why: 'create' | 'promote'): Promise<void>;
  closePrimary(e: Entry, removeFiles: boolean): Promise<void>;
  dropDivergence(e: Entry): Promise<void>;
  /** Whether a peer array is alive, as the sessions it opened here show (./secondary.ts). */
  liveness(array: string): PeerLiveness;
  readonly links: Pick<PeerLinks, 'connectPeer' | 'startPeers' | 'withControlLink' | 'propagate'>;
  readonly resync: Pick<Resync, 'markFull' | 'resyncIfDirty' | 'afterChange' | 'prepare'>;
  readonly protection: ResyncProtection;
}

/** How a promote treats an image that is not a point in time (see MirrorControl.promote). */
export interface PromoteHow {
  force: boolean;
  fromSnapshot?: boolean;
  /** a group's promote rolled the image back already: the ranges the rollback rewrote */
  rolledBack?: Range[];
  /** a group's promote had the old primary step down already (stepDownOldPrimary) */
  steppedDown?: boolean;
}

/** remove-secondary (graceful) waits this long for the writes in flight to the secondary. */
const gracefulRemoveTimeoutMs = 10_000;
const gracefulRemovePollMs = 10;
const REGION_SIZE_MIN_BYTES = 4096;
const REGION_SIZE_MAX_BYTES = 64 * 1024 * 1024;

export class MirrorAdmin implements MirrorControl {
  constructor(
    private readonly records: MirrorRecords,
    private readonly host: AdminHost,
  ) {}

  private event(type: string, details: Record<string, unknown>): void {
    this.records.event(type, details);
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

  view(e: Entry): MirrorView {
    const ps = e.primary;
    const images: ImageView[] = e.db.images.map((img) => {
      const p = ps?.peers.get(img.imageId);
      // On a secondary, the primary as the link shows it now (the record says what the primary
      // last sent, and a cut link sends nothing): its sessions to this array answer, or not.
      // (On the primary the record follows the links: the keepalive, or a write time-out, drops a
      // silent one within 5 s and the image goes UNREACHABLE.)
      const live = !ps && img.role === 'primary' && img.imageId !== e.localImageId ? this.host.liveness(img.array) : null;
      const v: ImageView = {
        ...img,
        ...(live ? { reachability: live.reachable ? 'REACHABLE' : 'UNREACHABLE' } : {}),
        link: img.imageId === e.localImageId ? 'local' : p ? p.link : live?.reachable ? 'connected' : 'down',
        ...(p?.linkError ? { linkError: p.linkError } : live?.why ? { linkError: live.why } : {}),
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
      protection: this.host.protection.view(e),
    };
  }

  list(): MirrorView[] {
    return [...this.records.entries.values()].map((e) => this.view(e));
  }

  get(ref: string): MirrorView {
    return this.view(this.records.find(ref));
  }

  regionMap(ref: string, buckets: number): MirrorRegionMap {
    const e = this.records.find(ref);
    const ps = this.needPrimary(e, 'a region map');
    const images = e.db.images.filter((i) => i.imageId !== e.localImageId).map((i) => ({ imageId: i.imageId, array: i.array, fractureLog: ps.peers.get(i.imageId)?.fracture.bitmap }));
    return regionMapOf(e.db.name, ps.wil.bitmap, images, buckets);
  }



  async create(p: CreateMirrorParams): Promise<MirrorView> {
    const array = this.host.array;
    const lun = this.host.lun(p.lun);
    if (!lun) throw new MirrorError('not-found', `array ${array} has no LUN ${JSON.stringify(p.lun)}`);
    const other = this.records.entryOfLun(lun.id);
    if (other) throw new MirrorError('exists', `LUN ${lun.name} is already an image of mirror ${other.db.name}`);
    const name = p.name ?? lun.name;
    if (!isPlainName(name)) throw new MirrorError('invalid', `mirror name ${JSON.stringify(name)}: use 1-64 letters, digits, dot, dash, underscore (not . or ..)`);
    if ([...this.records.entries.values()].some((x) => x.db.name === name)) throw new MirrorError('exists', `array ${array} already has a mirror named ${name}`);
    const regionSize = p.regionSize ?? DEFAULT_REGION_SIZE;
    if (!Number.isSafeInteger(regionSize) || regionSize < REGION_SIZE_MIN_BYTES || regionSize > REGION_SIZE_MAX_BYTES || (regionSize & (regionSize - 1)) !== 0)
      throw new MirrorError('invalid', `region size ${regionSize}: a power of two from 4 KiB to 64 MiB`);
    if (p.attributes?.writePolicy && p.attributes.writePolicy !== 'synchronous')
      throw new MirrorError('invalid', `write policy ${p.attributes.writePolicy}: this build replicates synchronously only (the asynchronous modes come with consistency groups)`);
    const mirrorId = `${name}-${randomBytes(4).toString('hex')}`;
    const r = applyChecked(null, { op: 'create', mirrorId, name, primary: { imageId: `${array}:${lun.id}`, array, lun: lun.id, size: lun.size }, attributes: p.attributes, regionSize });
    const dir = join(this.host.root, safeName(mirrorId));
    await fsp.mkdir(dir, { recursive: true });
    const store = new MetadataStore<MirrorDbRecord>(dir, { basename: 'db', noSync: !this.host.sync });
    await store.load();
    await store.save(r.db!);
    const e = newEntry(r.db!, dir, store, lun, `${array}:${lun.id}`);
    await this.host.openPrimary(e, 'create');
    this.records.entries.set(mirrorId, e);
    this.event('created', { mirrorId, name, lun: lun.id, lunName: lun.name, regionSize, size: lun.size });
    return this.view(e);
  }

  addSecondary(ref: string, p: AddSecondaryParams): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'add-secondary');
      if (p.array === this.host.array) throw new MirrorError('invalid', `a secondary must be on another array than the primary (${this.host.array})`);
      await this.host.links.withControlLink(p.array, async (c) => {
        const { result: info } = await c.request('lun-info', { lun: p.lun });
        if (info.mirrorId) throw new MirrorError('exists', `LUN ${info.name} of ${p.array} is already an image of mirror ${info.mirrorId}`);
        const imageId = `${p.array}:${info.id}`;
        let r = applyChecked(e.db, { op: 'add-secondary', image: { imageId, array: p.array, lun: info.id, size: info.size }, initialState: p.synchronized ? 'SYNCHRONIZED' : 'UNSYNCHRONIZED', recoveryPolicy: p.recoveryPolicy });
        if (p.syncRate !== undefined) r = applyChecked(r.db, { op: 'change-attributes', image: { imageId, syncRate: p.syncRate } });
        const db = r.db!;
        const img = db.images.find((i) => i.imageId === imageId)!;
        img.size = mirrorSize(db); // the mirror's extent is the primary's size
        assertMirrorRecordInvariants(db);
        // The member must accept before anything changes here (it checks LUN, size, membership).
        await c.request('mirror-db', { mirrorId: e.id, record: db as unknown as Record<string, unknown> });
        const f = await BitmapFile.open(fracturePath(e, img.imageId), mirrorSize(db), db.regionSize, { sync: this.host.sync });
        const peer = new SecondaryPeer(img.imageId, img.array, img.lun, f.file);
        peer.failed = true;
        f.file.clearAll();
        if (!p.synchronized) await this.host.resync.markFull(e, peer, 'new secondary: initial synchronization');
        else await f.file.persist();
        ps.peers.set(img.imageId, peer);
        await this.records.save(e, db);
        this.event('image-added', { mirrorId: e.id, imageId: img.imageId, state: img.state, lun: info.id, lunName: info.name });
        this.host.links.connectPeer(e, peer);
      });
      return this.view(e);
    });
  }

  removeSecondary(ref: string, image: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'remove-secondary');
      requireNoHeartbeat(e.db, 'remove-secondary');
      const img = this.imageRef(e, image);
      const peer = ps.peers.get(img.imageId);
      const db = await this.records.change(e, { op: 'remove-secondary', imageId: img.imageId, mode: p.force ? 'forced' : 'graceful' }, false);
      if (peer) {
        if (peer.resync) peer.resync.stop = true;
        // graceful: let its outstanding writes finish, then tell it it left the mirror
        const deadline = Date.now() + gracefulRemoveTimeoutMs;
        while (!p.force && peer.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, gracefulRemovePollMs));
        if (peer.client?.connected)
          await peer.client
            .request('mirror-db', { mirrorId: e.id, record: db as unknown as Record<string, unknown> })
            .catch((err) => this.event('push-failed', { mirrorId: e.id, imageId: peer.imageId, why: 'removed from the mirror', error: (err as Error)?.message }));
        ps.peers.delete(img.imageId);
        peer.client?.close();
        await ignoreOnClose(peer.resync?.done, `stopping the resync of removed secondary ${peer.imageId}`);
        await peer.fracture.remove();
      }
      if (e.splitBrain?.imageId === img.imageId) e.splitBrain = null;
      this.host.links.propagate(e);
      return this.view(e);
    });
  }

  async promote(ref: string, p: { force?: boolean; fromSnapshot?: boolean } = {}): Promise<MirrorView> {
    const e = this.records.find(ref);
    const g = this.host.groupName(e.id);
    if (g !== undefined) throw new MirrorError('state', `mirror ${e.db.name} belongs to consistency group ${g}: promote the group (its members move together)`);
    if (p.force && p.fromSnapshot) throw new MirrorError('invalid', 'promote takes --force (the image as it is) or --from-snapshot (rolled back to its fallback), not both');
    return this.promoteEntry(e, { force: p.force === true, fromSnapshot: p.fromSnapshot === true }).then(() => this.view(e));
  }

  /**
   * Promotes this array's image. Not a point in time and neither forced nor from its snapshot:
   * refused, naming the fallback. From its snapshot: rolled back first (./protection.ts), then
   * promoted, and the ranges the rollback rewrote go into every fracture log of the new primary
   * (the old primary has newer data there).
   */
  promoteEntry(e: Entry, how: PromoteHow): Promise<void> {
    return this.records.exclusive(e, async () => {
      if (e.primary) throw new MirrorError('state', `image ${e.localImageId} is already the primary of mirror ${e.db.name}`);
      requireNoHeartbeat(e.db, 'promote');
      const state = (e.db.images.find((i) => i.imageId === e.localImageId)?.state ?? 'UNSYNCHRONIZED') as ImageState;
      if (!promotable(state) && !how.force && !how.fromSnapshot && !how.rolledBack) throw new MirrorError('inconsistent', this.host.protection.refusal(e, state));
      const fromSnapshot = how.fromSnapshot === true || how.rolledBack !== undefined;
      const oldPrimary = primaryOf(e.db).imageId;
      // A plain promote: the old primary steps down first (it is asked over the remote link), or
      // nothing happens. Never two primaries taking host writes (--force is the operator's call).
      if (!how.force && !fromSnapshot && !how.steppedDown) await this.stepDownLocked(e);
      const fb = fromSnapshot ? this.host.protection.view(e).fallback : null;
      const rolled = how.rolledBack ?? (how.fromSnapshot ? (await this.host.protection.rollBack([e.id])).get(e.id)! : []);
      const force = how.force || fromSnapshot;
      // (a retried plain promote may find the record that makes this image primary saved already)
      if (primaryOf(e.db).imageId !== e.localImageId) await this.records.change(e, { op: 'promote', imageId: e.localImageId, force }, false);
      await this.host.dropDivergence(e);
      await this.host.openPrimary(e, 'promote');
      const ps = e.primary!;
      for (const img of secondariesOf(e.db)) {
        const peer = ps.peers.get(img.imageId)!;
        peer.fracture.clearAll();
        // Other secondaries: the new primary cannot know which of their regions differ from it.
        if (img.imageId !== oldPrimary && img.state === 'UNSYNCHRONIZED') await this.host.resync.markFull(e, peer, `promotion of ${e.localImageId}: no bitmap relates this image to the new primary`);
        else {
          for (const r of rolled) peer.fracture.mark(r.offset, r.length);
          if (rolled.length) peer.fracture.touch();
          await peer.fracture.persist();
        }
      }
      this.host.protection.promoted(e, fromSnapshot);
      this.event('became-primary', { mirrorId: e.id, imageId: e.localImageId, epoch: e.db.epoch, forced: force, oldPrimary });
      if (fromSnapshot)
        this.event('promoted-from-snapshot', { mirrorId: e.id, imageId: e.localImageId, snapshot: fb?.snapshot ?? null, created: fb?.created ?? null, ageSeconds: fb?.ageSeconds ?? null, rolledBackBytes: rolled.reduce((n, r) => n + r.length, 0) });
      this.host.links.startPeers(e);
    });
  }

  /** A plain promote's first step, on its own: the old primary steps down (./step-down.ts). */
  stepDownOldPrimary(e: Entry): Promise<void> {
    return this.records.exclusive(e, () => this.stepDownLocked(e));
  }

  private stepDownLocked(e: Entry): Promise<void> {
    return stepDown(this.records, this.host.links, e);
  }

  synchronize(ref: string, image?: string, p: { force?: boolean; checksum?: boolean; full?: boolean } = {}): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'synchronize');
      const targets = image ? [this.imageRef(e, image)] : secondariesOf(e.db).filter((i) => i.fractured || i.state === 'UNSYNCHRONIZED' || i.state === 'CONSISTENT');
      if (!targets.length) throw new MirrorError('state', `mirror ${e.db.name}: no secondary needs synchronizing`);
      for (const img of targets) {
        if (e.splitBrain?.imageId === img.imageId) throw new MirrorError('split-brain', `image ${img.imageId} diverged (split brain): choose the survivor with "sanbox mirror resolve ${e.db.name} --survivor ARRAY"`);
        const peer = ps.peers.get(img.imageId);
        if (peer && phaseOf(e, peer) === 'unreachable') throw new MirrorError('unreachable', `image ${img.imageId} is not connected (${peer.linkError ?? peer.link})`);
        if (peer) await this.host.resync.prepare(e, peer, p); // --full, --checksum
        if (peer && img.state === 'SYNCHRONIZED' && peer.fracture.bitmap.countRegions() > 0 && e.db.state === 'ACTIVE') await this.records.change(e, { op: 'primary-write' });
        await this.records.change(e, { op: 'synchronize', imageId: img.imageId, force: p.force === true });
        if (!peer) continue;
        peer.failed = false;
        await this.host.resync.resyncIfDirty(e, peer);
      }
      this.host.resync.afterChange(e);
      return this.view(e);
    });
  }

  fracture(ref: string, image?: string): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'fracture');
      requireNoHeartbeat(e.db, 'fracture');
      const targets = image ? [this.imageRef(e, image)] : secondariesOf(e.db).filter((i) => !i.fractured);
      if (!targets.length) throw new MirrorError('state', `mirror ${e.db.name}: every secondary is fractured already`);
      for (const img of targets) {
        const peer = ps.peers.get(img.imageId);
        // From now on writes only mark the fracture log (the peer's phase reads the record).
        await this.records.change(e, { op: 'fracture', imageId: img.imageId });
        if (peer?.resync) peer.resync.stop = true;
      }
      return this.view(e);
    });
  }

  activate(ref: string): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      this.needPrimary(e, 'activate');
      await this.records.change(e, { op: 'activate' });
      // every secondary whose link is up, failed or not (synchronize clears the failure)
      for (const p of e.primary!.peers.values()) if (phaseOf(e, p) !== 'unreachable') await this.host.resync.resyncIfDirty(e, p);
      return this.view(e);
    });
  }

  deactivate(ref: string, p: { force?: boolean } = {}): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      this.needPrimary(e, 'deactivate');
      requireNoHeartbeat(e.db, 'deactivate');
      await this.records.change(e, { op: 'deactivate', force: p.force === true });
      return this.view(e);
    });
  }

  async destroy(ref: string): Promise<void> {
    const e = this.records.find(ref);
    await this.records.exclusive(e, async () => {
      this.needPrimary(e, 'destroy');
      requireNoHeartbeat(e.db, 'destroy');
      applyChecked(e.db, { op: 'destroy' });
      await this.host.closePrimary(e, true);
      await this.host.dropDivergence(e);
      this.records.entries.delete(e.id);
      await fsp.rm(e.dir, { recursive: true, force: true });
      this.event('mirror-destroyed', { mirrorId: e.id, name: e.db.name });
    });
  }

  setAttributes(ref: string, p: ChangeAttributesParams): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      this.needPrimary(e, 'change attributes');
      const { image, recoveryPolicy, imageSyncRate, imageResyncChecksums: resyncChecksums, ...attrs } = p;
      if (attrs.writePolicy && attrs.writePolicy !== 'synchronous') throw new MirrorError('invalid', `write policy ${attrs.writePolicy}: this build replicates synchronously only`);
      if ((recoveryPolicy !== undefined || imageSyncRate !== undefined || resyncChecksums !== undefined) && !image) throw new MirrorError('invalid', 'recoveryPolicy, imageSyncRate and imageResyncChecksums need an image');
      const img = image ? this.imageRef(e, image) : undefined;
      await this.records.change(e, {
        op: 'change-attributes',
        ...(Object.keys(attrs).length ? { attributes: attrs } : {}),
        ...(img ? { image: { imageId: img.imageId, ...(recoveryPolicy !== undefined ? { recoveryPolicy } : {}), ...(imageSyncRate !== undefined ? { syncRate: imageSyncRate } : {}), ...(resyncChecksums !== undefined ? { resyncChecksums } : {}) } } : {}),
      });
      return this.view(e);
    });
  }

  async verify(ref: string, image?: string, opts: { onProgress?: (done: number, total: number) => void } = {}): Promise<VerifyReport> {
    const e = this.records.find(ref);
    const ps = this.needPrimary(e, 'verify');
    const img = image ? this.imageRef(e, image) : secondariesOf(e.db)[0];
    if (!img || img.role !== 'secondary') throw new MirrorError('invalid', `mirror ${e.db.name} has no secondary${image ? ` ${image}` : ''} to verify`);
    const peer = ps.peers.get(img.imageId)!;
    if (phaseOf(e, peer) === 'unreachable' || !peer.client?.connected) throw new MirrorError('unreachable', `image ${img.imageId} is not connected (${peer.linkError ?? peer.link})`);
    return verifyImage(e, ps, img, peer, (type, details) => this.event(type, details), opts);
  }

  resolveSplitBrain(ref: string, p: { survivor: string }): Promise<MirrorView> {
    const e = this.records.find(ref);
    return this.records.exclusive(e, async () => {
      const ps = this.needPrimary(e, 'resolve');
      const sb = e.splitBrain;
      if (!sb) throw new MirrorError('state', `mirror ${e.db.name} is not in split brain`);
      const array = this.host.array;
      const other = e.db.images.find((i) => i.imageId === sb.imageId)!;
      if (p.survivor !== array && p.survivor !== other.array) throw new MirrorError('invalid', `survivor must be ${array} or ${other.array}`);
      const peer = ps.peers.get(sb.imageId)!;
      e.splitBrain = null;
      if (p.survivor === array) {
        // Keep this side: the other side's divergent regions are overwritten from here.
        peer.fracture.bitmap.union(sb.remote);
        peer.fracture.touch();
        await peer.fracture.persist();
        this.event('split-brain-resolved', { mirrorId: e.id, survivor: array, discarded: other.array, regions: peer.fracture.bitmap.countRegions() });
        if (phaseOf(e, peer) !== 'unreachable') peer.failed = false;
        await this.records.change(e, { op: 'synchronize', imageId: sb.imageId, force: true });
        await this.host.resync.resyncIfDirty(e, peer);
        this.host.resync.afterChange(e);
        return this.view(e);
      }
      // Keep the other side: it becomes primary (new epoch); this array becomes its secondary and
      // offers every region that differs, as acknowledged-free divergence (no second split brain).
      const db = applyOp(e.db, { op: 'promote', imageId: sb.imageId, force: true }).db!;
      assertMirrorChangeInvariants(e.db, db);
      const size = mirrorSize(e.db);
      const { file } = await BitmapFile.open(divergenceBitmapPath(e), size, e.db.regionSize, { sync: this.host.sync });
      file.bitmap.union(sb.local);
      file.bitmap.union(sb.remote);
      for (const r of ps.wil.bitmap.runs()) file.bitmap.mark(r.offset, r.length);
      file.touch();
      await file.persist();
      await fsp.writeFile(divergenceMetaPath(e), JSON.stringify({ acknowledgedRegions: 0, forImage: sb.imageId }));
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
      await this.host.closePrimary(e, true);
      await this.records.save(e, db);
      this.event('split-brain-resolved', { mirrorId: e.id, survivor: other.array, discarded: array, regions: file.bitmap.countRegions() });
      return this.view(e);
    });
  }
}
