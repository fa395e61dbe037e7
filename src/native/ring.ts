/**
 * Writelog ring: one circular segment of the journal (the main writelog file or one extension).
 * Two implementations with identical behaviour and byte-identical files: `TsRing` here and
 * `NativeRing` (native/src/ring.rs). The journal (./writelog.ts) drives them; other modules
 * should use the journal, not rings.
 *
 * Record layout (little-endian, 8-byte aligned, 64-byte header):
 *
 *     0 magic "SBWR"   4 version u16 = 1   6 flags u16 (bit 0 ack-requested, bit 15 wrap marker)
 *     8 global seq u64   16 local seq u64   24 timestamp ms u64   32 LUN id u32   36 length u32
 *    40 LUN offset u64   48 journal epoch u32   52 zero u32   56 CRC32C(header[0..56] + data) u32
 *    60 zero u32   64 data[length]   zero padding to a multiple of 8
 *
 * A record never wraps: when it does not fit before the end of the ring, the rest of the ring is
 * skipped (with a wrap marker record when at least 64 bytes remain, which consumes a local
 * sequence number) and the record goes to physical offset 0.
 *
 * Positions are virtual byte offsets that only grow (physical = virtual % capacity). Invariant:
 * `reclaim <= tail <= head <= reclaim + capacity`; bytes in [reclaim, head) are never overwritten.
 * `reclaim` is the tail last persisted in the journal's metadata block, so recovery starting at
 * the persisted tail always finds intact records.
 */
import { readSync, writeSync } from 'node:fs';
import { addon, type NativeHandle } from './addon.js';
import { crc32cTs } from './crc32c.js';

export const REC_HEADER = 64;
export const REC_MAGIC = 0x52574253; // "SBWR" little-endian
export const REC_VERSION = 1;
export const FLAG_ACK_REQUESTED = 1;
export const FLAG_WRAP = 0x8000;
export const align8 = (x: number) => Math.ceil(x / 8) * 8;

/** Why a recovery scan stopped: 0 clean end, 1 a damaged record (torn/corrupt) where the next one was expected. */
export type ScanStop = 0 | 1;

export interface RingStats {
  count: number;
  /** Bytes between the reclaim point and the head (what limits appends). */
  used: number;
  head: number;
  tail: number;
  reclaim: number;
  tailLocal: number;
  nextLocal: number;
  firstSeq: number;
  lastSeq: number;
  oldestTs: number;
  dataBytes: number;
  capacity: number;
}

export interface NewRecord {
  lunId: number;
  offset: number;
  flags: number;
  timestamp: number;
  data: Uint8Array;
}

export interface Ring {
  readonly impl: 'native' | 'ts';
  readonly capacity: number;
  reset(head: number, nextLocal: number): void;
  /** Appends records with global seqs first, first+1, ...; stops at the first that does not fit. Returns how many were appended. */
  append(firstSeq: number, recs: readonly NewRecord[]): number;
  /** Bytes a record with `len` data bytes would take if appended now (wrap skip included). */
  need(len: number): number;
  read(fromSeq: number, maxBytes: number, maxCount: number, verify: boolean): Buffer;
  ack(seq: number): number;
  commitTail(v: number): void;
  truncateAfter(seq: number): void;
  recover(tailV: number, tailLocal: number): ScanStop;
  stats(): RingStats;
}

export function statsFrom(a: ArrayLike<number>): RingStats {
  return {
    count: a[0]!, used: a[1]!, head: a[2]!, tail: a[3]!, reclaim: a[4]!, tailLocal: a[5]!, nextLocal: a[6]!,
    firstSeq: a[7]!, lastSeq: a[8]!, oldestTs: a[9]!, dataBytes: a[10]!, capacity: a[11]!,
  };
}

export class RingCorruptError extends Error {
  readonly code = 'ESANBOX_CORRUPT';
}

function checkCap(cap: number): void {
  if (!Number.isSafeInteger(cap) || cap < 4096 || cap % 8 !== 0) throw new RangeError(`writelog segment capacity ${cap} must be a multiple of 8 and >= 4096`);
}

