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
 */
import { closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, ftruncateSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { ignoreOnClose } from '../errors/index.js';
import { addon } from './addon.js';
import { crc32cTs } from './crc32c.js';
import { NativeRing, TsRing, REC_HEADER, align8, readU32, readU64, FLAG_ACK_REQUESTED, type NewRecord, type Ring } from './ring.js';

export { FLAG_ACK_REQUESTED };

export type Durability = 'none' | 'group' | 'fdatasync';

export interface WritelogOptions {
  /** Directory of the writelog files; omitted = in-memory journal. */
  dir?: string;
  /** File name stem (default 'writelog'). */
  name?: string;
  /** Data capacity of the main segment in bytes (multiple of 8, >= 4096). Used when creating. */
  capacity: number;
  /** Data capacity of each extension (default: capacity). */
  extensionCapacity?: number;
  /** Size of the extension pool (0..128, default 0). */
  maxExtensions?: number;
  /** Chain in an extension when usage reaches this percent (default 90). */
  extendAtPercent?: number;
  /** Return to the main segment when usage falls below this percent (default 50). */
  releaseBelowPercent?: number;
  durability?: Durability;
  /** Group commit interval (default 2 ms). */
  groupCommitMs?: number;
  /** Metadata hint every m appends (default 1024) ... */
  metaEveryAppends?: number;
  /** ... or t milliseconds (default 1000). */
  metaEveryMs?: number;
  /** Verify CRCs on read (default: true for files, false in memory). */
  verifyReads?: boolean;
  /** 'native' | 'ts'; default: native when the addon is loaded. */
  impl?: 'native' | 'ts';
  /** Clock for record timestamps (ms); default Date.now. */
  now?: () => number;
}

export interface AppendRecord {
  lunId: number;
  offset: number;
  data: Uint8Array;
  /** FLAG_ACK_REQUESTED etc. (15 bits). */
  flags?: number;
  /** Defaults to the journal clock. */
  timestamp?: number;
}

export interface JournalRecord {
  seq: number;
  localSeq: number;
  timestamp: number;
  lunId: number;
  offset: number;
  flags: number;
  data: Buffer;
}

export interface WritelogUsage {
  entries: number;
  /** Payload bytes of unacknowledged records. */
  dataBytes: number;
  /** Journal bytes they occupy (headers, padding, acked-but-not-yet-reclaimed space). */
  usedBytes: number;
  /** Capacity of the segments in the chain. */
  capacity: number;
  percent: number;
  /** Age of the oldest unacknowledged record in ms (0 when empty). */
  oldestAgeMs: number;
  firstSeq: number;
  lastSeq: number;
  nextSeq: number;
  extensionsInUse: number;
  extensionsFree: number;
}

export interface RecoveryReport {
  /** Records found (unacknowledged as far as the metadata knows). */
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** A torn or corrupt record ended a segment's scan. */
  torn: boolean;
  /** Records that the metadata hint says existed were lost (corruption, not just a torn tail). */
  damaged: boolean;
  /** Records dropped because an earlier sequence number was missing. */
  droppedAfterGap: number;
  metadataGeneration: number;
}

export class WritelogOverflowError extends Error {
  readonly code = 'ESANBOX_WL_OVERFLOW';
}
export class WritelogCorruptError extends Error {
  readonly code = 'ESANBOX_CORRUPT';
}

/** A batch of records as read from the journal: one buffer, records parsed lazily. */
export class RecordBatch implements Iterable<JournalRecord> {
  /** Byte offsets of the records in `buffer`. */
  readonly offsets: number[];
  constructor(readonly buffer: Buffer, offsets: number[]) {
    this.offsets = offsets;
  }
  get count(): number {
    return this.offsets.length;
  }
  get bytes(): number {
    return this.buffer.length;
  }
  get firstSeq(): number {
    return this.count ? readU64(this.buffer, this.offsets[0]! + 8) : -1;
  }
  get lastSeq(): number {
    return this.count ? readU64(this.buffer, this.offsets[this.count - 1]! + 8) : -1;
  }
  record(i: number): JournalRecord {
    const b = this.buffer, o = this.offsets[i]!;
    if (o === undefined) throw new RangeError('record index out of range');
    const len = readU32(b, o + 36);
    return {
      seq: readU64(b, o + 8),
      localSeq: readU64(b, o + 16),
      timestamp: readU64(b, o + 24),
      lunId: readU32(b, o + 32),
      offset: readU64(b, o + 40),
      flags: b[o + 6]! | (b[o + 7]! << 8),
      data: b.subarray(o + REC_HEADER, o + REC_HEADER + len),
    };
  }
  *[Symbol.iterator](): Iterator<JournalRecord> {
    for (let i = 0; i < this.count; i++) yield this.record(i);
  }
}

/** Group commit interval by default: one fdatasync covers every record appended meanwhile. */
const GROUP_COMMIT_MS = 2;
/** The metadata hint is written at least this often by default (or every metaEveryAppends appends). */
const META_EVERY_MS = 1000;
const SEG_HEADER = 4096;
const META_SLOT = 64 * 1024;
const MAIN_DATA = SEG_HEADER + 2 * META_SLOT;
const SEG_MAGIC = 'SBXWLSEG';
const META_MAGIC = 'SBXWLMET';

interface SegMeta {
  tail: number;
  tailLocal: number;
  head: number;
  nextLocal: number;
  count: number;
  capacity: number;
}
interface Meta {
  epoch: number;
  gen: number;
  nextSeq: number;
  chain: number[];
  segs: Record<string, SegMeta>;
}

interface Segment {
  idx: number;
  path: string | null;
  fd: number;
  capacity: number;
  ring: Ring;
  dirty: boolean;
}

function u64le(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
}

function pwriteAll(fd: number, b: Uint8Array, pos: number): void {
  let o = 0;
  while (o < b.length) o += writeSync(fd, b, o, b.length - o, pos + o);
}
function preadAll(fd: number, len: number, pos: number): Buffer {
  const b = Buffer.alloc(len);
  let o = 0;
  while (o < len) {
    const n = readSync(fd, b, o, len - o, pos + o);
    if (n === 0) break;
    o += n;
  }
  return o === len ? b : b.subarray(0, o);
}

export class Writelog {
  readonly impl: 'native' | 'ts';
  readonly durability: Durability;
  /** Set by open() on existing files. */
  recovery: RecoveryReport | null = null;
  private readonly segs = new Map<number, Segment>();
  private chain: number[] = [0];
  private nextSeq = 1;
  private epoch = 0;
  private gen = 0;
  private appendsSinceMeta = 0;
  private lastMetaAt = 0;
  private closed = false;
  private readonly o: Required<Omit<WritelogOptions, 'dir' | 'impl'>> & { dir?: string };
  private readonly verify: boolean;
  // group commit
  private durableSeq = 0;
  private syncTimer: NodeJS.Timeout | null = null;
  private syncing: Promise<void> | null = null;
  private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  private metaTimer: NodeJS.Timeout | null = null;

  private constructor(opts: WritelogOptions) {
    const impl = opts.impl ?? (addon ? 'native' : 'ts');
    if (impl === 'native' && !addon) throw new Error('native addon not loaded');
    this.impl = impl;
    this.o = {
      dir: opts.dir,
      name: opts.name ?? 'writelog',
      capacity: opts.capacity,
      extensionCapacity: opts.extensionCapacity ?? opts.capacity,
      maxExtensions: opts.maxExtensions ?? 0,
      extendAtPercent: opts.extendAtPercent ?? 90,
      releaseBelowPercent: opts.releaseBelowPercent ?? 50,
      durability: opts.durability ?? 'group',
      groupCommitMs: opts.groupCommitMs ?? GROUP_COMMIT_MS,
      metaEveryAppends: opts.metaEveryAppends ?? 1024,
      metaEveryMs: opts.metaEveryMs ?? META_EVERY_MS,
      verifyReads: opts.verifyReads ?? opts.dir !== undefined,
      now: opts.now ?? Date.now,
    };
    this.durability = opts.dir === undefined ? 'none' : this.o.durability;
    this.verify = this.o.verifyReads;
    const ok = (c: number) => Number.isSafeInteger(c) && c >= 4096 && c % 8 === 0;
    if (!ok(this.o.capacity) || !ok(this.o.extensionCapacity)) throw new RangeError('writelog capacities must be multiples of 8 and >= 4096');
    if (!Number.isInteger(this.o.maxExtensions) || this.o.maxExtensions < 0 || this.o.maxExtensions > 128) throw new RangeError('maxExtensions must be 0..128');
    if (!['none', 'group', 'fdatasync'].includes(this.o.durability)) throw new RangeError(`unknown durability ${String(this.o.durability)}`);
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

  private ackedSinceMeta = false;

  private segPath(idx: number): string {
    return join(this.o.dir!, idx === 0 ? `${this.o.name}.wl` : `${this.o.name}.ext${idx}.wl`);
  }
  private base(idx: number): number {
    return idx === 0 ? MAIN_DATA : SEG_HEADER;
  }
  private makeSeg(idx: number, path: string | null, fd: number, capacity: number): Segment {
    const ring = this.impl === 'native' ? new NativeRing(fd, this.base(idx), capacity, this.epoch) : new TsRing(fd, this.base(idx), capacity, this.epoch);
    return { idx, path, fd, capacity, ring, dirty: false };
  }
  private segHeader(idx: number, capacity: number): Buffer {
    const h = Buffer.alloc(64);
    h.write(SEG_MAGIC, 0, 'latin1');
    h.writeUInt32LE(1, 8);
    h.writeUInt32LE(this.epoch >>> 0, 12);
    h.writeUInt32LE(idx, 16);
    u64le(capacity).copy(h, 24);
    h.writeUInt32LE(crc32cTs(h.subarray(0, 60)), 60);
    return h;
  }
  private createFile(idx: number, capacity: number): Segment {
    const path = this.segPath(idx);
    const fd = openSync(path, 'w+', 0o644);
    ftruncateSync(fd, this.base(idx) + capacity);
    pwriteAll(fd, this.segHeader(idx, capacity), 0);
    if (this.durability !== 'none') fsyncSync(fd);
    return this.makeSeg(idx, path, fd, capacity);
  }
  private openFile(idx: number, capacity: number): Segment {
    const path = this.segPath(idx);
    const fd = openSync(path, 'r+');
    const h = preadAll(fd, 64, 0);
    const bad = (why: string) => {
      closeSync(fd);
      return new WritelogCorruptError(`${path}: ${why}`);
    };
    if (h.length < 64 || h.toString('latin1', 0, 8) !== SEG_MAGIC || crc32cTs(h.subarray(0, 60)) !== h.readUInt32LE(60)) throw bad('not a writelog segment (bad header)');
    if (h.readUInt32LE(12) !== this.epoch >>> 0 || h.readUInt32LE(16) !== idx) throw bad('segment belongs to another writelog');
    if (Number(h.readBigUInt64LE(24)) !== capacity) throw bad('segment capacity differs from metadata');
    if (fstatSync(fd).size < this.base(idx) + capacity) throw bad('segment file truncated');
    return this.makeSeg(idx, path, fd, capacity);
  }

  private create(): void {
    this.epoch = randomInt(1, 0xffffffff);
    this.segs.set(0, this.createFile(0, this.o.capacity));
    this.writeMeta(true);
    this.writeMeta(true); // both slots valid from the start
    if (this.durability !== 'none') {
      const d = openSync(this.o.dir!, 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    }
  }

  // ------------------------------------------------------------------ metadata

  private snapshot(): Meta {
    const segs: Record<string, SegMeta> = {};
    for (const s of this.segs.values()) {
      const st = s.ring.stats();
      segs[s.idx] = { tail: st.tail, tailLocal: st.tailLocal, head: st.head, nextLocal: st.nextLocal, count: st.count, capacity: s.capacity };
    }
    // Drained segments other than the target leave the chain.
    const target = this.chain[this.chain.length - 1]!;
    const chain = this.chain.filter((i) => i === target || segs[i]!.count > 0);
    return { epoch: this.epoch, gen: this.gen + 1, nextSeq: this.nextSeq, chain, segs };
  }

  /** Writes the next metadata generation; with `sync`, fdatasync first when durable. Then reclaims space up to the persisted tails. */
  private writeMeta(sync: boolean, force = false): void {
    if (this.o.dir === undefined) {
      this.applyMeta(this.snapshot());
      return;
    }
    const m = this.snapshot();
    const main = this.segs.get(0)!;
    const json = Buffer.from(JSON.stringify(m));
    if (json.length + 24 > META_SLOT) throw new Error('writelog metadata too large');
    const slot = Buffer.alloc(24 + json.length);
    slot.write(META_MAGIC, 0, 'latin1');
    u64le(m.gen).copy(slot, 8);
    slot.writeUInt32LE(json.length, 16);
    json.copy(slot, 24);
    slot.writeUInt32LE(crc32cTs(json, crc32cTs(slot.subarray(0, 20))), 20);
    pwriteAll(main.fd, slot, SEG_HEADER + (m.gen % 2) * META_SLOT);
    if (sync && (force || this.durability !== 'none')) {
      // Records first (they may live in other files), then the metadata's file.
      for (const s of this.segs.values()) if (s.idx !== 0 && s.dirty) fdatasyncSync(s.fd);
      fdatasyncSync(main.fd);
      for (const s of this.segs.values()) s.dirty = false;
      this.durableSeq = this.nextSeq - 1;
      this.wake();
    }
    this.applyMeta(m);
  }

  private applyMeta(m: Meta): void {
    this.gen = m.gen;
    this.chain = m.chain;
    for (const s of this.segs.values()) s.ring.commitTail(m.segs[s.idx]!.tail);
    this.appendsSinceMeta = 0;
    this.ackedSinceMeta = false;
    this.lastMetaAt = this.o.now();
  }

  private readMeta(): Meta {
    const main = openSync(this.segPath(0), 'r');
    try {
      let best: Meta | null = null;
      for (let s = 0; s < 2; s++) {
        const b = preadAll(main, META_SLOT, SEG_HEADER + s * META_SLOT);
        if (b.length < 24 || b.toString('latin1', 0, 8) !== META_MAGIC) continue;
        const len = b.readUInt32LE(16);
        if (24 + len > b.length) continue;
        const json = b.subarray(24, 24 + len);
        if (crc32cTs(json, crc32cTs(b.subarray(0, 20))) !== b.readUInt32LE(20)) continue;
        try {
          const m = JSON.parse(json.toString()) as Meta;
          if (m.gen !== Number(b.readBigUInt64LE(8))) continue;
          if (!best || m.gen > best.gen) best = m;
        } catch {
          continue; // a torn slot: the other one holds the previous generation
        }
      }
      if (!best) throw new WritelogCorruptError(`${this.segPath(0)}: no valid metadata block`);
      return best;
    } finally {
      closeSync(main);
    }
  }

  // ------------------------------------------------------------------ recovery

  private recover(): void {
    const m = this.readMeta();
    this.epoch = m.epoch;
    this.gen = m.gen;
    if (!Array.isArray(m.chain) || m.chain.length === 0 || m.segs['0'] === undefined) throw new WritelogCorruptError('metadata without a chain');
    for (const [k, sm] of Object.entries(m.segs)) {
      const idx = Number(k);
      const seg = this.openFile(idx, sm.capacity);
      this.segs.set(idx, seg);
    }
    const rep: RecoveryReport = { records: 0, firstSeq: -1, lastSeq: -1, torn: false, damaged: false, droppedAfterGap: 0, metadataGeneration: m.gen };
    let last = -1;
    let gapAt = -1;
    for (const idx of this.segs.keys()) {
      const sm = m.segs[idx]!;
      const seg = this.segs.get(idx)!;
      if (!m.chain.includes(idx)) {
        seg.ring.reset(sm.head, sm.nextLocal); // spare or idle: empty
        continue;
      }
    }
    for (const idx of m.chain) {
      const sm = m.segs[idx];
      const seg = this.segs.get(idx);
      if (!sm || !seg) throw new WritelogCorruptError(`metadata chain names unknown segment ${idx}`);
      if (gapAt >= 0) {
        // Everything after a gap is dropped: not a prefix otherwise.
        seg.ring.recover(sm.tail, sm.tailLocal);
        rep.droppedAfterGap += seg.ring.stats().count;
        seg.ring.truncateAfter(gapAt);
        continue;
      }
      const why = seg.ring.recover(sm.tail, sm.tailLocal);
      if (why) rep.torn = true;
      const st = seg.ring.stats();
      if (st.head < sm.head) rep.damaged = true;
      if (st.count > 0) {
        if (last >= 0 && st.firstSeq !== last + 1) {
          // A gap between segments: keep the prefix only.
          gapAt = last;
          rep.droppedAfterGap += st.count;
          seg.ring.truncateAfter(last);
          continue;
        }
        if (rep.firstSeq < 0) rep.firstSeq = st.firstSeq;
        // Sequences inside a ring are strictly increasing; they must also be consecutive.
        let prev = last;
        let cut = -1;
        for (let from = st.firstSeq; cut < 0; ) {
          const batch = this.readRing(seg.ring, from, 64 << 20, 65536, false);
          if (batch.count === 0) break;
          for (let i = 0; i < batch.count; i++) {
            const s = readU64(batch.buffer, batch.offsets[i]! + 8);
            if (prev >= 0 && s !== prev + 1) {
              cut = prev;
              break;
            }
            prev = s;
          }
          from = batch.lastSeq + 1;
        }
        if (cut >= 0) {
          const before = seg.ring.stats().count;
          seg.ring.truncateAfter(cut);
          rep.droppedAfterGap += before - seg.ring.stats().count;
          gapAt = cut;
        }
        last = seg.ring.stats().lastSeq;
      }
    }
    rep.records = 0;
    for (const idx of m.chain) rep.records += this.segs.get(idx)!.ring.stats().count;
    rep.lastSeq = last;
    if (rep.records === 0) rep.firstSeq = -1;
    this.chain = m.chain.slice();
    this.nextSeq = Math.max(m.nextSeq, last + 1);
    if (gapAt >= 0) this.nextSeq = gapAt + 1;
    this.durableSeq = this.nextSeq - 1;
    this.recovery = rep;
    this.writeMeta(true);
  }

  // ------------------------------------------------------------------ append

  private target(): Segment {
    return this.segs.get(this.chain[this.chain.length - 1]!)!;
  }

  /** Chains a spare extension in as the new target (write-ahead metadata). False when none is free. */
  private chainExtension(): boolean {
    const inChain = new Set(this.chain);
    let idx = -1;
    for (let i = 1; i <= this.o.maxExtensions; i++)
      if (!inChain.has(i)) {
        idx = i;
        break;
      }
    if (idx < 0) return false;
    if (!this.segs.has(idx)) {
      const seg = this.o.dir === undefined ? this.makeSeg(idx, null, -1, this.o.extensionCapacity) : this.createFile(idx, this.o.extensionCapacity);
      this.segs.set(idx, seg);
    }
    this.chain = [...this.chain, idx];
    this.writeMeta(true);
    return true;
  }

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

  /** Switches back to the main segment when it is drained and usage is low. */
  private maybeReturnToMain(): void {
    if (this.chain.includes(0)) return;
    if (this.usagePercent() >= this.o.releaseBelowPercent) return;
    this.chain = [...this.chain, 0];
    this.writeMeta(true);
  }

  private usagePercent(): number {
    let used = 0, cap = 0;
    for (const i of this.chain) {
      const s = this.segs.get(i)!;
      used += s.ring.stats().used;
      cap += s.capacity;
    }
    return cap ? (100 * used) / cap : 0;
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

  private wake(): void {
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

  private readRing(ring: Ring, from: number, maxBytes: number, maxCount: number, verify: boolean): RecordBatch {
    const buf = ring.read(from, maxBytes, maxCount, verify);
    const offs: number[] = [];
    for (let o = 0; o < buf.length; o += align8(REC_HEADER + readU32(buf, o + 36))) offs.push(o);
    return new RecordBatch(buf, offs);
  }

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
