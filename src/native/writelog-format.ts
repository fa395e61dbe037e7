/**
 * The writelog's on-disk format (./writelog.ts documents the model): the layout of a segment
 * file (a 64-byte header in a 4 KiB block; the main file then holds the two metadata slots
 * before its data), the header encode and check, the metadata slot encode, and the read of the
 * best valid metadata slot. Plain functions of their arguments, apart from the class, so the
 * bytes on disk can be read and reviewed in one place; records inside a segment are ./ring.ts's.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32cTs } from './crc32c.js';
import type { Ring } from './ring.js';
import { WritelogCorruptError } from './writelog-records.js';

export const SEG_HEADER = 4096;
export const META_SLOT = 64 * 1024;
const MAIN_DATA = SEG_HEADER + 2 * META_SLOT;
const SEG_MAGIC = 'SBXWLSEG';
const META_MAGIC = 'SBXWLMET';

export interface SegMeta {
  tail: number;
  tailLocal: number;
  head: number;
  nextLocal: number;
  count: number;
  capacity: number;
}
export interface Meta {
  epoch: number;
  gen: number;
  nextSeq: number;
  chain: number[];
  segs: Record<string, SegMeta>;
}

export interface Segment {
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

export function pwriteAll(fd: number, b: Uint8Array, pos: number): void {
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

/** Where segment `idx`'s ring data starts in its file (the main file also holds the metadata slots). */
export function segmentBase(idx: number): number {
  return idx === 0 ? MAIN_DATA : SEG_HEADER;
}

/** The 64-byte header of segment `idx` of the writelog `epoch`. */
export function encodeSegHeader(epoch: number, idx: number, capacity: number): Buffer {
  const h = Buffer.alloc(64);
  h.write(SEG_MAGIC, 0, 'latin1');
  h.writeUInt32LE(1, 8);
  h.writeUInt32LE(epoch >>> 0, 12);
  h.writeUInt32LE(idx, 16);
  u64le(capacity).copy(h, 24);
  h.writeUInt32LE(crc32cTs(h.subarray(0, 60)), 60);
  return h;
}

/**
 * Checks that the open file `fd` is segment `idx` of the writelog `epoch` with `capacity` bytes
 * of data; otherwise closes `fd` and throws WritelogCorruptError.
 */
export function checkSegment(fd: number, path: string, epoch: number, idx: number, capacity: number): void {
  const h = preadAll(fd, 64, 0);
  const bad = (why: string) => {
    closeSync(fd);
    return new WritelogCorruptError(`${path}: ${why}`);
  };
  if (h.length < 64 || h.toString('latin1', 0, 8) !== SEG_MAGIC || crc32cTs(h.subarray(0, 60)) !== h.readUInt32LE(60)) throw bad('not a writelog segment (bad header)');
  if (h.readUInt32LE(12) !== epoch >>> 0 || h.readUInt32LE(16) !== idx) throw bad('segment belongs to another writelog');
  if (Number(h.readBigUInt64LE(24)) !== capacity) throw bad('segment capacity differs from metadata');
  if (fstatSync(fd).size < segmentBase(idx) + capacity) throw bad('segment file truncated');
}

/** The metadata slot image of `m` (magic, generation, length, CRC32C, JSON); written at slot gen % 2. */
export function encodeMetaSlot(m: Meta): Buffer {
  const json = Buffer.from(JSON.stringify(m));
  if (json.length + 24 > META_SLOT) throw new Error('writelog metadata too large');
  const slot = Buffer.alloc(24 + json.length);
  slot.write(META_MAGIC, 0, 'latin1');
  u64le(m.gen).copy(slot, 8);
  slot.writeUInt32LE(json.length, 16);
  json.copy(slot, 24);
  slot.writeUInt32LE(crc32cTs(json, crc32cTs(slot.subarray(0, 20))), 20);
  return slot;
}

/** The newest valid metadata slot of the main file at `path`; WritelogCorruptError when neither is valid. */
export function readBestMeta(path: string): Meta {
  const main = openSync(path, 'r');
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
    if (!best) throw new WritelogCorruptError(`${path}: no valid metadata block`);
    return best;
  } finally {
    closeSync(main);
  }
}
