import { RegionBitmap } from '../../native/index.js';
import { RemoteLinkClient, RemoteLinkError } from '../../link/protocol/index.js';
import { compareRecords, type MirrorDbRecord } from '../state/index.js';
import { imageOf, LINK_FAILURES, mirrorSize, remoteReadTimeoutMs, type Entry } from './entry.js';
import type { SecondaryPeer } from './primary.js';
import { loadRecord, type MirrorRecords } from './records.js';
import { MirrorError, type MirrorTimers, type PeerConfig } from './types.js';

/**
 * The links of the primary side to its secondaries: one RemoteLinkClient per secondary, dialled
 * and redialled with backoff; what a lost or returning link means for the record (unreachable,
 * reachable, the bitmap exchange that finds a former primary's regions or a split brain); and
 * record pushes, with adoption of a newer record a member holds.
 */
export interface PeerLinkHost {
  readonly array: string;
  readonly timers: MirrorTimers;
  peerConfig(array: string): PeerConfig | undefined;
  /** Takes a newer record; the local image may change role (./secondary.ts). Runs inside `exclusive(e)`. */
  adopt(e: Entry, rec: MirrorDbRecord, why: string): Promise<void>;
  /** Moves a secondary with fracture-log regions to SYNCHRONIZING (./resync.ts). Runs inside `exclusive(e)`. */
  resyncIfDirty(e: Entry, p: SecondaryPeer): Promise<void>;
  /** Starts what the record asks for on the primary side (resyncs, rates). */
  afterChange(e: Entry): void;
  /** A secondary that took host writes lost its link (./freeze.ts: an armed group freezes), before it is marked failed. */
  linkLost?(e: Entry, p: SecondaryPeer, err: unknown): void;
}

export class PeerLinks {
  constructor(
    private readonly records: MirrorRecords,
    private readonly host: PeerLinkHost,
  ) {}

  private event(type: string, details: Record<string, unknown>): void {
    this.records.event(type, details);
  }

  startPeers(e: Entry): void {
    for (const p of e.primary!.peers.values()) this.connectPeer(e, p);
  }

