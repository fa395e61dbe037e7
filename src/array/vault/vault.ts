import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { crc32c } from '../../native/index.js';
import { decodeVaultHeader, decodeVaultImage, encodeVaultImage, VaultFormatError, type VaultImage } from './format.js';

export type VaultSlot = 'A' | 'B';
export const VAULT_SLOTS: readonly VaultSlot[] = ['A', 'B'];

export type CopyStatus = 'valid' | 'stale' | 'torn' | 'corrupt' | 'missing';

export interface CopyReport {
  slot: VaultSlot;
  path: string;
  status: CopyStatus;
  /** From the header when it is intact (also for torn copies). */
  generation?: number;
  timestamp?: number;
  bytes: number;
  /** Why the copy is not usable (or 'ok'). */
  reason: string;
}

export interface VaultLoadResult {
  /** The newest valid copy that was not consumed; null when there is none. */
  image: VaultImage | null;
  slot: VaultSlot | null;
  copies: CopyReport[];
  consumedGeneration: number;
  /**
   * A torn or corrupt copy exists whose generation is newer than what was returned (or
   * unknown): a dump was lost or damaged, so data it held is gone (the caller decides which
   * LUNs go "cache dirty").
   */
  newerCopyLost: boolean;
  /** One line for logs and status: which copy is used, and why the others are not. */
  summary: string;
}

export interface DumpOptions {
  /** Hold-up budget: writing stops (leaving a torn copy) once this many ms have passed. */
  deadlineMs: number;
  /** Clock in ms (tests inject one). Default Date.now. */
  clock?: () => number;
  /** Bytes written between deadline checks. Default 64 KiB. */
  chunkBytes?: number;
  /** Awaited after each chunk (emulated vault bandwidth; SP processes use it). */
  throttle?: (bytesWritten: number) => Promise<void>;
}

export interface DumpResult {
  complete: boolean;
  slot: VaultSlot;
  generation: number;
  bytesWritten: number;
  totalBytes: number;
  elapsedMs: number;
}

export class VaultError extends Error {
  constructor(
    message: string,
    readonly copies: CopyReport[] = [],
  ) {
    super(message);
    this.name = 'VaultError';
  }
}

const CONSUMED_MAGIC = 'SNBVCONS';

/**
 * The vault of one SP: a directory holding two copies (`copy-A.vault`, `copy-B.vault`) and the
 * consumed-generation record (`consumed`). See ./index.ts.
 */
export class Vault {
  constructor(
    readonly dir: string,
    readonly sp: string,
  ) {}

  pathOf(slot: VaultSlot): string {
    return join(this.dir, `copy-${slot}.vault`);
  }
  get consumedPath(): string {
    return join(this.dir, 'consumed');
  }

