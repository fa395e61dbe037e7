import { BlockError } from '../../block/index.js';
import type { RemoteLinkError } from '../../link/protocol/index.js';
import { secondariesOf } from '../state/index.js';
import type { HostModify, LunRole, MirrorDataPath } from './data-path-api.js';
import { imageOf, factsOf, LINK_FAILURES, phaseOf, type Entry } from './entry.js';
import { GroupFreeze, type FreezeCause } from './freeze.js';
import { inSync, linkUsable, takesHostWritesNow } from './peer-phase.js';
import type { PrimarySide, SecondaryPeer } from './primary.js';
import type { MirrorRecords } from './records.js';
import type { MirrorTimers } from './types.js';

/**
 * The data path of the primary side, called by MirrorLayer (through MirrorDataPath): the
 * write-intent log, local ∥ remote writes, fracture-log marks for the secondaries that cannot
 * take a write, what a failed local or remote write leaves, flushes, and the two timers of the
 * write-intent log (lazy clear, quiesce). Every remote request of a host write is built here.
 */

/** One request per REMOTE_MAX_BYTES bytes: a link frame carries at most 16 MiB, NBD writes up to 32 MiB. */
const REMOTE_MAX_BYTES = 8 * 1024 * 1024;
/** How long a host write waits for a resync chunk it lands in to be copied (CopyChunk). */
const COPY_WAIT_MAX_MS = 20;

/** What the data path uses of the consistency groups (GroupManager): the route of a member's write. */
export interface GroupRouting {
  groupOf(mirrorId: string): object | undefined;
  route(mirrorId: string): 'journal' | 'bypass' | 'direct' | Promise<void>;
  journal(mirrorId: string, offset: number, length: number, data: Buffer | null, trim: boolean, local: () => Promise<void>, fua?: boolean): Promise<'done' | 'bypass'>;
  flush(mirrorId: string): Promise<void>;
  offline(mirrorId: string): boolean;
  /** The armed freeze (./freeze.ts): the members that stop together, or null (not synchronous, not armed, bypass). */
  freezeMembers(mirrorId: string): string[] | null;
  /** Publishes `group.frozen`. */
  frozen(mirrorId: string, details: { array: string; member: string; op: string; error: string; frozen: string[] }): void;
}

export interface DataPathHost {
  readonly timers: MirrorTimers;
  readonly groups: GroupRouting;
  /** Pushes the record to the secondary without waiting; a failure is an event (./peer-link.ts). */
  pushInBackground(e: Entry, p: SecondaryPeer, why: string): void;
  /** The record learns the image cannot be reached (if it still says REACHABLE); fractured for `reason` (default `link`). */
  noteUnreachable(e: Entry, p: SecondaryPeer, why: string, reason?: 'link' | 'freeze'): void;
  /** Moves a secondary with fracture-log regions to SYNCHRONIZING. Runs inside `exclusive(e)`. */
  resyncIfDirty(e: Entry, p: SecondaryPeer): Promise<void>;
}

export class DataPath implements MirrorDataPath {
  /** The armed freeze of synchronous groups: called in the tick a secondary stops replicating. */
  readonly freeze: GroupFreeze;

  constructor(
    private readonly records: MirrorRecords,
    private readonly host: DataPathHost,
  ) {
    this.freeze = new GroupFreeze(records, { groups: host.groups, noteUnreachable: (e, p, why, reason) => host.noteUnreachable(e, p, why, reason) });
  }

  private event(type: string, details: Record<string, unknown>): void {
    this.records.event(type, details);
  }

  roleOf(lunId: number): LunRole | undefined {
    const e = this.records.entryOfLun(lunId);
    if (!e) return undefined;
    return { role: e.primary ? 'primary' : 'secondary', allowReads: e.db.allowSecondaryReads, offline: this.host.groups.offline(e.id) };
  }

  /** The secondary takes this write now: its phase says so, its socket is open, and its fracture log does not hold the range. */
  private sendable(e: Entry, p: SecondaryPeer, offset: number, length: number): boolean {
    if (!takesHostWritesNow(imageOf(e, p.imageId), factsOf(p)) || !p.client?.connected) return false;
    return !p.fracture.bitmap.test(offset, length);
  }

