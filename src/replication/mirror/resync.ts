import type { RemoteLinkError } from '../../link/protocol/index.js';
import { secondariesOf } from '../state/index.js';
import { imageOf, mirrorSize, phaseOf, type Entry } from './entry.js';
import { awaitsResync, linkUsable, startsResync } from './peer-phase.js';
import { newCopyChunk, type CopyChunk, type ResyncRun, type SecondaryPeer } from './primary.js';
import type { MirrorRecords } from './records.js';
import { compareAndSend, CSUM_BATCH_BYTES, CSUM_HASH, CsumUnsupported, type CsumTarget } from './resync-csum.js';
import { ChunkBuffers } from './chunk-buffers.js';
import { copyChunk, copyScattered } from './resync-copy.js';
import { ResyncGate } from './resync-gate.js';
import { RateLimiter } from './throttle.js';
import type { MirrorTimers } from './types.js';

/**
 * Resynchronization of the secondaries from the primary: when one starts (the record asks for
 * it, or a connected secondary's fracture log holds regions), the copy loop (the fracture log's
 * marked regions in chunks, a window of them on the wire, data throttled, holes as zero
 * requests), its end in the record, and the published progress.
 */
export interface ResyncHost {
  readonly timers: MirrorTimers;
  /** A request to the secondary failed: unreachable, connection dropped (./data-path.ts). */
  linkFailure(e: Entry, p: SecondaryPeer, err: unknown): void;
  /** Pushes the record to the secondary without waiting (./peer-link.ts). */
  pushInBackground(e: Entry, p: SecondaryPeer, why: string): void;
  /** True when the member's writes take the synchronous path (no group journal or bypass). */
  routeIsDirect(mirrorId: string): boolean;
}

const CHUNK_MAX_BYTES = 1024 * 1024;
const WINDOW = { low: 1, medium: 2, high: 4 } as const;
/** Free chunk buffers a run keeps (its window holds at most WINDOW.high chunks, one more is read). */
const CHUNK_BUFFERS_KEPT = WINDOW.high + 2;

/** The largest chunk of a mirror with `regionSize`: whole regions, about CHUNK_MAX_BYTES. */
const chunkMaxOf = (regionSize: number): number => Math.max(regionSize, Math.floor(CHUNK_MAX_BYTES / regionSize) * regionSize);
/** Chunks of scattered regions in one write at most (each an extent of it: 16 regions of 64 KiB fill a chunk). */
const SCATTER_CHUNKS_MAX = 64;
/** Checksum batches in flight per WINDOW step (they carry hashes, not data, over the link). */
const CSUM_BATCHES_PER_WINDOW = 2;
/** Block status is asked in steps of this many bytes when a full synchronization is marked. */
const BLOCK_STATUS_STEP_BYTES = 1 << 30;

/** A resync request carries up to CHUNK_MAX_BYTES: it may take twice as long as a host write. */
const resyncRequestTimeoutMs = (t: MirrorTimers): number => t.remoteWriteTimeoutMs * 2;

export class Resync {
  constructor(
    private readonly records: MirrorRecords,
    private readonly host: ResyncHost,
  ) {}

  private event(type: string, details: Record<string, unknown>): void {
    this.records.event(type, details);
  }

  /** After every record change: start the resyncs it asks for, follow its sync rates. */
  afterChange(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    for (const img of secondariesOf(e.db)) {
      const p = ps.peers.get(img.imageId);
      if (!p) continue;
      if (startsResync(phaseOf(e, p))) this.startResync(e, p);
      if (p.limiter) p.limiter.setRate(img.syncRate ?? e.db.syncRate);
    }
  }

  /**
   * A reachable, unfractured secondary whose fracture log is not empty must be resynchronized
   * whatever its recorded state (a host write may have missed it before the record caught up).
   * A decision over the record: the callers ask the peer's phase whether its link is up.
   * Runs inside `exclusive(e)`.
   */
  async resyncIfDirty(e: Entry, p: SecondaryPeer): Promise<void> {
    const img = imageOf(e, p.imageId);
    if (!img || img.fractured || img.reachability !== 'REACHABLE' || e.db.state !== 'ACTIVE') return;
    if (p.fracture.bitmap.countRegions() === 0) return;
    if (img.state === 'SYNCHRONIZED') await this.records.change(e, { op: 'primary-write' });
    const now = imageOf(e, p.imageId)!;
    if (now.state === 'CONSISTENT') await this.records.change(e, { op: 'updates-lost', imageId: p.imageId });
    else if (now.state === 'UNSYNCHRONIZED') await this.records.change(e, { op: 'synchronize', imageId: p.imageId });
  }

