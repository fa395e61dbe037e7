/**
 * One storage processor (SP) as its own OS process, driven by the chassis over the Node IPC
 * channel (see ./protocol.ts). It opens every LUN's image, serves every LUN on its NBD host port
 * (owner: through its WriteCache; peer: forwarded over CMI), mirrors its write-back cache to the
 * peer over CMI, keeps the peer's mirror in a PeerMirrorStore, and dumps/restores its vault.
 */
import { randomUUID } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { FileBackingStore } from '../../block/index.js';
import { BlockError } from '../../block/device.js';
import { NbdServer, type ExportCatalog, type NbdExport } from '../../nbd/index.js';
import { CacheBudget, PeerMirrorStore, WriteCache, type CacheMode, type MirrorPage } from '../cache/index.js';
import { CmiCacheMirror, CmiClient, CmiError, CmiServer, decodeMirrorPages, decodePageRefs } from '../cmi/index.js';
import { cacheModePolicy, SpLifecycle, type CacheModeDecision, type SpEvent } from '../sp/index.js';
import { Vault, type VaultCacheSection, type VaultImage } from '../vault/index.js';
import { formatSize } from '../size.js';
import { execOn, LunRouter, type IoOp, type IoResult, type RouteState } from './router.js';
import { cmiSocketPath, markerPath, spChassisSocketPath, spDir, vaultDir, type BatteryView, type MirrorRole, type SpInit, type SpLunSpec, type ToSp } from './protocol.js';

interface SpLun {
  spec: SpLunSpec;
  store: FileBackingStore;
  router: LunRouter;
  cache: WriteCache | null;
}

export class SpProcess {
  readonly sp: 'A' | 'B';
  readonly peer: 'A' | 'B';
  private readonly init: SpInit;
  private readonly luns = new Map<number, SpLun>();
  private readonly peerStore = new PeerMirrorStore();
  private readonly budget: CacheBudget;
  private readonly life: SpLifecycle;
  private readonly vault: Vault;
  private cmiServer: CmiServer | null = null;
  private client: CmiClient | null = null;
  /** Mirroring (the driver runs in the chassis): the chassis's I/O on this SP's caches. */
  private chassisServer: CmiServer | null = null;
  /** ...and this SP's channel to the driver for host writes of primary images. */
  private chassisClient: Promise<CmiClient> | null = null;
  /** Every LUN's mirror role; null: not known yet; undefined: the array has no mirror driver. */
  private mirrorRoles: Record<string, MirrorRole> | null | undefined;
  /** The chassis's host-I/O channel ended outside a shutdown: the chassis died, this process stops. */
  private chassisLost = false;
  private shuttingDown = false;
  private nbd: NbdServer | null = null;
  private nbdPort = 0;
  private battery: BatteryView;
  private decision: CacheModeDecision = { mode: 'write-through', reason: 'peer SP down', detail: 'starting' };
  private policyChain: Promise<void> = Promise.resolve();
  private vaultUsable = true;
  private marked = new Set<number>();
  private markerChain: Promise<void> = Promise.resolve();
  private markerTimer: NodeJS.Timeout | null = null;
  private powerFailing = false;
  private abortDump = false;
  private readonly bootId = randomUUID();
  private peerWanted = false;

  constructor(
    init: SpInit,
    private readonly send: (m: unknown) => void,
  ) {
    this.init = init;
    this.sp = init.sp;
    this.peer = init.sp === 'A' ? 'B' : 'A';
    this.budget = new CacheBudget(init.cacheBytes, { highWatermark: init.cache.highWatermark, lowWatermark: init.cache.lowWatermark });
    this.life = new SpLifecycle(this.sp, 'booting');
    // The chassis publishes sp.state from its own view of each SP; this is the process's own view.
    this.life.on('transition', (r) => this.event('sp.process-state', { from: r.from, to: r.to, via: r.event }));
    this.vault = new Vault(vaultDir(init.dir, this.sp), this.sp);
    this.battery = init.battery;
    this.mirrorRoles = init.mirror ? init.mirror.roles : undefined;
  }

  event(type: string, details: Record<string, unknown> = {}): void {
    this.send({ type: 'event', event: { type, sp: this.sp, ...details } });
  }

  // ---- start-up ----