  /** The remote half of a host modification: writes (split at REMOTE_MAX_BYTES), trims and zeroes. */
  private sendRemote(e: Entry, p: SecondaryPeer, op: HostModify): Promise<unknown> {
    const client = p.client!;
    const timeoutMs = this.host.timers.remoteWriteTimeoutMs;
    const data = op.data;
    if (data === null) return client.request('zero', { mirrorId: e.id, imageId: p.imageId, offset: op.offset, length: op.length, trim: op.trim, epoch: e.db.epoch }, undefined, { timeoutMs });
    // the usual host write: one request, no array of parts to wait on
    if (data.length <= REMOTE_MAX_BYTES) return client.request('write', writeArgs(e, p, op.offset, op.fua), data, { timeoutMs });
    const parts: Promise<unknown>[] = [];
    for (let o = 0; o < data.length; o += REMOTE_MAX_BYTES)
      parts.push(client.request('write', writeArgs(e, p, op.offset + o, op.fua), data.subarray(o, Math.min(data.length, o + REMOTE_MAX_BYTES)), { timeoutMs }));
    return Promise.all(parts);
  }

  /**
   * One host write or zeroing on the primary: write-intent mark (persisted before anything is
   * written), local write ∥ every sendable secondary, and for the others a persisted fracture-log
   * mark. The host is acknowledged once all of that is in; a secondary that fails is fractured,
   * never the host write.
   */
  async hostModify(lunId: number, op: HostModify, local: () => Promise<void>): Promise<void> {
    const { offset, length } = op;
    const e = this.records.entryOfLun(lunId);
    const ps = e?.primary;
    if (!e || !ps || ps.closed) throw new BlockError('EPERM', 'this LUN is no longer the primary image of its mirror');
    const groups = this.host.groups;
    if (groups.groupOf(e.id)) {
      let route = groups.route(e.id);
      while (typeof route !== 'string') {
        await route;
        route = groups.route(e.id);
      }
      if (route === 'journal') {
        ps.begin();
        try {
          if ((await groups.journal(e.id, offset, length, op.data, op.trim, local, op.fua)) === 'done') return;
        } finally {
          ps.end();
        }
        // the writelog overflowed: the group is in bypass now, and the write goes that way
      }
      if (route !== 'direct') return this.bypassModify(ps, offset, length, local);
    }
    // A write into a chunk on the wire waits for its copy (CopyChunk), then goes to both sides; at
    // most COPY_WAIT_MAX_MS (a throttled resync's chunk may take seconds): then it re-dirties the chunk.
    if (hasCopies(ps)) {
      await waitForCopies(ps, offset, length);
      if (ps.closed) throw new BlockError('EPERM', 'this LUN is no longer the primary image of its mirror');
    }
    ps.begin();
    const wil = ps.wil;
    let begun = false;
    const marked: SecondaryPeer[] = [];
    let range: [number, number] | undefined; // in markedInFlight of the marked peers until the write ends
    try {
      const fresh = wil.bitmap.countRegions(offset, length) < regionsIn(wil.bitmap.regionSize, offset, length);
      wil.begin(offset, length);
      begun = true;
      if (fresh) {
        ps.wilFile.touch();
        await ps.wilFile.persist();
      }
      const waits: Promise<unknown>[] = [SETTLED]; // [0]: the local write, whose error the host gets first
      let sent = false;
      for (const p of ps.peers.values()) {
        if (this.sendable(e, p, offset, length)) {
          sent = true;
          p.inflight++;
          const gate = p.resync?.gate; // the adaptive resync learns the host's remote-write times
          const t0 = gate ? performance.now() : 0;
          waits.push(
            this.sendRemote(e, p, op).then(
              () => {
                p.inflight--;
                gate?.hostSample(performance.now() - t0);
              },
              (err) => {
                p.inflight--;
                return this.remoteFailed(e, p, offset, length, err, op.data ? 'write' : op.trim ? 'trim' : 'zero');
              },
            ),
          );
        } else {
          p.touch(offset, length);
          p.markWritten(offset, length);
          p.markedInFlight.add((range ??= [offset, length]));
          marked.push(p);
        }
      }
      for (const p of marked) waits.push(p.fracture.persist());
      // With other host writes in flight (a batch read from the host at once), the remote
      // requests leave first: the link writes its frames on nextTick, after every inline local
      // write of the batch had they started first, and the secondary would idle meanwhile. Alone
      // (QD1) nothing would overlap: the local write starts at once.
      waits[0] = (sent && ps.inflight > 1 ? afterLinkFlush(local) : local()).catch((err) => this.localFailed(e, ps, offset, length, err));
      await allOrFirstError(waits);
    } finally {
      if (range) for (const p of marked) p.markedInFlight.delete(range);
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
  private async bypassModify(ps: PrimarySide, offset: number, length: number, local: () => Promise<void>): Promise<void> {
    ps.begin();
    try {
      markAll(ps, offset, length);
      await allOrFirstError([local(), ...[...ps.peers.values()].map((p) => p.fracture.persist())]);
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
    markAll(ps, offset, length);
    await Promise.all([...ps.peers.values()].map((p) => p.fracture.persist()));
    this.event('local-write-failed', { mirrorId: e.id, offset, length, error: (err as Error)?.message });
    for (const p of ps.peers.values())
      if (linkUsable(phaseOf(e, p))) void this.records.exclusive(e, () => this.host.resyncIfDirty(e, p)).catch(this.records.reportFailure(e, 'resync after a failed local write'));
    throw err;
  }

  async hostFlush(lunId: number, local: () => Promise<void>): Promise<void> {
    const e = this.records.entryOfLun(lunId);
    const ps = e?.primary;
    if (!e || !ps) return local();
    const waits: Promise<unknown>[] = [local(), this.host.groups.flush(e.id)];
    for (const p of ps.peers.values()) {
      if (!linkUsable(phaseOf(e, p)) || !p.client?.connected) continue;
      waits.push(
        p.client.request('flush', { mirrorId: e.id, imageId: p.imageId, epoch: e.db.epoch }, undefined, { timeoutMs: this.host.timers.remoteWriteTimeoutMs }).catch((err) => {
          // Writes it acknowledged may not be stable there: treat it like a failed write.
          this.freeze.stopped(e, p, 'flush', err);
          p.failed = true;
          this.linkFailure(e, p, err);
        }),
      );
    }
    await allOrFirstError(waits);
  }

  private async remoteFailed(e: Entry, p: SecondaryPeer, offset: number, length: number, err: unknown, cause: FreezeCause): Promise<void> {
    const code = (err as RemoteLinkError)?.code;
    if (code === 'stale-epoch') {
      // A newer primary exists: this array must not acknowledge writes any more.
      this.host.pushInBackground(e, p, 'stale epoch on a host write');
      throw new BlockError('EPERM', `mirror ${e.db.name}: ${p.array} holds a newer primary (epoch); this image is no longer primary`);
    }
    // An armed synchronous group stops every member's writes to this array now, before this ack.
    this.freeze.stopped(e, p, cause, err);
    p.failed = true;
    p.touch(offset, length);
    p.markWritten(offset, length);
    await p.fracture.persist();
    this.linkFailure(e, p, err);
  }

  /** A request to the secondary failed: it is marked unreachable, its resync stops, a live connection is dropped. */
  linkFailure(e: Entry, p: SecondaryPeer, err: unknown): void {
    const code = (err as RemoteLinkError)?.code ?? 'io';
    if (p.resync) p.resync.stop = true;
    this.event('remote-write-failed', { mirrorId: e.id, imageId: p.imageId, code, error: (err as Error)?.message });
    this.host.noteUnreachable(e, p, `${code}: ${(err as Error)?.message}`);
    // A connection that is still up (timeout, an error of the secondary) is dropped so the
    // image comes back through the reconnect path (record push, bitmap exchange, resync).
    if (!LINK_FAILURES.has(code) || code === 'timeout') p.client?.dropConnection();
  }

  private noteWrite(e: Entry, ps: PrimarySide): void {
    ps.lastWriteAt = performance.now();
    if (ps.wroteSinceQuiesce) return;
    ps.wroteSinceQuiesce = true;
    if (e.db.state === 'ACTIVE' && secondariesOf(e.db).some((i) => i.state === 'SYNCHRONIZED')) this.records.changeQuietly(e, { op: 'primary-write' });
  }

  /** No host write for quiesceMs: CONSISTENT secondaries that are in sync become SYNCHRONIZED. */
  checkQuiesce(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    if (!ps.wroteSinceQuiesce || ps.inflight > 0) return;
    if (performance.now() - ps.lastWriteAt < this.host.timers.quiesceMs) return;
    ps.wroteSinceQuiesce = false;
    if (e.db.state !== 'ACTIVE') return;
    for (const img of secondariesOf(e.db)) {
      const p = ps.peers.get(img.imageId);
      if (!p || img.state !== 'CONSISTENT' || img.reachability !== 'REACHABLE' || !inSync(phaseOf(e, p))) continue;
      this.records.changeQuietly(e, { op: 'quiesced', imageId: img.imageId });
    }
  }

  /**
   * The lazy clear of the write-intent log (regions idle for a whole period: a working set
   * rewritten more often than that is never re-marked and re-persisted), and fracture-log marks
   * still to write.
   */
  clearWil(e: Entry): void {
    const ps = e.primary;
    if (!ps) return;
    if (ps.wil.flushAged() > 0) {
      ps.wilFile.touch();
      void ps.wilFile.persist().catch((err) => this.event('bitmap-write-failed', { mirrorId: e.id, file: 'wil', error: (err as Error).message }));
    }
    for (const p of ps.peers.values())
      if (p.fracture.pendingWrite && !p.resync) void p.fracture.persist().catch((err) => this.event('bitmap-write-failed', { mirrorId: e.id, file: p.imageId, error: (err as Error).message }));
  }

  // -------------------------------------------------------------------------------------------
  // Fracture-log marks for the consistency groups (GroupHost)

  async markFractures(e: Entry, offset: number, length: number): Promise<void> {
    const ps = e.primary;
    if (!ps) return;
    markAll(ps, offset, length);
    await Promise.all([...ps.peers.values()].map((p) => p.fracture.persist()));
  }

  markFracturesNow(e: Entry, offset: number, length: number): void {
    if (e.primary) markAll(e.primary, offset, length);
  }

  async persistFractures(e: Entry): Promise<void> {
    const ps = e.primary;
    if (ps) await Promise.all([...ps.peers.values()].map((p) => p.fracture.persist()));
  }

  async clearFractures(e: Entry): Promise<void> {
    const ps = e.primary;
    if (!ps) return;
    for (const p of ps.peers.values()) {
      p.fracture.clearAll();
      await p.fracture.persist();
    }
  }
}

/** The arguments of a host write's remote request (two literals: no spread on every write). */
function writeArgs(e: Entry, p: SecondaryPeer, offset: number, fua: boolean) {
  return fua ? { mirrorId: e.id, imageId: p.imageId, offset, flags: { fua: true }, epoch: e.db.epoch } : { mirrorId: e.id, imageId: p.imageId, offset, epoch: e.db.epoch };
}

const SETTLED: Promise<void> = Promise.resolve();

/** Starts `local` once the nextTick callbacks queued so far ran (the remote-link connection's frame flush among them). */
function afterLinkFlush(local: () => Promise<void>): Promise<void> {
  return new Promise<void>((resolve, reject) =>
    process.nextTick(() => {
      try {
        local().then(resolve, reject);
      } catch (err) {
        reject(err);
      }
    }),
  );
}

function hasCopies(ps: PrimarySide): boolean {
  for (const p of ps.peers.values()) if (p.copying.size) return true;
  return false;
}

/**
 * Waits until no resync chunk overlaps [offset, offset+length), at most COPY_WAIT_MAX_MS in all.
 * Again after each wake-up: a range re-marked by an earlier write is taken again as soon as its
 * chunk ends, and a write that then found it on the wire would re-dirty it, round after round.
 */
async function waitForCopies(ps: PrimarySide, offset: number, length: number): Promise<void> {
  const deadline = performance.now() + COPY_WAIT_MAX_MS;
  let timer: NodeJS.Timeout | undefined;
  try {
    for (;;) {
      const copies: Promise<void>[] = [];
      for (const p of ps.peers.values()) if (p.copying.size) copies.push(...p.copiesOf(offset, length));
      const leftMs = deadline - performance.now();
      if (!copies.length || leftMs <= 0) return;
      await Promise.race([Promise.all(copies), new Promise<void>((r) => (timer = setTimeout(r, leftMs)))]);
      clearTimeout(timer);
    }
  } finally {
    clearTimeout(timer);
  }
}

/** Marks the range in every secondary's fracture log (memory; the caller persists). */
function markAll(ps: PrimarySide, offset: number, length: number): void {
  for (const p of ps.peers.values()) {
    p.touch(offset, length);
    p.markWritten(offset, length);
  }
}

/**
 * Waits for all of `waits`; then throws the first failure in their order, if any. (By hand, not
 * Promise.allSettled: no result object per promise and no async frame, on every host write.)
 */
function allOrFirstError(waits: Promise<unknown>[]): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = waits.length;
    let firstBad = waits.length;
    let reason: unknown;
    if (left === 0) return resolve();
    const done = () => {
      if (--left > 0) return;
      if (firstBad < waits.length) reject(reason);
      else resolve();
    };
    for (let i = 0; i < waits.length; i++)
      waits[i]!.then(done, (err: unknown) => {
        if (i < firstBad) {
          firstBad = i;
          reason = err;
        }
        done();
      });
  });
}

function regionsIn(rs: number, offset: number, length: number): number {
  if (length <= 0) return 0;
  return Math.floor((offset + length - 1) / rs) - Math.floor(offset / rs) + 1;
}
