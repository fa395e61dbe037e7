import { checkApplyBatch } from './apply-batch.js';
import { RemoteLinkError } from './errors.js';

/**
 * The operations carried by the remote link, as the sync data path, resync, verify and the
 * mirror-database propagation need them. Each is a request (JSON args + optional binary) and a
 * reply (JSON result + optional binary).
 *
 * - `write` {mirrorId, imageId, offset, flags} + data  ->  `ack` {mirrorId, imageId, offset, length}
 *   flags.fua: the secondary makes it stable before acking; flags.resync: the write is a resync
 *   copy (not a host write); `epoch` is the sender's primary epoch (the receiver refuses a write
 *   from a stale primary with its own error code, e.g. 'stale-epoch'). `extents` [offset, length][]
 *   (a checksum resync's scattered pieces, sent only to a secondary whose `read-regions` answer
 *   said `scatterWrites`): the data is their bytes concatenated, each written at its offset.
 * - `read-regions` {mirrorId, imageId, regionSize, regions: [first, count][]}
 *   -> `region-checksums` {regionSize, checksums: [{region, crc}]} (CRC32C of each region's bytes;
 *   `mirror verify` compares them with the primary's). With `ranges` [offset, length][] and
 *   `chunkSize` (a checksum resync, src/replication/mirror/resync-csum.ts): each range is cut into
 *   pieces of `chunkSize` from its start (the last one short) and the answer's binary holds the
 *   `hash` (`sha256-128`: SHA-256 truncated to 16 bytes) of every piece, in order; `checksums`
 *   is empty and `regions` must be too.
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
 * - `group-db` {groupId, record} -> {applied, generation}: the primary propagates a consistency
 *   group's record (src/replication/group GroupRecord) to a member array.
 * - `group-hello` {groupId, members: [mirrorId], base?} -> {nextExpected}: a group's sender
 *   (re)starts; the receiver checks the member mapping and answers the next sequence it expects.
 *   `base` (after a resynchronization that replaced the journal) sets it.
 * - `apply` {groupId, records: [[seq, member, offset, length, flags, timestamp]]} + the data of
 *   the write records concatenated -> {appliedThrough}: a batch of writelog records in global
 *   order; the receiver applies them in order, makes them stable and answers once (batched ack).
 * - `read` {mirrorId, imageId, offset, length} -> {} + the bytes: a backfresh reads the
 *   secondary image (at most 16 MiB per request).
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
  /** scattered pieces: the data is their bytes in this order (offset is the first one's) */
  extents?: Array<[number, number]>;
}
/** At most this many extents per scattered write. */
export const WRITE_EXTENTS_MAX = 4096;
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
  /** byte ranges [offset, length] to hash piece by piece (a checksum resync; `regions` empty) */
  ranges?: Array<[number, number]>;
  /** with `ranges`: the piece size (a power of two, at least 4096) */
  chunkSize?: number;
  /** with `ranges`: the hash (only `sha256-128` so far) */
  hash?: string;
}
export interface RegionChecksumsResult {
  regionSize: number;
  checksums: Array<{ region: number; crc: number }>;
  /** with `ranges`: the hash used and how many pieces the binary holds (hash bytes each) */
  hash?: string;
  pieces?: number;
  /** the answering array takes `write` with `extents` */
  scatterWrites?: boolean;
}
/** The hashes a checksum resync asks for (read-regions with ranges). */
export const RANGE_HASHES = ['sha256-128'] as const;
/** At most this many bytes hashed per read-regions request with ranges. */
export const RANGE_HASH_MAX_BYTES = 64 * 1024 * 1024;
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
  /** the receiver takes `write` with `extents` (an older array does not say) */
  scatterWrites?: boolean;
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
export interface GroupDbArgs {
  groupId: string;
  record: Record<string, unknown>;
}
export interface GroupDbResult {
  applied: boolean;
  generation?: number;
}
export interface GroupHelloArgs {
  groupId: string;
  members: string[];
  base?: number;
}
export interface GroupHelloResult {
  nextExpected: number;
}
/** The payload is `count` writelog records as the journal holds them (./apply-batch.ts). */
export interface ApplyArgs {
  groupId: string;
  count: number;
}
export interface ApplyResult {
  appliedThrough: number;
}
export interface ReadArgs {
  mirrorId: string;
  imageId: string;
  offset: number;
  length: number;
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
  'group-db': { args: GroupDbArgs; result: GroupDbResult };
  'group-hello': { args: GroupHelloArgs; result: GroupHelloResult };
  apply: { args: ApplyArgs; result: ApplyResult };
  read: { args: ReadArgs; result: Record<string, never> };
  ping: { args: PingArgs; result: PingResult };
}
export type LinkOp = keyof LinkOps;
export const LINK_OPS: readonly LinkOp[] = ['write', 'read-regions', 'mirror-db', 'zero', 'flush', 'bitmap', 'lun-info', 'group-db', 'group-hello', 'apply', 'read', 'ping'];

