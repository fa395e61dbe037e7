// Shared harness of the snapshot tests: a LUN image in a temp dir, a SnapshotHost over it, and a
// SnapshotManager with its copy-on-write layer (close + reopen on the same dir and image).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackingStore, type BlockDevice } from '../../src/block/index.js';
import { SnapshotManager, type OverflowPolicy, type SnapshotHost } from '../../src/snapshot/index.js';

export const LUN_NAME = 'disk0';

/** A temp root for one test file, removed by `cleanup()`. */
export function tempRoot(prefix: string): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

export interface HostEvent {
  type: string;
  details: Record<string, unknown>;
}

/** The host of one LUN (id 0, 'disk0') over `store`; events go to `events`. */
export function makeHost(store: () => FileBackingStore, size: number, events: HostEvent[]): SnapshotHost {
  return {
    lun: (ref) => (ref === 0 || ref === '0' || ref === LUN_NAME ? { id: 0, name: LUN_NAME, size, blockSize: 512 } : undefined),
    base: (id) => (id === 0 ? store() : undefined),
    rollbackGuard: () => undefined,
    sessionCount: () => 0,
    disconnect: async () => undefined,
    event: (type, details) => void events.push({ type, details }),
  };
}

export interface Settings {
  storeBytes: number;
  regionSize: number;
  policy: OverflowPolicy;
}

/** A LUN image, a manager over it and the LUN's COW layer; `reopen()` closes the manager and opens a new one. */
export class Rig {
  readonly events: HostEvent[] = [];
  manager!: SnapshotManager;
  /** Host writes go through this (the COW layer over the image). */
  lun!: BlockDevice;
  store!: FileBackingStore;
  private constructor(
    readonly dir: string,
    readonly size: number,
    readonly settings: Settings,
    readonly noSync: boolean,
  ) {}

  static async create(dir: string, size: number, settings: Settings, noSync = true): Promise<Rig> {
    const r = new Rig(dir, size, settings, noSync);
    await FileBackingStore.create(join(dir, 'disk0.img'), size);
    r.store = await FileBackingStore.open(join(dir, 'disk0.img'), { blockSize: 512 });
    await r.openManager();
    return r;
  }

  /** A rig over an image and manager directory that already exist (after a crash). */
  static async reopenExisting(dir: string, size: number, settings: Settings, noSync = true): Promise<Rig> {
    const r = new Rig(dir, size, settings, noSync);
    r.store = await FileBackingStore.open(join(dir, 'disk0.img'), { blockSize: 512 });
    await r.openManager();
    return r;
  }

  private async openManager(): Promise<void> {
    this.manager = new SnapshotManager(this.dir, makeHost(() => this.store, this.size, this.events), this.settings, this.noSync);
    await this.manager.open();
    this.lun = this.manager.layer(0, this.store);
  }

  /** Closes the manager (not the image) and opens a new one on the same dir. */
  async reopen(): Promise<void> {
    await this.manager.close();
    await this.openManager();
  }

  /** The full contents of snapshot `name` as its device reads it, or undefined when it has no device. */
  async readSnapshot(name: string): Promise<Buffer | undefined> {
    const d = this.manager.device(`${LUN_NAME}@${name}`);
    if (!d) return undefined;
    return d.device.read(0, d.device.size);
  }

  async close(): Promise<void> {
    await this.manager.close();
    await this.store.close();
  }
}

/** Where two buffers first differ, for a readable failure. */
export function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