  /** Creates the directory if needed and checks it can be written (vault usability). */
  async ensure(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true });
    await fsp.access(this.dir, fs.constants.W_OK);
  }

  /**
   * Dumps `image` (its generation and timestamp are assigned here) into the copy that does not
   * hold the newest good image, front to back, checking the deadline between chunks. Complete:
   * fsync of the file and the directory. Deadline passed: the copy stays torn (a strict prefix)
   * and the other copy is untouched.
   */
  async dump(image: Omit<VaultImage, 'generation' | 'timestamp' | 'sp'> & { timestamp?: number }, opts: DumpOptions): Promise<DumpResult> {
    const clock = opts.clock ?? Date.now;
    const start = clock();
    await this.ensure();
    const state = await this.scan();
    const consumed = await this.consumedGeneration();
    const known = state.map((c) => c.generation ?? 0);
    const generation = Math.max(consumed, ...known) + 1;
    const slot = pickSlot(state);
    const buf = encodeVaultImage({ ...image, sp: this.sp, generation, timestamp: image.timestamp ?? Date.now() });
    const path = this.pathOf(slot);
    const chunk = Math.max(1, opts.chunkBytes ?? 64 * 1024);
    const fh = await fsp.open(path, 'w', 0o644);
    let written = 0;
    let complete = false;
    try {
      while (written < buf.length) {
        if (clock() - start > opts.deadlineMs) break;
        const n = Math.min(chunk, buf.length - written);
        const { bytesWritten } = await fh.write(buf, written, n, written);
        written += bytesWritten;
        if (opts.throttle) await opts.throttle(written);
      }
      if (written === buf.length && clock() - start <= opts.deadlineMs) {
        await fh.sync();
        complete = true;
      }
    } finally {
      await fh.close();
    }
    if (complete) await fsyncDir(this.dir);
    return { complete, slot, generation, bytesWritten: written, totalBytes: buf.length, elapsedMs: clock() - start };
  }

  /** Reads both copies and returns the newest valid, unconsumed one, with a report on each. */
  async load(): Promise<VaultLoadResult> {
    const consumed = await this.consumedGeneration();
    const copies: CopyReport[] = [];
    let best: { image: VaultImage; slot: VaultSlot } | null = null;
    for (const slot of VAULT_SLOTS) {
      const path = this.pathOf(slot);
      let buf: Buffer;
      try {
        buf = await fsp.readFile(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
          copies.push({ slot, path, status: 'missing', bytes: 0, reason: 'no copy' });
          continue;
        }
        copies.push({ slot, path, status: 'corrupt', bytes: 0, reason: `unreadable: ${(e as Error).message}` });
        continue;
      }
      const report: CopyReport = { slot, path, status: 'corrupt', bytes: buf.length, reason: '' };
      try {
        const h = decodeVaultHeader(buf);
        report.generation = h.generation;
        report.timestamp = h.timestamp;
      } catch {
        // reported below by the full decode
      }
      try {
        const image = decodeVaultImage(buf);
        if (image.sp !== this.sp) {
          report.status = 'corrupt';
          report.reason = `belongs to SP ${image.sp}, not ${this.sp}`;
        } else if (image.generation <= consumed) {
          report.status = 'stale';
          report.reason = `generation ${image.generation} already consumed (consumed up to ${consumed})`;
        } else {
          report.status = 'valid';
          report.reason = 'ok';
          if (!best || image.generation > best.image.generation) best = { image, slot };
        }
      } catch (e) {
        if (!(e instanceof VaultFormatError)) throw e;
        report.status = e.kind;
        report.reason = e.message;
      }
      copies.push(report);
    }
    const bestGen = best?.image.generation ?? consumed;
    const newerCopyLost = copies.some((c) => (c.status === 'torn' || c.status === 'corrupt') && (c.generation === undefined || c.generation > bestGen));
    const parts = copies.map((c) => `${c.slot}: ${c.status}${c.generation !== undefined ? ` gen ${c.generation}` : ''}${c.status === 'valid' ? '' : ` (${c.reason})`}`);
    const summary = (best ? `using copy ${best.slot} gen ${best.image.generation}` : 'no usable copy') + `; ${parts.join('; ')}`;
    return { image: best?.image ?? null, slot: best?.slot ?? null, copies, consumedGeneration: consumed, newerCopyLost, summary };
  }

  /**
   * Like load(), but throws a VaultError naming every copy's problem when no copy is usable
   * although at least one was torn or corrupt (a dump existed and cannot be replayed). Returns
   * null when there is simply nothing to replay (no copies, or all consumed).
   */
  async loadOrThrow(): Promise<VaultImage | null> {
    const r = await this.load();
    if (r.image) return r.image;
    if (r.copies.some((c) => c.status === 'torn' || c.status === 'corrupt')) {
      throw new VaultError(`vault of SP ${this.sp} has no usable copy: ${r.summary}`, r.copies);
    }
    return null;
  }

  /** Highest generation that must never be replayed again (0 when none). */
  async consumedGeneration(): Promise<number> {
    let buf: Buffer;
    try {
      buf = await fsp.readFile(this.consumedPath);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw new VaultError(`vault of SP ${this.sp}: cannot read the consumed record: ${(e as Error).message}`);
    }
    if (buf.length !== 20 || buf.toString('latin1', 0, 8) !== CONSUMED_MAGIC || crc32c(buf.subarray(0, 16)) !== buf.readUInt32LE(16)) {
      // Never guess: replaying a consumed image could overwrite newer data.
      throw new VaultError(`vault of SP ${this.sp}: the consumed record ${this.consumedPath} is corrupt`);
    }
    return Number(buf.readBigUInt64LE(8));
  }

  /**
   * Records that every copy at or below `generation` must never be replayed (after a successful
   * replay, or when the peer superseded it). Atomic: temp file, fsync, rename, fsync of the
   * directory. Never lowers the recorded generation.
   */
  async markConsumed(generation: number): Promise<void> {
    if (!Number.isSafeInteger(generation) || generation < 0) throw new VaultError(`bad generation ${generation}`);
    await this.ensure();
    const cur = await this.consumedGeneration();
    if (generation <= cur) return;
    const buf = Buffer.alloc(20);
    buf.write(CONSUMED_MAGIC, 0, 'latin1');
    buf.writeBigUInt64LE(BigInt(generation), 8);
    buf.writeUInt32LE(crc32c(buf.subarray(0, 16)), 16);
    const tmp = `${this.consumedPath}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o644);
    try {
      await fh.write(buf, 0, buf.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.consumedPath);
    await fsyncDir(this.dir);
  }

  /** Header generations of both copies (undefined when unreadable), for slot choice. */
  private async scan(): Promise<{ slot: VaultSlot; generation?: number; valid: boolean }[]> {
    const out: { slot: VaultSlot; generation?: number; valid: boolean }[] = [];
    for (const slot of VAULT_SLOTS) {
      let buf: Buffer;
      try {
        buf = await fsp.readFile(this.pathOf(slot));
      } catch {
        out.push({ slot, valid: false });
        continue;
      }
      let generation: number | undefined;
      let valid = false;
      try {
        generation = decodeVaultHeader(buf).generation;
        decodeVaultImage(buf);
        valid = true;
      } catch {
        // torn or corrupt: overwrite it first
      }
      out.push(generation === undefined ? { slot, valid } : { slot, generation, valid });
    }
    return out;
  }
}

/** The slot to overwrite: an invalid one (A first), else the one with the older generation. */
function pickSlot(state: { slot: VaultSlot; generation?: number; valid: boolean }[]): VaultSlot {
  const invalid = state.find((s) => !s.valid);
  if (invalid) return invalid.slot;
  const a = state[0]!;
  const b = state[1]!;
  return (a.generation ?? 0) <= (b.generation ?? 0) ? a.slot : b.slot;
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