  async start(): Promise<void> {
    await fsp.mkdir(spDir(this.init.dir, this.sp), { recursive: true });
    try {
      await this.vault.ensure();
    } catch {
      this.vaultUsable = false;
    }
    this.marked = new Set(await readMarkers(markerPath(this.init.dir, this.sp)));
    for (const spec of this.init.luns) await this.openLun(spec, 'held');
    this.cmiServer = new CmiServer(cmiSocketPath(this.init.dir, this.sp), {
      array: this.init.array,
      expectFrom: this.peer,
      handler: (req) => this.onCmi(req.op, req.args, req.bin),
    });
    this.cmiServer.on('protocol-error', (why: string) => this.event('cmi.protocol-error', { problem: why }));
    await this.cmiServer.listen();
    if (this.init.mirror) {
      this.chassisServer = new CmiServer(spChassisSocketPath(this.init.dir, this.sp), {
        array: this.init.array,
        expectFrom: 'chassis',
        handler: (req) => this.onChassisIo(req.op, req.args, req.bin),
      });
      this.chassisServer.on('protocol-error', (why: string) => this.event('cmi.protocol-error', { problem: `chassis channel: ${why}` }));
      await this.chassisServer.listen();
    }
    this.markerTimer = setInterval(() => this.sweepMarkers(), 250);
    this.markerTimer.unref();
  }

  private async openLun(spec: SpLunSpec, initial: RouteState): Promise<SpLun> {
    const store = await FileBackingStore.open(spec.imagePath, { readOnly: this.init.readOnly, blockSize: spec.blockSize });
    const router = new LunRouter(spec.id, spec.size, spec.blockSize, store.capabilities, this.init.readOnly, {
      execLocal: (lun, op, data) => this.execLocal(lun, op, data),
      forward: (lun, op, data) => this.forward(lun, op, data),
      mirrored: (lun, op, data) => this.toMirrorDriver(lun, op, data),
      powerFailing: () => this.powerFailing || this.chassisLost,
    }, initial);
    router.setMirror(this.mirrorStateOf(spec.id));
    const l: SpLun = { spec, store, router, cache: null };
    this.luns.set(spec.id, l);
    return l;
  }

  private lun(id: number): SpLun {
    const l = this.luns.get(id);
    if (!l) throw new Error(`SP ${this.sp} has no LUN ${id}`);
    return l;
  }

  private newCache(l: SpLun): WriteCache {
    return new WriteCache({
      lun: l.spec.id,
      lower: l.store,
      budget: this.budget,
      mode: 'write-through',
      idleMs: this.init.cache.idleMs,
      initialGeneration: Date.now() * 1000,
      onEvent: (e) => {
        if (e.type === 'mode') return; // reported per SP by the policy
        this.event(`cache.${e.type}`, { ...e });
      },
    });
  }

  // ---- host I/O ----

  private async execLocal(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    const l = this.lun(lun);
    const cache = l.cache;
    if (!cache) throw new BlockError('EIO', `SP ${this.sp} owns LUN ${lun} but has no cache for it`);
    if ((op.op === 'write' || op.op === 'trim' || op.op === 'zero') && cache.writeBackActive && !this.marked.has(lun)) {
      await this.mark(lun);
    }
    return execOn(cache, op, data);
  }

  private async forward(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    const c = this.client;
    if (!c || c.closed) throw new CmiError('peer-gone', `no CMI connection to SP ${this.peer}`);
    const r = await c.call('io', { lun, ...op }, data);
    if (op.op === 'read') return { data: r.bin };
    if (op.op === 'status') return { extents: r.result.extents as IoResult['extents'] };
    return {};
  }

  // ---- mirroring: the driver runs in the chassis ----

  private mirrorStateOf(lun: number): MirrorRole | null | 'pending' {
    if (this.mirrorRoles === undefined) return null;
    if (this.mirrorRoles === null) return 'pending';
    return this.mirrorRoles[String(lun)] ?? null;
  }

  private setMirrorRoles(roles: Record<string, MirrorRole>): void {
    this.mirrorRoles = roles;
    for (const l of this.luns.values()) l.router.setMirror(this.mirrorStateOf(l.spec.id));
  }

