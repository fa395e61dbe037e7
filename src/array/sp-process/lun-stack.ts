/**
 * One LUN on this SP: its image, and its stack as composed by src/stack (the one stack builder:
 * see its drawing), with this SP's routes plugged into the router:
 *
 *   NBD export -> IoStatsLayer -[hop]-> LunRouter --owner------> WriteCache -[hop]-> DiskFaultLayer -> FileBackingStore (image file)
 *                           |--forward--> CMI to the owner SP (its LunRouter.hostRun)
 *                           '--chassis--> the chassis's data path (what the LUN's route sends there)
 *
 * The WriteCache exists only while this SP owns the LUN (`SpLun.newCache`).
 */
import type { WriteCache } from '../cache/index.js';
import { openSpStore, spRouter, spWriteCache } from '../../stack/index.js';
import { forward, routeOf, toChassis } from './cmi-handlers.js';
import type { SpCore, SpLun } from './core.js';
import type { SpLunSpec } from './protocol.js';
import { BlockError, execIoOp, type IoOp, type IoResult } from '../../block/index.js';
import type { RouteState } from './router.js';

/** Cache generations of a new cache start above this clock reading (above anything older). */
const GENERATIONS_PER_MS = 1000;

/** Opens the LUN's image and builds its stack on this SP (the cache comes with ownership). */
export async function buildLunStack(core: SpCore, spec: SpLunSpec, initial: RouteState): Promise<SpLun> {
  const { init } = core;
  const name = { array: init.array, lun: spec.name };
  const store = await openSpStore(spec.imagePath, { readOnly: init.readOnly, blockSize: spec.blockSize });
  const { router, host } = spRouter(
    name,
    spec,
    store.capabilities,
    init.readOnly,
    {
      execLocal: (lun, op, data) => execLocal(core, lun, op, data),
      forward: (lun, op, data) => forward(core, lun, op, data),
      toChassis: (lun, op, data) => toChassis(core, lun, op, data),
      powerFailing: () => core.powerFailing || core.chassisLost,
    },
    initial,
    core.ioStats.for(spec.id, spec.name),
  );
  router.setRoute(routeOf(core, spec.id));
  const newCache = (): WriteCache =>
    spWriteCache(name, store, {
      lun: spec.id,
      budget: core.budget,
      mode: 'write-through',
      idleMs: init.cache.idleMs,
      initialGeneration: Date.now() * GENERATIONS_PER_MS,
      onEvent: (e) => {
        if (e.type === 'mode') return; // reported per SP by the policy
        core.event(`cache.${e.type}`, { ...e });
      },
    }, core.diskFaults.state(spec.id));
  const l: SpLun = { spec, store, router, host, cache: null, newCache };
  core.luns.set(spec.id, l);
  return l;
}

/** The owner path: into this SP's cache of the LUN (marked dirty-capable before write-back). */
async function execLocal(core: SpCore, lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
  const l = core.lun(lun);
  const cache = l.cache;
  if (!cache) throw new BlockError('EIO', `SP ${core.sp} owns LUN ${lun} but has no cache for it`);
  if ((op.op === 'write' || op.op === 'trim' || op.op === 'zero') && cache.writeBackActive && !core.markers.has(lun)) {
    await core.markers.mark(lun);
  }
  return execIoOp(cache, op, data);
}
