/**
 * The metadata store of one array: two copies of one document, each with a generation number
 * and a CRC32, written atomically (temp file, fsync, rename, fsync of the directory) and
 * alternately, so a write torn by a crash or a copy rotted on disk always leaves the other copy
 * valid. Loading picks the valid copy with the highest generation; a bad copy is reported (and
 * kept aside as `<copy>.corrupt` before it is overwritten); two bad copies are a startup error,
 * never a silent reset.
 *
 * On-disk format of each copy (`meta.A`, `meta.B`): one ASCII header line, then the payload.
 *
 *     sanbox-meta v1 gen=<generation> len=<payload bytes> crc32=<8 hex digits>\n
 *     <payload: UTF-8 JSON, exactly len bytes>
 *
 * The CRC32 (zlib polynomial) covers the header up to and excluding ` crc32=...` plus the newline,
 * then the payload: `sanbox-meta v1 gen=<g> len=<l>\n<payload>`. A copy is valid only if the
 * header parses, the file holds exactly `len` payload bytes, the CRC matches and the payload parses
 * as JSON.
 */
import { crc32 } from 'node:zlib';
import { promises as fsp, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { ignoreOnClose } from '../errors/index.js';

export type CopyName = 'A' | 'B';
export const COPY_NAMES: readonly CopyName[] = ['A', 'B'];

const MAGIC = 'sanbox-meta';
const VERSION = 'v1';
const HEADER_RE = /^sanbox-meta v1 gen=(\d{1,15}) len=(\d{1,12}) crc32=([0-9a-f]{8})$/;
/** Refuse to read copies larger than this (a corrupt length must not make us allocate gigabytes). */
export const MAX_METADATA_BYTES = 64 * 1024 * 1024;

export interface CopyState {
  copy: CopyName;
  path: string;
  /** missing: no file; valid: usable; invalid: present but corrupt (see `problem`). */
  state: 'missing' | 'valid' | 'invalid';
  generation?: number;
  problem?: string;
}

export interface LoadResult<T> {
  /** The document of the newest valid copy, or undefined when neither copy exists (a new store). */
  data: T | undefined;
  /** Generation of `data` (0 for a new store). */
  generation: number;
  /** Which copy `data` came from. */
  source?: CopyName;
  copies: CopyState[];
  /** Human-readable problems found (corrupt copies); empty when both copies are fine or missing. */
  problems: string[];
}

export class MetadataError extends Error {
  constructor(
    readonly code: 'metadata-corrupt' | 'metadata-io' | 'metadata-too-large' | 'metadata-not-loaded',
    message: string,
    readonly copies: CopyState[] = [],
  ) {
    super(message);
    this.name = 'MetadataError';
  }
}

/** Serializes one copy; exported for tests and tools. */
export function encodeCopy(generation: number, data: unknown): Buffer {
  if (!Number.isSafeInteger(generation) || generation < 1) throw new RangeError(`bad generation ${generation}`);
  const payload = Buffer.from(JSON.stringify(data, null, 2) + '\n', 'utf8');
  const covered = `${MAGIC} ${VERSION} gen=${generation} len=${payload.length}`;
  const crc = crc32(payload, crc32(covered + '\n'));
  const header = `${covered} crc32=${(crc >>> 0).toString(16).padStart(8, '0')}\n`;
  return Buffer.concat([Buffer.from(header, 'ascii'), payload]);
}

/** Parses one copy; throws an Error whose message says what is wrong. */
export function decodeCopy(buf: Buffer): { generation: number; data: unknown } {
  const nl = buf.indexOf(0x0a);
  if (nl < 0 || nl > 200) throw new Error(buf.length === 0 ? 'empty file' : 'no header line');
  const header = buf.subarray(0, nl).toString('latin1');
  const m = HEADER_RE.exec(header);
  if (!m) throw new Error(`bad header ${JSON.stringify(header.slice(0, 80))}`);
  const generation = Number(m[1]);
  const len = Number(m[2]);
  const want = parseInt(m[3]!, 16);
  const payload = buf.subarray(nl + 1);
  if (payload.length !== len) throw new Error(`payload is ${payload.length} bytes, header says ${len} (torn write?)`);
  const covered = header.slice(0, header.lastIndexOf(' crc32='));
  const got = crc32(payload, crc32(covered + '\n')) >>> 0;
  if (got !== want) throw new Error(`crc32 mismatch: stored ${m[3]}, computed ${got.toString(16).padStart(8, '0')}`);
  if (generation < 1) throw new Error('generation 0');
  let data: unknown;
  try {
    data = JSON.parse(payload.toString('utf8'));
  } catch (e) {
    throw new Error(`payload is not JSON: ${(e as Error).message}`);
  }
  return { generation, data };
}

export interface MetadataStoreOptions {
  /** Base name of the copies: `<dir>/<basename>.A` and `.B`. Default `meta`. */
  basename?: string;
  /** Skip fsync (tests only; never in production paths). */
  noSync?: boolean;
}

/**
 * Two-copy store of one JSON document. `load()` first, then `save()` as often as needed; saves
 * are serialized (each waits for the previous one).
 */
export class MetadataStore<T = unknown> {
  readonly dir: string;
  readonly basename: string;
  private readonly noSync: boolean;
  private loaded = false;
  private generation = 0;
  /** The copy holding the current generation (the next save goes to the other one). */
  private current: CopyName | undefined;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dir: string, opts: MetadataStoreOptions = {}) {
    this.dir = dir;
    this.basename = opts.basename ?? 'meta';
    this.noSync = opts.noSync ?? false;
  }

  pathOf(copy: CopyName): string {
    return join(this.dir, `${this.basename}.${copy}`);
  }

  get currentGeneration(): number {
    return this.generation;
  }

  /** Inspects both copies without changing anything. */
  async inspect(): Promise<{ copies: CopyState[]; docs: Map<CopyName, unknown> }> {
    const copies: CopyState[] = [];
    const docs = new Map<CopyName, unknown>();
    for (const copy of COPY_NAMES) {
      const path = this.pathOf(copy);
      let buf: Buffer;
      try {
        const st = await fsp.stat(path);
        if (st.size > MAX_METADATA_BYTES) {
          copies.push({ copy, path, state: 'invalid', problem: `file is ${st.size} bytes, over the ${MAX_METADATA_BYTES} limit` });
          continue;
        }
        buf = await fsp.readFile(path);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        if (err.code === 'ENOENT') {
          copies.push({ copy, path, state: 'missing' });
          continue;
        }
        throw new MetadataError('metadata-io', `cannot read metadata copy ${path}: ${err.message}`);
      }
      try {
        const { generation, data } = decodeCopy(buf);
        copies.push({ copy, path, state: 'valid', generation });
        docs.set(copy, data);
      } catch (e) {
        copies.push({ copy, path, state: 'invalid', problem: (e as Error).message });
      }
    }
    return { copies, docs };
  }

  /**
   * Loads the newest valid copy. Throws MetadataError('metadata-corrupt') when no copy is valid
   * but at least one exists. Copies that are invalid are reported in `problems`.
   */
  async load(): Promise<LoadResult<T>> {
    const { copies, docs } = await this.inspect();
    const problems = copies
      .filter((c) => c.state === 'invalid')
      .map((c) => `metadata copy ${c.copy} (${c.path}) is invalid: ${c.problem}`);
    const valid = copies.filter((c) => c.state === 'valid').sort((a, b) => b.generation! - a.generation!);
    if (valid.length === 0) {
      if (copies.some((c) => c.state === 'invalid')) {
        throw new MetadataError(
          'metadata-corrupt',
          `no valid metadata copy in ${this.dir}: ${problems.join('; ')}. Refusing to start with empty metadata; ` +
            `restore a copy or move the directory aside.`,
          copies,
        );
      }
      this.loaded = true;
      this.generation = 0;
      this.current = undefined;
      return { data: undefined, generation: 0, copies, problems };
    }
    const best = valid[0]!;
    if (valid.length === 2 && valid[0]!.generation === valid[1]!.generation) {
      // Never written by this store (each save bumps the generation); keep A, report it.
      problems.push(`both metadata copies claim generation ${best.generation}; using ${best.copy}`);
    }
    this.loaded = true;
    this.generation = best.generation!;
    this.current = best.copy;
    return { data: docs.get(best.copy) as T, generation: best.generation!, source: best.copy, copies, problems };
  }

  /**
   * Writes `data` as the next generation into the copy that does not hold the current one.
   * Resolves with the new generation once the copy and its directory entry are durable.
   */
  save(data: T): Promise<number> {
    const run = this.chain.then(() => this.saveNow(data));
    // The chain only orders saves: a failed save rejects `run` for its caller, the next one still runs.
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async saveNow(data: T): Promise<number> {
    if (!this.loaded) throw new MetadataError('metadata-not-loaded', 'load() the metadata store before saving');
    const target: CopyName = this.current === 'A' ? 'B' : 'A';
    const generation = this.generation + 1;
    const buf = encodeCopy(generation, data);
    if (buf.length > MAX_METADATA_BYTES) throw new MetadataError('metadata-too-large', `metadata of ${buf.length} bytes exceeds the limit`);
    const path = this.pathOf(target);
    const tmp = `${path}.tmp`;
    try {
      await this.keepCorrupt(path);
      const fh = await fsp.open(tmp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_TRUNC, 0o644);
      try {
        await fh.writeFile(buf);
        if (!this.noSync) await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, path);
      if (!this.noSync) await syncDir(this.dir);
    } catch (e) {
      // The write error below is the one to report; a tmp file left behind is harmless (load never
      // reads it, the next save truncates it).
      await ignoreOnClose(fsp.rm(tmp, { force: true }), `removing ${tmp} after a failed metadata write`);
      throw new MetadataError('metadata-io', `cannot write metadata copy ${path}: ${(e as Error).message}`);
    }
    this.generation = generation;
    this.current = target;
    return generation;
  }

  /** Before overwriting a copy that is present but invalid, keep it for forensics. */
  private async keepCorrupt(path: string): Promise<void> {
    let buf: Buffer;
    try {
      const st = await fsp.stat(path);
      if (st.size > MAX_METADATA_BYTES) {
        await fsp.rename(path, `${path}.corrupt`);
        return;
      }
      buf = await fsp.readFile(path);
    } catch {
      return; // absent (or unreadable): nothing to keep; the write that follows reports real I/O errors
    }
    try {
      decodeCopy(buf);
    } catch {
      // invalid: keep it for forensics before it is overwritten
      await fsp.writeFile(`${path}.corrupt`, buf);
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, fsc.O_RDONLY);
  try {
    await fh.sync();
  } catch (e) {
    // Some file systems refuse fsync on directories (EINVAL); the rename is still atomic there.
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
  } finally {
    await fh.close();
  }
}
