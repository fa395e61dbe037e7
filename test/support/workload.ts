// Shared pieces of the crash tests: a child-process array, seeded block contents, and dependent writers
// whose result can be checked for prefix consistency.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NbdClient } from './ledger/nbd-client.mjs';
import { xorshift32 } from './random.js';
import { killProcess } from './launch.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const BLOCK = 4096;


/** Block content of write k: a header and bytes that depend on (run, k) only. */
export function blockOf(run: number, k: number, lun: number): Buffer {
  const b = Buffer.allocUnsafe(BLOCK);
  b.write('PFX1', 0, 'latin1');
  b.writeUInt32LE(run, 4);
  b.writeUInt32LE(k, 8);
  b.writeUInt32LE(lun, 12);
  const r = xorshift32(run * 7919 + k);
  for (let i = 16; i < BLOCK; i += 4) b.writeUInt32LE((r() * 4294967296) >>> 0, i);
  return b;
}

/** `node array-child.mjs CONFIG [SETUP]`; resolves when it printed its endpoints. */
export async function startChild(cfgPath: string, setupPath?: string): Promise<{ proc: ChildProcess; nbdPort: number; apiUrl?: string }> {
  const proc = spawn(process.execPath, [join(HERE, 'array-child.mjs'), cfgPath, ...(setupPath ? [setupPath] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const line = await new Promise<string>((res, rej) => {
    let out = '';
    const t = setTimeout(() => rej(new Error(`array child not ready: ${err}`)), 30_000);
    proc.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('\n')) {
        clearTimeout(t);
        res(out.split('\n')[0]!);
      }
    });
    proc.once('exit', (c) => rej(new Error(`array child exited ${c}: ${err}`)));
  });
  const j = JSON.parse(line) as { nbdPort: number; apiUrl?: string };
  return { proc, nbdPort: j.nbdPort, apiUrl: j.apiUrl };
}

/** SIGKILL (a crash), resolved once the child has exited. */
export const kill = (proc: ChildProcess): Promise<void> => killProcess(proc);

interface Write {
  k: number;
  lun: number;
  block: number;
  ackedAt: number | null;
  /** how many writes were acknowledged when this one was issued */
  dependsOn: number;
}

/**
 * Writers on LUNs disk0..disk{luns-1} of an array, one NBD connection each, `depth` writes in
 * flight, every write to a block never written before in this run.
 */
export class DependentWriters {
  readonly writes: Write[] = [];
  /** write indexes in acknowledgement order */
  readonly ackOrder: number[] = [];
  private stopped = false;
  private running: Promise<unknown>[] = [];
  private clients: NbdClient[] = [];

  constructor(
    readonly run: number,
    private readonly blocks: number,
    private readonly random: () => number,
    private readonly luns = 2,
    private readonly depth = 4,
  ) {}

  async start(nbdPort: number): Promise<void> {
    this.clients = await Promise.all(Array.from({ length: this.luns }, (_, lun) => NbdClient.connect(`nbd://127.0.0.1:${nbdPort}/disk${lun}`)));
    const free = Array.from({ length: this.luns }, () => Array.from({ length: this.blocks }, (_, i) => i));
    for (const f of free)
      for (let i = f.length - 1; i > 0; i--) {
        const j = Math.floor(this.random() * (i + 1));
        [f[i], f[j]] = [f[j]!, f[i]!];
      }
    this.running = this.clients.map((c, lun) => this.loop(c, lun, free[lun]!));
  }

  private async loop(c: NbdClient, lun: number, free: number[]): Promise<void> {
    const inflight = new Set<Promise<void>>();
    while (!this.stopped && !c.closed) {
      while (inflight.size >= this.depth && !this.stopped) await Promise.race(inflight);
      if (this.stopped || c.closed) break;
      const block = free.pop();
      if (block === undefined) break;
      const w: Write = { k: this.writes.length, lun, block, ackedAt: null, dependsOn: this.ackOrder.length };
      this.writes.push(w);
      const p = c.write(block * BLOCK, blockOf(this.run, w.k, lun)).then(
        () => {
          w.ackedAt = performance.now();
          this.ackOrder.push(w.k);
        },
        () => undefined,
      );
      const tracked = p.finally(() => inflight.delete(tracked));
      inflight.add(tracked);
    }
    await Promise.allSettled([...inflight]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.allSettled(this.running);
    for (const c of this.clients) c.destroy();
  }

  /**
   * Checks images (one Buffer per LUN): every non-zero block is a complete write of this run at
   * its own place, and whenever a write is present, every write acknowledged before it was issued
   * is present too. Returns the present writes; throws with the first violation.
   */
  check(images: Buffer[], what: string): Set<number> {
    const present = new Set<number>();
    images.forEach((img, lun) => {
      for (let b = 0; b < this.blocks; b++) {
        const blk = img.subarray(b * BLOCK, (b + 1) * BLOCK);
        if (blk.every((x) => x === 0)) continue;
        const k = blk.readUInt32LE(8);
        const w = this.writes[k];
        if (blk.toString('latin1', 0, 4) !== 'PFX1' || blk.readUInt32LE(4) !== this.run) throw new Error(`${what}: block ${b} of disk${lun} is not a write of run ${this.run}`);
        if (!w || w.lun !== lun || w.block !== b) throw new Error(`${what}: write ${k} found at disk${lun} block ${b}, written to disk${w?.lun} block ${w?.block}`);
        if (!blk.equals(blockOf(this.run, k, lun))) throw new Error(`${what}: block ${b} of disk${lun} holds a torn write ${k}`);
        present.add(k);
      }
    });
    for (const k of present) {
      const w = this.writes[k]!;
      for (let i = 0; i < w.dependsOn; i++) {
        const dep = this.ackOrder[i]!;
        if (!present.has(dep)) throw new Error(`${what}: write ${k} (disk${w.lun}) is present, but write ${dep} (disk${this.writes[dep]!.lun}), acknowledged before ${k} was issued, is not: not a prefix`);
      }
    }
    return present;
  }
}
