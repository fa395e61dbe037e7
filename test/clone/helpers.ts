// Shared harness of the clone tests: a source image with data, zeroes and holes, a clone image,
// the clone's copy (copied map, CloneCopy, CloneLayer, background copier) over real files, a
// byte model of what the clone must read, and a range lock so that concurrent test operations
// on overlapping ranges never race (every expected answer is exact).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackingStore, type BlockDevice } from '../../src/block/index.js';
import { BackgroundCopier, CloneCopy, CloneLayer, CopiedMap, type CloneView, type CopyProgress } from '../../src/clone/index.js';
import type { Random } from '../support/random.js';
import { startArray, type RunningArray } from '../../src/control/service.js';
import { ApiClient } from '../../src/control/index.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const SECTOR = 512;

/** A temp root for one test file, removed by `cleanup()`. */
export function tempRoot(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Fills an image: random data, zero-filled data and holes in 64 KiB pieces; returns its bytes. */
export async function fillSource(dev: BlockDevice, rnd: Random): Promise<Buffer> {
  const data = Buffer.alloc(dev.size);
  const piece = 64 * KiB;
  for (let off = 0; off < dev.size; off += piece) {
    const len = Math.min(piece, dev.size - off);
    const kind = Math.floor(rnd() * 3);
    if (kind === 0) continue; // a hole
    if (kind === 1) {
      await dev.write(off, Buffer.alloc(len)); // zeroes written as data
      continue;
    }
    for (let i = 0; i < len; i += 4) data.writeUInt32LE(Math.floor(rnd() * 0x100000000), off + i);
    await dev.write(off, data.subarray(off, off + len));
  }
  return data;
}

/** What the clone must read: the source's bytes with the clone's own changes; trimmed sectors are unknown. */
export class CloneModel {
  readonly bytes: Buffer;
  /** One flag per sector: 1 = the bytes are known. */
  readonly known: Uint8Array;

  constructor(source: Buffer) {
    this.bytes = Buffer.from(source);
    this.known = new Uint8Array(Math.ceil(source.length / SECTOR)).fill(1);
  }
  write(offset: number, data: Buffer): void {
    data.copy(this.bytes, offset);
    this.known.fill(1, offset / SECTOR, (offset + data.length) / SECTOR);
  }
  zero(offset: number, length: number): void {
    this.bytes.fill(0, offset, offset + length);
    this.known.fill(1, offset / SECTOR, (offset + length) / SECTOR);
  }
  trim(offset: number, length: number): void {
    this.known.fill(0, offset / SECTOR, (offset + length) / SECTOR);
  }
  /** The first sector of [offset, offset+got.length) that is known and differs, or -1. */
  mismatch(offset: number, got: Buffer): number {
    for (let s = 0; s < got.length / SECTOR; s++) {
      const at = offset + s * SECTOR;
      if (!this.known[at / SECTOR]) continue;
      if (!got.subarray(s * SECTOR, (s + 1) * SECTOR).equals(this.bytes.subarray(at, at + SECTOR))) return at;
    }
    return -1;
  }
}

/** Concurrent operations on overlapping ranges wait for each other (the model stays exact). */
export class RangeLock {
  private readonly held: Array<{ start: number; end: number; done: Promise<void> }> = [];
  async run<T>(offset: number, length: number, fn: () => Promise<T>): Promise<T> {
    const end = offset + Math.max(length, 1);
    for (;;) {
      const busy = this.held.find((h) => h.start < end && offset < h.end);
      if (!busy) break;
      await busy.done;
    }
    let release!: () => void;
    const entry = { start: offset, end, done: new Promise<void>((r) => (release = r)) };
    this.held.push(entry);
    try {
      return await fn();
    } finally {
      this.held.splice(this.held.indexOf(entry), 1);
      release();
    }
  }
}

/** A clone of `source` into the image at `dir/clone.img`, with its map at `dir/clone.copied`. */
export class CopyRig {
  copy!: CloneCopy;
  layer!: BlockDevice;
  copier!: BackgroundCopier;
  readonly progress: CopyProgress[] = [];

  private constructor(
    readonly dir: string,
    readonly source: FileBackingStore,
    readonly target: FileBackingStore,
    readonly regionSize: number,
  ) {}

  static async create(dir: string, source: FileBackingStore, regionSize: number): Promise<CopyRig> {
    const path = join(dir, 'clone.img');
    await FileBackingStore.create(path, source.size);
    const target = await FileBackingStore.open(path, { blockSize: 512 });
    const r = new CopyRig(dir, source, target, regionSize);
    r.attach(await CopiedMap.create(r.mapPath, source.size, regionSize, target));
    return r;
  }

  get mapPath(): string {
    return join(this.dir, 'clone.copied');
  }

  private attach(map: CopiedMap): void {
    this.copy = new CloneCopy('c1', this.source, this.target, map, this.source.size);
    const copy = this.copy;
    this.layer = new CloneLayer({ copyOf: () => copy, creating: () => undefined }, 0, this.target);
    this.copier = new BackgroundCopier(copy, 1, (p) => this.progress.push(p));
  }

  /**
   * As after a crash: the map file as it is at this instant (what was not committed is lost; a
   * stopping copier's last commit is undone), a new copy and layer over the same images.
   */
  async restart(): Promise<void> {
    const atCrash = readFileSync(this.mapPath);
    await this.copier.stop();
    writeFileSync(this.mapPath, atCrash);
    this.attach(await CopiedMap.load(this.mapPath, this.source.size, this.regionSize, this.target));
  }

  async close(): Promise<void> {
    await this.copier.stop();
    await this.source.close();
    await this.target.close();
  }
}

// ---- a single-process array in this process (the array service, its API on a free port) ----


export async function startCloneArray(dir: string, luns: Array<{ name: string; size: number }>, opts: { readOnly?: boolean } = {}): Promise<{ run: RunningArray; api: ApiClient }> {
  const run = await startArray({ name: 'alpha', dir, nbd: { bind: '127.0.0.1', port: 0 }, api: { bind: '127.0.0.1', port: 0 }, luns, sync: false, ...(opts.readOnly ? { readOnly: true } : {}) });
  return { run, api: new ApiClient({ url: run.apiUrl! }) };
}

/** A LUN (or LUN@SNAP) as a host sees it: the device its NBD sessions use. */
export function hostDevice(run: RunningArray, name: string): BlockDevice {
  const lun = run.array.catalog().lookup(name);
  if (lun) return lun.device;
  const snap = run.snapshots?.device(name);
  if (!snap) throw new Error(`no export ${name}`);
  return snap.device;
}

/** Polls the clone until `state` (or throws after `ms`). */
export async function waitClone(api: ApiClient, name: string, state: CloneView['state'], ms = 30_000): Promise<CloneView> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = (await api.getClone<CloneView>(name)).clone;
    if (v.state === state) return v;
    if (Date.now() > deadline) throw new Error(`clone ${name} is ${v.state} (${v.percent}%), not ${state}, after ${ms} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
