/**
 * Byte-level helpers shared by the heartbeat block (message.ts) and the failure notice slots
 * (notice.ts): length-prefixed UTF-8 strings in fixed-size fields, unsigned 64-bit times as
 * safe integers, and the CRC32C over a block with its CRC field zeroed. Pure.
 */
import { crc32c } from '../native/index.js';

/** Thrown on misuse of an encoder (a field out of range): the caller's bug, not bad input. */
export class HeartbeatEncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeartbeatEncodeError';
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Writes `s` as a `prefix`-byte little-endian length followed by at most `max` UTF-8 bytes. */
export function writeString(buf: Buffer, off: number, s: string, max: number, prefix: 1 | 2, field: string, allowEmpty = false): void {
  if (typeof s !== 'string') throw new HeartbeatEncodeError(`${field} must be a string`);
  const bytes = Buffer.from(s, 'utf8');
  if (bytes.length > max) throw new HeartbeatEncodeError(`${field} is ${bytes.length} bytes of UTF-8; the maximum is ${max}`);
  if (!allowEmpty && bytes.length === 0) throw new HeartbeatEncodeError(`${field} must not be empty`);
  if (prefix === 1) buf.writeUInt8(bytes.length, off);
  else buf.writeUInt16LE(bytes.length, off);
  bytes.copy(buf, off + prefix);
}

export type FieldRead<T> = { ok: true; value: T } | { ok: false; detail: string };

/** Reads a string written by writeString; the unused tail of the field must be zero. */
export function readString(buf: Buffer, off: number, max: number, prefix: 1 | 2, field: string, allowEmpty = false): FieldRead<string> {
  const len = prefix === 1 ? buf.readUInt8(off) : buf.readUInt16LE(off);
  if (len > max) return { ok: false, detail: `${field} length ${len} exceeds the maximum ${max}` };
  if (!allowEmpty && len === 0) return { ok: false, detail: `${field} is empty` };
  const start = off + prefix;
  for (let i = start + len; i < start + max; i++) {
    if (buf[i] !== 0) return { ok: false, detail: `${field} has non-zero bytes after its ${len}-byte value` };
  }
  try {
    return { ok: true, value: UTF8.decode(buf.subarray(start, start + len)) };
  } catch {
    return { ok: false, detail: `${field} is not valid UTF-8` };
  }
}

/** Writes a non-negative safe integer as an unsigned 64-bit little-endian value. */
export function writeU64(buf: Buffer, off: number, v: number, field: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw new HeartbeatEncodeError(`${field} must be a non-negative safe integer, got ${v}`);
  buf.writeBigUInt64LE(BigInt(v), off);
}

export function readU64(buf: Buffer, off: number, field: string): FieldRead<number> {
  const v = buf.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return { ok: false, detail: `${field} ${v} is above 2^53-1` };
  return { ok: true, value: Number(v) };
}

export function checkU32(v: number, field: string, min = 0): void {
  if (!Number.isInteger(v) || v < min || v > 0xffffffff) throw new HeartbeatEncodeError(`${field} must be an integer ${min}..4294967295, got ${v}`);
}

const ZERO4 = new Uint8Array(4);

/** CRC32C of `buf` with the 4 bytes at `crcOff` taken as zero (computed in three pieces, no copy). */
export function blockCrc(buf: Buffer, crcOff: number): number {
  let c = crc32c(buf.subarray(0, crcOff));
  c = crc32c(ZERO4, c);
  return crc32c(buf.subarray(crcOff + 4), c);
}

/** Stores the block's CRC32C (computed with the field zero) at `crcOff`. */
export function sealCrc(buf: Buffer, crcOff: number): void {
  buf.writeUInt32LE(blockCrc(buf, crcOff), crcOff);
}

export function isAllZero(buf: Buffer): boolean {
  for (let i = 0; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** The common first checks of a fixed-size block: length, blank, magic, version, CRC. */
export function checkEnvelope(
  buf: Buffer,
  spec: { bytes: number; magic: Buffer; version: number; versionOff: number; crcOff: number; what: string },
): { ok: true } | { ok: false; reason: 'blank' | 'bad-magic' | 'bad-version' | 'bad-crc' | 'bad-length'; detail: string } {
  if (!Buffer.isBuffer(buf)) throw new TypeError(`${spec.what}: expected a Buffer`);
  if (buf.length !== spec.bytes) return { ok: false, reason: 'bad-length', detail: `${spec.what} is ${buf.length} bytes, expected ${spec.bytes}` };
  if (isAllZero(buf)) return { ok: false, reason: 'blank', detail: `${spec.what} is all zero (never written)` };
  if (!buf.subarray(0, spec.magic.length).equals(spec.magic)) {
    return { ok: false, reason: 'bad-magic', detail: `${spec.what} magic is ${JSON.stringify(buf.subarray(0, spec.magic.length).toString('latin1'))}, expected ${spec.magic.toString('latin1')}` };
  }
  const version = buf.readUInt16LE(spec.versionOff);
  if (version !== spec.version) return { ok: false, reason: 'bad-version', detail: `${spec.what} version ${version}, this build reads version ${spec.version}` };
  const stored = buf.readUInt32LE(spec.crcOff);
  const actual = blockCrc(buf, spec.crcOff);
  if (stored !== actual) return { ok: false, reason: 'bad-crc', detail: `${spec.what} CRC32C stored 0x${stored.toString(16)}, computed 0x${actual.toString(16)}` };
  return { ok: true };
}
