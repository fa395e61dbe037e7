/**
 * The chassis of a two-SP array: spawns the SP processes A and B, holds the authoritative
 * OwnershipTable, models power and the battery, and runs every fault and ownership change
 * (one at a time). The StorageArray (metadata, LUN table, events) stays in the chassis; the SPs
 * serve host I/O.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomUUID } from 'node:crypto';
import type { StorageArray } from '../storage-array.js';
import { CmiClient, CmiError, CmiServer } from '../cmi/index.js';
import { OwnershipTable, SpLifecycle, peerOf, DEFAULT_BATTERY_THRESHOLDS, type BatteryThresholds, type FailbackPolicy, type SpEvent, type SpName, type SpState } from '../sp/index.js';
import { chassisSocketPath, spChassisSocketPath, type BatteryView, type MirrorRole, type SpCacheConfig, type SpInit, type SpLunSpec } from '../sp-process/protocol.js';
import type { IoOp, IoResult } from '../sp-process/router.js';
import { OwnerLunDevice } from './owner-device.js';

export interface SpsConfig {
  /** Write-cache memory per SP, bytes. */
  cacheBytes: number;
  cache: SpCacheConfig;
  /**
   * A full battery holds the SPs up for `holdUpMs`; a partial one for that share of it. Holding
   * up drains it in proportion; with power on it recharges by `rechargePerSec` percent a second.
   */
  battery: { charge: number; holdUpMs: number; thresholds: BatteryThresholds; failed: boolean; rechargePerSec: number };
  failback: FailbackPolicy;
  /** Emulated vault bandwidth (bytes/s) for dump and restore; 0 = as fast as the disk. */
  vaultBytesPerSec: number;
  /** Default owner by LUN name (others: even ids A, odd ids B). */
  owners: Record<string, SpName>;
}

export const DEFAULT_SPS: SpsConfig = {
  cacheBytes: 64 * 1024 * 1024,
  cache: { idleMs: 200, highWatermark: 0.75, lowWatermark: 0.5, writeThrough: false },
  battery: { charge: 100, holdUpMs: 5000, thresholds: DEFAULT_BATTERY_THRESHOLDS, failed: false, rechargePerSec: 1 },
  failback: 'automatic',
  vaultBytesPerSec: 0,
  owners: {},
};

export class ChassisError extends Error {
  constructor(
    readonly code: string,
    readonly httpStatus: number,
    message: string,
  ) {
    super(message);
    this.name = 'ChassisError';
  }
}

export type PowerState = 'on' | 'failing' | 'off' | 'restoring';

interface SpHandle {
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

/**
 * The mirror driver running in the chassis process (src/control/service.ts wires a MirrorNode
 * in; the array layer knows nothing of replication).
 */
export interface ChassisMirrorHooks {
  /**
   * A host write/trim/zero/flush of a primary mirror image, received by an SP. `sender` aborts
   * when that SP's channel ends (it died): nobody waits for the request any more (see
   * OwnerLunDevice.run for what that changes).
   */
  hostIo(lun: number, op: IoOp, data: Buffer | undefined, sender: AbortSignal): Promise<IoResult>;
  /** The whole array is losing power: the driver must behave as if the array crashed. */
  powerLost(): Promise<void>;
  /** Power is back and both SPs serve (also when power returned in the middle of the dump). */
  powerBack(): Promise<void>;
}

export interface ChassisOptions {
  array: StorageArray;
  /** Command that runs `sanbox` (node + bin path). */
  spCommand: { exec: string; args: string[] };
  nbd: { bind: string; ports: [number, number] };
  sps: SpsConfig;
  readOnly: boolean;
  /** Lines of the SP processes' stderr. */
  log?: (line: string) => void;
  /** The array runs a mirror driver in this process. */
  mirror?: ChassisMirrorHooks;
}

let nextMsgId = 1;

export class Chassis extends EventEmitter {
  readonly array: StorageArray;
  readonly ownership = new OwnershipTable([]);
  private readonly sp: Record<SpName, SpHandle>;
  private power: PowerState = 'off';
  private readonly battery: BatteryView & { holdUpMs: number };
  private readonly cacheDirty = new Map<number, string>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly opts: ChassisOptions;
  private readonly sessionCounts = new Map<string, number>();
  private closing = false;
  private readonly rechargeTimer: NodeJS.Timeout;
  lastTakeover: Record<string, unknown> | null = null;
  private takeoverWaiters: ((r: Record<string, unknown>) => void)[] = [];
  /** Mirroring: the SPs' channel to the mirror driver (host writes of primary images). */
  private hostIoServer: CmiServer | null = null;
  /** Mirroring: every LUN's role as last told to the SPs; null: not known (yet, or power was lost). */
  private mirrorRoles: Record<string, MirrorRole> | null = null;
  private readonly devices = new Map<number, OwnerLunDevice>();
  private readonly bootId = randomUUID();

