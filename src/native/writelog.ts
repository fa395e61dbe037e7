/**
 * The writelog: an ordered journal of write records (header + data) that the asynchronous and
 * near-synchronous mirror modes append to on every host write and drain to the secondary, as
 * the writelog device of the source document (003): a time-sequenced circular queue, new
 * entries at the head, oldest at the tail, a metadata block with a head/tail hint, and an
 * extension pool chained in when the log nears overflow.
 *
 * ## Model
 * - The journal is a chain (FIFO) of segments. Segment 0 is the main writelog
 *   (`<dir>/<name>.wl`); segments 1..maxExtensions are extensions (`<dir>/<name>.ext<N>.wl`),
 *   spares until chained in. Each segment is a circular ring (./ring.ts documents the record
 *   format). Appends go to the last segment of the chain (the target); reads walk the chain in
 *   order, so the global sequence order is preserved across segments.
 * - When usage passes `extendAtPercent` (or a record does not fit) and a spare extension exists,
 *   a spare is chained in and becomes the target. A segment leaves the chain once every record in
 *   it is acknowledged; an extension then returns to the pool (released), and the main segment
 *   becomes the target again once it is empty and usage is below `releaseBelowPercent`.
 * - Every record gets the next global sequence number (1, 2, 3, ... over the journal's life) and
 *   its segment's next local sequence number. Records carry a CRC32C over header and data.
 *
 * ## Guarantees
 * - Never overwrites an unacknowledged record. An append that does not fit (no spare extension
 *   left) reports overflow (`append` throws WritelogOverflowError, code `ESANBOX_WL_OVERFLOW`;
 *   `appendMany` returns `overflow: true` with the records that did fit) and the journal stays
 *   valid: the replication layer switches to bypass (fracture log) and later resumes.
 * - `readBatch(fromSeq, limits)` returns records in sequence order starting at `fromSeq` (or the
 *   oldest unacknowledged one after it), at most `maxCount` records and `maxBytes` bytes of
 *   records (always at least one record if any exists). Reads from files verify each record's
 *   CRC (`verifyReads`), so corruption is an error (`ESANBOX_CORRUPT`), never data.
 * - `ack(seq)` releases every record with sequence <= seq (the receiver has applied them).
 * - Acknowledgements become durable at the next metadata write; until then their space is not
 *   reused. After a crash, recovery may therefore return records that were already acknowledged
 *   (at-least-once delivery): receivers drop records below their next expected sequence.
 *
 * ## Metadata block and recovery
 * The main file holds two metadata slots written alternately (generation + CRC32C, so a torn
 * metadata write leaves the other slot valid). A metadata write records, for every segment, the
 * tail position and local sequence (the hint) and the head position; it happens every
 * `metaEveryAppends` appends or `metaEveryMs` milliseconds, whenever reclaiming acknowledged
 * space is needed for an append, and before any change of the chain (write-ahead, so recovery
 * always knows where records may be). `Writelog.open` on existing files recovers: for each
 * segment of the chain it scans from the tail hint, following consecutive local sequence numbers
 * and valid CRCs, to the true head; a torn last record is dropped. Sequence numbers must continue
 * across segments; at the first gap everything after it is dropped, so the result is always a
 * prefix of what was appended. `recovery` reports what happened (`damaged` when records the hint
 * says existed were lost, i.e. corruption rather than a torn tail). Files that are not a writelog
 * (bad magic, epoch, size) make `open` throw WritelogCorruptError rather than guess.
 *
 * ## Durability (`durability` option)
 * - `'none'`: records are written to the file (page cache) before `append` returns; they survive
 *   a process crash (SIGKILL) but not a power failure. No fdatasync ever.
 * - `'group'` (default): group commit. `append` returns at once; one fdatasync per
 *   `groupCommitMs` covers every record appended meanwhile, off the event loop.
 *   `await durable(seq)` (or `sync()`) resolves once seq is on disk: acknowledge the host then.
 * - `'fdatasync'`: every `append`/`appendMany` call ends with fdatasync (on the calling thread);
 *   its records are durable when it returns. Batch records per call to amortize it.
 * - `sync()` forces an fdatasync of all segments and a metadata write now, in any mode.
 * A journal without `dir` lives in memory only (for tests and the in-memory array mode).
 *
 * ## Files
 * This file is the journal's API (append, group commit, read, ack). The segment chain, its
 * metadata and recovery are the base class in ./writelog-chain.ts; the bytes on disk are
 * ./writelog-format.ts's; the public types, errors and RecordBatch are ./writelog-records.ts's.
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { ignoreOnClose } from '../errors/index.js';
import { FLAG_ACK_REQUESTED, type NewRecord } from './ring.js';
import { WritelogChain } from './writelog-chain.js';
import { RecordBatch, WritelogOverflowError, type AppendRecord, type WritelogOptions, type WritelogUsage } from './writelog-records.js';

export { FLAG_ACK_REQUESTED };
export {
  RecordBatch,
  WritelogOverflowError,
  WritelogCorruptError,
  type Durability,
  type WritelogOptions,
  type AppendRecord,
  type JournalRecord,
  type WritelogUsage,
  type RecoveryReport,
} from './writelog-records.js';

export class Writelog extends WritelogChain {
  private closed = false;
  // group commit
  private syncTimer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private metaTimer: NodeJS.Timeout | null = null;

  private constructor(opts: WritelogOptions) {
    super(opts);
  }

  /** Creates an in-memory journal, or opens (recovering) / creates the files in `dir`. */
  static open(opts: WritelogOptions): Writelog {
    const w = new Writelog(opts);
    if (opts.dir === undefined) {
      w.epoch = randomInt(1, 0xffffffff);
      w.segs.set(0, w.makeSeg(0, null, -1, w.o.capacity));
    } else if (existsSync(w.segPath(0))) {
      w.recover();
    } else {
      w.create();
    }
    w.lastMetaAt = w.o.now();
    if (opts.dir !== undefined && w.o.metaEveryMs > 0) {
      w.metaTimer = setInterval(() => {
        if (w.appendsSinceMeta > 0 || w.ackedSinceMeta) w.periodicMeta();
      }, w.o.metaEveryMs);
      w.metaTimer.unref();
    }
    return w;
  }

  // ------------------------------------------------------------------ append

  /** Chains a spare extension in now (a throttle action). False when none is free. */
  chainSpare(): boolean {
    if (this.closed) return false;
    return this.chainExtension();
  }

  /**
   * Gives the last chained extension back to the pool (a throttle action) when it holds no record
   * and is not the only segment of the chain. False otherwise.
   */
  releaseSpare(): boolean {
    if (this.closed || this.chain.length < 2) return false;
    const last = this.chain[this.chain.length - 1]!;
    if (last === 0 || this.segs.get(last)!.ring.stats().count > 0) return false;
    this.chain = this.chain.slice(0, -1);
    if (!this.chain.includes(0) && this.chain.length === 0) this.chain = [0];
    this.writeMeta(true);
    return true;
  }

  /**
   * Appends one record and returns its global sequence number. Throws WritelogOverflowError when
   * it does not fit (nothing is written then). Durability: see the module comment.
   */
  append(lunId: number, offset: number, data: Uint8Array, flags = 0): number {
    const r = this.appendMany([{ lunId, offset, data, flags }]);
    if (r.appended === 0) throw new WritelogOverflowError(`writelog full: ${data.length}-byte record does not fit (usage ${this.usagePercent().toFixed(1)}%)`);
    return r.firstSeq;
  }

  /**
   * Appends records in order with consecutive sequence numbers firstSeq.. in one call into the
   * ring per segment. Stops at the first record that does not fit: `overflow` is then true and
   * `appended` < records.length (the rest were not written).
   */
  appendMany(records: readonly AppendRecord[]): { firstSeq: number; appended: number; overflow: boolean } {
    if (this.closed) throw new Error('writelog closed');
    const now = this.o.now();
    const recs: NewRecord[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      if (!(r.data instanceof Uint8Array)) throw new TypeError('record data must be a Uint8Array');
      if (!Number.isInteger(r.lunId) || r.lunId < 0 || r.lunId > 0xffffffff) throw new RangeError(`bad LUN id ${r.lunId}`);
      if (!Number.isSafeInteger(r.offset) || r.offset < 0) throw new RangeError(`bad offset ${r.offset}`);
      const flags = r.flags ?? 0;
      if (!Number.isInteger(flags) || flags < 0 || flags > 0x7fff) throw new RangeError(`bad flags ${flags}`);
      const ts = r.timestamp ?? now;
      if (!Number.isSafeInteger(ts) || ts < 0) throw new RangeError(`bad timestamp ${ts}`);
      recs[i] = { lunId: r.lunId, offset: r.offset, flags, timestamp: ts, data: r.data };
    }
    const firstSeq = this.nextSeq;
    let i = 0;
    let overflow = false;
    if (!this.chain.includes(0)) this.maybeReturnToMain();
    while (i < recs.length) {
      if (this.o.maxExtensions > 0 && this.usagePercent() >= this.o.extendAtPercent && this.target().ring.stats().count > 0) {
        // Chain in before overflow is imminent (the throttle of the source document).
        if (!this.chainExtension()) {
          /* pool exhausted: keep filling the target */
        }
      }
      const seg = this.target();
      const n = seg.ring.append(this.nextSeq, i === 0 ? recs : recs.slice(i));
      if (n > 0) seg.dirty = true;
      this.nextSeq += n;
      i += n;
      if (i >= recs.length) break;
      const st = seg.ring.stats();
      if (st.tail > st.reclaim) {
        this.writeMeta(true); // reclaim acknowledged space (persist the tail first)
        if (seg.ring.need(recs[i]!.data.length) + seg.ring.stats().used <= seg.capacity) continue;
      }
      if (seg.ring.stats().count > 0 && this.chainExtension()) continue;
      overflow = true;
      break;
    }
    const appended = i;
    this.appendsSinceMeta += appended;
    if (appended > 0 && this.o.dir !== undefined) {
      if (this.durability === 'fdatasync') {
        for (const s of this.segs.values())
          if (s.dirty) {
            fdatasyncSync(s.fd);
            s.dirty = false;
          }
        this.durableSeq = this.nextSeq - 1;
      } else if (this.durability === 'group') this.scheduleSync();
      if (this.appendsSinceMeta >= this.o.metaEveryAppends || this.o.now() - this.lastMetaAt >= this.o.metaEveryMs) this.periodicMeta();
    } else if (this.o.dir === undefined) {
      this.durableSeq = this.nextSeq - 1;
    }
    return { firstSeq, appended, overflow };
  }

  private periodicMeta(): void {
    // In group mode the fdatasync of the next group commit makes it durable; 'fdatasync' syncs now.
    if (this.durability === 'group') {
      this.metaPending = true;
      this.scheduleSync();
    } else this.writeMeta(this.durability === 'fdatasync');
  }
  private metaPending = false;

  // ------------------------------------------------------------------ group commit

  private scheduleSync(): void {
    if (this.syncTimer || this.closed) return;
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      // A failed fdatasync rejects the waiters (run() in groupCommit); nobody awaits this timer.
      void ignoreOnClose(this.groupCommit(), 'committing on the group-commit timer (a failure rejects the durable() waiters)');
    }, this.o.groupCommitMs);
  }

  private async groupCommit(): Promise<void> {
    if (this.syncing) {
      await this.syncing;
      return this.groupCommit();
    }
    const run = async () => {
      const upto = this.nextSeq - 1;
      const dirty = [...this.segs.values()].filter((s) => s.dirty);
      for (const s of dirty) s.dirty = false;
      try {
        await Promise.all(dirty.map((s) => new Promise<void>((res, rej) => fdatasync(s.fd, (e) => (e ? rej(e) : res())))));
      } catch (e) {
        for (const s of dirty) s.dirty = true;
        const err = e as Error;
        for (const w of this.waiters.splice(0)) w.reject(err);
        throw err;
      }
      if (upto > this.durableSeq) this.durableSeq = upto;
      if (this.metaPending && !this.closed) {
        this.metaPending = false;
        // Records up to `upto` are durable; the metadata write itself is made durable (and only
        // then reclaims space) synchronously: it is small and happens every m appends / t ms.
        this.writeMeta(true);
      }
      this.wake();
    };
    this.syncing = run().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  protected override wake(): void {
    if (!this.waiters.length) return;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) (w.seq <= this.durableSeq ? w.resolve() : keep.push(w));
    this.waiters = keep;
  }

  /** Resolves when every record up to `seq` is durable under the journal's durability mode ('none': at once). */
  durable(seq: number): Promise<void> {
    if (this.durability === 'none' || seq <= this.durableSeq) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiters.push({ seq, resolve, reject });
      this.scheduleSync();
    });
  }

  /** fdatasync of every segment plus a metadata write, now, in any durability mode. */
  async sync(): Promise<void> {
    if (this.o.dir === undefined) return;
    if (this.syncing) await this.syncing;
    for (const s of this.segs.values()) {
      await new Promise<void>((res, rej) => fdatasync(s.fd, (e) => (e ? rej(e) : res())));
      s.dirty = false;
    }
    this.durableSeq = this.nextSeq - 1;
    this.writeMeta(true, true);
    this.wake();
  }

  // ------------------------------------------------------------------ read / ack / usage

  /**
   * Records from `fromSeq` on (the oldest unacknowledged one when fromSeq is older), in order,
   * at most `maxCount` records and `maxBytes` bytes (at least one record when any exists).
   * An empty batch means nothing at or after fromSeq.
   */
  readBatch(fromSeq: number, limits: { maxBytes?: number; maxCount?: number } = {}): RecordBatch {
    let maxBytes = limits.maxBytes ?? 4 << 20;
    let maxCount = limits.maxCount ?? 1024;
    if (!(maxBytes > 0) || !(maxCount > 0)) throw new RangeError('readBatch limits must be positive');
    const parts: RecordBatch[] = [];
    for (const idx of this.chain) {
      const ring = this.segs.get(idx)!.ring;
      const st = ring.stats();
      if (st.count === 0 || st.lastSeq < fromSeq) continue;
      const b = this.readRing(ring, fromSeq, maxBytes, maxCount, this.verify);
      if (b.count === 0) continue;
      if (parts.length) {
        // Only whole records within the byte limit after the first part.
        let keep = 0;
        for (; keep < b.count; keep++) {
          const end = keep + 1 < b.count ? b.offsets[keep + 1]! : b.bytes;
          if (end > maxBytes) break;
        }
        if (keep === 0) break;
        parts.push(keep === b.count ? b : new RecordBatch(b.buffer.subarray(0, b.offsets[keep]!), b.offsets.slice(0, keep)));
        maxBytes -= keep === b.count ? b.bytes : b.offsets[keep]!;
        maxCount -= keep;
        if (keep < b.count) break;
      } else {
        parts.push(b);
        maxBytes -= b.bytes;
        maxCount -= b.count;
      }
      if (maxCount <= 0 || maxBytes <= 0) break;
      fromSeq = b.lastSeq + 1;
    }
    if (parts.length === 0) return new RecordBatch(Buffer.alloc(0), []);
    if (parts.length === 1) return parts[0]!;
    const offs: number[] = [];
    let base = 0;
    for (const p of parts) {
      for (const o of p.offsets) offs.push(base + o);
      base += p.bytes;
    }
    return new RecordBatch(Buffer.concat(parts.map((p) => p.buffer)), offs);
  }

  /** The receiver has applied every record up to `seq`: release them. Returns how many were released. */
  ack(seq: number): number {
    if (!Number.isSafeInteger(seq)) throw new RangeError('ack: seq must be an integer');
    if (seq >= this.nextSeq) throw new RangeError(`ack(${seq}) beyond the last appended sequence ${this.nextSeq - 1}`);
    let n = 0;
    for (const idx of this.chain) n += this.segs.get(idx)!.ring.ack(seq);
    if (n > 0) {
      this.ackedSinceMeta = true;
      if (this.o.dir === undefined) {
        this.applyMeta(this.snapshot());
        this.maybeReturnToMain();
      } else if (!this.chain.includes(0) || this.chain.length > 1) {
        // Chain changes (a drained segment leaving) wait for the next metadata write.
      }
    }
    return n;
  }

  usage(): WritelogUsage {
    let entries = 0, dataBytes = 0, used = 0, cap = 0, first = -1, last = -1, oldest = -1;
    for (const idx of this.chain) {
      const s = this.segs.get(idx)!;
      const st = s.ring.stats();
      entries += st.count;
      dataBytes += st.dataBytes;
      used += st.used;
      cap += s.capacity;
      if (st.count) {
        if (first < 0) {
          first = st.firstSeq;
          oldest = st.oldestTs;
        }
        last = st.lastSeq;
      }
    }
    const ext = this.chain.filter((i) => i !== 0).length;
    return {
      entries, dataBytes, usedBytes: used, capacity: cap, percent: cap ? (100 * used) / cap : 0,
      oldestAgeMs: oldest >= 0 ? Math.max(0, this.o.now() - oldest) : 0,
      firstSeq: first, lastSeq: last, nextSeq: this.nextSeq,
      extensionsInUse: ext, extensionsFree: this.o.maxExtensions - ext,
    };
  }

  /** Sequence number the next append gets. */
  get next(): number {
    return this.nextSeq;
  }
  /** Highest sequence known durable. */
  get durableThrough(): number {
    return this.durableSeq;
  }

  /** Writes metadata (durably unless durability is 'none'), closes the files. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.syncing) {
      // The commit in flight already rejected its waiters if it failed; closing goes on to the
      // metadata write, which throws if the files are still failing.
      await ignoreOnClose(this.syncing, 'finishing the group commit in flight at close');
    }
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.metaTimer) clearInterval(this.metaTimer);
    this.syncTimer = this.metaTimer = null;
    if (this.o.dir !== undefined) {
      this.writeMeta(true);
      for (const s of this.segs.values()) closeSync(s.fd);
    }
    this.closed = true;
    for (const w of this.waiters.splice(0)) w.reject(new Error('writelog closed'));
  }

  /** Simulated crash for tests: drops the in-memory state without writing metadata. */
  abandon(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    if (this.metaTimer) clearInterval(this.metaTimer);
    this.syncTimer = this.metaTimer = null;
    if (this.o.dir !== undefined) for (const s of this.segs.values()) closeSync(s.fd);
    this.closed = true;
  }
}
