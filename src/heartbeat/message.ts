/**
 * The heartbeat message 300 of the source (Fig. 3: serial number 310, time 320, identifier 330)
 * as one fixed 4 KiB block, the same bytes on the network and at offset 0 of a heartbeat volume.
 * The failure-notice ring (notice.ts) follows the block on the volume. Layout (little-endian):
 *
 * | offset | size | field                                                            |
 * | -----: | ---: | ---------------------------------------------------------------- |
 * |      0 |    8 | magic `SBXHBEAT`                                                 |
 * |      8 |    2 | version (1)                                                      |
 * |     10 |    2 | flags: bit 0 master, bit 1 role standby (clear: production)      |
 * |     12 |    4 | CRC32C of the 4096 bytes with this field zero                    |
 * |     16 |    4 | serial (1..0xffffffff; wraps to 1)                               |
 * |     20 |    4 | cluster instance                                                 |
 * |     24 |    8 | time (ms, sender's wall clock; only carried, never compared)     |
 * |     32 |    4 | notice sequence (newest failure notice written; 0 none)          |
 * |     36 |    4 | reserved, zero                                                   |
 * |     40 |   65 | sender id: 1-byte length + up to 64 bytes UTF-8                  |
 * |    105 |   65 | site: 1-byte length + up to 64 bytes UTF-8                       |
 * |    170 |   65 | cluster name: 1-byte length + up to 64 bytes UTF-8               |
 * |    235 | 3861 | zero                                                             |
 */
import { checkEnvelope, sealCrc, checkU32, HeartbeatEncodeError, isAllZero, readString, readU64, writeString, writeU64 } from './codec.js';

export const HB_BLOCK_BYTES = 4096;
export const NOTICE_SLOT_BYTES = 512;
export const NOTICE_SLOTS = 16;
/** The region the agent writes and reads at offset 0 of a heartbeat volume. */
export const HB_AREA_BYTES = HB_BLOCK_BYTES + NOTICE_SLOTS * NOTICE_SLOT_BYTES;
export const HB_MAGIC = Buffer.from('SBXHBEAT', 'latin1');
export const HB_VERSION = 1;
export const MAX_SERIAL = 0xffffffff;
/** Maximum UTF-8 bytes of senderId, site and clusterName. */
export const HB_MAX_STRING_BYTES = 64;

export const HB_OFFSETS = {
  magic: 0,
  version: 8,
  flags: 10,
  crc: 12,
  serial: 16,
  instance: 20,
  timeMs: 24,
  noticeSeq: 32,
  reserved: 36,
  senderId: 40,
  site: 105,
  clusterName: 170,
  end: 235,
} as const;

const FLAG_MASTER = 1;
const FLAG_STANDBY = 2;
const KNOWN_FLAGS = FLAG_MASTER | FLAG_STANDBY;

export type SiteRole = 'production' | 'standby';

export interface HeartbeatMessage {
  serial: number;
  timeMs: number;
  senderId: string;
  site: string;
  clusterName: string;
  instance: number;
  role: SiteRole;
  master: boolean;
  /** Sequence number of the newest failure notice the sender has written, 0 for none. */
  noticeSeq: number;
}

export type HeartbeatDecodeReason = 'blank' | 'bad-magic' | 'bad-version' | 'bad-crc' | 'bad-length' | 'bad-field';
export type HeartbeatRead = { ok: true; message: HeartbeatMessage } | { ok: false; reason: HeartbeatDecodeReason; detail: string };

/** Encodes `m` into exactly HB_BLOCK_BYTES; throws HeartbeatEncodeError on a field out of range. */
export function encodeHeartbeat(m: HeartbeatMessage): Buffer {
  checkU32(m.serial, 'serial', 1);
  checkU32(m.instance, 'instance');
  checkU32(m.noticeSeq, 'noticeSeq');
  if (m.role !== 'production' && m.role !== 'standby') throw new HeartbeatEncodeError(`role must be production or standby, got ${String(m.role)}`);
  if (typeof m.master !== 'boolean') throw new HeartbeatEncodeError('master must be a boolean');
  const buf = Buffer.alloc(HB_BLOCK_BYTES);
  HB_MAGIC.copy(buf, HB_OFFSETS.magic);
  buf.writeUInt16LE(HB_VERSION, HB_OFFSETS.version);
  buf.writeUInt16LE((m.master ? FLAG_MASTER : 0) | (m.role === 'standby' ? FLAG_STANDBY : 0), HB_OFFSETS.flags);
  buf.writeUInt32LE(m.serial, HB_OFFSETS.serial);
  buf.writeUInt32LE(m.instance, HB_OFFSETS.instance);
  writeU64(buf, HB_OFFSETS.timeMs, m.timeMs, 'timeMs');
  buf.writeUInt32LE(m.noticeSeq, HB_OFFSETS.noticeSeq);
  writeString(buf, HB_OFFSETS.senderId, m.senderId, HB_MAX_STRING_BYTES, 1, 'senderId');
  writeString(buf, HB_OFFSETS.site, m.site, HB_MAX_STRING_BYTES, 1, 'site');
  writeString(buf, HB_OFFSETS.clusterName, m.clusterName, HB_MAX_STRING_BYTES, 1, 'clusterName');
  sealCrc(buf, HB_OFFSETS.crc);
  return buf;
}

