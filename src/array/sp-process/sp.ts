/**
 * One storage processor (SP) as its own OS process, driven by the chassis over the Node IPC
 * channel (see ./protocol.ts). It opens every LUN's image, serves every LUN on its NBD host port
 * (owner: through its WriteCache; peer: forwarded over CMI), mirrors its write-back cache to the
 * peer over CMI, keeps the peer's mirror in a PeerMirrorStore, and dumps/restores its vault.
 *
 * This class is the process's face: start-up, the chassis's commands, status and shutdown. The
 * parts: ./core.ts (shared state), ./lun-stack.ts (`buildLunStack`: each LUN's BlockDevice
 * stack), ./cmi-handlers.ts (CMI servers and clients), ./cache-mode.ts (peer link, cache-mode
 * policy), ./ownership.ts (serve, trespass, takeover), ./power.ts (dump on power failure),
 * ./vault-restore.ts (restore at boot), ./markers.ts (dirty-LUN markers).
 */
import { promises as fsp } from 'node:fs';
import { CmiServer } from '../cmi/index.js';
import { ignoreOnClose } from '../../errors/index.js';
import { connectPeer, disconnectPeer, reevaluate, applyMode } from './cache-mode.js';
import { onChassisIo, onPeerCmi, setRoutes } from './cmi-handlers.js';
import { SpCore } from './core.js';
import { buildLunStack } from './lun-stack.js';
import { acquire, release, serve, takeover } from './ownership.js';
import { powerFail, powerRestore } from './power.js';
import { cmiSocketPath, spChassisSocketPath, spDir, type BatteryView, type HostRoutes, type LunRoute, type SpInit, type SpLunSpec, type ToSp } from './protocol.js';
import { commitRestore, rejoin, restore } from './vault-restore.js';
import { validateDiskFault } from '../../fault/index.js';

/** How long a host session may take to finish when its export goes away. */
const DISCONNECT_GRACE_MS = 2000;
/** At shutdown, how long the NBD server may take to answer what is in flight. */
const NBD_CLOSE_GRACE_MS = 2000;

export class SpProcess {
  readonly sp: 'A' | 'B';
  readonly peer: 'A' | 'B';
  private readonly core: SpCore;

  constructor(init: SpInit, send: (m: unknown) => void) {
    this.core = new SpCore(init, send);
    this.sp = this.core.sp;
    this.peer = this.core.peer;
  }

  event(type: string, details: Record<string, unknown> = {}): void {
    this.core.event(type, details);
  }

  /** Re-runs the cache-mode policy and applies it to every cache (serialized). */
  reevaluate(): Promise<void> {
    return reevaluate(this.core);
  }

  // ---- start-up ----

  async start(): Promise<void> {
    const core = this.core;
    const { init } = core;
    await fsp.mkdir(spDir(init.dir, this.sp), { recursive: true });
    try {
      await core.vault.ensure();
    } catch {
      core.vaultUsable = false; // the cache-mode policy goes write-through and says why
    }
    await core.markers.load();
    for (const spec of init.luns) await buildLunStack(core, spec, 'held');
    core.cmiServer = new CmiServer(cmiSocketPath(init.dir, this.sp), {
      array: init.array,
      expectFrom: this.peer,
      handler: (req) => onPeerCmi(core, req.op, req.args, req.bin),
    });
    core.cmiServer.on('protocol-error', (why: string) => this.event('cmi.protocol-error', { problem: why }));
    await core.cmiServer.listen();
    core.chassisServer = new CmiServer(spChassisSocketPath(init.dir, this.sp), {
      array: init.array,
      expectFrom: 'chassis',
      handler: (req) => onChassisIo(core, req.op, req.args, req.bin),
    });
    core.chassisServer.on('protocol-error', (why: string) => this.event('cmi.protocol-error', { problem: `chassis channel: ${why}` }));
    await core.chassisServer.listen();
    core.markers.startSweeping(
      (lun) => {
        const l = core.luns.get(lun);
        return !l || (l.router.state === 'owner' && l.router.inflight === 0 && (!l.cache || l.cache.dirtyBytes === 0));
      },
      () => core.powerFailing,
    );
  }

  // ---- commands from the chassis ----