export function encodeHeader(h: Buffer, flags: number, gseq: number, local: number, ts: number, lun: number, len: number, off: number, epoch: number): void {
  h.writeUInt32LE(REC_MAGIC, 0);
  h.writeUInt16LE(REC_VERSION, 4);
  h.writeUInt16LE(flags, 6);
  writeU64(h, gseq, 8);
  writeU64(h, local, 16);
  writeU64(h, ts, 24);
  h.writeUInt32LE(lun, 32);
  h.writeUInt32LE(len, 36);
  writeU64(h, off, 40);
  h.writeUInt32LE(epoch >>> 0, 48);
  h.fill(0, 52, 64);
}
/** A safe integer as u64 little-endian at `o` (what writeBigUInt64LE writes, without a BigInt). */
export function writeU64(b: Buffer, v: number, o: number): void {
  b.writeUInt32LE(v % 0x100000000, o);
  b.writeUInt32LE(Math.floor(v / 0x100000000), o + 4);
}
export function readU64(b: Uint8Array, o: number): number {
  const lo = b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24);
  const hi = b[o + 4]! | (b[o + 5]! << 8) | (b[o + 6]! << 16) | (b[o + 7]! << 24);
  return (hi >>> 0) * 0x100000000 + (lo >>> 0);
}
export function readU32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

interface Entry {
  gseq: number;
  local: number;
  pos: number;
  len: number;
  ts: number;
}

/** The TypeScript ring. `fd < 0` keeps the ring in memory; else it lives at `base` in the file. */
export class TsRing implements Ring {
  readonly impl = 'ts' as const;
  private readonly mem: Buffer | null;
  private head = 0;
  private tail = 0;
  private reclaim = 0;
  private nextLocal = 0;
  private dataBytes = 0;
  /** Index of unacknowledged records: entries[first..]. */
  private entries: Entry[] = [];
  private first = 0;
  private stage: Buffer[] = [];
  private stageLen = 0;
  private stagePos = 0;

  constructor(private readonly fd: number, private readonly base: number, readonly capacity: number, private readonly epoch: number) {
    checkCap(capacity);
    this.mem = fd < 0 ? Buffer.alloc(capacity) : null;
  }