  /**
   * The periodic check: a connected, unfractured secondary whose fracture log holds regions with
   * no resync running (e.g. marked by a failed local write, or left by a group's bypass) is
   * resynchronized.
   */
  resumeDirty(e: Entry): void {
    const ps = e.primary;
    if (!ps || e.db.state !== 'ACTIVE') return;
    for (const p of ps.peers.values()) {
      const phase = phaseOf(e, p);
      // a resync the record asks for whose start was missed (a run still winding down then)
      if (startsResync(phase)) this.startResync(e, p);
      if (!awaitsResync(phase)) continue;
      if (p.fracture.bitmap.countRegions() > 0 && this.host.routeIsDirect(e.id)) void this.records.exclusive(e, () => this.resyncIfDirty(e, p)).catch(this.records.reportFailure(e, 'periodic resync check'));
    }
  }

  /** Every connected secondary of `e` with fracture-log regions (a group left its bypass). */
  async resyncDirty(e: Entry): Promise<void> {
    if (!e.primary) return;
    for (const p of e.primary.peers.values()) if (linkUsable(phaseOf(e, p))) await this.records.exclusive(e, () => this.resyncIfDirty(e, p)).catch(this.records.reportFailure(e, 'resync of a group member'));
  }

  /**
   * Before a synchronize: `full` marks every allocated region (a full synchronization, e.g. to
   * check and repair an image with `checksum`); `checksum` makes the run compare checksums of
   * every chunk and send only what differs (./resync-csum.ts), the running one too.
   */
  async prepare(e: Entry, p: SecondaryPeer, opts: { checksum?: boolean; full?: boolean }): Promise<void> {
    if (opts.full) await this.markFull(e, p, 'requested (synchronize --full)');
    p.checksumRequested = opts.checksum === true;
    if (p.resync && opts.checksum) p.resync.checksums = 'always';
  }

