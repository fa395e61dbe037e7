import { CMD, CMD_FLAG, LIMITS, type NbdErrno } from './constants.js';
import { isReadOnly } from './export.js';
import type { Negotiated } from './negotiation.js';

/** Flags each command accepts; anything else on it is EINVAL. Commands absent here are unknown. */
const ALLOWED_FLAGS: ReadonlyMap<number, number> = new Map([
  [CMD.READ, CMD_FLAG.DF],
  [CMD.WRITE, CMD_FLAG.FUA],
  [CMD.DISC, 0],
  [CMD.FLUSH, 0],
  [CMD.TRIM, CMD_FLAG.FUA],
  [CMD.CACHE, 0],
  [CMD.WRITE_ZEROES, CMD_FLAG.FUA | CMD_FLAG.NO_HOLE | CMD_FLAG.FAST_ZERO],
  [CMD.BLOCK_STATUS, CMD_FLAG.REQ_ONE],
]);

export function isWriteLike(type: number): boolean {
  return type === CMD.WRITE || type === CMD.TRIM || type === CMD.WRITE_ZEROES;
}

/** Offset from the two big-endian halves; Infinity when it cannot be a byte position here. */
export function offsetOf(hi: number, lo: number): number {
  return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
}

/**
 * Checks one transmission request against the negotiated session, in the order NBD requires:
 * unknown command or flag, command not advertised, write to a read-only export, range, alignment,
 * size. Returns the errno to reply with, or null when the request may run.
 */
export function validateRequest(n: Negotiated, size: number, type: number, flags: number, offset: number, length: number): NbdErrno | null {
  let allowed = ALLOWED_FLAGS.get(type);
  if (allowed === undefined) return 'EINVAL';
  // With extended headers a WRITE may say outright that its length is a payload length.
  if (n.extended && type === CMD.WRITE) allowed |= CMD_FLAG.PAYLOAD_LEN;
  if ((flags & ~allowed) !== 0) return 'EINVAL';
  const caps = n.export.device.capabilities;
  switch (type) {
    case CMD.DISC:
      return null;
    case CMD.FLUSH:
      return offset === 0 && length === 0 ? null : 'EINVAL';
    case CMD.READ:
      if (flags & CMD_FLAG.DF && !n.structured) return 'EINVAL';
      break;
    case CMD.BLOCK_STATUS:
      if (!n.allocationContext) return 'EINVAL';
      if (length === 0) return 'EINVAL';
      break;
  }
  if (isWriteLike(type)) {
    if (isReadOnly(n.export)) return 'EPERM';
    if (type === CMD.TRIM && !caps.trim) return 'EINVAL';
    if (type === CMD.WRITE_ZEROES && !caps.writeZeroes) return 'EINVAL';
  }
  if (!Number.isSafeInteger(offset) || offset + length > size) {
    return type === CMD.WRITE || type === CMD.WRITE_ZEROES ? 'ENOSPC' : 'EINVAL';
  }
  if (n.enforceBlockSize) {
    const min = n.export.device.blockSize;
    if (offset % min !== 0 || length % min !== 0) return 'EINVAL';
  }
  if ((type === CMD.READ || type === CMD.WRITE) && length > LIMITS.MAX_PAYLOAD) return 'EINVAL';
  return null;
}

/** The message of a refused request (the errno validateRequest chose). */
export function describeRefusal(errno: NbdErrno, type: number, offset: number, length: number): string {
  const what = Object.entries(CMD).find(([, v]) => v === type)?.[0] ?? `command ${type}`;
  switch (errno) {
    case 'EPERM':
      return `${what}: export is read-only`;
    case 'ENOSPC':
    case 'EINVAL':
      return `${what} ${Number.isFinite(offset) ? offset : 'huge offset'}+${length}: invalid request (unsupported command or flags, out of range or misaligned)`;
    default:
      return `${what}: ${errno}`;
  }
}
