import { crc32c } from '../../native/index.js';
import type { MirrorPage } from '../cache/index.js';

/**
 * On-disk format of one vault copy (all integers little-endian):
 *
 *   header   (64 bytes)
 *     0  magic "SNBVAULT"            8  version u32 (1)          12 header length u32 (64)
 *     16 generation u64              24 timestamp ms u64          32 total image length u64
 *     40 section count u32           44 SP name: length u8 + 15 bytes UTF-8, zero padded
 *     60 CRC32C of bytes 0..59 u32
 *   sections (sectionCount of them), each:
 *     section header (40 bytes)
 *       0 magic "SECT" 4 kind u32 (1 own cache, 2 peer cache, 3 log)   8 LUN u32
 *       12 page size u32  16 count u32 (pages; 0 for logs)  20 name length u32 (logs)
 *       24 payload length u64   32 CRC32C of the payload u32   36 CRC32C of bytes 0..35 u32
 *     payload
 *       cache: count x (index u64, generation u64, page bytes)
 *       log:   name bytes (UTF-8), then the log's bytes
 *   trailer  (32 bytes)
 *     0 magic "SNBVEND!"   8 generation u64   16 total image length u64
 *     24 CRC32C of every byte of the image before offset 24 of the trailer u32   28 zero u32
 *
 * A copy is written front to back after truncating the file, so an interrupted dump leaves a
 * strict prefix: shorter than the length its header declares (torn). A copy of full length
 * whose checksums disagree is corrupt.
 */
export const VAULT_MAGIC = 'SNBVAULT';
export const VAULT_END_MAGIC = 'SNBVEND!';
export const VAULT_VERSION = 1;
export const HEADER_SIZE = 64;
export const SECTION_HEADER_SIZE = 40;
export const TRAILER_SIZE = 32;

export type CacheRole = 'own' | 'peer';

/** Dirty cache pages of one LUN: the SP's own LUN, or its mirror of a peer LUN. */
export interface VaultCacheSection {
  lun: number;
  role: CacheRole;
  pageSize: number;
  pages: MirrorPage[];
}

/** An opaque named log (write-intent/fracture bitmaps, writelog tail, ...). */
export interface VaultLog {
  name: string;
  data: Buffer;
}

export interface VaultImage {
  sp: string;
  generation: number;
  timestamp: number;
  caches: VaultCacheSection[];
  logs: VaultLog[];
}

export class VaultFormatError extends Error {
  constructor(
    readonly kind: 'torn' | 'corrupt',
    message: string,
  ) {
    super(message);
    this.name = 'VaultFormatError';
  }
}

const KIND_OWN = 1;
const KIND_PEER = 2;
const KIND_LOG = 3;

export function encodeVaultImage(img: VaultImage): Buffer {
  const spBytes = Buffer.from(img.sp, 'utf8');
  if (spBytes.length === 0 || spBytes.length > 15) throw new Error(`vault: SP name ${JSON.stringify(img.sp)} must be 1 to 15 bytes`);
  if (!Number.isSafeInteger(img.generation) || img.generation < 1) throw new Error(`vault: generation ${img.generation} must be a positive integer`);
  const sections: Buffer[] = [];
  for (const c of img.caches) {
    if (!Number.isSafeInteger(c.pageSize) || c.pageSize <= 0) throw new Error(`vault: bad page size ${c.pageSize}`);
    const payload = Buffer.alloc(c.pages.length * (16 + c.pageSize));
    let o = 0;
    for (const p of c.pages) {
      if (p.data.length !== c.pageSize) throw new Error(`vault: LUN ${c.lun} page ${p.index} is ${p.data.length} bytes, not ${c.pageSize}`);
      payload.writeBigUInt64LE(BigInt(p.index), o);
      payload.writeBigUInt64LE(BigInt(p.generation), o + 8);
      p.data.copy(payload, o + 16);
      o += 16 + c.pageSize;
    }
    sections.push(sectionHeader(c.role === 'own' ? KIND_OWN : KIND_PEER, c.lun, c.pageSize, c.pages.length, 0, payload), payload);
  }
  for (const l of img.logs) {
    const name = Buffer.from(l.name, 'utf8');
    if (name.length === 0 || name.length > 255) throw new Error(`vault: log name ${JSON.stringify(l.name)} must be 1 to 255 bytes`);
    const payload = Buffer.concat([name, l.data]);
    sections.push(sectionHeader(KIND_LOG, 0, 0, 0, name.length, payload), payload);
  }
  const body = Buffer.concat(sections);
  const total = HEADER_SIZE + body.length + TRAILER_SIZE;
  const header = Buffer.alloc(HEADER_SIZE);
  header.write(VAULT_MAGIC, 0, 'latin1');
  header.writeUInt32LE(VAULT_VERSION, 8);
  header.writeUInt32LE(HEADER_SIZE, 12);
  header.writeBigUInt64LE(BigInt(img.generation), 16);
  header.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(img.timestamp))), 24);
  header.writeBigUInt64LE(BigInt(total), 32);
  header.writeUInt32LE(img.caches.length + img.logs.length, 40);
  header.writeUInt8(spBytes.length, 44);
  spBytes.copy(header, 45);
  header.writeUInt32LE(crc32c(header.subarray(0, 60)), 60);
  const trailer = Buffer.alloc(TRAILER_SIZE);
  trailer.write(VAULT_END_MAGIC, 0, 'latin1');
  trailer.writeBigUInt64LE(BigInt(img.generation), 8);
  trailer.writeBigUInt64LE(BigInt(total), 16);
  let crc = crc32c(header);
  crc = crc32c(body, crc);
  crc = crc32c(trailer.subarray(0, 24), crc);
  trailer.writeUInt32LE(crc, 24);
  return Buffer.concat([header, body, trailer], total);
}