  connectPeer(e: Entry, p: SecondaryPeer): void {
    const cfg = this.host.peerConfig(p.array);
    if (!cfg) {
      p.link = 'refused';
      p.linkError = `no remote link to array ${p.array} is configured`;
      this.noteUnreachable(e, p, p.linkError);
      return;
    }
    const timers = this.host.timers;
    const client = new RemoteLinkClient({
      array: this.host.array,
      peer: p.array,
      secret: cfg.secret,
      host: cfg.host,
      port: cfg.port,
      mirrors: [{ mirrorId: e.id, primarySize: mirrorSize(e.db) }],
      reconnect: { initialMs: timers.reconnectInitialMs, maxMs: timers.reconnectMaxMs },
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
    this.host.linkLost?.(e, p, new Error(why));
    p.failed = true;
    if (p.resync) p.resync.stop = true;
    this.noteUnreachable(e, p, why);
  }

  noteUnreachable(e: Entry, p: SecondaryPeer, why: string, reason: 'link' | 'freeze' = 'link'): void {
    const img = imageOf(e, p.imageId);
    if (img && img.reachability === 'REACHABLE') {
      this.event('image-lost', { mirrorId: e.id, imageId: p.imageId, why });
      this.records.changeQuietly(e, { op: 'image-unreachable', imageId: p.imageId, ...(reason === 'freeze' ? { reason } : {}) });
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
    await this.records.exclusive(e, async () => {
      if (!e.primary) return;
      const theirs = RegionBitmap.load(bin).bitmap;
      if (theirs.regionSize !== e.db.regionSize || theirs.lunSize !== mirrorSize(e.db)) throw new Error(`bitmap of ${p.imageId} has another geometry`);
      if (result.acknowledgedRegions > 0) return this.splitBrainFound(e, p, theirs, result.acknowledgedRegions);
      const theirRegions = theirs.countRegions();
      if (theirRegions > 0) {
        // none of it was acknowledged there: it only may differ (a clean step-down's write-intent
        // log, say), so a checksum resync compares before it sends
        for (const r of theirs.runs()) p.markMaybeDirty(r.offset, r.length);
        p.fracture.touch();
        await p.fracture.persist();
        this.event('rejoin-regions', { mirrorId: e.id, imageId: p.imageId, regions: theirRegions, bytes: theirs.dirtyBytes() });
      }
      p.link = 'connected';
      p.linkError = undefined;
      p.failed = false;
      if (imageOf(e, p.imageId)!.reachability === 'UNREACHABLE') await this.records.change(e, { op: 'image-reachable', imageId: p.imageId });
      // A former primary waits for this check (no split brain); now it may resynchronize.
      const now = imageOf(e, p.imageId)!;
      if (now.fractured && now.fractureReason === 'promote' && e.db.state === 'ACTIVE') await this.records.change(e, { op: 'synchronize', imageId: p.imageId });
      await this.host.resyncIfDirty(e, p);
      this.host.afterChange(e);
      this.event('image-connected', { mirrorId: e.id, imageId: p.imageId });
    });
  }

  /** Both sides took writes: keep the link up but fractured, until the operator picks a survivor. Runs inside `exclusive(e)`. */
  private async splitBrainFound(e: Entry, p: SecondaryPeer, theirs: RegionBitmap, remoteAcknowledgedRegions: number): Promise<void> {
    const ours = RegionBitmap.create(theirs.lunSize, theirs.regionSize);
    ours.union(p.fracture.bitmap);
    e.splitBrain = { imageId: p.imageId, local: ours, remote: theirs, detectedAt: new Date().toISOString() };
    p.link = 'connected';
    this.event('split-brain', {
      mirrorId: e.id,
      imageId: p.imageId,
      localRegions: ours.countRegions(),
      remoteRegions: theirs.countRegions(),
      remoteAcknowledgedRegions,
      action: 'automatic resync refused: choose the surviving side with "sanbox mirror resolve"',
    });
    const img = imageOf(e, p.imageId)!;
    if (img.reachability === 'UNREACHABLE') await this.records.change(e, { op: 'image-reachable', imageId: p.imageId });
    if (!img.fractured && imageOf(e, p.imageId)?.fractured === false) await this.records.change(e, { op: 'fracture', imageId: p.imageId }).catch(this.records.reportFailure(e, 'fracture'));
  }

  /** Pushes the record to every reachable member (the unreachable ones get it on reconnect). */
  propagate(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) if (p.link === 'connected') this.pushInBackground(e, p, 'record change');
  }

  /** A record push nobody waits for: its failure is a `push-failed` event. */
  pushInBackground(e: Entry, p: SecondaryPeer, why: string): void {
    void this.pushRecord(e, p).catch((err) => this.event('push-failed', { mirrorId: e.id, imageId: p.imageId, why, error: (err as Error)?.message }));
  }

  async pushRecord(e: Entry, p: SecondaryPeer): Promise<void> {
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
    const rec = loadRecord(raw);
    await this.records.exclusive(e, async () => {
      if (compareRecords(rec, e.db) <= 0) return;
      await this.host.adopt(e, rec, why);
    });
  }

  /** Reads `length` bytes of the mirror's secondary image on `array` (a group's backfresh). */
  async readSecondary(e: Entry, array: string, offset: number, length: number): Promise<Buffer> {
    const p = e.primary ? [...e.primary.peers.values()].find((x) => x.array === array) : undefined;
    if (!p) throw new MirrorError('not-found', `mirror ${e.id} has no secondary on ${array}`);
    if (!p.client?.connected) throw new MirrorError('unreachable', `the secondary of ${e.db.name} on ${array} is not connected (${p.linkError ?? p.link})`);
    const { bin } = await p.client.request('read', { mirrorId: e.id, imageId: p.imageId, offset, length }, undefined, { timeoutMs: remoteReadTimeoutMs });
    if (bin.length !== length) throw new MirrorError('unreachable', `read of ${length} bytes from ${array} returned ${bin.length}`);
    return bin;
  }

  /**
   * A one-shot link to `array` for requests outside any negotiated mirror (add-secondary, a plain
   * promote asking the old primary to step down). `timeoutMs`: for the TCP connect and for the
   * handshake each (default: the link's).
   */
  async withControlLink<T>(array: string, fn: (c: RemoteLinkClient) => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
    const cfg = this.host.peerConfig(array);
    if (!cfg) throw new MirrorError('invalid', `array ${this.host.array} has no remote link to array ${array} (configure it in the lab file)`);
    const t = opts.timeoutMs;
    const c = new RemoteLinkClient({ array: this.host.array, peer: array, secret: cfg.secret, host: cfg.host, port: cfg.port, mirrors: [], reconnect: false, ...(t !== undefined ? { connectTimeoutMs: t, timers: { handshakeTimeoutMs: t } } : {}) });
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
}