const ENVELOPE = { bytes: HB_BLOCK_BYTES, magic: HB_MAGIC, version: HB_VERSION, versionOff: HB_OFFSETS.version, crcOff: HB_OFFSETS.crc, what: 'heartbeat block' };

/** Decodes a heartbeat block; never throws on bad bytes (only on a non-Buffer argument). */
export function decodeHeartbeat(buf: Buffer): HeartbeatRead {
  const env = checkEnvelope(buf, ENVELOPE);
  if (!env.ok) return env;
  const bad = (detail: string): HeartbeatRead => ({ ok: false, reason: 'bad-field', detail });
  const flags = buf.readUInt16LE(HB_OFFSETS.flags);
  if ((flags & ~KNOWN_FLAGS) !== 0) return bad(`unknown flags 0x${flags.toString(16)}`);
  const serial = buf.readUInt32LE(HB_OFFSETS.serial);
  if (serial === 0) return bad('serial 0 (serials start at 1)');
  const time = readU64(buf, HB_OFFSETS.timeMs, 'timeMs');
  if (!time.ok) return bad(time.detail);
  if (buf.readUInt32LE(HB_OFFSETS.reserved) !== 0) return bad('reserved field is not zero');
  const strings: string[] = [];
  for (const f of ['senderId', 'site', 'clusterName'] as const) {
    const r = readString(buf, HB_OFFSETS[f], HB_MAX_STRING_BYTES, 1, f);
    if (!r.ok) return bad(r.detail);
    strings.push(r.value);
  }
  if (!isAllZero(buf.subarray(HB_OFFSETS.end))) return bad(`bytes after offset ${HB_OFFSETS.end} are not zero`);
  const message: HeartbeatMessage = {
    serial,
    timeMs: time.value,
    senderId: strings[0]!,
    site: strings[1]!,
    clusterName: strings[2]!,
    instance: buf.readUInt32LE(HB_OFFSETS.instance),
    role: flags & FLAG_STANDBY ? 'standby' : 'production',
    master: (flags & FLAG_MASTER) !== 0,
    noticeSeq: buf.readUInt32LE(HB_OFFSETS.noticeSeq),
  };
  return { ok: true, message };
}

/** Splits the HB_AREA_BYTES region of a heartbeat volume into the block and the notice ring. */
export function splitArea(area: Buffer): { block: Buffer; notices: Buffer } {
  if (area.length !== HB_AREA_BYTES) throw new RangeError(`heartbeat area is ${area.length} bytes, expected ${HB_AREA_BYTES}`);
  return { block: area.subarray(0, HB_BLOCK_BYTES), notices: area.subarray(HB_BLOCK_BYTES) };
}

function checkSerial(s: number, what: string): void {
  if (!Number.isInteger(s) || s < 0 || s > MAX_SERIAL) throw new RangeError(`${what} must be an integer 0..${MAX_SERIAL}, got ${s}`);
}

/** The serial after `s`: s+1; MAX_SERIAL wraps to 1 (never 0, which means "none"). nextSerial(0) = 1. */
export function nextSerial(s: number): number {
  checkSerial(s, 'serial');
  return s === MAX_SERIAL ? 1 : s + 1;
}

/** Half the serial cycle: a forward distance below this is "later", above it is "backwards". */
const SERIAL_WINDOW = 0x80000000;

/**
 * True when `next` is later than `prev` on the serial cycle 1..MAX_SERIAL, allowing the one
 * wrap MAX_SERIAL -> 1 (and serials skipped by a reader that missed some, up to half the
 * cycle). `prev` 0 means "none seen": every serial is later. Equal is not later.
 */
export function serialAdvanced(prev: number, next: number): boolean {
  checkSerial(prev, 'prev serial');
  checkSerial(next, 'next serial');
  if (next === 0) return false;
  if (prev === 0) return true;
  const distance = next >= prev ? next - prev : next + MAX_SERIAL - prev;
  return distance > 0 && distance < SERIAL_WINDOW;
}