  constructor(opts: ChassisOptions) {
    super();
    this.opts = opts;
    this.array = opts.array;
    const b = opts.sps.battery;
    this.battery = { failed: b.failed, detected: true, charge: b.charge, thresholds: b.thresholds, holdUpMs: b.holdUpMs };
    this.rechargeTimer = setInterval(() => this.rechargeTick(), 1000);
    this.rechargeTimer.unref();
    const mk = (name: SpName): SpHandle => {
      const life = new SpLifecycle(name, 'off');
      life.on('transition', (r) => this.publish('sp.state', { sp: name, from: r.from, to: r.to, via: r.event }));
      return { name, life, proc: null, pid: null, port: null, pending: new Map(), expectExit: false, exited: null, io: null };
    };
    this.sp = { A: mk('A'), B: mk('B') };
    this.ownership.on('change', (e) => this.publish('lun.owner-changed', { lun: e.lun, from: e.from, to: e.to, reason: e.reason }));
    for (const l of this.array.listLuns()) this.ownership.addLun(l.id, this.defaultOwnerOf(l.id, l.name));
    this.array.on('event', (ev: { type: string; lun?: number; name?: string }) => {
      if (ev.type === 'lun.created' && typeof ev.lun === 'number') void this.onLunCreated(ev.lun);
      if (ev.type === 'lun.deleted' && typeof ev.lun === 'number') void this.onLunDeleted(ev.lun);
      if (ev.type === 'lun.grown' && typeof ev.lun === 'number') void this.onLunGrown(ev.lun);
    });
  }

  publish(type: string, details: Record<string, unknown>): void {
    this.array.publish(type, details);
  }

  private defaultOwnerOf(id: number, name: string): SpName {
    return this.opts.sps.owners[name] ?? (id % 2 === 0 ? 'A' : 'B');
  }

  private get statePath(): string {
    return join(this.array.dir, 'chassis-state.json');
  }

  private async loadState(): Promise<void> {
    try {
      const j = JSON.parse(await fsp.readFile(this.statePath, 'utf8')) as { cacheDirty?: Record<string, string>; battery?: { failed?: boolean; charge?: number } };
      for (const [k, v] of Object.entries(j.cacheDirty ?? {})) this.cacheDirty.set(Number(k), v);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ChassisError('io', 500, `cannot read ${this.statePath}: ${(e as Error).message}`);
    }
  }

