import * as fs from 'node:fs';
import { promisify } from 'node:util';
import { ignoreOnClose } from '../errors/index.js';
import { backgroundWrite } from './background-writer.js';
import { fileOps } from '../native/index.js';
import {
  assertRange,
  BlockError,
  type BlockDevice,
  type DeviceCapabilities,
  type Extent,
  type WriteOptions,
  type ZeroOptions,
} from './device.js';

const fdatasync = promisify(fs.fdatasync);
const pwrite = promisify(fs.write);
const pread = promisify(fs.read);

/**
 * Requests at least this large go through the thread pool, where the copy runs on another core
 * while the event loop keeps receiving. Smaller ones are cheaper done inline: the hop (a futex
 * wake of a pool thread, an eventfd write back, about five futex calls per request measured with
 * strace) cost as much as copying 1 MiB into the page cache, and NBD's 1 MiB sequential writes at
 * QD4 went from 0.90x to 1.15x nbdkit's when they stopped taking it.
 */
const OFFLOAD_BYTES = 2 * 1024 * 1024;
/**
 * Reads at least this large go through the thread pool whatever OFFLOAD_BYTES says: a read of
 * data not in the page cache waits for the disk, and done inline it stops the event loop for that
 * long (a secondary's resync protection, reading 1 MiB of old data per resync chunk, spent 4 s of
 * a 16 s resync in readSync, every other request of the array waiting behind it).
 */
const OFFLOAD_READ_BYTES = 128 * 1024;
const ftruncate = promisify(fs.ftruncate);
const fsClose = promisify(fs.close);

/** What a request done synchronously returns: one settled promise, shared. */
const SETTLED: Promise<void> = Promise.resolve();

/** Largest chunk written when zeroes must be written as data (no hole punching). */
const ZERO_CHUNK = 1 << 20;
let zeroChunk: Buffer | undefined;

/**
 * The bottom of every LUN's stack: a sparse image file.
 *
 * Reads and writes are synchronous pread/pwrite on the event loop: on a page-cached file they
 * cost microseconds, while a libuv thread-pool hop costs tens (docs/architecture.md, performance facts).
 * Writes marked `background` (a cache destaging) go to one writer thread in batches instead
 * (./background-writer.ts): nobody waits on them, and the event loop stays free for hosts.
 * fdatasync, which can take milliseconds, goes to the thread pool, and concurrent callers share
 * one in-flight sync when it started after their write completed (group commit).
 *
 * Holes: trim and write-zeroes punch holes through the native addon (fallocate), and block
 * status reads the file's own allocation with SEEK_DATA/SEEK_HOLE, so what qemu-img map shows
 * is what the file system holds. Without the addon, trim is a no-op, write-zeroes writes zeroes
 * and block status reports everything as data (allowed by NBD: "data" means "may hold data").
 */
export class FileBackingStore implements BlockDevice {
  readonly capabilities: DeviceCapabilities;
  private closed = false;
  /** Sync in flight, and whether another must follow because writes completed after it began. */
  private syncing: Promise<void> | null = null;
  private syncAgain: Promise<void> | null = null;
  /** Background writes in flight, and who waits for there to be none. */
  private backgroundWrites = 0;
  private readonly backgroundIdle: (() => void)[] = [];

  private constructor(
    readonly path: string,
    private readonly fd: number,
    public size: number,
    readonly blockSize: number,
    readonly readOnly: boolean,
  ) {
    const sparse = fileOps !== null;
    this.capabilities = {
      trim: !readOnly,
      writeZeroes: !readOnly,
      fastZero: sparse && !readOnly,
      sparseStatus: sparse,
      coherentAcrossHandles: true, // one fd per LUN, shared by every connection: page cache is common
    };
  }

