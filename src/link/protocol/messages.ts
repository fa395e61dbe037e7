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
  ping: { args: PingArgs; result: PingResult };
}
export type LinkOp = keyof LinkOps;
export const LINK_OPS: readonly LinkOp[] = ['write', 'read-regions', 'mirror-db', 'ping'];

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
    case 'ping': {
      if (typeof args.t !== 'number') bad('t must be a number');
      break;
    }
    default:
      throw new RemoteLinkError('no-handler', `unknown operation ${JSON.stringify(op)}`);
  }
  return args as unknown as LinkOps[K]['args'];
}
