/**
 * The one I/O interface of sanbox. Every layer of a LUN's stack (backing store, write cache,
 * replication, router) implements it and wraps the layer below, like nbdkit filters or
 * device-mapper targets. Offsets and lengths are bytes; callers have already checked ranges
 * against `size`, but every implementation asserts them again (fail loudly, never wrap around).
 */
export interface WriteOptions {
  /** Force Unit Access: the call resolves only once the data is durable (on disk). */
  fua?: boolean;
  /**
   * A hint: nobody waits on this write soon (a cache destaging), so the device may run it off
   * the event loop even where it would run a small write inline. Changes no semantics.
   */
  background?: boolean;
}

export interface ZeroOptions extends WriteOptions {
  /** The range must end up allocated (written zeroes), not punched. */
  noHole?: boolean;
  /** Fail with ENOTSUP rather than zero slowly (NBD FAST_ZERO). */
  fastZero?: boolean;
}

/** One run of the allocation map, as NBD `base:allocation` reports it. */
export interface Extent {
  length: number;
  /** Unallocated: reads return zeroes and no storage backs the range. */
  hole: boolean;
  /** Reads are known to return zeroes. */
  zero: boolean;
}

export interface DeviceCapabilities {
  trim: boolean;
  writeZeroes: boolean;
  /** writeZeroes can punch (or otherwise zero) without writing data, so FAST_ZERO can succeed. */
  fastZero: boolean;
  /** blockStatus reports real holes (false: everything is reported as data, which is allowed). */
  sparseStatus: boolean;
  /**
   * A flush through any handle makes every completed write durable, and every reader sees every
   * completed write: what NBD CAN_MULTI_CONN promises.
   */
  coherentAcrossHandles: boolean;
}

export interface BlockDevice {
  readonly size: number;
  /** Smallest unit of I/O the device handles without read-modify-write (512 or 4096). */
  readonly blockSize: number;
  readonly readOnly: boolean;
  readonly capabilities: DeviceCapabilities;
  /** Reads `length` bytes; `into` (if given) must be at least `length` long and is filled. */
  read(offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** Writes `data`; the device must not keep a reference to it once the promise settles. */
  write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void>;
  /** Makes every completed write durable. */
  flush(): Promise<void>;
  /** Advisory discard; later reads of the range may return anything until written. */
  trim(offset: number, length: number, opts?: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void>;
  /** Extents covering at least one byte from `offset`, at most up to `offset + length`. */
  blockStatus(offset: number, length: number): Promise<Extent[]>;
  /** Prefetch hint (NBD CACHE). */
  cache(offset: number, length: number): Promise<void>;
  close(): Promise<void>;
}

/** Errno names a BlockDevice may fail with; the NBD layer maps them onto NBD error numbers. */
export type BlockErrno = 'EPERM' | 'EIO' | 'ENOMEM' | 'EINVAL' | 'ENOSPC' | 'EOVERFLOW' | 'ENOTSUP' | 'ESHUTDOWN';

export class BlockError extends Error {
  constructor(
    readonly errno: BlockErrno,
    message: string,
  ) {
    super(`${errno}: ${message}`);
    this.name = 'BlockError';
  }
}

/** Maps any thrown value to an errno; unknown failures are I/O errors. */
export function errnoOf(err: unknown): BlockErrno {
  if (err instanceof BlockError) return err.errno;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'EPERM':
    case 'EACCES':
    case 'EROFS':
      return 'EPERM';
    case 'ENOSPC':
    case 'EDQUOT':
    case 'EFBIG':
      return 'ENOSPC';
    case 'ENOMEM':
      return 'ENOMEM';
    case 'EINVAL':
      return 'EINVAL';
    case 'EOPNOTSUPP':
    case 'ENOTSUP':
      return 'ENOTSUP';
    default:
      return 'EIO';
  }
}

/** Asserts a request lies inside the device; a layer bug, not a client error, if it fails. */
export function assertRange(dev: { size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > dev.size) {
    throw new BlockError('EINVAL', `range ${offset}+${length} outside device of ${dev.size} bytes`);
  }
}
