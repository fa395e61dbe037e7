/**
 * The chassis of a two-SP array: spawns the SP processes A and B, holds the authoritative
 * OwnershipTable, models power and the battery, and runs every fault and ownership change
 * (one at a time). The StorageArray (metadata, LUN table, events) stays in the chassis; the SPs
 * serve host I/O.
 *
 * This class is the chassis's face; the parts live beside it: ./core.ts (shared state),
 * ./sp-supervisor.ts (the SP processes), ./power.ts with ./power-state.ts and ./battery.ts
 * (power and battery), ./takeover.ts (trespass, takeover, SP faults), ./restore.ts (bringing
 * booted SPs into service), ./mirror-channel.ts (the channels of the chassis's data path).
 */
import { EventEmitter } from 'node:events';
import { ignoreOnClose } from '../../errors/index.js';
import type { StorageArray } from '../storage-array.js';
import type { OwnershipTable, SpEvent, SpName, SpState } from '../sp/index.js';
import type { HostRoutes, SpLunSpec } from '../sp-process/protocol.js';
import { ChassisError, type ChassisOptions } from './config.js';
import { ChassisCore, type SpHandle } from './core.js';
import { listenHostIo, lunDevice } from './mirror-channel.js';
import type { OwnerLunDevice } from './owner-device.js';
import { batteryCharge, batteryFail, batteryRepair, powerFail, powerOn, powerRestore, rechargeTick } from './power.js';
import type { PowerState } from './power-state.js';
import { cmd } from './sp-supervisor.js';
import { onSpCrash, recover, spCrash, spRestart, trespass } from './takeover.js';
import type { DiskFaultSpec, DiskFaultView } from '../../fault/index.js';
import type { IoStatsSnapshot, ProcessIoStats } from '../../io-stats/index.js';

/** The battery recharges in steps of this. */
const RECHARGE_STEP_MS = 1000;
/** Timeouts of commands to the SPs. */
const ROUTES_TIMEOUT_MS = 10_000;
const STATUS_TIMEOUT_MS = 2000;
const SHUTDOWN_TIMEOUT_MS = 30_000;
/** After the shutdown command, an SP that has not exited within this is killed. */
const EXIT_GRACE_MS = 10_000;

export class Chassis extends EventEmitter {
  readonly array: StorageArray;
  readonly ownership: OwnershipTable;
  private readonly core: ChassisCore;
  private readonly rechargeTimer: NodeJS.Timeout;

  constructor(opts: ChassisOptions) {
    super();
    const core = new ChassisCore(opts, this, (h, code, signal, detectedAt) => onSpCrash(core, h, code, signal, detectedAt));
    this.core = core;
    this.array = opts.array;
    this.ownership = core.ownership;
    this.rechargeTimer = setInterval(() => rechargeTick(core), RECHARGE_STEP_MS);
    this.rechargeTimer.unref();
    this.ownership.on('change', (e) => this.publish('lun.owner-changed', { lun: e.lun, from: e.from, to: e.to, reason: e.reason }));
    for (const l of this.array.listLuns()) this.ownership.addLun(l.id, core.defaultOwnerOf(l.id, l.name));
    this.array.on('event', (ev: { type: string; lun?: number; name?: string }) => {
      if (ev.type === 'lun.created' && typeof ev.lun === 'number') void this.onLunCreated(ev.lun);
      if (ev.type === 'lun.deleted' && typeof ev.lun === 'number') void this.onLunDeleted(ev.lun);
      if (ev.type === 'lun.grown' && typeof ev.lun === 'number') void this.onLunGrown(ev.lun);
    });
  }

  publish(type: string, details: Record<string, unknown>): void {
    this.core.publish(type, details);
  }

  get lastTakeover(): Record<string, unknown> | null {
    return this.core.lastTakeover;
  }

  // ---- power-up, faults, ownership (./power.ts, ./takeover.ts) ----