export { APPLY_FLAG_TRIM, APPLY_FLAG_ZERO } from './apply-batch.js';

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
      if (args.extents !== undefined) {
        if (!Array.isArray(args.extents) || args.extents.length === 0 || args.extents.length > WRITE_EXTENTS_MAX) bad(`extents must be 1 .. ${WRITE_EXTENTS_MAX} [offset, length]`);
        let sum = 0;
        let end = 0;
        for (const x of args.extents as unknown[]) {
          if (!Array.isArray(x) || x.length !== 2 || !isUint(x[0]) || !isUint(x[1]) || x[1] === 0) bad('extents must be [offset, length > 0]');
          const [o, l] = x as number[];
          if (o! < end) bad('extents must be in increasing offset order, without overlaps');
          end = o! + l!;
          sum += l!;
        }
        if (sum !== bin.length) bad(`the extents announce ${sum} bytes, ${bin.length} came`);
      }
      break;
    }
    case 'read-regions': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (!isStr(args.imageId)) bad('imageId must be a non-empty string');
      if (!isUint(args.regionSize) || args.regionSize === 0) bad('regionSize must be a positive integer');
      if (!Array.isArray(args.regions)) bad('regions must be an array of [first, count]');
      for (const r of args.regions as unknown[]) if (!Array.isArray(r) || r.length !== 2 || !isUint(r[0]) || !isUint(r[1])) bad('regions must be an array of [first, count]');
      if (args.ranges !== undefined) {
        if (!Array.isArray(args.ranges) || (args.regions as unknown[]).length) bad('ranges must be an array of [offset, length], with no regions');
        let bytes = 0;
        for (const r of args.ranges as unknown[]) {
          if (!Array.isArray(r) || r.length !== 2 || !isUint(r[0]) || !isUint(r[1]) || r[1] === 0) bad('ranges must be an array of [offset, length > 0]');
          bytes += (r as number[])[1]!;
        }
        if (bytes > RANGE_HASH_MAX_BYTES) bad(`at most ${RANGE_HASH_MAX_BYTES} bytes hashed per request`);
        const cs = args.chunkSize as number;
        if (!isUint(cs) || cs < 4096 || cs > RANGE_HASH_MAX_BYTES || (cs & (cs - 1)) !== 0) bad('chunkSize must be a power of two of at least 4096');
        if (!(RANGE_HASHES as readonly unknown[]).includes(args.hash)) bad(`hash must be one of ${RANGE_HASHES.join(', ')}`);
      }
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
    case 'read': {
      if (!isStr(args.mirrorId)) bad('mirrorId must be a non-empty string');
      if (!isStr(args.imageId)) bad('imageId must be a non-empty string');
      if (!isUint(args.offset)) bad('offset must be a non-negative integer');
      if (!isUint(args.length) || args.length === 0 || (args.length as number) > 16 * 1024 * 1024) bad('length must be 1 .. 16 MiB');
      break;
    }
    case 'lun-info': {
      if (!isUint(args.lun) && !isStr(args.lun)) bad('lun must be a LUN id or name');
      break;
    }
    case 'group-db': {
      if (!isStr(args.groupId)) bad('groupId must be a non-empty string');
      if (typeof args.record !== 'object' || args.record === null || Array.isArray(args.record)) bad('record must be an object');
      break;
    }
    case 'group-hello': {
      if (!isStr(args.groupId)) bad('groupId must be a non-empty string');
      if (!Array.isArray(args.members) || args.members.length === 0 || !args.members.every(isStr)) bad('members must be a list of mirror ids');
      if (args.base !== undefined && (!isUint(args.base) || args.base === 0)) bad('base must be a positive integer');
      break;
    }
    case 'apply': {
      if (!isStr(args.groupId)) bad('groupId must be a non-empty string');
      if (!isUint(args.count) || args.count === 0) bad('count must be a positive integer');
      checkApplyBatch(bin, args.count as number);
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
