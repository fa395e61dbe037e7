import { RemoteLinkError } from './errors.js';

/**
 * The operations carried by the remote link, as the sync data path, resync, verify and the
 * mirror-database propagation need them. Each is a request (JSON args + optional binary) and a
 * reply (JSON result + optional binary).
 *
 * - `write` {mirrorId, imageId, offset, flags} + data  ->  `ack` {mirrorId, imageId, offset, length}
 *   flags.fua: the secondary makes it stable before acking; flags.resync: the write is a resync
 *   copy (not a host write); `epoch` is the sender's primary epoch (the receiver refuses a write
 *   from a stale primary with its own error code, e.g. 'stale-epoch').
 * - `read-regions` {mirrorId, imageId, regionSize, regions: [first, count][]}
 *   -> `region-checksums` {regionSize, checksums: [{region, crc}]} (CRC32C of each region's bytes;
 *   `mirror verify` compares them with the primary's).
 * - `mirror-db` {mirrorId, record} -> {applied, generation}: the primary propagates its mirror
 *   database record (src/replication/state MirrorDbRecord, JSON) to a member array.
 * - `zero` {mirrorId, imageId, offset, length, trim?, epoch?} -> `ack`: the host's TRIM or
 *   WRITE_ZEROES on the primary (or a hole of the primary during a full synchronization); the
 *   range reads as zeroes afterwards on the secondary.
 * - `flush` {mirrorId, imageId, epoch?} -> {}: the host's FLUSH on the primary; the secondary makes
 *   every write it acknowledged stable.
 * - `bitmap` {mirrorId, imageId} -> {regionSize, lunSize, epoch} + the serialized bitmap (native
 *   RegionBitmap image) of the regions the answering array changed that `imageId` may lack: its
 *   write-intent log and that image's fracture log. A new primary asks a returning old primary
 *   for it (partial resync, split-brain detection).
 * - `lun-info` {lun: id or name} -> {id, name, size, blockSize, mirrorId}: what a primary asks
 *   before it adds a LUN of the answering array as a secondary (mirrorId: the mirror that LUN
 *   already belongs to, or null).
 * - `ping` {t} -> {t}: a round trip through the link (the keepalive is separate, PING frames).
 */
export interface WriteFlags {
  fua?: boolean;
  resync?: boolean;
}
export interface WriteArgs {
  mirrorId: string;
  imageId: string;
  offset: number;
  flags?: WriteFlags;
  epoch?: number;
}
export interface AckResult {
  mirrorId: string;
  imageId: string;
  offset: number;
  length: number;
}
export interface ReadRegionsArgs {
  mirrorId: string;
  imageId: string;
  regionSize: number;
  /** runs of regions: [first region index, count] */
  regions: Array<[number, number]>;
}
export interface RegionChecksumsResult {
  regionSize: number;
  checksums: Array<{ region: number; crc: number }>;
}
export interface MirrorDbArgs {
  mirrorId: string;
  /** the mirror database record (JSON); the protocol does not look inside */
  record: Record<string, unknown>;
}
export interface MirrorDbResult {
  applied: boolean;
  generation?: number;
  /** the receiver's own record when it did not apply the sent one because its own is newer */
  record?: Record<string, unknown>;
}
export interface ZeroArgs {
  mirrorId: string;
  imageId: string;
  offset: number;
  length: number;
  trim?: boolean;
  epoch?: number;
}
export interface FlushArgs {
  mirrorId: string;
  imageId: string;
  epoch?: number;
}
export interface LunInfoArgs {
  lun: number | string;
}
export interface LunInfoResult {
  id: number;
  name: string;
  size: number;
  blockSize: number;
  mirrorId: string | null;
}
export interface BitmapArgs {
  mirrorId: string;
  imageId: string;
}
export interface BitmapResult {
  regionSize: number;
  lunSize: number;
  epoch: number;
  /** regions of the bitmap whose writes were acknowledged to hosts (not just in flight) */
  acknowledgedRegions: number;
}
export interface PingArgs {
  t: number;
}
export interface PingResult {
  t: number;
}

export interface LinkOps {
  write: { args: WriteArgs; result: AckResult };
  'read-regions': { args: ReadRegionsArgs; result: RegionChecksumsResult };
  'mirror-db': { args: MirrorDbArgs; result: MirrorDbResult };
  zero: { args: ZeroArgs; result: AckResult };
  flush: { args: FlushArgs; result: Record<string, never> };
  bitmap: { args: BitmapArgs; result: BitmapResult };
  'lun-info': { args: LunInfoArgs; result: LunInfoResult };
  ping: { args: PingArgs; result: PingResult };
}
export type LinkOp = keyof LinkOps;
export const LINK_OPS: readonly LinkOp[] = ['write', 'read-regions', 'mirror-db', 'zero', 'flush', 'bitmap', 'lun-info', 'ping'];

const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Validates a request's args (throws RemoteLinkError 'bad-request'); returns them typed. */
export function validateArgs<K extends LinkOp>(op: K, args: Record<string, unknown>, bin: Buffer): LinkOps[K]['args'] {
  const bad = (why: string): never => {
    throw new RemoteLinkError('bad-request', `${op}: ${why}`);
  };
  switch (op) {
    case 'write': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (!isStr(args.imageId)) bad('imageId must be a non-empty string');
      if (!isUint(args.offset)) bad('offset must be a non-negative integer');
      if (args.flags !== undefined && (typeof args.flags !== 'object' || args.flags === null || Array.isArray(args.flags))) bad('flags must be an object');
      if (args.epoch !== undefined && !isUint(args.epoch)) bad('epoch must be a non-negative integer');
      if (bin.length === 0) bad('no data');
      break;
    }
    case 'read-regions': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (!isStr(args.imageId)) bad('imageId must be a non-empty string');
      if (!isUint(args.regionSize) || args.regionSize === 0) bad('regionSize must be a positive integer');
      if (!Array.isArray(args.regions)) bad('regions must be an array of [first, count]');
      for (const r of args.regions as unknown[]) if (!Array.isArray(r) || r.length !== 2 || !isUint(r[0]) || !isUint(r[1])) bad('regions must be an array of [first, count]');
      break;
    }
    case 'mirror-db': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (typeof args.record !== 'object' || args.record === null || Array.isArray(args.record)) bad('record must be an object');
      break;
    }
    case 'zero': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (!isStr(args.imageId)) bad('imageId must be a non-empty string');
      if (!isUint(args.offset)) bad('offset must be a non-negative integer');
      if (!isUint(args.length) || args.length === 0) bad('length must be a positive integer');
      if (args.trim !== undefined && typeof args.trim !== 'boolean') bad('trim must be a boolean');
      if (args.epoch !== undefined && !isUint(args.epoch)) bad('epoch must be a non-negative integer');
      break;
    }
    case 'flush':
    case 'bitmap': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (!isStr(args.imageId)) bad('imageId must be a non-empty string');
      if (args.epoch !== undefined && !isUint(args.epoch)) bad('epoch must be a non-negative integer');
      break;
    }
    case 'lun-info': {
      if (!isUint(args.lun) && !isStr(args.lun)) bad('lun must be a LUN id or name');
      break;
    }
    case 'ping': {
      if (typeof args.t !== 'number') bad('t must be a number');
      break;
    }
    default:
      throw new RemoteLinkError('no-handler', `unknown operation ${JSON.stringify(op)}`);
  }
  return args as unknown as LinkOps[K]['args'];
}