  private get count(): number {
    return this.entries.length - this.first;
  }
  private at(i: number): Entry {
    return this.entries[this.first + i]!;
  }
  private compact(): void {
    if (this.first > 1024 && this.first * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.first);
      this.first = 0;
    }
  }
  private invariants(): void {
    if (!(this.reclaim <= this.tail && this.tail <= this.head)) throw new Error('ring invariant violated: positions out of order');
    if (this.head - this.reclaim > this.capacity) throw new Error('ring invariant violated: overfull');
  }

  private writeAt(phys: number, b: Uint8Array): void {
    if (this.mem) this.mem.set(b, phys);
    else {
      let o = 0;
      while (o < b.length) o += writeSync(this.fd, b, o, b.length - o, this.base + phys + o);
    }
  }
  private readAt(phys: number, b: Uint8Array): void {
    if (this.mem) b.set(this.mem.subarray(phys, phys + b.length));
    else {
      let o = 0;
      while (o < b.length) {
        const n = readSync(this.fd, b, o, b.length - o, this.base + phys + o);
        if (n === 0) throw new Error('writelog read: unexpected end of file');
        o += n;
      }
    }
  }
  private flushStage(): void {
    if (this.stageLen === 0) return;
    const b = this.stage.length === 1 ? this.stage[0]! : Buffer.concat(this.stage, this.stageLen);
    this.stage = [];
    this.stageLen = 0;
    this.writeAt(this.stagePos % this.capacity, b);
  }
  private put(vpos: number, parts: Uint8Array[]): void {
    if (this.mem) {
      let phys = vpos % this.capacity;
      for (const p of parts) {
        this.mem.set(p, phys);
        phys += p.length;
      }
      return;
    }
    if (this.stageLen && this.stagePos + this.stageLen !== vpos) this.flushStage();
    if (this.stageLen === 0) this.stagePos = vpos;
    for (const p of parts) {
      this.stage.push(Buffer.from(p)); // copy: the caller may reuse its buffer
      this.stageLen += p.length;
    }
    if (this.stageLen >= 1 << 20) this.flushStage();
  }

  reset(head: number, nextLocal: number): void {
    this.head = this.tail = this.reclaim = head;
    this.nextLocal = nextLocal;
    this.dataBytes = 0;
    this.entries = [];
    this.first = 0;
  }

  need(len: number): number {
    const sz = align8(REC_HEADER + len);
    const p = this.head % this.capacity;
    return this.capacity - p < sz ? this.capacity - p + sz : sz;
  }

  append(firstSeq: number, recs: readonly NewRecord[]): number {
    const cap = this.capacity;
    const hdr = Buffer.alloc(REC_HEADER);
    const pad = Buffer.alloc(8);
    let n = 0;
    try {
      for (const r of recs) {
        const len = r.data.length;
        const sz = align8(REC_HEADER + len);
        if (sz > cap) throw new RangeError(`record of ${len} bytes larger than writelog segment (${cap} bytes)`);
        const p = this.head % cap;
        const skip = cap - p < sz ? cap - p : 0;
        if (this.head - this.reclaim + skip + sz > cap) break;
        if (skip > 0) {
          if (skip >= REC_HEADER) {
            encodeHeader(hdr, FLAG_WRAP, firstSeq + n, this.nextLocal, r.timestamp, 0, 0, 0, this.epoch);
            hdr.writeUInt32LE(crc32cTs(hdr.subarray(0, 56)), 56);
            this.put(this.head, [hdr]);
            this.nextLocal++;
          }
          this.flushStage();
          this.head += skip;
        }
        const gseq = firstSeq + n;
        encodeHeader(hdr, r.flags & ~FLAG_WRAP, gseq, this.nextLocal, r.timestamp, r.lunId, len, r.offset, this.epoch);
        hdr.writeUInt32LE(crc32cTs(r.data, crc32cTs(hdr.subarray(0, 56))), 56);
        this.put(this.head, [hdr, r.data, pad.subarray(0, sz - REC_HEADER - len)]);
        this.entries.push({ gseq, local: this.nextLocal, pos: this.head, len, ts: r.timestamp });
        this.dataBytes += len;
        this.nextLocal++;
        this.head += sz;
        n++;
      }
    } finally {
      this.flushStage();
    }
    this.invariants();
    return n;
  }

  private find(s: number): number {
    let lo = 0, hi = this.count;
    while (lo < hi) {
      const m = (lo + hi) >>> 1;
      if (this.at(m).gseq < s) lo = m + 1;
      else hi = m;
    }
    return lo;
  }

  private verify(b: Uint8Array, e: Entry): void {
    const len = readU32(b, 36);
    if (readU32(b, 0) !== REC_MAGIC || readU64(b, 8) !== e.gseq || readU64(b, 16) !== e.local || len !== e.len || readU32(b, 48) !== this.epoch >>> 0)
      throw new RingCorruptError(`writelog record ${e.gseq} corrupt (header)`);
    if (crc32cTs(b.subarray(64, 64 + len), crc32cTs(b.subarray(0, 56))) !== readU32(b, 56)) throw new RingCorruptError(`writelog record ${e.gseq} corrupt (CRC)`);
  }

  read(fromSeq: number, maxBytes: number, maxCount: number, verify: boolean): Buffer {
    const i0 = this.find(fromSeq);
    const cnt = this.count;
    let j = i0;
    let total = 0;
    while (j < cnt && j - i0 < maxCount) {
      const sz = align8(REC_HEADER + this.at(j).len);
      if (j > i0 && total + sz > maxBytes) break;
      total += sz;
      j++;
    }
    const out = Buffer.allocUnsafe(total);
    let o = 0;
    let k = i0;
    while (k < j) {
      const start = this.at(k).pos;
      let end = start + align8(REC_HEADER + this.at(k).len);
      let m = k + 1;
      while (m < j && this.at(m).pos === end && end % this.capacity !== 0) {
        end += align8(REC_HEADER + this.at(m).len);
        m++;
      }
      const n = end - start;
      this.readAt(start % this.capacity, out.subarray(o, o + n));
      if (verify) {
        let q = o;
        for (let x = k; x < m; x++) {
          const e = this.at(x);
          this.verify(out.subarray(q), e);
          q += align8(REC_HEADER + e.len);
        }
      }
      o += n;
      k = m;
    }
    return out;
  }

  ack(seq: number): number {
    let n = 0;
    while (this.count > 0 && this.at(0).gseq <= seq) {
      this.dataBytes -= this.at(0).len;
      this.first++;
      n++;
    }
    this.tail = this.count > 0 ? this.at(0).pos : this.head;
    this.compact();
    this.invariants();
    return n;
  }

  commitTail(v: number): void {
    if (v > this.tail) throw new Error(`commit_tail ${v} beyond the tail ${this.tail}`);
    if (v > this.reclaim) this.reclaim = v;
  }

  truncateAfter(seq: number): void {
    while (this.count > 0) {
      const e = this.entries[this.entries.length - 1]!;
      if (e.gseq <= seq) break;
      this.head = e.pos;
      this.nextLocal = e.local;
      this.dataBytes -= e.len;
      this.entries.pop();
    }
    if (this.count === 0) {
      this.tail = this.head;
      if (this.reclaim > this.head) this.reclaim = this.head;
    }
    this.invariants();
  }

  recover(tailV: number, tailLocal: number): ScanStop {
    this.reset(tailV, tailLocal);
    const cap = this.capacity;
    let v = tailV;
    let local = tailLocal;
    let lastG = -1;
    const hdr = Buffer.alloc(REC_HEADER);
    let why: ScanStop = 0;
    for (;;) {
      if (v - tailV >= cap) break;
      const p = v % cap;
      if (cap - p < REC_HEADER) {
        v += cap - p;
        continue;
      }
      this.readAt(p, hdr);
      if (readU32(hdr, 0) !== REC_MAGIC || readU32(hdr, 48) !== this.epoch >>> 0 || readU64(hdr, 16) !== local) {
        if (readU64(hdr, 16) === local && readU32(hdr, 0) === REC_MAGIC) why = 1;
        break;
      }
      const flags = hdr.readUInt16LE(6);
      if (hdr.readUInt16LE(4) !== REC_VERSION || readU32(hdr, 52) !== 0 || readU32(hdr, 60) !== 0) {
        why = 1;
        break;
      }
      if (flags & FLAG_WRAP) {
        if (crc32cTs(hdr.subarray(0, 56)) !== readU32(hdr, 56) || readU32(hdr, 36) !== 0) {
          why = 1;
          break;
        }
        local++;
        v += cap - p;
        continue;
      }
      const len = readU32(hdr, 36);
      const sz = align8(REC_HEADER + len);
      const g = readU64(hdr, 8);
      if (p + sz > cap || v + sz - tailV > cap || (lastG >= 0 && g <= lastG)) {
        why = 1;
        break;
      }
      const data = Buffer.alloc(len);
      this.readAt(p + REC_HEADER, data);
      if (crc32cTs(data, crc32cTs(hdr.subarray(0, 56))) !== readU32(hdr, 56)) {
        why = 1;
        break;
      }
      this.entries.push({ gseq: g, local, pos: v, len, ts: readU64(hdr, 24) });
      this.dataBytes += len;
      lastG = g;
      local++;
      v += sz;
    }
    this.head = v;
    this.nextLocal = local;
    if (this.count > 0) {
      const e = this.entries[this.entries.length - 1]!;
      const end = e.pos + align8(REC_HEADER + e.len);
      if (end < this.head && this.nextLocal === e.local + 1) this.head = end;
    } else if (local === tailLocal) this.head = tailV;
    this.tail = this.count > 0 ? this.at(0).pos : this.head;
    this.reclaim = Math.min(tailV, this.tail);
    this.invariants();
    return why;
  }

  stats(): RingStats {
    const c = this.count;
    const f = c ? this.at(0) : undefined;
    const b = c ? this.entries[this.entries.length - 1] : undefined;
    return {
      count: c, used: this.head - this.reclaim, head: this.head, tail: this.tail, reclaim: this.reclaim,
      tailLocal: f ? f.local : this.nextLocal, nextLocal: this.nextLocal,
      firstSeq: f ? f.gseq : -1, lastSeq: b ? b.gseq : -1, oldestTs: f ? f.ts : -1,
      dataBytes: this.dataBytes, capacity: this.capacity,
    };
  }
}