  /** Marks every allocated region of the primary for `peer` (a full synchronization). */
  async markFull(e: Entry, peer: SecondaryPeer, reason: string): Promise<void> {
    const size = mirrorSize(e.db);
    let off = 0;
    let allocated = 0;
    while (off < size) {
      const ext = await e.lun.device.blockStatus(off, Math.min(size - off, BLOCK_STATUS_STEP_BYTES));
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

  private startResync(e: Entry, p: SecondaryPeer): void {
    const img = imageOf(e, p.imageId)!;
    const bytesTotal = p.fracture.bitmap.dirtyBytes();
    const run: ResyncRun = {
      full: p.fullReason !== null,
      reason: p.fullReason ?? 'fracture log',
      bytesTotal,
      bytesDone: 0,
      bytesCopied: 0,
      bytesZeroed: 0,
      writesSent: 0,
      startedAt: Date.now(),
      lastRateAt: performance.now(),
      lastRateBytes: 0,
      lastRateSent: 0,
      rate: 0,
      coveredRate: 0,
      stop: false,
      done: Promise.resolve(),
      starting: true,
      checksums: p.checksumRequested ? 'always' : (img.resyncChecksums ?? e.db.resyncChecksums ?? 'auto'),
      bytesCompared: 0,
      chunksSkipped: 0,
      hashBytes: 0,
      gate: (e.db.syncController ?? 'adaptive') === 'adaptive' ? new ResyncGate(WINDOW.high * CHUNK_MAX_BYTES) : null,
      buffers: new ChunkBuffers(chunkMaxOf(e.db.regionSize), CHUNK_BUFFERS_KEPT),
      scatterWrites: false,
    };
    p.checksumRequested = false;
    p.resync = run;
    p.limiter = new RateLimiter(img.syncRate ?? e.db.syncRate);
    this.event('resync-started', { mirrorId: e.id, imageId: p.imageId, full: run.full, reason: run.reason, bytesTotal, regions: p.fracture.bitmap.countRegions(), rate: p.limiter.bytesPerSecond, controller: run.gate ? 'adaptive' : 'fixed', checksums: run.checksums, maybeDirtyBytes: p.maybeDirty?.dirtyBytes() ?? 0 });
    run.done = this.resyncLoop(e, p, run).then(
      async (finished) => {
        run.gate?.close();
        p.resync = null;
        if (!finished) {
          this.event('resync-stopped', { mirrorId: e.id, imageId: p.imageId, bytesDone: run.bytesDone, ...csumDetails(run), bytesLeft: p.fracture.bitmap.dirtyBytes() });
          // Stopped on purpose (a fracture) while the record asked for a new run meanwhile (a
          // synchronize that found this one still winding down): start it now.
          if (run.stop) this.afterChange(e);
          return;
        }
        p.fullReason = null;
        p.maybeDirty = null;
        // Until sync-done is recorded the record asks for a resync: the periodic check and every
        // record change would start a second run, which would find nothing to do and stop.
        p.resyncFinishing = true;
        try {
          await p.fracture.persist();
          // the record first: whoever acts on resync-done (a verify, the monitor) sees the image synchronized
          await this.records
            .exclusive(e, () => this.records.change(e, { op: 'sync-done', imageId: p.imageId }))
            .then(
              () => e.primary?.noteResyncEnd(),
              (err) => this.event('change-failed', { mirrorId: e.id, op: 'sync-done', error: (err as Error).message }),
            );
        } finally {
          p.resyncFinishing = false;
        }
        this.event('resync-done', { mirrorId: e.id, imageId: p.imageId, full: run.full, bytesDone: run.bytesDone, bytesCopied: run.bytesCopied, bytesZeroed: run.bytesZeroed, ...csumDetails(run), seconds: (Date.now() - run.startedAt) / 1000 });
      },
      (err) => {
        run.gate?.close();
        p.resync = null;
        this.event('resync-stopped', { mirrorId: e.id, imageId: p.imageId, error: (err as Error).message });
      },
    );
  }

  /**
   * Tells the secondary a resync starts: the record (its image SYNCHRONIZING), answered once the
   * secondary has cut its resync protection (./protection.ts). Until then nothing is sent to it:
   * no copy, and host writes only mark the fracture log (phase `resync-starting`). False: stop.
   */
  private async announce(e: Entry, p: SecondaryPeer, run: ResyncRun): Promise<boolean> {
    const client = p.client;
    if (!client?.connected) return false;
    try {
      const { result } = await client.request('mirror-db', { mirrorId: e.id, record: e.db as unknown as Record<string, unknown> }, undefined, { timeoutMs: resyncRequestTimeoutMs(this.host.timers) });
      if (!result.applied) {
        // the secondary holds a newer record: the background push adopts it (never from here:
        // an adoption may demote this side, which waits for this resync to end)
        this.host.pushInBackground(e, p, 'a newer record on the secondary (resync announce)');
        return false;
      }
      if (result.generation !== undefined) p.memberGeneration = result.generation;
      run.scatterWrites = result.scatterWrites === true; // an older secondary does not say: one write per chunk
    } catch (err) {
      this.copyFailed(e, p, err);
      return false;
    }
    run.starting = false;
    return true;
  }

  /** Copies marked regions in chunks, `WINDOW[priority]` at a time, until the fracture log is empty. */
  private async resyncLoop(e: Entry, p: SecondaryPeer, run: ResyncRun): Promise<boolean> {
    if (!(await this.announce(e, p, run))) return false;
    const size = mirrorSize(e.db);
    const rs = e.db.regionSize;
    const gate = run.gate;
    const chunkMax = chunkMaxOf(rs);
    let cursor = 0;
    let failure: unknown = null;
    const stopped = () => run.stop || failure !== null || p.failed || !e.primary || imageOf(e, p.imageId)?.state !== 'SYNCHRONIZING';
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
          const c = newCopyChunk(run.offset, Math.min(run.length, chunkMax));
          cursor = c.offset + c.length;
          p.touchByMarked(c);
          return c;
        }
        cursor = 0;
      }
      return null;
    };
    // In flight: up to `width` MiB of chunks (scattered regions make small chunks: many of them
    // may be on the wire at once, or a link round trip would cap the rate at width x 64 KiB);
    // chunks compared by checksum go in batches (one hash request per level for all of them).
    // (adaptive: what the window holds and one chunk being read; the window decides what is sent)
    const fixedBudget = (WINDOW[e.db.syncPriority] ?? 2) * chunkMax;
    const budgetNow = (): number => (gate ? Math.max(2 * chunkMax, gate.state.windowBytes + chunkMax) : fixedBudget);
    const csumBudget = (WINDOW[e.db.syncPriority] ?? 2) * CSUM_BATCHES_PER_WINDOW * CSUM_BATCH_BYTES;
    const useCsum = (c: CopyChunk): boolean => run.checksums === 'always' || (run.checksums === 'auto' && p.maybeDirty !== null && p.maybeDirty.test(c.offset, c.length));
    /** Adds chunks to `batch` while `more(its bytes)`; one that does not `fit` stays for the next worker. */
    const gather = (batch: CopyChunk[], more: (bytes: number) => boolean, fits: (c: CopyChunk, bytes: number) => boolean): void => {
      for (let bytes = batch[0]!.length; more(bytes); ) {
        const c = nextChunk();
        if (!c) return;
        if (!fits(c, bytes)) {
          cursor = c.offset;
          return;
        }
        batch.push(c);
        p.copying.add(c);
        bytes += c.length;
      }
    };
    let used = 0;
    let usedCsum = 0;
    const waiting: Array<() => void> = [];
    const worker = async (): Promise<void> => {
      while (!stopped()) {
        while ((used >= budgetNow() || usedCsum >= csumBudget) && !stopped()) await new Promise<void>((r) => waiting.push(r));
        const first = stopped() ? null : nextChunk();
        if (!first) {
          for (const w of waiting.splice(0)) w(); // nothing left to take: let the others see it too
          return;
        }
        const csum = useCsum(first);
        const batch = [first];
        p.copying.add(first); // before the next nextChunk: it skips what is taken
        if (csum) gather(batch, (bytes) => bytes < CSUM_BATCH_BYTES, useCsum);
        else if (run.scatterWrites) {
          // scattered regions: one write of several extents, up to a chunk (adaptive: up to its
          // piece, so while the host writes a region goes alone)
          const most = gate ? Math.min(gate.pieceBytes(), chunkMax) : chunkMax;
          gather(batch, (bytes) => bytes < most && batch.length < SCATTER_CHUNKS_MAX, (c, bytes) => !useCsum(c) && bytes + c.length <= most);
        }
        const bytes = batch.reduce((n, c) => n + c.length, 0);
        if (csum) usedCsum += bytes;
        else used += bytes;
        try {
          if (!(await (csum ? this.compareChunks(e, p, batch, run, stopped) : this.copy(e, p, batch, run, stopped)))) {
            for (const w of waiting.splice(0)) w();
            return;
          }
          for (const c of batch) {
            p.copyDone(c);
            run.bytesDone += c.length;
          }
        } catch (err) {
          failure ??= err;
        } finally {
          for (const c of batch) {
            p.copying.delete(c);
            c.release();
          }
          if (csum) usedCsum -= bytes;
          else used -= bytes;
          waiting.shift()?.();
        }
      }
    };
    const img = imageOf(e, p.imageId);
    const width = (WINDOW[e.db.syncPriority] ?? 2) * 16;
    for (;;) {
      await Promise.all(Array.from({ length: width }, worker));
      if (failure !== null) {
        this.copyFailed(e, p, failure);
        return false;
      }
      if (stopped()) return false;
      // What host writes touched during a copy is marked again; go round once more.
      if (p.fracture.bitmap.countRegions() === 0) return img !== undefined;
    }
  }

  private copyFailed(e: Entry, p: SecondaryPeer, err: unknown): void {
    if ((err as RemoteLinkError)?.code === 'stale-epoch') {
      this.host.pushInBackground(e, p, 'stale epoch on a resync write');
      return;
    }
    p.failed = true;
    this.host.linkFailure(e, p, err);
  }

  /**
   * Compares a batch of chunks by checksum with the secondary and sends what differs
   * (./resync-csum.ts). A secondary that cannot answer hashes (an older array) gets them copied,
   * and the rest of the run copies too.
   */
  private async compareChunks(e: Entry, p: SecondaryPeer, batch: CopyChunk[], run: ResyncRun, stopped: () => boolean): Promise<boolean> {
    const client = p.client!;
    const timeoutMs = resyncRequestTimeoutMs(this.host.timers);
    const common = { mirrorId: e.id, imageId: p.imageId };
    let scatter = false; // the secondary takes writes of scattered extents (its hash answers say)
    const target: CsumTarget = {
      hashes: async (ranges, chunkSize) => {
        const r = await client.request('read-regions', { ...common, regionSize: e.db.regionSize, regions: [], ranges, chunkSize, hash: CSUM_HASH }, undefined, { timeoutMs });
        if (r.result.hash !== CSUM_HASH) throw new CsumUnsupported(`${p.array} answered no ${CSUM_HASH} hashes`);
        scatter = r.result.scatterWrites === true;
        return r.bin;
      },
      write: async (extents, data) => {
        if (!(await p.limiter!.take(data.length, stopped))) return false;
        const put = (offset: number, bin: Buffer, ext?: Array<[number, number]>) =>
          client.request('write', { ...common, offset, flags: { resync: true }, epoch: e.db.epoch, ...(ext ? { extents: ext } : {}) }, bin, { timeoutMs }).then(() => void run.writesSent++);
        if (extents.length === 1 || scatter) await put(extents[0]![0], data, extents.length > 1 ? extents : undefined);
        else for (let i = 0, at = 0; i < extents.length; at += extents[i]![1], i++) await put(extents[i]![0], data.subarray(at, at + extents[i]![1]));
        return true;
      },
      zero: async (offset, length) => void (await client.request('zero', { ...common, offset, length, trim: false, epoch: e.db.epoch }, undefined, { timeoutMs })),
    };
    try {
      // the primary's bytes, read while the chunks are in `copying`: a host write from now on touches them
      const pieces = await Promise.all(batch.map(async (c) => ({ offset: c.offset, data: await e.lun.device.read(c.offset, c.length) })));
      return await compareAndSend(pieces, target, run);
    } catch (err) {
      if (!(err instanceof CsumUnsupported)) throw err;
      run.checksums = 'never'; // the run's events say so
      for (const c of batch) if (!(await this.copy(e, p, [c], run, stopped))) return false;
      return true;
    }
  }

  /**
   * Copies a batch of chunks (./resync-copy.ts): one alone, or several of scattered regions as
   * one write of their extents. False when stopped while throttled.
   */
  private copy(e: Entry, p: SecondaryPeer, batch: CopyChunk[], run: ResyncRun, stopped: () => boolean): Promise<boolean> {
    const x = { e, p, run, stopped, timeoutMs: resyncRequestTimeoutMs(this.host.timers) };
    return batch.length === 1 ? copyChunk(x, batch[0]!) : copyScattered(x, batch);
  }

  /** Every progressMs: rates (sent, covered), totals, a `resync-progress` event, and the progress in the record. */
  publishProgress(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) {
      const r = p.resync;
      if (!r) continue;
      const now = performance.now();
      const dt = (now - r.lastRateAt) / 1000;
      if (dt > 0) {
        // sent: data over the link (what the cap limits); covered: data and holes/zero runs
        r.rate = (r.bytesCopied - r.lastRateSent) / dt;
        r.coveredRate = (r.bytesDone - r.lastRateBytes) / dt;
      }
      r.lastRateAt = now;
      r.lastRateBytes = r.bytesDone;
      r.lastRateSent = r.bytesCopied;
      r.bytesTotal = r.bytesDone + p.fracture.bitmap.dirtyBytes();
      const v = p.resyncView()!;
      this.event('resync-progress', { mirrorId: e.id, imageId: p.imageId, ...v });
      if (imageOf(e, p.imageId)?.state === 'SYNCHRONIZING') this.records.changeQuietly(e, { op: 'sync-progress', imageId: p.imageId, bytesDone: Math.min(r.bytesDone, r.bytesTotal), bytesTotal: r.bytesTotal });
    }
  }
}

/** The checksum side of a run, for its events. */
function csumDetails(run: ResyncRun): Record<string, unknown> {
  return { checksums: run.checksums, bytesSent: run.bytesCopied, writesSent: run.writesSent, bytesCompared: run.bytesCompared, chunksSkipped: run.chunksSkipped, hashBytes: run.hashBytes };
}