  private chassisConn(): Promise<CmiClient> {
    const have = this.chassisClient;
    if (have) return have;
    const socket = this.init.mirror?.socket;
    if (!socket) return Promise.reject(new CmiError('peer-gone', `SP ${this.sp}: the array has no mirror driver`));
    const p = CmiClient.connect(socket, { array: this.init.array, from: this.sp, bootId: this.bootId }).then((c) => {
      c.on('close', () => {
        if (this.chassisClient === p) this.chassisClient = null;
        if (!this.shuttingDown) this.chassisLost = true;
      });
      return c;
    });
    this.chassisClient = p;
    p.catch(() => {
      if (this.chassisClient === p) this.chassisClient = null;
      if (!this.shuttingDown) this.chassisLost = true;
    });
    return p;
  }

  /** A host write/trim/zero/flush of a primary image: the chassis's mirror driver runs it. */
  private async toMirrorDriver(lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
    const c = await this.chassisConn();
    const r = await c.call('host-io', { lun, ...op }, data);
    if (op.op === 'read') return { data: r.bin };
    if (op.op === 'status') return { extents: r.result.extents as IoResult['extents'] };
    return {};
  }

  /** The chassis's mirror driver reads and writes this SP's cache of a LUN it owns. */
  private onChassisIo(op: string, args: Record<string, unknown>, bin: Buffer): Promise<{ result?: Record<string, unknown>; bin?: Buffer } | void> {
    if (this.powerFailing) throw new CmiError('power-fail', `SP ${this.sp} lost power`);
    if (op !== 'cache-io') throw new CmiError('unknown-op', `unknown chassis operation ${op}`);
    const lun = Number(args.lun);
    const l = this.luns.get(lun);
    if (!l) throw new CmiError('not-found', `SP ${this.sp} has no LUN ${lun}`);
    const io = args as unknown as IoOp;
    // Only the owner runs it (held waits); anything else answers not-owner and the chassis
    // retries on the owner its ownership table names.
    return l.router.run(io, io.op === 'write' ? bin : undefined, true).then((r) => ({
      result: r.extents ? { extents: r.extents } : {},
      bin: r.data,
    }));
  }

  // ---- CMI server side ----

  private onCmi(op: string, args: Record<string, unknown>, bin: Buffer): Promise<{ result?: Record<string, unknown>; bin?: Buffer } | void> | void {
    if (this.powerFailing) throw new CmiError('power-fail', `SP ${this.sp} lost power`);
    const lun = Number(args.lun);
    switch (op) {
      case 'mirror.reset':
        this.peerStore.reset(lun);
        return;
      case 'mirror.pages':
        this.peerStore.mirror(lun, decodeMirrorPages(args, bin));
        return;
      case 'mirror.release':
        this.peerStore.release(lun, decodePageRefs(args));
        return;
      case 'mirror.discard':
        this.peerStore.discard(lun, Number(args.offset), Number(args.length), Number(args.generation));
        return;
      case 'io': {
        const l = this.luns.get(lun);
        if (!l) throw new CmiError('not-found', `SP ${this.sp} has no LUN ${lun}`);
        const io = args as unknown as IoOp;
        return l.router.hostRun(io, io.op === 'write' ? bin : undefined, true).then((r) => ({
          result: r.extents ? { extents: r.extents } : {},
          bin: r.data,
        }));
      }
      default:
        throw new CmiError('unknown-op', `unknown CMI operation ${op}`);
    }
  }

  // ---- peer and cache mode ----