  /**
   * Creates a new sparse image of `size` bytes; fails if the file exists. A failure after the
   * file was made (a size the file system cannot hold: EFBIG) removes it again: a failed create
   * leaves no file behind.
   */
  static async create(path: string, size: number): Promise<void> {
    if (!Number.isSafeInteger(size) || size <= 0 || size % 512 !== 0) {
      throw new BlockError('EINVAL', `image size ${size} must be a positive multiple of 512`);
    }
    const fh = await fs.promises.open(path, 'wx', 0o644);
    try {
      await fh.truncate(size);
      await fh.sync();
    } catch (e) {
      await ignoreOnClose(fh.close(), 'undoing a failed image create: closing the new file (its own error is the one reported)');
      await fs.promises.rm(path, { force: true });
      throw e;
    }
    await fh.close();
  }

  static async open(path: string, opts: { readOnly?: boolean; blockSize?: number } = {}): Promise<FileBackingStore> {
    const readOnly = opts.readOnly ?? false;
    const blockSize = opts.blockSize ?? 512;
    if (blockSize !== 512 && blockSize !== 4096) throw new BlockError('EINVAL', `block size ${blockSize} must be 512 or 4096`);
    const fd = fs.openSync(path, readOnly ? 'r' : 'r+');
    const size = fs.fstatSync(fd).size;
    if (size % blockSize !== 0) {
      fs.closeSync(fd);
      throw new BlockError('EINVAL', `${path}: size ${size} is not a multiple of the block size ${blockSize}`);
    }
    return new FileBackingStore(path, fd, size, blockSize, readOnly);
  }

  async grow(newSize: number): Promise<void> {
    this.assertOpen();
    if (this.readOnly) throw new BlockError('EPERM', 'read-only image');
    if (!Number.isSafeInteger(newSize) || newSize <= this.size || newSize % this.blockSize !== 0) {
      throw new BlockError('EINVAL', `new size ${newSize} must be larger than ${this.size} and a multiple of ${this.blockSize}`);
    }
    await ftruncate(this.fd, newSize);
    await fdatasync(this.fd);
    this.size = newSize;
  }