  /** Powers the array: boots both SPs, restores the vaults, serves. */
  start(): Promise<unknown> {
    return this.core.exclusive(async () => {
      await this.core.loadState();
      await listenHostIo(this.core);
      return powerOn(this.core);
    });
  }

  powerFail(): Promise<unknown> {
    return powerFail(this.core);
  }

  powerRestore(): Promise<unknown> {
    return powerRestore(this.core);
  }

  batteryFail(undetected: boolean): Promise<unknown> {
    return batteryFail(this.core, undetected);
  }

  batteryRepair(): Promise<unknown> {
    return batteryRepair(this.core);
  }

  batteryCharge(charge: number): Promise<unknown> {
    return batteryCharge(this.core, charge);
  }

  batteryStatus(): Record<string, unknown> {
    return this.core.battery.status();
  }

  /** SIGKILL of an SP process; resolves once its peer has taken over its LUNs. */
  spCrash(spName: string): Promise<unknown> {
    return spCrash(this.core, spName);
  }

  /** Boots a crashed SP: it drops its superseded cache/vault, then gets LUNs back per failback. */
  spRestart(spName: string): Promise<unknown> {
    return spRestart(this.core, spName);
  }

  trespass(ref: string | number, to?: string): Promise<unknown> {
    return trespass(this.core, ref, to);
  }

  recover(ref: string | number, acceptDataLoss: boolean): Promise<unknown> {
    return recover(this.core, ref, acceptDataLoss);
  }

  // ---- disk faults: the layer over each image lives in both SP processes ----

  /**
   * Gives both SPs a LUN's disk fault (null: clears it), one at a time with the other faults; an
   * SP that is down gets the array's faults when it starts again.
   */
  setDiskFault(lun: number, spec: DiskFaultSpec | null): Promise<void> {
    return this.core.exclusive(async () => {
      if (spec) this.core.diskFaults.set(lun, spec);
      else this.core.diskFaults.delete(lun);
      const args = spec ? { action: 'set', lun, spec } : { action: 'clear', lun };
      await Promise.all(this.core.upSps().map((h) => cmd(h, 'disk-fault', args)));
    });
  }

  /** Each serving SP's disk faults with its own counters (an SP that does not answer is left out). */
  async diskFaultsBySp(): Promise<{ sp: SpName; faults: DiskFaultView[] }[]> {
    const got = await Promise.all(
      this.core.upSps().map((h) =>
        cmd<{ faults: DiskFaultView[] }>(h, 'disk-fault', { action: 'list' }, STATUS_TIMEOUT_MS).then(
          (r) => ({ sp: h.name, faults: r.faults }),
          () => undefined,
        ),
      ),
    );
    return got.filter((x): x is { sp: SpName; faults: DiskFaultView[] } => x !== undefined);
  }

  /**
   * Each SP's host I/O counters (command `io-stats`), asked at scrape time. An SP that is not up
   * has none (its counters died with its process); one that does not answer says why.
   */
  async ioStats(): Promise<ProcessIoStats[]> {
    return Promise.all(
      this.core.both().map(async (h): Promise<ProcessIoStats> => {
        if (!h.proc || h.life.state !== 'up') return { sp: h.name, luns: null, problem: `SP ${h.life.state}` };
        return cmd<{ luns: IoStatsSnapshot[] }>(h, 'io-stats', {}, STATUS_TIMEOUT_MS).then(
          (r) => ({ sp: h.name, luns: r.luns }),
          (e: unknown) => {
            // As for status: the scrape shows the SP without counters, and status says why.
            h.lastError = `io-stats: ${(e as Error).message}`;
            return { sp: h.name, luns: null, problem: h.lastError };
          },
        );
      }),
    );
  }

  /** The array's active disk faults as the chassis holds them (LUN id -> spec). */
  diskFaultSpecs(): Map<number, DiskFaultSpec> {
    return new Map(this.core.diskFaults);
  }

  // ---- the data path in this process: mirror driver, snapshots, clones (./mirror-channel.ts) ----

