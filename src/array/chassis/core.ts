/**
 * The state every part of a chassis shares: the SP handles, the authoritative OwnershipTable,
 * power (through its table, ./power-state.ts), the battery, the cache-dirty LUNs and the one
 * queue every fault and ownership change runs on.
 */
import type { ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import type { StorageArray } from '../storage-array.js';
import type { CmiClient, CmiServer } from '../cmi/index.js';
import { OwnershipTable, SpLifecycle, type SpName } from '../sp/index.js';
import type { HostRoutes, SpLunSpec } from '../sp-process/protocol.js';
import { SerialQueue } from '../../serial/index.js';
import type { DiskFaultSpec } from '../../fault/index.js';
import { Battery } from './battery.js';
import { ChassisError, type ChassisOptions } from './config.js';
import type { OwnerLunDevice } from './owner-device.js';
import { powerTransition, type PowerEvent, type PowerState } from './power-state.js';

/** The chassis's side of one SP process. */
export interface SpHandle {
  name: SpName;
  life: SpLifecycle;
  proc: ChildProcess | null;
  pid: number | null;
  port: number | null;
  pending: Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>;
  expectExit: boolean;
  exited: Promise<void> | null;
  lastError?: string;
  lastStatus?: Record<string, unknown>;
  /** Mirroring: the chassis's channel to this SP's cache (`cache-io`). */
  io: CmiClient | null;
}

/** An SP process exited without the chassis asking it to. */
export type CrashHandler = (h: SpHandle, code: number | null, signal: NodeJS.Signals | null, detectedAt: number) => void;

export class ChassisCore {
  readonly array: StorageArray;
  readonly opts: ChassisOptions;
  readonly ownership = new OwnershipTable([]);
  readonly sp: Record<SpName, SpHandle>;
  readonly battery: Battery;
  /** Cache-dirty LUNs and why (persisted in chassis-state.json). */
  readonly cacheDirty = new Map<number, string>();
  /** Open NBD sessions by `${sp}:${export}`. */
  readonly sessionCounts = new Map<string, number>();
  closing = false;
  lastTakeover: Record<string, unknown> | null = null;
  takeoverWaiters: ((r: Record<string, unknown>) => void)[] = [];
  /** The SPs' channel to the chassis's data path (what the LUNs' routes send here). */
  hostIoServer: CmiServer | null = null;
  /** Every LUN's route as last told to the SPs; null: not known (yet, or power was lost). */
  routes: HostRoutes | null = null;
  readonly devices = new Map<number, OwnerLunDevice>();
  /** Active disk faults by LUN id: given to both SPs, and to an SP again at every start. */
  readonly diskFaults = new Map<number, DiskFaultSpec>();
  readonly bootId = randomUUID();
  private powerValue: PowerState = 'off';
  private readonly queue = new SerialQueue();

  constructor(
    opts: ChassisOptions,
    /** The Chassis: emits the session events the StorageArray counts. */
    readonly emitter: EventEmitter,
    /** Takes over a crashed SP's LUNs (./takeover.ts). */
    readonly onCrash: CrashHandler,
  ) {
    this.opts = opts;
    this.array = opts.array;
    const b = opts.sps.battery;
    this.battery = new Battery({ failed: b.failed, charge: b.charge, thresholds: b.thresholds, holdUpMs: b.holdUpMs });
    const mk = (name: SpName): SpHandle => {
      const life = new SpLifecycle(name, 'off');
      life.on('transition', (r) => this.publish('sp.state', { sp: name, from: r.from, to: r.to, via: r.event }));
      return { name, life, proc: null, pid: null, port: null, pending: new Map(), expectExit: false, exited: null, io: null };
    };
    this.sp = { A: mk('A'), B: mk('B') };
  }

  get power(): PowerState {
    return this.powerValue;
  }

  /** Every change of power goes through the table (throws on an illegal one). */
  applyPower(event: PowerEvent): PowerState {
    this.powerValue = powerTransition(this.powerValue, event);
    return this.powerValue;
  }

  publish(type: string, details: Record<string, unknown>): void {
    this.array.publish(type, details);
  }

  /** Runs `fn` after every fault and ownership change queued before it (one at a time). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.queue.run(fn);
  }

  /** Resolves once everything queued so far has run. */
  drained(): Promise<void> {
    return this.queue.drained();
  }

  both(): SpHandle[] {
    return [this.sp.A, this.sp.B];
  }

  upSps(): SpHandle[] {
    return this.both().filter((h) => h.life.state === 'up' && h.proc);
  }

  defaultOwnerOf(id: number, name: string): SpName {
    return this.opts.sps.owners[name] ?? (id % 2 === 0 ? 'A' : 'B');
  }

  lunSpecs(): SpLunSpec[] {
    return this.array.listLuns().filter((l) => l.state === 'online').map((l) => ({ id: l.id, name: l.name, size: l.size, blockSize: l.blockSize, imagePath: l.imagePath }));
  }

  /** The SP's NBD port: as configured, or (port 0) the one it got the first time, kept across restarts. */
  configuredPort(sp: SpName): number {
    return this.opts.nbd.ports[sp === 'A' ? 0 : 1];
  }

  rememberPort(h: SpHandle, port: number): void {
    h.port = port;
    this.opts.nbd.ports[h.name === 'A' ? 0 : 1] = port;
  }

  checkSp(sp: string): SpHandle {
    if (sp !== 'A' && sp !== 'B') throw new ChassisError('invalid-argument', 400, `unknown SP ${JSON.stringify(sp)}: an array has SPs A and B`);
    return this.sp[sp];
  }

  requirePower(what: string): void {
    if (this.power !== 'on') throw new ChassisError('power-off', 409, `cannot ${what}: array ${this.array.name} power is ${this.power}`);
  }

  findLun(ref: string | number): { id: number; name: string } {
    const l = this.array.getLun(ref);
    if (!l) throw new ChassisError('not-found', 404, `no LUN ${JSON.stringify(ref)} in array ${this.array.name}`);
    return { id: l.id, name: l.name };
  }

  // ---- persisted state ----

  private get statePath(): string {
    return join(this.array.dir, 'chassis-state.json');
  }

  async loadState(): Promise<void> {
    try {
      const j = JSON.parse(await fsp.readFile(this.statePath, 'utf8')) as { cacheDirty?: Record<string, string>; battery?: { failed?: boolean; charge?: number } };
      for (const [k, v] of Object.entries(j.cacheDirty ?? {})) this.cacheDirty.set(Number(k), v);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ChassisError('io', 500, `cannot read ${this.statePath}: ${(e as Error).message}`);
    }
  }

  async saveState(): Promise<void> {
    const tmp = `${this.statePath}.tmp`;
    const fh = await fsp.open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(JSON.stringify({ cacheDirty: Object.fromEntries(this.cacheDirty) }, null, 2) + '\n');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.statePath);
  }
}