function sectionHeader(kind: number, lun: number, pageSize: number, count: number, nameLen: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(SECTION_HEADER_SIZE);
  h.write('SECT', 0, 'latin1');
  h.writeUInt32LE(kind, 4);
  h.writeUInt32LE(lun, 8);
  h.writeUInt32LE(pageSize, 12);
  h.writeUInt32LE(count, 16);
  h.writeUInt32LE(nameLen, 20);
  h.writeBigUInt64LE(BigInt(payload.length), 24);
  h.writeUInt32LE(crc32c(payload), 32);
  h.writeUInt32LE(crc32c(h.subarray(0, 36)), 36);
  return h;
}

/** What the header alone says (when it is intact), even for a torn copy. */
export interface VaultHeaderInfo {
  generation: number;
  timestamp: number;
  totalLength: number;
  sp: string;
  sections: number;
}

export function decodeVaultHeader(buf: Buffer): VaultHeaderInfo {
  if (buf.length < HEADER_SIZE) {
    if (buf.length === 0) throw new VaultFormatError('torn', 'empty copy (dump interrupted before the header)');
    if (Buffer.from(VAULT_MAGIC).subarray(0, Math.min(8, buf.length)).equals(buf.subarray(0, Math.min(8, buf.length)))) {
      throw new VaultFormatError('torn', `torn in the header: ${buf.length} of ${HEADER_SIZE} bytes`);
    }
    throw new VaultFormatError('corrupt', `${buf.length} bytes without a vault magic`);
  }
  if (buf.toString('latin1', 0, 8) !== VAULT_MAGIC) throw new VaultFormatError('corrupt', 'bad magic (not a vault copy)');
  if (crc32c(buf.subarray(0, 60)) !== buf.readUInt32LE(60)) throw new VaultFormatError('corrupt', 'header checksum mismatch');
  const version = buf.readUInt32LE(8);
  if (version !== VAULT_VERSION) throw new VaultFormatError('corrupt', `unsupported vault version ${version}`);
  if (buf.readUInt32LE(12) !== HEADER_SIZE) throw new VaultFormatError('corrupt', `bad header length ${buf.readUInt32LE(12)}`);
  const spLen = buf.readUInt8(44);
  if (spLen === 0 || spLen > 15) throw new VaultFormatError('corrupt', `bad SP name length ${spLen}`);
  return {
    generation: Number(buf.readBigUInt64LE(16)),
    timestamp: Number(buf.readBigUInt64LE(24)),
    totalLength: Number(buf.readBigUInt64LE(32)),
    sections: buf.readUInt32LE(40),
    sp: buf.toString('utf8', 45, 45 + spLen),
  };
}

