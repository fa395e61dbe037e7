import type { RemoteLinkClient } from '../../link/protocol/index.js';
import { TsRegionBitmap, WriteIntentLog, type RegionBitmap } from '../../native/index.js';
import type { ResyncChecksums } from '../state/index.js';
import type { BitmapFile } from './bitmap-file.js';
import type { ChunkBuffers } from './chunk-buffers.js';
import type { PeerLinkState } from './peer-phase.js';
import type { ResyncGate } from './resync-gate.js';
import type { RateLimiter } from './throttle.js';
import type { ResyncView } from './types.js';

/**
 * Runtime state of the primary side of one mirror: the write-intent log and, per secondary,
 * the link, the fracture log and the resync. The driver's parts drive it; this file only holds the
 * state and the small invariant-checked helpers the data path needs; what a secondary is doing
 * is derived from it by peerPhase (./peer-phase.ts).
 */

/**
 * A resync chunk on the wire. A host write that was already under way when the chunk was taken
 * re-dirties what it wrote (`touched`); a host write that arrives meanwhile waits for `copied`
 * instead, so the chunk is clean after one copy and the write goes to both sides (else a region
 * written without pause would be copied again and again). When the wait runs out, only the
 * touched ranges stay marked: the rest of the chunk was copied (a writer that keeps one region
 * busy must not make the whole chunk go round again and again).
 */
export interface CopyChunk {
  offset: number;
  length: number;
  /** host writes into the chunk during its copy, [offset, length]; null while there is none */
  touched: Array<[number, number]> | null;
  /** settles when the chunk is off the wire (copied, touched or failed) */
  copied: Promise<void>;
  release(): void;
}

export function newCopyChunk(offset: number, length: number): CopyChunk {
  let release = (): void => undefined;
  const copied = new Promise<void>((r) => (release = r));
  return { offset, length, touched: null, copied, release };
}

export interface ResyncRun {
  full: boolean;
  reason: string;
  bytesTotal: number;
  bytesDone: number;
  /** bytes sent as data (holes of a full synchronization go as zero requests, no payload) */
  bytesCopied: number;
  bytesZeroed: number;
  /** write requests that carried data (a scattered one carries several chunks) */
  writesSent: number;
  startedAt: number;
  lastRateAt: number;
  /** bytesDone and bytesCopied at lastRateAt */
  lastRateBytes: number;
  lastRateSent: number;
  /** bytes sent as data per second over the last progress interval (what the sync rate caps) */
  rate: number;
  /** bytes covered (sent, or zeroed without payload) per second over the last progress interval */
  coveredRate: number;
  stop: boolean;
  done: Promise<void>;
  /** Until the secondary answered the record announcing the resync: nothing is sent to it (./resync.ts). */
  starting: boolean;
  /** Checksum comparison (./resync-csum.ts): `always` when asked for (or set), `auto`: the maybe-dirty regions only. */
  checksums: ResyncChecksums;
  /** bytes whose checksums were compared; pieces found identical (not sent); hash bytes received */
  bytesCompared: number;
  chunksSkipped: number;
  hashBytes: number;
  /** The adaptive controller's window (./resync-window.ts); null: the fixed controller (syncRate, WINDOW). */
  gate: ResyncGate | null;
  /** What its chunks are read into (./chunk-buffers.ts). */
  buffers: ChunkBuffers;
  /** The secondary takes a write of scattered extents (its answer to the announcing record says): small chunks go together (./resync-copy.ts). */
  scatterWrites: boolean;
}

export class SecondaryPeer {
  client: RemoteLinkClient | null = null;
  link: PeerLinkState = 'connecting';
  linkError: string | undefined;
  /**
   * False from the moment a remote write failed until the image is resumed: later writes only
   * mark the fracture log. Set synchronously on failure, before the database catches up.
   */
  failed = false;
  readonly copying = new Set<CopyChunk>();
  /**
   * Host writes that marked the fracture log instead of coming here, until they end: what they
   * write may not be readable yet, so a chunk taken meanwhile keeps their ranges marked.
   */
  readonly markedInFlight = new Set<[number, number]>();
  resync: ResyncRun | null = null;
  /**
   * The resync copied everything and is recording its end (fracture log persisted, then the
   * record's sync-done): the record still says SYNCHRONIZING, and no new run may start for it.
   */
  resyncFinishing = false;
  /** Why the fracture log holds every allocated region (full synchronization), if it does. */
  fullReason: string | null = null;
  /** Host writes sent and not yet acknowledged (remove-secondary graceful waits for them). */
  inflight = 0;
  limiter: RateLimiter | null = null;
  /** The record generation this member last confirmed (its view of the mirror). */
  memberGeneration: number | null = null;
  /**
   * Regions of the fracture log that MAY differ (the write-intent log's after an unclean stop),
   * as against known to differ: `auto` compares their checksums. In memory only: after another
   * restart they count as known dirty (copied), which is safe.
   */
  maybeDirty: RegionBitmap | null = null;
  /** The next resync (or the running one) compares checksums everywhere: asked for by synchronize. */
  checksumRequested = false;

  constructor(
    readonly imageId: string,
    readonly array: string,
    readonly lun: number,
    readonly fracture: BitmapFile,
  ) {}

