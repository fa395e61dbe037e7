/**
 * The SP's side of ownership: serving (routes per owned LUN, the NBD server and its catalog),
 * releasing a LUN (old owner of a trespass), acquiring one (new owner), and taking over a dead
 * peer's LUNs from the mirror copy of its cache.
 */
import { hostReadOnly } from '../../block/index.js';
import { loadNbdTls, NbdServer, type ExportCatalog, type NbdExport } from '../../nbd/index.js';
import type { SpEvent } from '../sp/index.js';
import { formatSize } from '../size.js';
import { applyMode, disconnectPeer, reevaluate } from './cache-mode.js';
import type { SpCore, SpLun } from './core.js';
import { routeOf } from './cmi-handlers.js';
import { snapshotExportDevice } from './snapshot-export.js';

/** Routes every LUN (owned, forwarded or cache dirty), starts the NBD server, and is up. */
export async function serve(core: SpCore, owned: number[], cacheDirty: Record<string, string>): Promise<unknown> {
  for (const l of core.luns.values()) {
    const own = owned.includes(l.spec.id);
    if (own && !l.cache) l.cache = l.newCache();
    const dirtyWhy = cacheDirty[String(l.spec.id)];
    if (dirtyWhy !== undefined) l.router.setState('cache-dirty', dirtyWhy);
    else l.router.setState(own ? 'owner' : 'forward');
  }
  await reevaluate(core);
  if (!core.nbd) {
    const nbd = new NbdServer({ catalog: catalog(core), tls: loadNbdTls(core.init.nbd.tls), ...(core.init.nbd.memory ? { memoryBudget: core.init.nbd.memory } : {}) });
    const bound = await nbd.listen(core.init.nbd.port, core.init.nbd.bind);
    core.nbd = nbd;
    core.nbdPort = bound.port;
    nbd.on('session-open', (s: { id: number; remote: string; export: string }) => core.event('session.opened', { session: s.id, remote: s.remote, export: s.export }));
    nbd.on('session-close', (s: { id: number; export: string; reason: string }) => core.event('session.closed', { session: s.id, export: s.export, reason: s.reason }));
  }
  const ev: SpEvent = core.life.state === 'restoring' ? 'restore-done' : 'booted';
  if (core.life.state !== 'up') core.life.apply(ev);
  return { port: core.nbdPort, pid: process.pid };
}

function catalog(core: SpCore): ExportCatalog {
  // A LUN being rolled back is offline to hosts: not listed, not found.
  const offline = (lun: number): boolean => {
    const r = routeOf(core, lun);
    return r !== null && r !== 'pending' && r.offline !== undefined;
  };
  const online = () => [...core.luns.values()].filter((l) => !offline(l.spec.id)).sort((a, b) => a.spec.id - b.spec.id);
  const toExport = (l: SpLun): NbdExport => {
    const s = l.router.state;
    const path =
      s === 'owner'
        ? `SP ${core.sp}: optimized path (owner)`
        : s === 'cache-dirty'
          ? `SP ${core.sp}: LUN is cache dirty (I/O fails with EIO until recovered)`
          : `SP ${core.sp}: non-optimized path (forwarded over CMI to the owner SP ${core.peer})`;
    // A mirror secondary (its role from the chassis's routes) refuses host writes: READ_ONLY,
    // settled at this open. Routes not known yet (an SP just restored): not known to be one.
    const r = routeOf(core, l.spec.id);
    const readOnly = core.init.readOnly || (r !== null && r !== 'pending' && hostReadOnly(r.mirror));
    return { name: l.spec.name, description: `sanbox array ${core.init.array} LUN ${l.spec.id} (${formatSize(l.spec.size)}) via ${path}`, device: l.host, readOnly };
  };
  const snapshots = (): NbdExport[] =>
    (core.routes?.snapshots ?? [])
      .filter((x) => !offline(x.lun))
      .map((x) => ({ name: x.name, description: x.description, device: snapshotExportDevice(core, x), readOnly: true }));
  return {
    lookup: (name) => {
      if (name.includes('@')) return snapshots().find((x) => x.name === name);
      const l = name === '' ? online()[0] : online().find((x) => x.spec.name === name);
      return l ? toExport(l) : undefined;
    },
    list: () => [...online().map(toExport), ...snapshots()],
  };
}

/** Old owner side of a trespass/failback: quiesce, destage, drop the cache; I/O stays held. */
export async function release(core: SpCore, lun: number): Promise<unknown> {
  const l = core.lun(lun);
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
export async function acquire(core: SpCore, lun: number): Promise<unknown> {
  const l = core.lun(lun);
  core.peerStore.reset(lun);
  if (!l.cache) l.cache = l.newCache();
  await applyMode(core, l.cache);
  l.router.setState('owner');
  return {};
}

/** The peer died: serve its LUNs from our mirror copy of its dirty cache. */
export async function takeover(core: SpCore, luns: number[]): Promise<unknown> {
  const t0 = Date.now();
  disconnectPeer(core);
  await core.policyChain;
  let pages = 0;
  for (const lun of luns) {
    const l = core.lun(lun);
    l.router.setState('held');
    const held = core.peerStore.take(lun);
    if (!l.cache) l.cache = l.newCache();
    if (held.length) {
      await core.markers.mark(lun);
      await l.cache.loadDirty(held);
      pages += held.length;
    }
    await applyMode(core, l.cache);
    l.router.setState('owner');
  }
  return { ms: Date.now() - t0, pages, luns };
}