/** Decodes and validates a whole copy; throws VaultFormatError('torn' | 'corrupt', why). */
export function decodeVaultImage(buf: Buffer): VaultImage {
  const h = decodeVaultHeader(buf);
  if (h.totalLength < HEADER_SIZE + TRAILER_SIZE || !Number.isSafeInteger(h.totalLength)) throw new VaultFormatError('corrupt', `bad total length ${h.totalLength}`);
  if (buf.length < h.totalLength) {
    throw new VaultFormatError('torn', `torn ${describeTear(buf, h)}: ${buf.length} of ${h.totalLength} bytes`);
  }
  if (buf.length > h.totalLength) throw new VaultFormatError('corrupt', `${buf.length - h.totalLength} bytes after the trailer`);
  const img: VaultImage = { sp: h.sp, generation: h.generation, timestamp: h.timestamp, caches: [], logs: [] };
  let o = HEADER_SIZE;
  const end = h.totalLength - TRAILER_SIZE;
  for (let s = 0; s < h.sections; s++) {
    if (o + SECTION_HEADER_SIZE > end) throw new VaultFormatError('corrupt', `section ${s} header runs past the trailer`);
    const sh = buf.subarray(o, o + SECTION_HEADER_SIZE);
    if (sh.toString('latin1', 0, 4) !== 'SECT' || crc32c(sh.subarray(0, 36)) !== sh.readUInt32LE(36)) {
      throw new VaultFormatError('corrupt', `section ${s} header checksum mismatch at byte ${o}`);
    }
    const kind = sh.readUInt32LE(4);
    const lun = sh.readUInt32LE(8);
    const pageSize = sh.readUInt32LE(12);
    const count = sh.readUInt32LE(16);
    const nameLen = sh.readUInt32LE(20);
    const len = Number(sh.readBigUInt64LE(24));
    o += SECTION_HEADER_SIZE;
    if (o + len > end) throw new VaultFormatError('corrupt', `section ${s} payload runs past the trailer`);
    const payload = buf.subarray(o, o + len);
    if (crc32c(payload) !== sh.readUInt32LE(32)) throw new VaultFormatError('corrupt', `section ${s} (${kindName(kind)} LUN ${lun}) payload checksum mismatch`);
    o += len;
    if (kind === KIND_OWN || kind === KIND_PEER) {
      if (pageSize === 0 || len !== count * (16 + pageSize)) throw new VaultFormatError('corrupt', `section ${s}: ${count} pages of ${pageSize} do not fill ${len} bytes`);
      const pages: MirrorPage[] = [];
      for (let i = 0, p = 0; i < count; i++, p += 16 + pageSize) {
        pages.push({
          index: Number(payload.readBigUInt64LE(p)),
          generation: Number(payload.readBigUInt64LE(p + 8)),
          data: Buffer.from(payload.subarray(p + 16, p + 16 + pageSize)),
        });
      }
      img.caches.push({ lun, role: kind === KIND_OWN ? 'own' : 'peer', pageSize, pages });
    } else if (kind === KIND_LOG) {
      if (nameLen === 0 || nameLen > len) throw new VaultFormatError('corrupt', `section ${s}: bad log name length ${nameLen}`);
      img.logs.push({ name: payload.toString('utf8', 0, nameLen), data: Buffer.from(payload.subarray(nameLen)) });
    } else {
      throw new VaultFormatError('corrupt', `section ${s}: unknown kind ${kind}`);
    }
  }
  if (o !== end) throw new VaultFormatError('corrupt', `${end - o} unexplained bytes before the trailer`);
  const t = buf.subarray(end, end + TRAILER_SIZE);
  if (t.toString('latin1', 0, 8) !== VAULT_END_MAGIC) throw new VaultFormatError('corrupt', 'bad trailer magic');
  if (Number(t.readBigUInt64LE(8)) !== h.generation || Number(t.readBigUInt64LE(16)) !== h.totalLength) {
    throw new VaultFormatError('corrupt', 'trailer disagrees with the header (generation or length)');
  }
  if (crc32c(buf.subarray(0, end + 24)) !== t.readUInt32LE(24)) throw new VaultFormatError('corrupt', 'whole-image checksum mismatch');
  if (t.readUInt32LE(28) !== 0) throw new VaultFormatError('corrupt', 'trailer padding is not zero');
  return img;
}

function kindName(kind: number): string {
  return kind === KIND_OWN ? 'own cache' : kind === KIND_PEER ? 'peer cache' : kind === KIND_LOG ? 'log' : `kind ${kind}`;
}

/** Where a prefix stops: in section k, or in the trailer. */
function describeTear(buf: Buffer, h: VaultHeaderInfo): string {
  if (buf.length >= h.totalLength - TRAILER_SIZE) return 'in the trailer';
  let o = HEADER_SIZE;
  for (let s = 0; s < h.sections; s++) {
    if (o + SECTION_HEADER_SIZE > buf.length) return `in section ${s} header`;
    const len = Number(buf.readBigUInt64LE(o + 24));
    o += SECTION_HEADER_SIZE + len;
    if (o > buf.length) return `in section ${s} payload`;
  }
  return 'before the trailer';
}
