/**
 * The SP's CMI traffic: the handlers of its two servers (the peer SP's mirror updates and
 * forwarded host I/O; the chassis's `cache-io`) and the client side (forwarding host I/O to the
 * owner SP; what a LUN's route sends to the chassis's data path, and snapshot exports' reads).
 * Nothing is accepted while the SP is in a power failure.
 */
import { CmiClient, CmiError, decodeMirrorPages, decodePageRefs } from '../cmi/index.js';
import type { SpCore } from './core.js';
import type { HostRoutes } from './protocol.js';
import { parseIoOp, type IoOp, type IoResult } from '../../block/index.js';
import type { RouteEntry } from './router.js';

type Reply = { result?: Record<string, unknown>; bin?: Buffer };

/** The peer SP's requests: its cache mirror updates, and host I/O it forwards to this owner. */
export function onPeerCmi(core: SpCore, op: string, args: Record<string, unknown>, bin: Buffer): Promise<Reply | void> | void {
  if (core.powerFailing) throw new CmiError('power-fail', `SP ${core.sp} lost power`);
  const lun = Number(args.lun);
  switch (op) {
    case 'mirror.reset':
      core.peerStore.reset(lun);
      return;
    case 'mirror.pages':
      core.peerStore.mirror(lun, decodeMirrorPages(args, bin));
      return;
    case 'mirror.release':
      core.peerStore.release(lun, decodePageRefs(args));
      return;
    case 'mirror.discard':
      core.peerStore.discard(lun, Number(args.offset), Number(args.length), Number(args.generation));
      return;
    case 'io': {
      const l = core.luns.get(lun);
      if (!l) throw new CmiError('not-found', `SP ${core.sp} has no LUN ${lun}`);
      const io = parseIoOp(args);
      return l.router.hostRun(io, io.op === 'write' ? bin : undefined, true).then(toReply);
    }
    default:
      throw new CmiError('unknown-op', `unknown CMI operation ${op}`);
  }
}

/** The chassis's data path (mirror driver, snapshots, clones) reads and writes this SP's cache of a LUN it owns. */
export function onChassisIo(core: SpCore, op: string, args: Record<string, unknown>, bin: Buffer): Promise<Reply | void> {
  if (core.powerFailing) throw new CmiError('power-fail', `SP ${core.sp} lost power`);
  if (op !== 'cache-io') throw new CmiError('unknown-op', `unknown chassis operation ${op}`);
  const lun = Number(args.lun);
  const l = core.luns.get(lun);
  if (!l) throw new CmiError('not-found', `SP ${core.sp} has no LUN ${lun}`);
  const io = parseIoOp(args);
  // Only the owner runs it (held waits); anything else answers not-owner and the chassis
  // retries on the owner its ownership table names.
  return l.router.run(io, io.op === 'write' ? bin : undefined, true).then(toReply);
}

function toReply(r: IoResult): Reply {
  return { result: r.extents ? { extents: r.extents } : {}, bin: r.data };
}

function fromReply(op: IoOp, r: { result: Record<string, unknown>; bin: Buffer }): IoResult {
  if (op.op === 'read') return { data: r.bin };
  if (op.op === 'status') return { extents: r.result.extents as IoResult['extents'] };
  return {};
}

/** Host I/O of a LUN the peer owns, over CMI. */
export async function forward(core: SpCore, lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult> {
  const c = core.client;
  if (!c || c.closed) throw new CmiError('peer-gone', `no CMI connection to SP ${core.peer}`);
  return fromReply(op, await c.call('io', { lun, ...op }, data));
}

/** A host request the LUN's route sends to the chassis: its data path runs it. */
export async function toChassis(core: SpCore, lun: number, op: IoOp, data: Buffer | undefined): Promise<IoResult & { savedSeq?: number }> {
  const c = await chassisConn(core);
  const r = await c.call('host-io', { lun, ...op }, data);
  const savedSeq = r.result.savedSeq;
  return typeof savedSeq === 'number' ? { ...fromReply(op, r), savedSeq } : fromReply(op, r);
}

/** A read or block status of a snapshot export: the chassis reads the snapshot. */
export async function snapshotIo(core: SpCore, exportName: string, op: IoOp): Promise<IoResult> {
  const c = await chassisConn(core);
  return fromReply(op, await c.call('snapshot-io', { export: exportName, ...op }));
}

/** The channel to the chassis's data path; losing it outside a shutdown means the chassis died. */
function chassisConn(core: SpCore): Promise<CmiClient> {
  const have = core.chassisClient;
  if (have) return have;
  const socket = core.init.chassisPath.socket;
  const lost = (): void => {
    if (core.chassisClient === p) core.chassisClient = null;
    if (!core.shuttingDown) core.chassisLost = true;
  };
  const p = CmiClient.connect(socket, { array: core.init.array, from: core.sp, bootId: core.bootId }).then((c) => {
    c.on('close', lost);
    return c;
  });
  core.chassisClient = p;
  // The caller of this connect gets its error; here it only marks the channel lost.
  p.catch(lost);
  return p;
}

// ---- routes ----

export function routeOf(core: SpCore, lun: number): RouteEntry {
  if (core.routes === null) return 'pending';
  return core.routes.luns[String(lun)] ?? null;
}

/**
 * Takes the chassis's new routes and answers once every direct host request of a LUN whose
 * route changed, admitted before the change, has ended (so that nothing the chassis's data path
 * must see, such as a write after a snapshot's cut, gets past it).
 */
export async function setRoutes(core: SpCore, routes: HostRoutes): Promise<void> {
  core.routes = routes;
  const drains: Promise<void>[] = [];
  for (const l of core.luns.values()) {
    const next = routeOf(core, l.spec.id);
    if (JSON.stringify(next) === JSON.stringify(l.router.route)) continue;
    l.router.setRoute(next);
    drains.push(l.router.directDrained());
  }
  await Promise.all(drains);
}