  private async connectPeer(): Promise<void> {
    this.peerWanted = true;
    if (this.client && !this.client.closed) return;
    const deadline = Date.now() + 10_000;
    let lastErr: Error | null = null;
    while (Date.now() < deadline && this.peerWanted) {
      try {
        const c = await CmiClient.connect(cmiSocketPath(this.init.dir, this.peer), { array: this.init.array, from: this.sp, bootId: this.bootId });
        this.client = c;
        c.on('close', () => {
          if (this.client !== c) return;
          this.client = null;
          this.event('cmi.down', { peer: this.peer });
          this.reevaluate();
        });
        this.event('cmi.up', { peer: this.peer });
        this.reevaluate();
        return;
      } catch (e) {
        lastErr = e as Error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`SP ${this.sp}: cannot connect CMI to SP ${this.peer}: ${lastErr?.message ?? 'cancelled'}`);
  }

  private disconnectPeer(): void {
    this.peerWanted = false;
    const c = this.client;
    this.client = null;
    c?.close();
    this.reevaluate();
  }

  private get peerUp(): boolean {
    return this.client !== null && !this.client.closed;
  }

  /** Re-runs the cache-mode policy and applies it to every cache (serialized). */
  reevaluate(): Promise<void> {
    const run = async () => {
      const d = cacheModePolicy({
        previous: this.decision.mode,
        peerUp: this.peerUp,
        batteryFailed: this.battery.failed && this.battery.detected,
        batteryCharge: this.battery.charge,
        vaultUsable: this.vaultUsable,
        writeThroughConfigured: this.init.cache.writeThrough,
        thresholds: this.battery.thresholds,
      });
      const prev = this.decision;
      this.decision = d;
      await this.applyMode();
      if (d.mode !== prev.mode || d.reason !== prev.reason) this.event('sp.cache-mode', { from: prev.mode, to: d.mode, reason: d.reason, detail: d.detail });
    };
    const p = this.policyChain.then(run, run);
    this.policyChain = p.catch((e: unknown) => this.event('sp.error', { problem: `cache mode: ${(e as Error).message}` }));
    return this.policyChain;
  }

  private async applyMode(cacheOnly?: WriteCache): Promise<void> {
    const caches = cacheOnly ? [cacheOnly] : [...this.luns.values()].map((l) => l.cache).filter((c): c is WriteCache => c !== null);
    const mode: CacheMode = this.decision.mode;
    const client = this.client;
    for (const c of caches) {
      if (client && !client.closed) {
        if (!c.mirror) {
          try {
            await c.attachMirror(new CmiCacheMirror(client));
          } catch {
            c.setMode('write-through');
            continue;
          }
        }
      } else if (c.mirror) {
        c.detachMirror();
      }
      c.setMode(c.mirror ? mode : 'write-through');
    }
  }

  // ---- dirty-LUN markers ----

  private mark(lun: number): Promise<void> {
    this.marked.add(lun);
    return this.persistMarkers();
  }

  private persistMarkers(): Promise<void> {
    const run = () => writeMarkers(markerPath(this.init.dir, this.sp), [...this.marked].sort((a, b) => a - b));
    const p = this.markerChain.then(run, run);
    this.markerChain = p.catch(() => undefined);
    return p;
  }

  /** Clears markers of LUNs whose cache holds nothing dirty (lazily, off the write path). */
  private sweepMarkers(): void {
    if (this.powerFailing) return;
    let changed = false;
    for (const lun of [...this.marked]) {
      const l = this.luns.get(lun);
      if (!l) {
        this.marked.delete(lun);
        changed = true;
        continue;
      }
      if (l.router.state === 'owner' && l.router.inflight === 0 && (!l.cache || l.cache.dirtyBytes === 0)) {
        this.marked.delete(lun);
        changed = true;
      }
    }
    if (changed) void this.persistMarkers().catch(() => undefined);
  }

  // ---- commands from the chassis ----

  async command(op: string, a: Record<string, unknown>): Promise<unknown> {
    switch (op) {
      case 'restore':
        return this.restore(a.replay as number[]);
      case 'commit-restore':
        return this.commitRestore();
      case 'rejoin':
        return this.rejoin();
      case 'serve':
        return this.serve(a.owned as number[], (a.cacheDirty as Record<string, string>) ?? {});
      case 'peer':
        if (a.up) await this.connectPeer();
        else this.disconnectPeer();
        return { peerUp: this.peerUp };
      case 'release':
        return this.release(Number(a.lun));
      case 'acquire':
        return this.acquire(Number(a.lun));
      case 'forward':
        this.lun(Number(a.lun)).router.setState('forward');
        return {};
      case 'takeover':
        return this.takeover(a.luns as number[]);
      case 'battery':
        this.battery = a.battery as BatteryView;
        await this.reevaluate();
        return { mode: this.decision };
      case 'cache-dirty': {
        const l = this.lun(Number(a.lun));
        if (a.on) l.router.setState('cache-dirty', String(a.reason ?? ''));
        else l.router.setState(a.owner === this.sp ? 'owner' : 'forward');
        if (!a.on && a.owner === this.sp && !l.cache) {
          l.cache = this.newCache(l);
          await this.applyMode(l.cache);
        }
        return {};
      }
      case 'lun-add': {
        const spec = a.lun as SpLunSpec;
        const l = await this.openLun(spec, a.owner === this.sp ? 'held' : 'forward');
        if (a.owner === this.sp) {
          l.cache = this.newCache(l);
          await this.applyMode(l.cache);
          l.router.setState('owner');
        }
        return {};
      }
      case 'lun-grow': {
        const l = this.lun(Number(a.lun));
        const size = Number(a.size);
        // The chassis has already extended the image file; this SP's handle and stack follow.
        if (size > l.store.size) await l.store.grow(size);
        l.spec.size = size;
        l.router.size = size;
        return {};
      }
      case 'lun-remove': {
        const l = this.lun(Number(a.lun));
        await this.nbd?.disconnectExport(l.spec.name, 2000);
        l.router.setState('held');
        if (l.cache) {
          await l.cache.destageAll().catch(() => undefined);
          await l.cache.halt();
        }
        this.peerStore.reset(l.spec.id);
        await l.store.close().catch(() => undefined);
        this.luns.delete(l.spec.id);
        return {};
      }
      case 'mirror-roles':
        this.setMirrorRoles((a.roles as Record<string, MirrorRole>) ?? {});
        return {};
      case 'sessions':
        return { sessions: this.nbd?.sessionInfo().map((s) => ({ id: s.id, export: s.export, remote: s.remote })) ?? [] };
      case 'disconnect':
        await this.nbd?.disconnectExport(String(a.export), 2000);
        return {};
      case 'status':
        return this.status();
      case 'power-fail':
        return this.powerFail(Number(a.holdUpMs), Number(a.bytesPerSec ?? 0));
      case 'power-restore':
        this.abortDump = true;
        return {};
      case 'shutdown':
        return this.shutdown();
      default:
        throw new Error(`unknown SP command ${op}`);
    }
  }

  /**
   * Boot after power-up (or when both SPs were down): loads both SPs' vaults (read-only),
   * replays to the image files every cached page of the LUNs in `replay` (per page the newest
   * generation from either vault), and works out which of them lost dirty cache: a LUN marked
   * "may hold dirty cache" by an SP, when neither vault holds a fresh image.
   */
  private async restore(replay: number[]): Promise<unknown> {
    const t0 = Date.now();
    const reports: Record<string, unknown> = {};
    const fresh: Record<string, VaultImage | null> = {};
    for (const who of ['A', 'B'] as const) {
      const v = new Vault(vaultDir(this.init.dir, who), who);
      try {
        const r = await v.load();
        reports[who] = r.summary;
        fresh[who] = r.image && !r.newerCopyLost ? r.image : null;
        if (r.image && r.newerCopyLost) reports[who] += ' (a newer dump was lost)';
      } catch (e) {
        reports[who] = `unreadable: ${(e as Error).message}`;
        fresh[who] = null;
      }
    }
    const anyImage = fresh.A !== null || fresh.B !== null;
    if (anyImage) this.life.apply('vault-found');
    const marks = new Set<number>([...(await readMarkers(markerPath(this.init.dir, 'A'))), ...(await readMarkers(markerPath(this.init.dir, 'B')))]);
    const replayed: Record<string, number> = {};
    const lost: number[] = [];
    for (const lun of replay) {
      const l = this.luns.get(lun);
      if (!l) continue;
      const best = new Map<number, MirrorPage>();
      for (const img of [fresh.A, fresh.B]) {
        for (const sec of img?.caches ?? []) {
          if (sec.lun !== lun) continue;
          for (const p of sec.pages) {
            const cur = best.get(p.index);
            if (!cur || cur.generation < p.generation) best.set(p.index, p);
          }
        }
      }
      for (const p of [...best.values()].sort((x, y) => x.index - y.index)) {
        const off = p.index * p.data.length;
        if (off >= l.spec.size) continue;
        await l.store.write(off, p.data.subarray(0, Math.min(p.data.length, l.spec.size - off)));
      }
      if (best.size) await l.store.flush();
      replayed[lun] = best.size;
      if (marks.has(lun) && !anyImage) lost.push(lun);
    }
    return { replayed, lost, vaults: reports, ms: Date.now() - t0, found: anyImage };
  }

  /** After every SP replayed: mark this SP's vault images consumed and clear its markers. */
  private async commitRestore(): Promise<unknown> {
    const gen = await this.consumeVault();
    this.marked.clear();
    await this.persistMarkers();
    if (this.life.state === 'restoring') this.life.apply('restore-done');
    return { consumed: gen };
  }

  /** Rejoining while the peer serves: its cache and vault were superseded by the peer's takeover. */
  private async rejoin(): Promise<unknown> {
    const gen = await this.consumeVault();
    this.marked.clear();
    await this.persistMarkers();
    this.peerStore.clear();
    return { consumed: gen };
  }

  private async consumeVault(): Promise<number> {
    const r = await this.vault.load();
    let gen = r.consumedGeneration;
    for (const c of r.copies) if (c.generation !== undefined && c.generation > gen) gen = c.generation;
    await this.vault.markConsumed(gen);
    // A copy whose header is unreadable has no generation to consume: move it aside.
    for (const c of r.copies) {
      if ((c.status === 'torn' || c.status === 'corrupt') && c.generation === undefined) await fsp.rename(c.path, `${c.path}.bad`).catch(() => undefined);
    }
    return gen;
  }

  private async serve(owned: number[], cacheDirty: Record<string, string>): Promise<unknown> {
    for (const l of this.luns.values()) {
      const own = owned.includes(l.spec.id);
      if (own && !l.cache) l.cache = this.newCache(l);
      const dirtyWhy = cacheDirty[String(l.spec.id)];
      if (dirtyWhy !== undefined) l.router.setState('cache-dirty', dirtyWhy);
      else l.router.setState(own ? 'owner' : 'forward');
    }
    await this.reevaluate();
    if (!this.nbd) {
      const catalog = this.catalog();
      const nbd = new NbdServer({ catalog });
      const bound = await nbd.listen(this.init.nbd.port, this.init.nbd.bind);
      this.nbd = nbd;
      this.nbdPort = bound.port;
      nbd.on('session-open', (s: { id: number; remote: string; export: string }) => this.event('session.opened', { session: s.id, remote: s.remote, export: s.export }));
      nbd.on('session-close', (s: { id: number; export: string; reason: string }) => this.event('session.closed', { session: s.id, export: s.export, reason: s.reason }));
    }
    const ev: SpEvent = this.life.state === 'restoring' ? 'restore-done' : 'booted';
    if (this.life.state !== 'up') this.life.apply(ev);
    return { port: this.nbdPort, pid: process.pid };
  }

  private catalog(): ExportCatalog {
    const online = () => [...this.luns.values()].sort((a, b) => a.spec.id - b.spec.id);
    const toExport = (l: SpLun): NbdExport => {
      const s = l.router.state;
      const path =
        s === 'owner'
          ? `SP ${this.sp}: optimized path (owner)`
          : s === 'cache-dirty'
            ? `SP ${this.sp}: LUN is cache dirty (I/O fails with EIO until recovered)`
            : `SP ${this.sp}: non-optimized path (forwarded over CMI to the owner SP ${this.peer})`;
      return { name: l.spec.name, description: `sanbox array ${this.init.array} LUN ${l.spec.id} (${formatSize(l.spec.size)}) via ${path}`, device: l.router, readOnly: this.init.readOnly };
    };
    return {
      lookup: (name) => {
        const l = name === '' ? online()[0] : online().find((x) => x.spec.name === name);
        return l ? toExport(l) : undefined;
      },
      list: () => online().map(toExport),
    };
  }

  /** Old owner side of a trespass/failback: quiesce, destage, drop the cache; I/O stays held. */
  private async release(lun: number): Promise<unknown> {
    const l = this.lun(lun);
    const t0 = Date.now();
    l.router.setState('held');
    await l.router.idle();
    const dirty = l.cache?.dirtyBytes ?? 0;
    if (l.cache) {
      await l.cache.destageAll();
      await l.cache.halt();
      l.cache = null;
    }
    return { destagedBytes: dirty, ms: Date.now() - t0 };
  }

  /** New owner side: forget any stale mirror copy, build the cache, serve. */
  private async acquire(lun: number): Promise<unknown> {
    const l = this.lun(lun);
    this.peerStore.reset(lun);
    if (!l.cache) l.cache = this.newCache(l);
    await this.applyMode(l.cache);
    l.router.setState('owner');
    return {};
  }

  /** The peer died: serve its LUNs from our mirror copy of its dirty cache. */
  private async takeover(luns: number[]): Promise<unknown> {
    const t0 = Date.now();
    this.disconnectPeer();
    await this.policyChain;
    let pages = 0;
    for (const lun of luns) {
      const l = this.lun(lun);
      l.router.setState('held');
      const held = this.peerStore.take(lun);
      if (!l.cache) l.cache = this.newCache(l);
      if (held.length) {
        await this.mark(lun);
        await l.cache.loadDirty(held);
        pages += held.length;
      }
      await this.applyMode(l.cache);
      l.router.setState('owner');
    }
    return { ms: Date.now() - t0, pages, luns };
  }

  private status(): unknown {
    let dirty = 0;
    const luns = [...this.luns.values()].map((l) => {
      dirty += l.cache?.dirtyBytes ?? 0;
      return {
        id: l.spec.id,
        name: l.spec.name,
        route: l.router.state,
        dirtyBytes: l.cache?.dirtyBytes ?? 0,
        cacheMode: l.cache?.mode ?? null,
        ...(l.router.state === 'cache-dirty' ? { cacheDirtyReason: l.router.cacheDirtyReason } : {}),
        ...(l.router.mirror !== null ? { mirror: l.router.mirror } : {}),
      };
    });
    return {
      sp: this.sp,
      pid: process.pid,
      state: this.life.state,
      port: this.nbdPort,
      peerConnected: this.peerUp,
      cache: { size: this.budget.capacity, used: this.budget.used, dirtyBytes: dirty, mode: this.decision.mode, reason: this.decision.reason, detail: this.decision.detail },
      peerMirrorBytes: this.peerStore.bytes,
      luns,
      sessions: this.nbd?.sessionCount() ?? 0,
      marked: [...this.marked],
    };
  }

  /**
   * Power lost: stop host I/O (requests wait; the process ends before answering them), refuse
   * peer traffic so nothing new is acknowledged, dump own dirty cache and the peer mirror to the
   * vault within the hold-up budget. Power restored mid-dump: abandon the (torn) dump, mark it
   * consumed and go on serving.
   */
  private async powerFail(holdUpMs: number, bytesPerSec: number): Promise<unknown> {
    const t0 = Date.now();
    this.powerFailing = true;
    this.abortDump = false;
    const before = new Map<number, RouteState>();
    for (const l of this.luns.values()) {
      before.set(l.spec.id, l.router.state);
      if (l.router.state !== 'cache-dirty') l.router.setState('held');
    }
    if (holdUpMs <= 0 || this.life.state !== 'up') {
      if (this.life.state === 'up' || this.life.state === 'booting' || this.life.state === 'restoring') this.life.apply('power-cut');
      return { dumped: false, reason: holdUpMs <= 0 ? 'no battery hold-up' : `SP was ${this.life.state}`, exit: true };
    }
    this.life.apply('power-fail');
    await Promise.race([Promise.all([...this.luns.values()].map((l) => l.router.idle())), new Promise((r) => setTimeout(r, Math.min(1000, holdUpMs / 2)))]);
    const caches: VaultCacheSection[] = [];
    for (const l of this.luns.values()) {
      const pages = l.cache?.dirtyPages() ?? [];
      if (pages.length) caches.push({ lun: l.spec.id, role: 'own', pageSize: l.cache!.pageSize, pages });
    }
    for (const lun of this.peerStore.lunIds()) {
      const pages = this.peerStore.pages(lun);
      if (pages.length) caches.push({ lun, role: 'peer', pageSize: pages[0]!.data.length, pages });
    }
    const dumpStart = Date.now();
    const res = await this.vault.dump(
      { caches, logs: [] },
      {
        deadlineMs: Math.max(0, holdUpMs - (dumpStart - t0)),
        clock: () => (this.abortDump ? Number.POSITIVE_INFINITY : Date.now()),
        throttle: bytesPerSec > 0 ? async (written) => {
          const due = dumpStart + (written / bytesPerSec) * 1000;
          const wait = due - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        } : undefined,
      },
    );
    const dumpMs = Date.now() - dumpStart;
    const pages = caches.reduce((n, c) => n + c.pages.length, 0);
    if (this.abortDump) {
      // Power came back before the dump finished: memory was never lost; the torn copy is
      // superseded by the live cache.
      await this.vault.markConsumed(res.generation).catch(() => undefined);
      this.life.apply('power-restore');
      this.powerFailing = false;
      for (const l of this.luns.values()) l.router.setState(before.get(l.spec.id) ?? 'forward');
      return { dumped: false, aborted: true, ms: dumpMs, bytes: res.bytesWritten, totalBytes: res.totalBytes, pages, generation: res.generation, exit: false };
    }
    this.life.apply(res.complete ? 'dump-done' : 'hold-up-expired');
    return { dumped: res.complete, ms: dumpMs, bytes: res.bytesWritten, totalBytes: res.totalBytes, pages, generation: res.generation, exit: true };
  }

  /** Orderly stop: no new I/O, destage every cache, close everything. */
  private async shutdown(): Promise<unknown> {
    this.shuttingDown = true;
    // Hosts first: the NBD server answers what is in flight (its final flush goes through the
    // routers, so they must still serve), then refuses; only then hold what the peer forwards.
    await this.nbd?.close(2000).catch(() => undefined);
    for (const l of this.luns.values()) if (l.router.state === 'owner') l.router.setState('held');
    let markersChanged = false;
    for (const l of this.luns.values()) {
      await l.router.idle();
      if (l.cache) {
        const clean = await l.cache.destageAll().then(
          () => true,
          (e: unknown) => {
            this.event('sp.error', { problem: `destage at shutdown: ${(e as Error).message}` });
            return false;
          },
        );
        await l.cache.halt();
        l.cache = null;
        // Everything is on disk: the LUN no longer may hold dirty cache (the next boot must not
        // call it cache-dirty). A failed destage keeps the marker, and the next boot says so.
        if (clean && this.marked.delete(l.spec.id)) markersChanged = true;
      }
      await l.store.close().catch(() => undefined);
    }
    if (markersChanged) await this.persistMarkers();
    await this.markerChain;
    this.client?.close();
    await this.cmiServer?.close().catch(() => undefined);
    await this.chassisServer?.close().catch(() => undefined);
    void this.chassisClient?.then((c) => c.close(), () => undefined);
    if (this.markerTimer) clearInterval(this.markerTimer);
    if (this.life.state === 'up') this.life.apply('shutdown');
    return { exit: true };
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

/** Process entry (`sanbox sp serve`): waits for `init` from the chassis over IPC. */
export async function runSpProcess(): Promise<number> {
  if (!process.send) {
    process.stderr.write('sanbox sp serve: must be started by an array chassis (needs an IPC channel)\n');
    return 2;
  }
  const send = (m: unknown) => {
    if (process.connected) process.send!(m);
  };
  // The chassis going away is the array losing power with no hold-up: stop at once.
  process.on('disconnect', () => process.exit(1));
  process.on('SIGINT', () => undefined);
  let sp: SpProcess | null = null;
  return new Promise<number>((resolveExit) => {
    process.on('message', (raw: unknown) => {
      const m = raw as ToSp;
      if (m?.type === 'init') {
        sp = new SpProcess(m.init, send);
        sp.start().then(
          () => send({ type: 'reply', id: m.id, ok: true, result: { pid: process.pid } }),
          (e: unknown) => {
            send({ type: 'reply', id: m.id, ok: false, error: (e as Error).message });
            setTimeout(() => resolveExit(1), 50);
          },
        );
        return;
      }
      if (m?.type === 'cmd') {
        if (!sp) {
          send({ type: 'reply', id: m.id, ok: false, error: 'SP not initialized' });
          return;
        }
        sp.command(m.op, m.args ?? {}).then(
          (result) => {
            send({ type: 'reply', id: m.id, ok: true, result });
            // A dump finished or power was cut: the SP process stops now (whatever it holds in
            // memory is gone, as on real hardware).
            if ((result as { exit?: boolean } | undefined)?.exit) setTimeout(() => process.exit(0), 20);
          },
          (e: unknown) => send({ type: 'reply', id: m.id, ok: false, error: (e as Error).message, code: (e as { code?: string }).code }),
        );
      }
    });
  });
}