  private async saveState(): Promise<void> {
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

  // ---- SP processes ----

  private spawnSp(h: SpHandle): Promise<void> {
    const { exec, args } = this.opts.spCommand;
    const proc = spawn(exec, [...args, 'sp', 'serve', '--sp', h.name], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    h.proc = proc;
    h.pid = proc.pid ?? null;
    h.port = null;
    h.expectExit = false;
    for (const s of [proc.stdout!, proc.stderr!]) createInterface({ input: s }).on('line', (line) => this.opts.log?.(`[SP ${h.name}] ${line}`));
    proc.on('message', (raw: unknown) => {
      const m = raw as { type: string; id?: number; ok?: boolean; result?: unknown; error?: string; event?: Record<string, unknown> };
      if (m.type === 'reply' && m.id !== undefined) {
        const p = h.pending.get(m.id);
        if (!p) return;
        h.pending.delete(m.id);
        if (m.ok) p.resolve(m.result);
        else p.reject(new ChassisError('sp-error', 500, `SP ${h.name}: ${m.error}`));
      } else if (m.type === 'event' && m.event) {
        this.onSpEvent(h, m.event);
      }
    });
    const detectedAt = { t: 0 };
    h.exited = new Promise<void>((resolve) => {
      proc.on('exit', (code, signal) => {
        detectedAt.t = Date.now();
        const err = new ChassisError('sp-down', 409, `SP ${h.name} exited (code ${code}, signal ${signal})`);
        for (const p of h.pending.values()) p.reject(err);
        h.pending.clear();
        h.proc = null;
        h.pid = null;
        h.port = null;
        h.io?.close();
        h.io = null;
        for (const [k] of this.sessionCounts) if (k.startsWith(`${h.name}:`)) this.sessionCounts.delete(k);
        if (!h.expectExit && !this.closing) this.onCrash(h, code, signal, detectedAt.t);
        resolve();
      });
    });
    const init: SpInit = {
      sp: h.name,
      array: this.array.name,
      dir: this.array.dir,
      nbd: { bind: this.opts.nbd.bind, port: this.configuredPort(h.name) },
      luns: this.lunSpecs(),
      cacheBytes: this.opts.sps.cacheBytes,
      cache: this.opts.sps.cache,
      battery: this.batteryView(),
      readOnly: this.opts.readOnly,
      ...(this.opts.mirror ? { mirror: { socket: chassisSocketPath(this.array.dir), roles: this.mirrorRoles } } : {}),
    };
    return this.send(h, { type: 'init', init }).then(() => (this.opts.mirror ? this.connectIo(h) : undefined));
  }

  // ---- mirroring: the mirror driver in this process ----

  /** Opens the chassis's channel to SP `h`'s caches (after its init: its socket listens). */
  private async connectIo(h: SpHandle): Promise<void> {
    const proc = h.proc;
    const c = await CmiClient.connect(spChassisSocketPath(this.array.dir, h.name), { array: this.array.name, from: 'chassis', bootId: this.bootId }, 5000);
    if (h.proc !== proc || !proc) {
      c.close();
      return;
    }
    h.io?.close();
    h.io = c;
    c.on('close', () => {
      if (h.io === c) h.io = null;
    });
  }

  private async listenHostIo(): Promise<void> {
    const hooks = this.opts.mirror;
    if (!hooks || this.hostIoServer) return;
    const server = new CmiServer(chassisSocketPath(this.array.dir), {
      array: this.array.name,
      expectFrom: ['A', 'B'],
      handler: async (req, ctx) => {
        if (req.op !== 'host-io') throw new CmiError('unknown-op', `unknown chassis operation ${req.op}`);
        const io = req.args as unknown as IoOp & { lun: number };
        const r = await hooks.hostIo(Number(io.lun), { op: io.op, offset: io.offset, length: io.length, fua: io.fua, noHole: io.noHole, fastZero: io.fastZero }, io.op === 'write' ? req.bin : undefined, ctx.signal);
        return { result: r.extents ? { extents: r.extents } : {}, bin: r.data };
      },
    });
    server.on('protocol-error', (why: string) => this.publish('cmi.protocol-error', { problem: `chassis host-I/O channel: ${why}` }));
    await server.listen();
    this.hostIoServer = server;
  }

  /**
   * The device the mirror driver reads and writes a LUN through: the current owner SP's cache
   * (so secondary writes are in the mirrored write cache before they are acknowledged, and the
   * driver's reads see every write the hosts saw acknowledged).
   */
  lunDevice(id: number): OwnerLunDevice | undefined {
    const l = this.array.getLun(id);
    if (!l || l.state !== 'online') return undefined;
    let d = this.devices.get(id);
    if (!d) {
      const below = this.array.device(id);
      if (!below) return undefined;
      d = new OwnerLunDevice(id, l.blockSize, below.capabilities, this.opts.readOnly, {
        ownerChannel: (lun) => {
          let owner: SpName | null = null;
          try {
            owner = this.ownership.owner(lun);
          } catch {
            return null;
          }
          const h = owner ? this.sp[owner] : null;
          return h?.io ? { sp: h.name, client: h.io } : null;
        },
        unavailable: (lun) => {
          // While power fails the SPs hold I/O (and answer nothing once they stop).
          if (this.power === 'off') return `array ${this.array.name} lost power`;
          if (!this.array.getLun(lun)) return 'the LUN was deleted';
          if (this.closing && !this.sp.A.proc && !this.sp.B.proc) return `array ${this.array.name} stopped`;
          return undefined;
        },
        lunSize: (lun) => this.array.getLun(lun)?.size,
      });
      this.devices.set(id, d);
    }
    return d;
  }

  /** The LUNs' mirror roles (a LUN not listed is no image): kept, and pushed to every running SP. */
  async setMirrorRoles(roles: Record<string, MirrorRole>): Promise<void> {
    this.mirrorRoles = roles;
    await Promise.all(
      [this.sp.A, this.sp.B].filter((h) => h.proc).map((h) => this.cmd(h, 'mirror-roles', { roles }, 10_000).catch((e: unknown) => this.publish('sp.error', { sp: h.name, problem: `mirror roles: ${(e as Error).message}` }))),
    );
  }

  get mirrorRoleTable(): Record<string, MirrorRole> | null {
    return this.mirrorRoles;
  }

  /** The SP's NBD port: as configured, or (port 0) the one it got the first time, kept across restarts. */
  private configuredPort(sp: SpName): number {
    return this.opts.nbd.ports[sp === 'A' ? 0 : 1];
  }

  private rememberPort(h: SpHandle, port: number): void {
    h.port = port;
    this.opts.nbd.ports[h.name === 'A' ? 0 : 1] = port;
  }

  private lunSpecs(): SpLunSpec[] {
    return this.array.listLuns().filter((l) => l.state === 'online').map((l) => ({ id: l.id, name: l.name, size: l.size, blockSize: l.blockSize, imagePath: l.imagePath }));
  }

  private send<T = any>(h: SpHandle, msg: Record<string, unknown>, timeoutMs = 120_000): Promise<T> {
    const proc = h.proc;
    if (!proc || !proc.connected) return Promise.reject(new ChassisError('sp-down', 409, `SP ${h.name} is not running`));
    const id = nextMsgId++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        h.pending.delete(id);
        reject(new ChassisError('timeout', 504, `SP ${h.name} did not answer ${String(msg.op ?? msg.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      h.pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      proc.send({ ...msg, id });
    });
  }

  private cmd<T = any>(h: SpHandle, op: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
    return this.send<T>(h, { type: 'cmd', op, args }, timeoutMs);
  }

  private onSpEvent(h: SpHandle, ev: Record<string, unknown>): void {
    const { type, ...rest } = ev;
    if (type === 'session.opened' || type === 'session.closed') {
      const key = `${h.name}:${String(rest.export)}`;
      const n = (this.sessionCounts.get(key) ?? 0) + (type === 'session.opened' ? 1 : -1);
      if (n > 0) this.sessionCounts.set(key, n);
      else this.sessionCounts.delete(key);
      this.emit(type === 'session.opened' ? 'session-open' : 'session-close', { id: `${h.name}:${String(rest.session)}`, remote: rest.remote, export: rest.export, reason: rest.reason });
      return;
    }
    this.publish(String(type), { ...rest, sp: h.name });
  }

  // ---- SessionControl for the StorageArray (delete refuses with sessions open) ----

  sessionCount(exportName?: string): number {
    let n = 0;
    for (const [k, v] of this.sessionCounts) if (exportName === undefined || k.endsWith(`:${exportName}`)) n += v;
    return n;
  }

  async disconnectExport(name: string): Promise<void> {
    await Promise.all(this.upSps().map((h) => this.cmd(h, 'disconnect', { export: name }).catch(() => undefined)));
  }

  private upSps(): SpHandle[] {
    return [this.sp.A, this.sp.B].filter((h) => h.life.state === 'up' && h.proc);
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private batteryView(): BatteryView {
    return { failed: this.battery.failed, detected: this.battery.detected, charge: this.battery.charge, thresholds: this.battery.thresholds };
  }

  // ---- power-up ----

  /** Powers the array: boots both SPs, restores the vaults, serves. */
  start(): Promise<unknown> {
    return this.exclusive(async () => {
      await this.loadState();
      await this.listenHostIo();
      return this.powerOn();
    });
  }

  private async powerOn(): Promise<unknown> {
    const t0 = Date.now();
    this.power = 'restoring';
    this.publish('power.restoring', {});
    const hs = [this.sp.A, this.sp.B];
    try {
      for (const h of hs) h.life.apply('power-restore');
      await Promise.all(hs.map((h) => this.spawnSp(h)));
      this.ownership.spUp('A');
      this.ownership.spUp('B');
      this.ownership.failback('automatic');
      const results = await Promise.all(hs.map((h) => this.cmd<{ replayed: Record<string, number>; lost: number[]; vaults: Record<string, string>; ms: number; found: boolean }>(h, 'restore', { replay: this.ownership.lunsOwnedBy(h.name) })));
      const restored = await this.finishRestore(hs, results);
      this.power = 'on';
      const ms = Date.now() - t0;
      this.publish('power.on', { ms, restored });
      return { power: 'on', ms, restored };
    } catch (e) {
      // A power failure (or an SP dying) during the restore: nothing was consumed; the next
      // power-up replays the same images.
      for (const h of hs) {
        h.expectExit = true;
        h.proc?.kill('SIGKILL');
      }
      await Promise.all(hs.map((h) => h.exited));
      for (const h of hs) if (h.life.state !== 'off' && h.life.state !== 'down') h.life.apply(h.life.state === 'up' ? 'power-cut' : 'power-cut');
      for (const h of hs) if (h.life.state === 'down') h.life.apply('power-cut');
      this.ownership.takeOver('A');
      this.ownership.takeOver('B');
      this.power = 'off';
      this.publish('power.restore-interrupted', { problem: (e as Error).message });
      throw e;
    }
  }

  private async finishRestore(hs: SpHandle[], results: { replayed: Record<string, number>; lost: number[]; vaults: Record<string, string>; ms: number; found: boolean }[]): Promise<unknown> {
    const summary: Record<string, unknown> = {};
    for (let i = 0; i < hs.length; i++) {
      const h = hs[i]!;
      const r = results[i]!;
      if (r.found && h.life.state === 'booting') h.life.apply('vault-found');
      summary[h.name] = { replayedPages: r.replayed, ms: r.ms, vaults: r.vaults };
      this.publish('sp.restore', { sp: h.name, replayedPages: r.replayed, lost: r.lost, ms: r.ms, vaults: r.vaults });
      for (const lun of r.lost) {
        if (this.cacheDirty.has(lun)) continue;
        const why = `dirty write cache lost: power failed without battery hold-up and no vault image holds it (${Object.entries(r.vaults).map(([k, v]) => `SP ${k} vault: ${v}`).join('; ')})`;
        this.cacheDirty.set(lun, why);
        this.publish('lun.cache-dirty', { lun, reason: why });
      }
    }
    await this.saveState();
    await Promise.all(hs.map((h) => this.cmd(h, 'commit-restore')));
    const dirty = Object.fromEntries(this.cacheDirty);
    const served = await Promise.all(hs.map((h) => this.cmd<{ port: number }>(h, 'serve', { owned: this.ownership.lunsOwnedBy(h.name), cacheDirty: dirty })));
    hs.forEach((h, i) => {
      this.rememberPort(h, served[i]!.port);
      h.life.apply(h.life.state === 'restoring' ? 'restore-done' : 'booted');
    });
    if (hs.length === 2) await Promise.all(hs.map((h) => this.cmd(h, 'peer', { up: true })));
    else {
      const peer = this.sp[peerOf(hs[0]!.name)];
      if (peer.life.state === 'up') await Promise.all([this.cmd(hs[0]!, 'peer', { up: true }), this.cmd(peer, 'peer', { up: true })]);
    }
    return summary;
  }

  // ---- crash, takeover, restart ----

  private onCrash(h: SpHandle, code: number | null, signal: NodeJS.Signals | null, detectedAt: number): void {
    const st = h.life.state;
    if (st === 'up' || st === 'booting' || st === 'restoring') h.life.apply('crash');
    else if (st === 'dumping') h.life.apply('crash');
    this.publish('sp.crashed', { sp: h.name, code, signal });
    const survivor = this.sp[peerOf(h.name)];
    void this.exclusive(async () => {
      const moves = this.ownership.takeOver(h.name);
      const luns = moves.filter((m) => m.to === survivor.name).map((m) => m.lun);
      if (survivor.life.state !== 'up') {
        this.publish('sp.takeover-impossible', { sp: h.name, reason: `peer SP ${survivor.name} is ${survivor.life.state}` });
        return;
      }
      try {
        const r = await this.cmd<{ ms: number; pages: number }>(survivor, 'takeover', { luns });
        const ms = Date.now() - detectedAt;
        this.lastTakeover = { sp: survivor.name, failed: h.name, luns, ms, spMs: r.ms, pages: r.pages, at: new Date().toISOString() };
        this.publish('sp.takeover', this.lastTakeover);
        for (const w of this.takeoverWaiters.splice(0)) w(this.lastTakeover);
      } catch (e) {
        this.publish('sp.error', { sp: survivor.name, problem: `takeover failed: ${(e as Error).message}` });
      }
    });
  }

  private checkSp(sp: string): SpHandle {
    if (sp !== 'A' && sp !== 'B') throw new ChassisError('invalid-argument', 400, `unknown SP ${JSON.stringify(sp)}: an array has SPs A and B`);
    return this.sp[sp];
  }

  private requirePower(what: string): void {
    if (this.power !== 'on') throw new ChassisError('power-off', 409, `cannot ${what}: array ${this.array.name} power is ${this.power}`);
  }

  /** SIGKILL of an SP process; resolves once its peer has taken over its LUNs. */
  spCrash(spName: string): Promise<unknown> {
    const h = this.checkSp(spName);
    return this.exclusive(async () => {
      this.requirePower('crash an SP');
      if (h.life.state !== 'up' || !h.proc) throw new ChassisError('sp-down', 409, `SP ${h.name} is ${h.life.state}, not running`);
      const pid = h.pid;
      const peerUp = this.sp[peerOf(h.name)].life.state === 'up';
      const took = peerUp ? new Promise<Record<string, unknown>>((r) => this.takeoverWaiters.push(r)) : null;
      h.proc.kill('SIGKILL');
      return { sp: h.name, pid, signal: 'SIGKILL', took };
    }).then(async (r) => {
      const { took, ...rest } = r;
      let timer: NodeJS.Timeout | undefined;
      const t = took ? await Promise.race([took, new Promise<null>((res) => (timer = setTimeout(() => res(null), 30_000)))]) : null;
      clearTimeout(timer); // a pending timer would keep the process alive for 30 s after it closed
      return { ...rest, takeover: t };
    });
  }

  /** Boots a crashed SP: it drops its superseded cache/vault, then gets LUNs back per failback. */
  spRestart(spName: string): Promise<unknown> {
    const h = this.checkSp(spName);
    return this.exclusive(async () => {
      this.requirePower('restart an SP');
      if (h.life.state !== 'down') throw new ChassisError('sp-up', 409, `SP ${h.name} is ${h.life.state}; only a down SP can be restarted`);
      const t0 = Date.now();
      const peer = this.sp[peerOf(h.name)];
      h.life.apply('boot');
      await this.spawnSp(h);
      if (peer.life.state === 'up') {
        const rj = await this.cmd<{ consumed: number }>(h, 'rejoin');
        this.ownership.spUp(h.name);
        const served = await this.cmd<{ port: number }>(h, 'serve', { owned: [], cacheDirty: Object.fromEntries(this.cacheDirty) });
        this.rememberPort(h, served.port);
        h.life.apply('booted');
        await Promise.all([this.cmd(h, 'peer', { up: true }), this.cmd(peer, 'peer', { up: true })]);
        this.publish('sp.rejoined', { sp: h.name, supersededVaultGeneration: rj.consumed, ms: Date.now() - t0 });
        let failback: unknown = [];
        if (this.opts.sps.failback === 'automatic') {
          const pending = this.ownership.failbackPending().filter((l) => this.ownership.defaultOwner(l) === h.name);
          failback = await this.moveLuns(pending, h.name, 'failback');
        } else {
          this.publish('sp.failback-pending', { sp: h.name, luns: this.ownership.failbackPending(), policy: 'manual' });
        }
        return { sp: h.name, pid: h.pid, port: h.port, ms: Date.now() - t0, failback, failbackPolicy: this.opts.sps.failback };
      }
      // Both SPs were down: this one restores everything alone.
      this.ownership.spUp(h.name);
      const r = await this.cmd(h, 'restore', { replay: this.ownership.lunsOwnedBy(h.name) });
      const restored = await this.finishRestore([h], [r]);
      return { sp: h.name, pid: h.pid, port: h.port, ms: Date.now() - t0, restored };
    });
  }

  // ---- trespass ----

  private findLun(ref: string | number): { id: number; name: string } {
    const l = this.array.getLun(ref);
    if (!l) throw new ChassisError('not-found', 404, `no LUN ${JSON.stringify(ref)} in array ${this.array.name}`);
    return { id: l.id, name: l.name };
  }

  trespass(ref: string | number, to?: string): Promise<unknown> {
    return this.exclusive(async () => {
      this.requirePower('trespass');
      const lun = this.findLun(ref);
      const from = this.ownership.owner(lun.id);
      const target = to === undefined ? (from ? peerOf(from) : this.ownership.defaultOwner(lun.id)) : this.checkSp(to).name;
      if (this.sp[target].life.state !== 'up') throw new ChassisError('sp-down', 409, `cannot trespass LUN ${lun.name} to SP ${target}: SP ${target} is ${this.sp[target].life.state}`);
      if (this.cacheDirty.has(lun.id)) throw new ChassisError('cache-dirty', 409, `LUN ${lun.name} is cache dirty; recover it first`);
      if (from === target) return { lun: lun.id, name: lun.name, from, to: target, moved: false };
      const [r] = await this.moveLuns([lun.id], target, 'trespass');
      return { lun: lun.id, name: lun.name, ...r, moved: true };
    });
  }

  /** Quiesce + destage on the old owner, move ownership, build the cache on the new owner, resume. */
  private async moveLuns(luns: number[], to: SpName, kind: 'trespass' | 'failback'): Promise<Record<string, unknown>[]> {
    const out: Record<string, unknown>[] = [];
    const target = this.sp[to];
    for (const lun of luns) {
      const t0 = Date.now();
      const from = this.ownership.owner(lun);
      const old = from ? this.sp[from] : null;
      let released: { destagedBytes: number; ms: number } = { destagedBytes: 0, ms: 0 };
      if (old) {
        try {
          released = await this.cmd(old, 'release', { lun });
        } catch (e) {
          await this.cmd(old, 'acquire', { lun }).catch(() => undefined);
          throw new ChassisError('io', 500, `trespass of LUN ${lun}: SP ${old.name} could not destage: ${(e as Error).message}`);
        }
      }
      if (kind === 'failback') this.ownership.failback('automatic');
      else this.ownership.trespass(lun, to);
      await this.cmd(target, 'acquire', { lun });
      if (old) await this.cmd(old, 'forward', { lun });
      const ms = Date.now() - t0;
      const rec = { lun, from, to, destagedBytes: released.destagedBytes, quiesceMs: released.ms, ms };
      this.publish(kind === 'trespass' ? 'lun.trespassed' : 'lun.failed-back', rec);
      out.push(rec);
    }
    return out;
  }

  // ---- cache dirty ----

  recover(ref: string | number, acceptDataLoss: boolean): Promise<unknown> {
    return this.exclusive(async () => {
      const lun = this.findLun(ref);
      if (!this.cacheDirty.has(lun.id)) throw new ChassisError('not-cache-dirty', 409, `LUN ${lun.name} is not cache dirty; nothing to recover`);
      if (!acceptDataLoss) throw new ChassisError('invalid-argument', 400, `recovering LUN ${lun.name} accepts the loss of its cached writes: pass --accept-data-loss`);
      const reason = this.cacheDirty.get(lun.id);
      this.cacheDirty.delete(lun.id);
      await this.saveState();
      const owner = this.ownership.owner(lun.id);
      await Promise.all(this.upSps().map((h) => this.cmd(h, 'cache-dirty', { lun: lun.id, on: false, owner })));
      this.publish('lun.recovered', { lun: lun.id, name: lun.name, dataLossAccepted: true, reason });
      return { lun: lun.id, name: lun.name, recovered: true };
    });
  }

  // ---- power and battery ----

  powerFail(): Promise<unknown> {
    if (this.power === 'restoring') {
      // A second failure during the restore: cut the booting SPs; nothing is consumed yet.
      const hs = [this.sp.A, this.sp.B];
      for (const h of hs) {
        h.expectExit = true;
        h.proc?.kill('SIGKILL');
      }
      this.publish('power.failed', { during: 'restore', holdUpMs: 0 });
      return this.exclusive(async () => ({ power: this.power, during: 'restore' }));
    }
    return this.exclusive(async () => {
      this.requirePower('fail power');
      const t0 = Date.now();
      this.power = 'failing';
      const holdUpMs = this.battery.failed ? 0 : Math.floor((this.battery.holdUpMs * this.battery.charge) / 100);
      this.publish('power.failed', { holdUpMs, battery: { ...this.batteryView() } });
      // The mirror driver goes down with the array (what it has on disk is what a crash leaves),
      // while the SPs hold host I/O and dump. Its I/O in flight on the SPs' caches ends with
      // them (power off) or goes on (power back mid-dump). The SPs of the next power-up wait
      // for the roles it finds when it reopens.
      if (this.opts.mirror) this.mirrorRoles = null;
      const lost = this.opts.mirror
        ? this.opts.mirror.powerLost().catch((e: unknown) => this.publish('sp.error', { problem: `mirror driver at power loss: ${(e as Error).message}` }))
        : Promise.resolve();
      const hs = [this.sp.A, this.sp.B];
      const results = await Promise.all(
        hs.map(async (h) => {
          if (!h.proc) {
            if (h.life.state === 'down') h.life.apply(holdUpMs > 0 ? 'power-fail' : 'power-cut');
            return { sp: h.name, state: 'not running' };
          }
          h.expectExit = true;
          if (holdUpMs > 0 && h.life.state === 'up') h.life.apply('power-fail');
          try {
            const r = await this.cmd<Record<string, unknown>>(h, 'power-fail', { holdUpMs, bytesPerSec: this.opts.sps.vaultBytesPerSec }, holdUpMs + 30_000);
            if (r.aborted) {
              h.expectExit = false;
              h.life.apply('power-restore');
            } else {
              await h.exited;
              if (h.life.state === 'dumping') h.life.apply(r.dumped ? 'dump-done' : 'hold-up-expired');
              else if (h.life.state !== 'off') h.life.apply('power-cut');
            }
            this.publish('sp.dump', { sp: h.name, ...r });
            return { sp: h.name, ...r };
          } catch (e) {
            await h.exited;
            if (h.life.state !== 'off') h.life.apply(h.life.state === 'dumping' ? 'crash' : 'power-cut');
            return { sp: h.name, error: (e as Error).message };
          }
        }),
      );
      if (results.some((r) => (r as { aborted?: boolean }).aborted)) {
        this.power = 'on';
        this.publish('power.on', { ms: Date.now() - t0, during: 'dump' });
        await lost;
        return { power: 'on', restoredMidDump: true, sps: results };
      }
      this.ownership.takeOver('A');
      this.ownership.takeOver('B');
      this.power = 'off';
      this.drainBattery(Math.min(holdUpMs, Date.now() - t0));
      await lost;
      this.publish('power.off', { ms: Date.now() - t0, sps: results });
      return { power: 'off', holdUpMs, ms: Date.now() - t0, sps: results } as Record<string, unknown>;
    }).then(async (r) => {
      if (r.power === 'on') await this.mirrorPowerBack(); // power returned in the middle of the dump
      return r;
    });
  }

  private async mirrorPowerBack(): Promise<void> {
    if (!this.opts.mirror || this.power !== 'on') return;
    await this.opts.mirror.powerBack().catch((e: unknown) => this.publish('sp.error', { problem: `mirror driver at power restore: ${(e as Error).message}` }));
  }

  powerRestore(): Promise<unknown> {
    if (this.power === 'failing') {
      // Power back in the middle of the dump: the SPs never lost memory; they abandon the dump.
      for (const h of [this.sp.A, this.sp.B]) if (h.proc) void this.cmd(h, 'power-restore').catch(() => undefined);
      this.publish('power.restored', { during: 'dump' });
      return this.exclusive(async () => ({ power: this.power, restoredMidDump: true }));
    }
    return this.exclusive(async () => {
      if (this.power !== 'off') throw new ChassisError('power-on', 409, `array ${this.array.name} power is ${this.power}, not off`);
      this.publish('power.restored', {});
      return this.powerOn();
    }).then(async (r) => {
      // Outside the exclusive section: the driver's I/O may need a takeover to finish.
      await this.mirrorPowerBack();
      return r;
    });
  }

  /** Holding the SPs up for `ms` used that share of a full battery's hold-up. */
  private drainBattery(ms: number): void {
    const b = this.battery;
    if (b.failed || b.holdUpMs <= 0 || ms <= 0) return;
    b.charge = Math.max(0, Math.round((b.charge - (100 * ms) / b.holdUpMs) * 10) / 10);
    this.publish('battery.charge', { charge: b.charge, cause: 'hold-up', ms });
  }

  /**
   * Recharging with power on, one step a second. The SPs hear of it when the charge crosses a
   * threshold of the cache-mode policy (which keeps its own hysteresis) and when it is full.
   */
  private rechargeTick(): void {
    const b = this.battery;
    if (this.closing || this.power !== 'on' || b.failed || b.charge >= 100 || this.opts.sps.battery.rechargePerSec <= 0) return;
    const before = b.charge;
    b.charge = Math.min(100, Math.round((b.charge + this.opts.sps.battery.rechargePerSec) * 10) / 10);
    const crossed = [b.thresholds.low, b.thresholds.high, 100].some((t) => before < t && b.charge >= t);
    if (!crossed) return;
    this.publish('battery.charge', { charge: b.charge, cause: 'recharge' });
    void this.broadcastBattery();
  }

  private async broadcastBattery(): Promise<void> {
    await Promise.all(this.upSps().map((h) => this.cmd(h, 'battery', { battery: this.batteryView() }).catch(() => undefined)));
  }

  batteryFail(undetected: boolean): Promise<unknown> {
    return this.exclusive(async () => {
      this.battery.failed = true;
      this.battery.detected = !undetected;
      this.publish('battery.failed', { detected: !undetected });
      await this.broadcastBattery();
      return { battery: this.batteryStatus() };
    });
  }

  batteryRepair(): Promise<unknown> {
    return this.exclusive(async () => {
      this.battery.failed = false;
      this.battery.detected = true;
      this.publish('battery.repaired', {});
      await this.broadcastBattery();
      return { battery: this.batteryStatus() };
    });
  }

  batteryCharge(charge: number): Promise<unknown> {
    if (!Number.isFinite(charge) || charge < 0 || charge > 100) return Promise.reject(new ChassisError('invalid-argument', 400, `battery charge must be 0..100, not ${charge}`));
    return this.exclusive(async () => {
      this.battery.charge = charge;
      this.publish('battery.charge', { charge });
      await this.broadcastBattery();
      return { battery: this.batteryStatus() };
    });
  }

  batteryStatus(): Record<string, unknown> {
    const b = this.battery;
    return {
      state: b.failed ? (b.detected ? 'failed' : 'failed (not yet detected)') : b.charge < b.thresholds.low ? 'low' : 'ok',
      failed: b.failed,
      detected: b.detected,
      charge: b.charge,
      holdUpMs: b.failed ? 0 : b.holdUpMs,
      configuredHoldUpMs: b.holdUpMs,
      thresholds: b.thresholds,
    };
  }

  // ---- LUN table changes ----

  private async onLunCreated(id: number): Promise<void> {
    const l = this.array.getLun(id);
    if (!l) return;
    await this.exclusive(async () => {
      this.ownership.addLun(id, this.defaultOwnerOf(id, l.name));
      const owner = this.ownership.owner(id);
      const spec: SpLunSpec = { id, name: l.name, size: l.size, blockSize: l.blockSize, imagePath: l.imagePath };
      await Promise.all(this.upSps().map((h) => this.cmd(h, 'lun-add', { lun: spec, owner }).catch(() => undefined)));
    });
  }

  private async onLunGrown(id: number): Promise<void> {
    const l = this.array.getLun(id);
    if (!l) return;
    await this.exclusive(async () => {
      await Promise.all(this.upSps().map((h) => this.cmd(h, 'lun-grow', { lun: id, size: l.size }).catch(() => undefined)));
    });
  }

  private async onLunDeleted(id: number): Promise<void> {
    await this.exclusive(async () => {
      await Promise.all(this.upSps().map((h) => this.cmd(h, 'lun-remove', { lun: id }).catch(() => undefined)));
      try {
        this.ownership.removeLun(id);
      } catch {
        /* unknown already */
      }
      if (this.cacheDirty.delete(id)) await this.saveState();
    });
  }

  // ---- status ----

  async status(): Promise<Record<string, unknown>> {
    const sps = await Promise.all(
      [this.sp.A, this.sp.B].map(async (h) => {
        let s: Record<string, unknown> | undefined;
        if (h.proc && h.life.state === 'up') {
          s = await this.cmd<Record<string, unknown>>(h, 'status', {}, 2000).catch(() => undefined);
          if (s) h.lastStatus = s;
        }
        const cache = (s?.cache as Record<string, unknown> | undefined) ?? { size: this.opts.sps.cacheBytes, dirtyBytes: 0, mode: null, reason: h.life.state === 'up' ? 'unknown' : `SP ${h.life.state}`, detail: '' };
        return {
          name: h.name,
          state: h.life.state,
          pid: h.pid,
          nbd: { host: this.opts.nbd.bind, port: h.port ?? this.configuredPort(h.name) },
          lunsOwned: this.ownership.lunsOwnedBy(h.name),
          cache,
          peerConnected: s?.peerConnected ?? false,
          peerMirrorBytes: s?.peerMirrorBytes ?? 0,
          sessions: s?.sessions ?? 0,
        };
      }),
    );
    return {
      power: this.power,
      battery: this.batteryStatus(),
      failback: this.opts.sps.failback,
      sps,
      lastTakeover: this.lastTakeover,
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
    const cd = this.cacheDirty.get(id);
    return {
      defaultOwner: def,
      currentOwner: cur,
      ...(cd !== undefined ? { cacheDirty: true, cacheDirtyReason: cd, state: 'cache-dirty' } : { cacheDirty: false }),
    };
  }

  endpoints(): { host: string; port: number; sp: SpName }[] {
    return (['A', 'B'] as const).map((n, i) => ({ host: this.opts.nbd.bind, port: this.sp[n].port ?? this.opts.nbd.ports[i]!, sp: n }));
  }

  get powerState(): PowerState {
    return this.power;
  }

  spState(name: SpName): SpState {
    return this.sp[name].life.state;
  }

  /** Orderly stop: each SP destages its cache and exits. */
  async close(): Promise<void> {
    await this.chain;
    this.closing = true;
    clearInterval(this.rechargeTimer);
    await Promise.all(
      [this.sp.A, this.sp.B].map(async (h) => {
        if (!h.proc) return;
        h.expectExit = true;
        await this.cmd(h, 'shutdown', {}, 30_000).catch(() => h.proc?.kill('SIGKILL'));
        const t = setTimeout(() => h.proc?.kill('SIGKILL'), 10_000);
        await h.exited;
        clearTimeout(t);
        if (h.life.state === 'up') h.life.apply('shutdown' as SpEvent);
      }),
    );
    // Only now: the SPs' last host flushes went through the mirror driver.
    await this.hostIoServer?.close().catch(() => undefined);
    this.hostIoServer = null;
  }
}
