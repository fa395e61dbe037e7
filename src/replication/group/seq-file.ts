import { promises as fsp, writeSync } from 'node:fs';
import { crc32c } from '../../native/index.js';
import { writeU64 } from '../../native/ring.js';
import { SerialQueue } from '../../serial/index.js';

/**
 * One durable number (a receiver's next expected sequence): two 32-byte slots written
 * alternately, each {magic, generation, value, CRC32C}; the valid slot with the higher generation
 * wins, so a torn write leaves the previous value. One pwrite + fdatasync per `set`, which is
 * what a batch acknowledgement costs on the receiver.
 */
const MAGIC = 0x51455358; // "XSEQ"
const SLOT = 32;

export class SeqFile {
  private gen: number;
  private readonly writing = new SerialQueue();
  /** the slot `note` writes (synchronously: one buffer serves every note) */
  private readonly noteSlot = Buffer.alloc(SLOT);
  /** its checksummed head, made once: `note` runs for every applied record and allocates nothing */
  private readonly noteHead = this.noteSlot.subarray(0, 24);

  private constructor(
    private readonly fh: fsp.FileHandle,
    private value: number,
    gen: number,
    private readonly sync: boolean,
  ) {
    this.gen = gen;
  }

  static async open(path: string, initial: number, opts: { sync?: boolean } = {}): Promise<SeqFile> {
    let buf: Buffer | null = null;
    try {
      buf = await fsp.readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    let best: { gen: number; value: number } | null = null;
    for (let s = 0; buf && s < 2; s++) {
      const b = buf.subarray(s * SLOT, (s + 1) * SLOT);
      if (b.length < SLOT || b.readUInt32LE(0) !== MAGIC) continue;
      if (crc32c(b.subarray(0, 24)) !== b.readUInt32LE(24)) continue;
      const gen = Number(b.readBigUInt64LE(8));
      const value = Number(b.readBigUInt64LE(16));
      if (!best || gen > best.gen) best = { gen, value };
    }
    if (buf && !best) throw new Error(`${path}: no valid copy of the sequence number (both slots torn or corrupt)`);
    const fh = await fsp.open(path, buf ? 'r+' : 'w+', 0o644);
    const f = new SeqFile(fh, best?.value ?? initial, best?.gen ?? 0, opts.sync !== false);
    if (!best) {
      await f.set(initial);
      await f.set(initial);
    }
    return f;
  }

  get(): number {
    return this.value;
  }

  /** The next generation's slot for `value`, in `b` (a new buffer by default); `head` is its checksummed first 24 bytes. */
  private slot(value: number, b = Buffer.alloc(SLOT), head = b.subarray(0, 24)): Buffer {
    this.gen++;
    b.writeUInt32LE(MAGIC, 0);
    writeU64(b, this.gen, 8);
    writeU64(b, value, 16);
    b.writeUInt32LE(crc32c(head), 24);
    return b;
  }

  /**
   * Writes `value` to the file now, without fdatasync (one small pwrite on this thread): it
   * survives a crash of this process, and the next `set` makes it durable.
   */
  note(value: number): void {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`sequence number ${value}`);
    const b = this.slot(value, this.noteSlot, this.noteHead);
    writeSync(this.fh.fd, b, 0, SLOT, (this.gen % 2) * SLOT);
    this.value = value;
  }

  /** Stores `value` durably (writes are serialized). */
  set(value: number): Promise<void> {
    if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`sequence number ${value}`);
    return this.writing.run(async () => {
      const b = this.slot(value);
      await this.fh.write(b, 0, SLOT, (this.gen % 2) * SLOT);
      if (this.sync) await this.fh.datasync();
      this.value = value;
    });
  }

  async close(): Promise<void> {
    await this.writing.drained();
    await this.fh.close();
  }
}