  /**
   * A host write this secondary did not get (fractured, failed, bypass): the fracture log takes it,
   * and its regions are no longer only maybe-dirty, so a demote counts them as acknowledged (the
   * caller persists).
   */
  markWritten(offset: number, length: number): void {
    this.fracture.mark(offset, length);
    const md = this.maybeDirty;
    if (!md) return;
    const rs = md.regionSize;
    const from = Math.floor(offset / rs) * rs;
    md.clear(from, Math.min(md.lunSize, Math.ceil((offset + length) / rs) * rs) - from);
  }

  /**
   * A crash's write-intent regions: maybe-dirty, but only those the fracture log does not hold
   * already (those may hold writes acknowledged while fractured, and stay counted as such).
   */
  markMaybeDirtyUntracked(offset: number, length: number): void {
    const rs = this.fracture.bitmap.regionSize;
    const end = Math.min(this.fracture.bitmap.lunSize, offset + length);
    for (let o = Math.floor(offset / rs) * rs; o < end; o += rs) {
      const len = Math.min(rs, this.fracture.bitmap.lunSize - o);
      if (!this.fracture.bitmap.test(o, len)) this.markMaybeDirty(o, len);
    }
  }

  /** Marks a range that may differ on this secondary (fracture log and maybeDirty; the caller persists). */
  markMaybeDirty(offset: number, length: number): void {
    this.fracture.mark(offset, length);
    this.maybeDirty ??= new TsRegionBitmap(this.fracture.bitmap.lunSize, this.fracture.bitmap.regionSize);
    this.maybeDirty.mark(offset, length);
  }

  /** The chunks of [offset, offset+length) on the wire now, settled once copied. */
  copiesOf(offset: number, length: number): Promise<void>[] {
    const out: Promise<void>[] = [];
    for (const c of this.copying) if (offset < c.offset + c.length && c.offset < offset + length) out.push(c.copied);
    return out;
  }

  /** A chunk being taken: the marking host writes still under way stay marked after its copy (markedInFlight). */
  touchByMarked(c: CopyChunk): void {
    for (const r of this.markedInFlight) if (r[0] < c.offset + c.length && c.offset < r[0] + r[1]) (c.touched ??= []).push(r);
  }

  /** A host write to [offset, offset+length) during a copy: that range stays dirty in the chunks it overlaps. */
  touch(offset: number, length: number): void {
    for (const c of this.copying) if (offset < c.offset + c.length && c.offset < offset + length) (c.touched ??= []).push([offset, length]);
  }

  /**
   * A chunk's copy ended: its range is clean on this secondary except what host writes touched
   * meanwhile (marked again in the same turn, so the fracture log never misses them).
   */
  copyDone(c: CopyChunk): void {
    this.fracture.clear(c.offset, c.length);
    this.maybeDirty?.clear(c.offset, c.length);
    for (const [offset, length] of c.touched ?? []) this.fracture.mark(offset, length);
  }

  resyncView(): ResyncView | null {
    const r = this.resync;
    if (!r) return null;
    const left = Math.max(0, r.bytesTotal - r.bytesDone);
    return {
      full: r.full,
      reason: r.reason,
      bytesDone: r.bytesDone,
      bytesTotal: r.bytesTotal,
      bytesSent: r.bytesCopied,
      checksums: r.checksums,
      bytesCompared: r.bytesCompared,
      chunksSkipped: r.chunksSkipped,
      controller: r.gate ? 'adaptive' : 'fixed',
      window: r.gate?.view() ?? null,
      rate: Math.round(r.rate),
      coveredRate: Math.round(r.coveredRate),
      // what is left is covered at the covered rate (holes go faster than data)
      eta: r.coveredRate > 0 ? Math.ceil(left / r.coveredRate) : null,
      startedAt: new Date(r.startedAt).toISOString(),
    };
  }
}

export class PrimarySide {
  readonly wil: WriteIntentLog;
  readonly peers = new Map<string, SecondaryPeer>();
  /** Host writes (and zeroes) between their start and their end in the WIL. */
  inflight = 0;
  private idleWaiters: Array<() => void> = [];
  /** A host write happened since the last quiesce check (SYNCHRONIZED -> CONSISTENT is pending or done). */
  wroteSinceQuiesce = false;
  lastWriteAt = 0;
  timers: NodeJS.Timeout[] = [];
  closed = false;

  constructor(readonly wilFile: BitmapFile) {
    this.wil = new WriteIntentLog(wilFile.bitmap);
  }

  /**
   * A resync ended (its image CONSISTENT): its writes count as writes for the quiesce check, so
   * the image becomes SYNCHRONIZED once nothing has been in flight for quiesceMs, host writes or not.
   */
  noteResyncEnd(): void {
    this.lastWriteAt = performance.now();
    this.wroteSinceQuiesce = true;
  }

  begin(): void {
    if (this.closed) throw new Error('primary side is closed');
    this.inflight++;
  }

  end(): void {
    if (this.inflight <= 0) throw new Error('primary side: write ended twice (in-flight count below zero)');
    this.inflight--;
    if (this.inflight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when no host write is between begin and end. */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }
}