  /**
   * The device the chassis's data path reads and writes a LUN through: the current owner SP's
   * cache (so its writes are in the mirrored write cache before they are acknowledged, and its
   * reads see every write the hosts saw acknowledged).
   */
  lunDevice(id: number): OwnerLunDevice | undefined {
    return lunDevice(this.core, id);
  }

  /**
   * The LUNs' routes and the snapshot exports: kept (an SP that starts gets them in its init),
   * and pushed to every running SP. Resolves once every running SP has taken them and drained
   * the direct host requests the change reroutes; rejects (after an `sp.error` event) if one
   * did not.
   */
  async setRoutes(routes: HostRoutes): Promise<void> {
    this.core.routes = routes;
    const failures: string[] = [];
    await Promise.all(
      this.core
        .both()
        .filter((h) => h.proc)
        .map((h) =>
          cmd(h, 'routes', { routes }, ROUTES_TIMEOUT_MS).catch((e: unknown) => {
            failures.push(`SP ${h.name}: ${(e as Error).message}`);
            this.publish('sp.error', { sp: h.name, problem: `routes: ${(e as Error).message}` });
          }),
        ),
    );
    if (failures.length) throw new ChassisError('sp-error', 503, `the SPs did not all take the new LUN routes: ${failures.join('; ')}`);
  }

  get routeTable(): HostRoutes | null {
    return this.core.routes;
  }

  // ---- SessionControl for the StorageArray (delete refuses with sessions open) ----

  sessionCount(exportName?: string): number {
    let n = 0;
    for (const [k, v] of this.core.sessionCounts) if (exportName === undefined || k.endsWith(`:${exportName}`)) n += v;
    return n;
  }

  async disconnectExport(name: string): Promise<void> {
    await this.toUpSps('disconnect', { export: name }, `disconnecting export ${name}`);
  }

  // ---- LUN table changes ----

  private async onLunCreated(id: number): Promise<void> {
    const l = this.array.getLun(id);
    if (!l) return;
    await this.core.exclusive(async () => {
      this.ownership.addLun(id, this.core.defaultOwnerOf(id, l.name));
      const owner = this.ownership.owner(id);
      const spec: SpLunSpec = { id, name: l.name, size: l.size, blockSize: l.blockSize, imagePath: l.imagePath };
      await this.toUpSps('lun-add', { lun: spec, owner, route: this.core.opts.dataPath.routeOf(id) ?? null }, `adding LUN ${id}`);
    });
  }

  private async onLunGrown(id: number): Promise<void> {
    const l = this.array.getLun(id);
    if (!l) return;
    await this.core.exclusive(async () => {
      await this.toUpSps('lun-grow', { lun: id, size: l.size }, `growing LUN ${id}`);
    });
  }

  private async onLunDeleted(id: number): Promise<void> {
    await this.core.exclusive(async () => {
      await this.toUpSps('lun-remove', { lun: id }, `removing LUN ${id}`);
      this.core.diskFaults.delete(id);
      try {
        this.ownership.removeLun(id);
      } catch {
        /* unknown already */
      }
      if (this.core.cacheDirty.delete(id)) await this.core.saveState();
    });
  }

  /** Runs a command on every serving SP; an SP that fails it gets an sp.error event. */
  private async toUpSps(op: string, args: Record<string, unknown>, what: string): Promise<void> {
    await Promise.all(this.core.upSps().map((h) => cmd(h, op, args).catch((e: unknown) => this.publish('sp.error', { sp: h.name, problem: `${what}: ${(e as Error).message}` }))));
  }

  // ---- status ----

  async status(): Promise<Record<string, unknown>> {
    const core = this.core;
    const sps = await Promise.all(core.both().map((h) => this.spStatus(h)));
    return {
      power: core.power,
      battery: core.battery.status(),
      failback: core.opts.sps.failback,
      sps,
      lastTakeover: core.lastTakeover,
    };
  }

