// Shared pieces of the crash tests: a child-process array, and the dependent writers of
// src/check/prefix (the same workload and check as `sanbox check prefix`) behind the small
// interface the crash tests use.
import { spawn, type ChildProcess } from 'node:child_process';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PREFIX_BLOCK, PrefixChecker, PrefixWriter, type PrefixWrite } from '../../src/check/prefix/index.js';
import { killProcess } from './launch.js';

const HERE = dirname(fileURLToPath(import.meta.url));
export const BLOCK = PREFIX_BLOCK;

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

/**
 * Writers on LUNs disk0..disk{luns-1} of an array, one NBD connection each, `depth` writes in
 * flight, every write to a block never written before in this run (src/check/prefix's PrefixWriter).
 */
export class DependentWriters {
  private readonly w: PrefixWriter;

  constructor(
    readonly run: number,
    blocks: number,
    random: () => number,
    private readonly luns = 2,
    depth = 4,
  ) {
    this.w = new PrefixWriter({ run, blocks, random, depth });
  }

  get writes(): readonly PrefixWrite[] {
    return this.w.writes;
  }
  /** write indexes in acknowledgement order */
  get ackOrder(): readonly number[] {
    return this.w.ackOrder;
  }

  start(nbdPort: number): Promise<void> {
    return this.w.start(Array.from({ length: this.luns }, (_, lun) => `nbd://127.0.0.1:${nbdPort}/disk${lun}`));
  }

  stop(): Promise<void> {
    return this.w.stop();
  }

  /**
   * Checks images (one Buffer per LUN): every non-zero block is a complete write of this run at
   * its own place, and whenever a write is present, every write acknowledged before it was issued
   * is present too. Returns the present writes; throws with the first violation.
   */
  check(images: Buffer[], what: string): Set<number> {
    const state = this.w.state();
    const c = new PrefixChecker(state, 1);
    images.forEach((img, lun) => {
      for (let b = 0; b < state.blocks; b++) c.block(lun, b, img.subarray(b * BLOCK, (b + 1) * BLOCK));
    });
    const r = c.finish();
    if (!r.ok) throw new Error(`${what}: ${r.details[0]!.detail}`);
    return c.presentWrites();
  }
}