  async command(op: string, a: Record<string, unknown>): Promise<unknown> {
    const core = this.core;
    switch (op) {
      case 'restore':
        return restore(core, a.replay as number[]);
      case 'commit-restore':
        return commitRestore(core);
      case 'rejoin':
        return rejoin(core);
      case 'serve':
        return serve(core, a.owned as number[], (a.cacheDirty as Record<string, string>) ?? {});
      case 'peer':
        if (a.up) await connectPeer(core);
        else disconnectPeer(core);
        return { peerUp: core.peerUp };
      case 'release':
        return release(core, Number(a.lun));
      case 'acquire':
        return acquire(core, Number(a.lun));
      case 'forward':
        core.lun(Number(a.lun)).router.setState('forward');
        return {};
      case 'takeover':
        return takeover(core, a.luns as number[]);
      case 'battery':
        core.battery = a.battery as BatteryView;
        await this.reevaluate();
        return { mode: core.decision };
      case 'cache-dirty':
        return this.setCacheDirty(Number(a.lun), Boolean(a.on), String(a.reason ?? ''), a.owner);
      case 'lun-add':
        return this.addLun(a.lun as SpLunSpec, a.owner, (a.route as LunRoute | null) ?? null);
      case 'lun-grow':
        return this.growLun(Number(a.lun), Number(a.size));
      case 'lun-remove':
        return this.removeLun(Number(a.lun));
      case 'routes':
        await setRoutes(core, a.routes as HostRoutes);
        return {};
      case 'sessions':
        return { sessions: core.nbd?.sessionInfo().map((s) => ({ id: s.id, export: s.export, remote: s.remote })) ?? [] };
      case 'disconnect':
        await core.nbd?.disconnectExport(String(a.export), DISCONNECT_GRACE_MS);
        return {};
      case 'disk-fault':
        return this.diskFault(a);
      case 'status':
        return this.status();
      case 'io-stats':
        return { luns: core.ioStats.snapshot() };
      case 'power-fail':
        return powerFail(core, Number(a.holdUpMs), Number(a.bytesPerSec ?? 0));
      case 'power-restore':
        return powerRestore(core);
      case 'shutdown':
        return this.shutdown();
      default:
        throw new Error(`unknown SP command ${op}`);
    }
  }

  // ---- the LUN table ----

  private async setCacheDirty(lun: number, on: boolean, reason: string, owner: unknown): Promise<unknown> {
    const l = this.core.lun(lun);
    if (on) l.router.setState('cache-dirty', reason);
    else l.router.setState(owner === this.sp ? 'owner' : 'forward');
    if (!on && owner === this.sp && !l.cache) {
      l.cache = l.newCache();
      await applyMode(this.core, l.cache);
    }
    return {};
  }

  private async addLun(spec: SpLunSpec, owner: unknown, route: LunRoute | null): Promise<unknown> {
    // The chassis's route for the new LUN holds from its first host request (a clone being made
    // sends its reads to the chassis); routes not known yet: it waits for them like the rest.
    const routes = this.core.routes;
    if (routes) {
      if (route) routes.luns[String(spec.id)] = route;
      else delete routes.luns[String(spec.id)];
    }
    const l = await buildLunStack(this.core, spec, owner === this.sp ? 'held' : 'forward');
    if (owner === this.sp) {
      l.cache = l.newCache();
      await applyMode(this.core, l.cache);
      l.router.setState('owner');
    }
    return {};
  }

  private async growLun(lun: number, size: number): Promise<unknown> {
    const l = this.core.lun(lun);
    // The chassis has already extended the image file; this SP's handle and stack follow.
    if (size > l.store.size) await l.store.grow(size);
    l.spec.size = size;
    l.router.size = size;
    return {};
  }

  /**
   * Sets, clears or lists this SP's disk faults (the chassis validated the spec; checked again).
   * A set or clear answers once writes the fault no longer holds are written down (settle).
   */
  private async diskFault(a: Record<string, unknown>): Promise<unknown> {
    const t = this.core.diskFaults;
    if (a.action === 'set') {
      const lun = this.core.lun(Number(a.lun)).spec.id;
      const v = validateDiskFault(a.spec);
      if (!v.spec) throw new Error(`bad disk fault: ${v.problems.join('; ')}`);
      t.set(lun, v.spec);
    } else if (a.action === 'clear') t.clear(Number(a.lun));
    else if (a.action !== 'list') throw new Error(`disk-fault: unknown action ${JSON.stringify(a.action)}`);
    if (a.action !== 'list') await t.settle(Number(a.lun));
    return { faults: t.list() };
  }

