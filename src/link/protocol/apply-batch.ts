/**
 * The payload of an `apply` request: `count` writelog records back to back, exactly as the
 * group's journal holds them (src/native/ring.ts: a 64-byte header, the data, zero padding to a
 * multiple of 8). The sender sends what it read from the writelog as it is (no per-record
 * encoding, no concatenation); the receiver reads the fields it needs in place.
 *
 * Used fields of a record header at `o`: magic (0), flags u16 (6), global sequence u64 (8),
 * member index u32 (32, the journal's LUN id), data length u32 (36), LUN offset u64 (40). With
 * APPLY_FLAG_ZERO the data is 8 bytes, the length to zero (u64). The header's local sequence,
 * timestamp, epoch and CRC are the primary's journal's business: the frame's MAC already
 * protects the payload on the wire, so the receiver does not check the record CRC.
 */
import { REC_HEADER, REC_MAGIC, REC_VERSION, align8, readU32, readU64 } from '../../native/ring.js';
import { crc32c } from '../../native/index.js';
import { RemoteLinkError } from './errors.js';

/** An `apply` record without payload: the range reads as zeroes (trim or write-zeroes). */
export const APPLY_FLAG_ZERO = 0x100;
/** With APPLY_FLAG_ZERO: the primary trimmed (punch a hole where possible). */
export const APPLY_FLAG_TRIM = 0x200;

export const APPLY_RECORD_HEADER = REC_HEADER;

export const recordSeq = (b: Buffer, o: number): number => readU64(b, o + 8);
export const recordIndex = (b: Buffer, o: number): number => readU32(b, o + 32);
export const recordOffset = (b: Buffer, o: number): number => readU64(b, o + 40);
export const recordFlags = (b: Buffer, o: number): number => b[o + 6]! | (b[o + 7]! << 8);
/** Bytes of data the record carries (8 for a zeroing record). */
export const recordDataBytes = (b: Buffer, o: number): number => readU32(b, o + 36);
/** Where the next record starts. */
export const nextRecord = (b: Buffer, o: number): number => o + align8(REC_HEADER + readU32(b, o + 36));
/** Bytes of the LUN the record changes: its data, or the announced length of a zeroing. */
export function recordLength(b: Buffer, o: number): number {
  return recordFlags(b, o) & APPLY_FLAG_ZERO ? readU64(b, o + REC_HEADER) : recordDataBytes(b, o);
}

/**
 * Checks the shape of a batch: `count` records that fill `bin` exactly, each with the record
 * magic, in strictly increasing sequence order, a zeroing record with its 8-byte length.
 * Throws RemoteLinkError 'bad-request'.
 */
export function checkApplyBatch(bin: Buffer, count: number): void {
  const bad = (why: string): never => {
    throw new RemoteLinkError('bad-request', `apply: ${why}`);
  };
  let prev = 0;
  let n = 0;
  let o = 0;
  while (o < bin.length) {
    if (bin.length - o < REC_HEADER) bad(`record ${n} cut short at byte ${o} of ${bin.length}`);
    if (readU32(bin, o) !== REC_MAGIC) bad(`record ${n} at byte ${o} has no record magic`);
    const next = nextRecord(bin, o);
    if (next > bin.length) bad(`record ${n} runs past the payload (${next} > ${bin.length})`);
    if (recordFlags(bin, o) & APPLY_FLAG_ZERO && recordDataBytes(bin, o) !== 8) bad(`zeroing record ${n} carries ${recordDataBytes(bin, o)} bytes, not its 8-byte length`);
    const seq = recordSeq(bin, o);
    if (seq <= prev) bad('records must be in increasing sequence order');
    prev = seq;
    n++;
    o = next;
  }
  if (n !== count) bad(`${count} records announced, ${n} came`);
}

/** One record to encode (tests, and any sender that does not read them from a writelog). */
export interface ApplyRecordIn {
  seq: number;
  index: number;
  offset: number;
  flags: number;
  /** the data, or for APPLY_FLAG_ZERO the 8-byte length */
  data: Buffer;
  timestamp?: number;
}

/** Encodes records in the writelog's layout (local sequence 0, epoch 0, with their CRC). */
export function encodeApplyBatch(records: readonly ApplyRecordIn[]): Buffer {
  let size = 0;
  for (const r of records) size += align8(REC_HEADER + r.data.length);
  const out = Buffer.alloc(size);
  let o = 0;
  for (const r of records) {
    out.writeUInt32LE(REC_MAGIC, o);
    out.writeUInt16LE(REC_VERSION, o + 4);
    out.writeUInt16LE(r.flags, o + 6);
    out.writeBigUInt64LE(BigInt(r.seq), o + 8);
    out.writeBigUInt64LE(BigInt(r.timestamp ?? Date.now()), o + 24);
    out.writeUInt32LE(r.index, o + 32);
    out.writeUInt32LE(r.data.length, o + 36);
    out.writeBigUInt64LE(BigInt(r.offset), o + 40);
    r.data.copy(out, o + REC_HEADER);
    out.writeUInt32LE(crc32c(r.data, crc32c(out.subarray(o, o + 56))), o + 56);
    o += align8(REC_HEADER + r.data.length);
  }
  return out;
}