  async read(offset: number, length: number, into?: Buffer): Promise<Buffer> {
    if (length < OFFLOAD_READ_BYTES) return this.readSync(offset, length, into);
    this.assertOpen();
    assertRange(this, offset, length);
    const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await pread(this.fd, buf, done, length - done, offset + done);
      if (bytesRead === 0) throw new BlockError('EIO', `${this.path}: short read at ${offset + done}`);
      done += bytesRead;
    }
    return buf;
  }

  /** Synchronous read for callers on the hot path that want to skip the promise. */
  readSync(offset: number, length: number, into?: Buffer): Buffer {
    this.assertOpen();
    assertRange(this, offset, length);
    const buf = into ? into.subarray(0, length) : Buffer.allocUnsafe(length);
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, done, length - done, offset + done);
      if (n === 0) {
        // Past EOF of a file that shrank under us: the image is damaged, not "zeroes".
        throw new BlockError('EIO', `${this.path}: short read at ${offset + done}`);
      }
      done += n;
    }
    return buf;
  }

  write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (data.length < OFFLOAD_BYTES && opts?.background !== true && opts?.fua !== true) {
      // The common small write: done before we return, so its promise is one already settled
      // (try/catch here, not promised(): a closure per write is an allocation per write).
      try {
        this.writeSync(offset, data);
      } catch (e) {
        return Promise.reject(e);
      }
      return SETTLED;
    }
    return this.writeAsync(offset, data, opts);
  }

  private async writeAsync(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    if (opts?.background === true) {
      await this.writeInBackground(offset, data);
    } else if (data.length < OFFLOAD_BYTES) {
      this.writeSync(offset, data);
    } else {
      this.assertWritable();
      assertRange(this, offset, data.length);
      let done = 0;
      while (done < data.length) done += (await pwrite(this.fd, data, done, data.length - done, offset + done)).bytesWritten;
    }
    if (opts?.fua) await this.flush();
  }

  /** On the background writer thread (./background-writer.ts); close() waits for these. */
  private async writeInBackground(offset: number, data: Buffer): Promise<void> {
    this.assertWritable();
    assertRange(this, offset, data.length);
    this.backgroundWrites++;
    try {
      await backgroundWrite(this.fd, offset, data);
    } finally {
      if (--this.backgroundWrites === 0) for (const w of this.backgroundIdle.splice(0)) w();
    }
  }

  writeSync(offset: number, data: Buffer): void {
    this.assertWritable();
    assertRange(this, offset, data.length);
    let done = 0;
    while (done < data.length) done += fs.writeSync(this.fd, data, done, data.length - done, offset + done);
  }

  flush(): Promise<void> {
    this.assertOpen();
    if (this.readOnly) return Promise.resolve();
    // A sync already running may have started before the caller's write completed, so the
    // caller needs the next one; every caller arriving meanwhile shares that next one.
    if (!this.syncing) {
      this.syncing = fdatasync(this.fd).finally(() => {
        this.syncing = null;
      });
      return this.syncing;
    }
    if (!this.syncAgain) {
      this.syncAgain = this.syncing.then(
        () => this.startQueuedSync(),
        () => this.startQueuedSync(),
      );
    }
    return this.syncAgain;
  }

  private startQueuedSync(): Promise<void> {
    this.syncAgain = null;
    return this.flush();
  }

  async trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    this.assertWritable();
    assertRange(this, offset, length);
    if (length === 0 || !fileOps) return;
    this.punch(offset, length);
    if (opts?.fua) await this.flush();
  }

  async writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    this.assertWritable();
    assertRange(this, offset, length);
    if (length === 0) return;
    if (!opts?.noHole && fileOps) {
      this.punch(offset, length);
    } else if (opts?.fastZero) {
      // Writing zeroes as data is exactly the slow path FAST_ZERO asks us not to take.
      throw new BlockError('ENOTSUP', 'zeroing would write data');
    } else {
      zeroChunk ??= Buffer.alloc(ZERO_CHUNK);
      for (let done = 0; done < length; ) {
        const n = Math.min(ZERO_CHUNK, length - done);
        this.writeSync(offset + done, zeroChunk.subarray(0, n));
        done += n;
      }
    }
    if (opts?.fua) await this.flush();
  }

  private punch(offset: number, length: number): void {
    try {
      fileOps!.punchHole(this.fd, offset, length);
    } catch (err) {
      throw new BlockError('EIO', `punch hole ${offset}+${length} in ${this.path}: ${(err as Error).message}`);
    }
  }

  async blockStatus(offset: number, length: number): Promise<Extent[]> {
    this.assertOpen();
    assertRange(this, offset, length);
    const end = offset + length;
    if (!fileOps) return [{ length, hole: false, zero: false }];
    const extents: Extent[] = [];
    let pos = offset;
    // Bounded walk: enough extents for any client, and a request never turns into a full scan.
    while (pos < end && extents.length < 1024) {
      let data = fileOps.seekData(this.fd, pos);
      if (data < 0 || data > end) data = end;
      if (data > pos) {
        extents.push({ length: data - pos, hole: true, zero: true });
        pos = data;
        continue;
      }
      let hole = fileOps.seekHole(this.fd, pos);
      if (hole < 0 || hole > end) hole = end;
      if (hole <= pos) throw new BlockError('EIO', `SEEK_HOLE went backwards at ${pos} in ${this.path}`);
      extents.push({ length: hole - pos, hole: false, zero: false });
      pos = hole;
    }
    return extents;
  }

  async cache(offset: number, length: number): Promise<void> {
    this.assertOpen();
    assertRange(this, offset, length);
    // Reads of a page-cached image cost no more than the hint; nothing to prefetch.
  }

  async close(): Promise<void> {
    if (this.closed) return;
    // The fd must outlive every write the background thread may still make with it.
    while (this.backgroundWrites > 0) await new Promise<void>((r) => this.backgroundIdle.push(r));
    if (!this.readOnly) await this.flush();
    this.closed = true;
    await fsClose(this.fd);
  }

  private assertOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `${this.path} is closed`);
  }

  private assertWritable(): void {
    this.assertOpen();
    if (this.readOnly) throw new BlockError('EPERM', `${this.path} is read-only`);
  }
}
