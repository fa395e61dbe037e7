/**
 * The SP's "may hold dirty cache" markers, one per LUN, kept in a file: a LUN is marked before
 * its first write-back write is cached, and unmarked lazily once its cache is clean. After a
 * power failure, a marked LUN with no vault image to replay lost its dirty cache.
 */
import { promises as fsp } from 'node:fs';
import { SerialQueue } from '../../serial/index.js';

/** How often markers of clean LUNs are cleared (off the write path). */
export const MARKER_SWEEP_MS = 250;

export class Markers {
  private marked = new Set<number>();
  /** Writes of the file, one at a time, in order. */
  private readonly writes = new SerialQueue();
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly path: string,
    /** A background write of the file failed (the markers on disk are then a superset: safe). */
    private readonly onError: (problem: string) => void,
  ) {}

  async load(): Promise<void> {
    this.marked = new Set(await readMarkers(this.path));
  }

  has(lun: number): boolean {
    return this.marked.has(lun);
  }

  list(): number[] {
    return [...this.marked];
  }

  mark(lun: number): Promise<void> {
    this.marked.add(lun);
    return this.persist();
  }

  /** Unmarks in memory only; true when it was marked (then `persist()`). */
  unmark(lun: number): boolean {
    return this.marked.delete(lun);
  }

  clear(): void {
    this.marked.clear();
  }

  persist(): Promise<void> {
    return this.writes.run(() => writeMarkers(this.path, [...this.marked].sort((a, b) => a - b)));
  }

  /** Resolves once every write queued so far has finished. */
  drained(): Promise<void> {
    return this.writes.drained();
  }

  /** Sweeps every MARKER_SWEEP_MS: unmarks the LUNs `clean` says hold nothing dirty. */
  startSweeping(clean: (lun: number) => boolean, paused: () => boolean): void {
    this.timer = setInterval(() => {
      if (!paused()) this.sweep(clean);
    }, MARKER_SWEEP_MS);
    this.timer.unref();
  }

  stopSweeping(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private sweep(clean: (lun: number) => boolean): void {
    let changed = false;
    for (const lun of [...this.marked]) {
      if (!clean(lun)) continue;
      this.marked.delete(lun);
      changed = true;
    }
    if (changed) this.persist().catch((e: unknown) => this.onError(`clearing dirty-LUN markers: ${(e as Error).message}`));
  }
}

export async function readMarkers(path: string): Promise<number[]> {
  try {
    const j = JSON.parse(await fsp.readFile(path, 'utf8')) as { luns?: unknown };
    return Array.isArray(j.luns) ? j.luns.filter((x): x is number => Number.isSafeInteger(x)) : [];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    // An unreadable marker file: assume nothing about it is clean.
    return [-1];
  }
}

async function writeMarkers(path: string, luns: number[]): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await fsp.open(tmp, 'w', 0o644);
  try {
    await fh.writeFile(JSON.stringify({ luns }) + '\n');
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsp.rename(tmp, path);
}