/** The Rust ring (requires the addon). Appends cross into the addon once per batch. */
export class NativeRing implements Ring {
  readonly impl = 'native' as const;
  private readonly h: NativeHandle;
  constructor(fd: number, base: number, readonly capacity: number, epoch: number) {
    checkCap(capacity);
    if (!addon) throw new Error('native addon not loaded');
    this.h = addon.rgNew(fd, base, capacity, epoch >>> 0);
  }
  reset(head: number, nextLocal: number): void {
    addon!.rgReset(this.h, head, nextLocal);
  }
  need(len: number): number {
    return addon!.rgNeed(this.h, len);
  }
  append(firstSeq: number, recs: readonly NewRecord[]): number {
    const n = recs.length;
    const meta = new Float64Array(4 * n);
    const datas = new Array<Uint8Array>(n);
    for (let i = 0; i < n; i++) {
      const r = recs[i]!;
      meta[4 * i] = r.lunId;
      meta[4 * i + 1] = r.offset;
      meta[4 * i + 2] = r.flags;
      meta[4 * i + 3] = r.timestamp;
      datas[i] = r.data;
    }
    return addon!.rgAppend(this.h, firstSeq, meta, datas);
  }
  read(fromSeq: number, maxBytes: number, maxCount: number, verify: boolean): Buffer {
    try {
      return addon!.rgRead(this.h, fromSeq, maxBytes, maxCount, verify);
    } catch (e) {
      if ((e as { code?: string }).code === 'ESANBOX_CORRUPT') throw new RingCorruptError((e as Error).message);
      throw e;
    }
  }
  ack(seq: number): number {
    return addon!.rgAck(this.h, seq);
  }
  commitTail(v: number): void {
    addon!.rgCommitTail(this.h, v);
  }
  truncateAfter(seq: number): void {
    addon!.rgTruncateAfter(this.h, seq);
  }
  recover(tailV: number, tailLocal: number): ScanStop {
    return addon!.rgRecover(this.h, tailV, tailLocal) as ScanStop;
  }
  stats(): RingStats {
    return statsFrom(addon!.rgStats(this.h));
  }
}