  private async removeLun(lun: number): Promise<unknown> {
    const core = this.core;
    const l = core.lun(lun);
    core.diskFaults.remove(lun);
    await core.nbd?.disconnectExport(l.spec.name, DISCONNECT_GRACE_MS);
    l.router.setState('held');
    if (l.cache) {
      await ignoreOnClose(l.cache.destageAll(), 'removing a deleted LUN: destaging its cache (its cached writes go with it)');
      await l.cache.halt();
    }
    core.peerStore.reset(l.spec.id);
    await ignoreOnClose(l.store.close(), 'removing a deleted LUN: closing its image file');
    core.luns.delete(l.spec.id);
    core.ioStats.remove(l.spec.id);
    return {};
  }

  // ---- status and shutdown ----

  private status(): unknown {
    const core = this.core;
    let dirty = 0;
    const luns = [...core.luns.values()].map((l) => {
      dirty += l.cache?.dirtyBytes ?? 0;
      return {
        id: l.spec.id,
        name: l.spec.name,
        route: l.router.state,
        dirtyBytes: l.cache?.dirtyBytes ?? 0,
        cacheMode: l.cache?.mode ?? null,
        ...(l.router.state === 'cache-dirty' ? { cacheDirtyReason: l.router.cacheDirtyReason } : {}),
        ...(l.router.route !== null ? { hostRoute: l.router.route } : {}),
      };
    });
    const d = core.decision;
    return {
      sp: this.sp,
      pid: process.pid,
      state: core.life.state,
      port: core.nbdPort,
      peerConnected: core.peerUp,
      cache: { size: core.budget.capacity, used: core.budget.used, dirtyBytes: dirty, mode: d.mode, reason: d.reason, detail: d.detail },
      peerMirrorBytes: core.peerStore.bytes,
      luns,
      sessions: core.nbd?.sessionCount() ?? 0,
      nbdMemory: core.nbd?.memoryStats() ?? null,
      marked: core.markers.list(),
    };
  }

  /** Orderly stop: no new I/O, destage every cache, close everything. */
  private async shutdown(): Promise<unknown> {
    const core = this.core;
    core.shuttingDown = true;
    // Hosts first: the NBD server answers what is in flight (its final flush goes through the
    // routers, so they must still serve), then refuses; only then hold what the peer forwards.
    if (core.nbd) await ignoreOnClose(core.nbd.close(NBD_CLOSE_GRACE_MS), 'stopping the SP: closing the NBD server');
    for (const l of core.luns.values()) if (l.router.state === 'owner') l.router.setState('held');
    let markersChanged = false;
    for (const l of core.luns.values()) {
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
        if (clean && core.markers.unmark(l.spec.id)) markersChanged = true;
      }
      await ignoreOnClose(l.store.close(), 'stopping the SP: closing a LUN image file (destaged above)');
    }
    if (markersChanged) await core.markers.persist();
    await core.markers.drained();
    core.client?.close();
    if (core.cmiServer) await ignoreOnClose(core.cmiServer.close(), 'stopping the SP: closing the CMI server');
    if (core.chassisServer) await ignoreOnClose(core.chassisServer.close(), 'stopping the SP: closing the chassis cache-I/O server');
    if (core.chassisClient) void ignoreOnClose(core.chassisClient.then((c) => c.close()), 'stopping the SP: closing the channel to the mirror driver (one that never opened needs no closing)');
    core.markers.stopSweeping();
    if (core.life.state === 'up') core.life.apply('shutdown');
    return { exit: true };
  }
}

/** How long after the last answer the process exits (lets the IPC reply go out). */
const EXIT_AFTER_REPLY_MS = 20;
/** After a failed init, how long before the process exits. */
const EXIT_AFTER_INIT_FAILURE_MS = 50;

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
  // Ctrl-C in a terminal reaches the whole process group: the chassis decides when an SP stops.
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
            setTimeout(() => resolveExit(1), EXIT_AFTER_INIT_FAILURE_MS);
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
            if ((result as { exit?: boolean } | undefined)?.exit) setTimeout(() => process.exit(0), EXIT_AFTER_REPLY_MS);
          },
          (e: unknown) => send({ type: 'reply', id: m.id, ok: false, error: (e as Error).message, code: (e as { code?: string }).code }),
        );
      }
    });
  });
}