  private async spStatus(h: SpHandle): Promise<Record<string, unknown>> {
    const core = this.core;
    let s: Record<string, unknown> | undefined;
    if (h.proc && h.life.state === 'up') {
      // An SP that does not answer in time shows its cache as unknown (the reason is kept).
      s = await cmd<Record<string, unknown>>(h, 'status', {}, STATUS_TIMEOUT_MS).catch((e: unknown) => {
        h.lastError = `status: ${(e as Error).message}`;
        return undefined;
      });
      if (s) h.lastStatus = s;
    }
    const cache = (s?.cache as Record<string, unknown> | undefined) ?? { size: core.opts.sps.cacheBytes, dirtyBytes: 0, mode: null, reason: h.life.state === 'up' ? 'unknown' : `SP ${h.life.state}`, detail: '' };
    return {
      name: h.name,
      state: h.life.state,
      pid: h.pid,
      nbd: { host: core.opts.nbd.bind, port: h.port ?? core.configuredPort(h.name) },
      lunsOwned: this.ownership.lunsOwnedBy(h.name),
      // How the SP itself routes each LUN (owner, forward, held, cache-dirty), as it reported.
      routes: Object.fromEntries(((s?.luns as { name: string; route: string }[] | undefined) ?? []).map((l) => [l.name, l.route])),
      // What of each LUN's host I/O the SP sends to the chassis (mirror role, snapshots, clone, offline), as it reported.
      hostRoutes: Object.fromEntries(((s?.luns as { name: string; hostRoute?: unknown }[] | undefined) ?? []).filter((l) => l.hostRoute !== undefined).map((l) => [l.name, l.hostRoute])),
      cache,
      peerConnected: s?.peerConnected ?? false,
      peerMirrorBytes: s?.peerMirrorBytes ?? 0,
      sessions: s?.sessions ?? 0,
      // The SP's NBD memory budget (its own process), as it reported: budget, used, peak, ...
      nbdMemory: s?.nbdMemory ?? null,
    };
  }

  /** Per-LUN ownership fields for status. */
  lunView(id: number): Record<string, unknown> {
    let def: SpName | null = null;
    let cur: SpName | null = null;
    try {
      def = this.ownership.defaultOwner(id);
      cur = this.ownership.owner(id);
    } catch {
      /* LUN not in the table (offline) */
    }
    const cd = this.core.cacheDirty.get(id);
    return {
      defaultOwner: def,
      currentOwner: cur,
      ...(cd !== undefined ? { cacheDirty: true, cacheDirtyReason: cd, state: 'cache-dirty' } : { cacheDirty: false }),
    };
  }

  endpoints(): { host: string; port: number; sp: SpName; tls?: 'on' | 'require' }[] {
    const { opts, sp } = this.core;
    const tls = opts.nbd.tls && opts.nbd.tls.mode !== 'off' ? { tls: opts.nbd.tls.mode } : {};
    return (['A', 'B'] as const).map((n, i) => ({ host: opts.nbd.bind, port: sp[n].port ?? opts.nbd.ports[i]!, sp: n, ...tls }));
  }

  get powerState(): PowerState {
    return this.core.power;
  }

  spState(name: SpName): SpState {
    return this.core.sp[name].life.state;
  }

  /** Orderly stop: each SP destages its cache and exits. */
  async close(): Promise<void> {
    const core = this.core;
    await core.drained();
    core.closing = true;
    clearInterval(this.rechargeTimer);
    await Promise.all(
      core.both().map(async (h) => {
        if (!h.proc) return;
        h.expectExit = true;
        await cmd(h, 'shutdown', {}, SHUTDOWN_TIMEOUT_MS).catch(() => h.proc?.kill('SIGKILL'));
        const t = setTimeout(() => h.proc?.kill('SIGKILL'), EXIT_GRACE_MS);
        await h.exited;
        clearTimeout(t);
        if (h.life.state === 'up') h.life.apply('shutdown' as SpEvent);
      }),
    );
    // Only now: the SPs' last host flushes went through the chassis's data path.
    if (core.hostIoServer) await ignoreOnClose(core.hostIoServer.close(), 'closing the chassis: closing the host-I/O server');
    core.hostIoServer = null;
  }
}
