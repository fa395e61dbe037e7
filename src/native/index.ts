/**
 * Public surface of the native hot path (other modules import only this file).
 *
 * - `crc32c`: CRC32C (Castagnoli); SSE4.2 in the addon when the CPU has it, tables otherwise.
 * - `hmacSha256`: a keyed HMAC-SHA256 (the link's frame MAC); the x86 SHA extensions in the
 *   addon when the CPU has them, plain Rust otherwise, node:crypto in the twin (./hmac.ts).
 * - `fileOps`: punch hole / SEEK_DATA / SEEK_HOLE, which Node's fs lacks; null without the addon.
 * - Region bitmaps (`RegionBitmap`, `WriteIntentLog`, save/load): see ./bitmap.ts and ./wil.ts.
 * - The writelog journal (`Writelog`): see ./writelog.ts.
 *
 * Every class exists twice: backed by the Rust addon (`Native*`) and in TypeScript (`Ts*`),
 * with identical behaviour and on-disk formats. The unprefixed factories pick the addon when it
 * loaded. `SANBOX_FORCE_TS=1` forces the TypeScript twin everywhere (and `fileOps` is null).
 */
import { addon, loadInfo } from './addon.js';
import { crc32cTs } from './crc32c.js';

export interface NativeInfo {
  loaded: boolean;
  forcedTwin: boolean;
  path?: string;
  version?: string;
  reason?: string;
  crcImpl: 'sse4.2' | 'table' | 'ts';
  shaImpl: 'sha-ni' | 'portable' | 'node';
}

/** What `sanbox doctor` reports: whether the addon loaded, from where, or why not. */
export function nativeInfo(): NativeInfo {
  const i: NativeInfo = { loaded: addon !== null, forcedTwin: loadInfo.forcedTwin, crcImpl: addon ? addon.crcImpl() : 'ts', shaImpl: addon ? addon.shaImpl() : 'node' };
  if (loadInfo.path) i.path = loadInfo.path;
  if (loadInfo.version) i.version = loadInfo.version;
  if (loadInfo.reason) i.reason = loadInfo.reason;
  return i;
}

/** Below this size the TypeScript CRC is as fast as crossing into the addon. */
const NATIVE_CRC_MIN = 64;

/** CRC32C of `data`, continuing from `seed` (a previous result; default 0). Unsigned 32-bit. */
export function crc32c(data: Uint8Array, seed = 0): number {
  if (addon && data.length >= NATIVE_CRC_MIN) return addon.crc32c(data, seed);
  return crc32cTs(data, seed);
}
export { crc32cTs };
export { hmacSha256, NativeHmacSha256, TsHmacSha256, HMAC_SHA256_BYTES, HMAC_MAX_PIECES, type HmacSha256 } from './hmac.js';

/** File operations that Node's fs lacks; null when the addon is not loaded. */
export interface FileOps {
  /** fallocate(PUNCH_HOLE|KEEP_SIZE). Throws Error with `.code` ('EOPNOTSUPP', 'EBADF', ...). */
  punchHole(fd: number, offset: number, length: number): void;
  /** lseek(SEEK_DATA): first data byte at or after `offset`; -1 when there is none (ENXIO). */
  seekData(fd: number, offset: number): number;
  /** lseek(SEEK_HOLE): first hole at or after `offset` (EOF counts as a hole); -1 when `offset` is at or past EOF (ENXIO). */
  seekHole(fd: number, offset: number): number;
}

export const fileOps: FileOps | null = addon
  ? {
      punchHole: (fd, offset, length) => addon!.punchHole(fd, offset, length),
      seekData: (fd, offset) => addon!.seekData(fd, offset),
      seekHole: (fd, offset) => addon!.seekHole(fd, offset),
    }
  : null;

export {
  RegionBitmap,
  TsRegionBitmap,
  NativeRegionBitmap,
  BitmapCorruptError,
  parseBitmapImage,
  roundOut,
  saveBitmapFile,
  saveBitmapFileSync,
  loadBitmapFile,
  loadBitmapFileSync,
  MIN_REGION_SIZE,
  MAX_REGION_SIZE,
  BITMAP_HEADER_SIZE,
} from './bitmap.js';
export { WriteIntentLog } from './wil.js';
export {
  Writelog,
  RecordBatch,
  WritelogOverflowError,
  WritelogCorruptError,
  FLAG_ACK_REQUESTED,
  type WritelogOptions,
  type AppendRecord,
  type JournalRecord,
  type WritelogUsage,
  type RecoveryReport,
  type Durability,
} from './writelog.js';
export { TsRing, NativeRing, type Ring, type RingStats } from './ring.js';
