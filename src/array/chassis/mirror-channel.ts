/**
 * The channels between the SPs and the chassis's data path (mirror driver, snapshots, clones):
 * the chassis's channel to each SP's caches (`cache-io`, what the data path reads and writes a
 * LUN through) and the SPs' channel to the data path (`host-io`: what a LUN's route sends there;
 * `snapshot-io`: reads of snapshot exports).
 */
import { CmiClient, CmiError, CmiServer } from '../cmi/index.js';
import type { SpName } from '../sp/index.js';
import { chassisSocketPath, spChassisSocketPath } from '../sp-process/protocol.js';
import { parseIoOp, type IoResult } from '../../block/index.js';
import type { ChassisCore, SpHandle } from './core.js';
import { OwnerLunDevice } from './owner-device.js';

/** How long the chassis waits to connect to a started SP's cache channel. */
export const IO_CONNECT_TIMEOUT_MS = 5000;

/** Opens the chassis's channel to SP `h`'s caches (after its init: its socket listens). */
export async function connectIo(core: ChassisCore, h: SpHandle): Promise<void> {
  const proc = h.proc;
  const c = await CmiClient.connect(spChassisSocketPath(core.array.dir, h.name), { array: core.array.name, from: 'chassis', bootId: core.bootId }, IO_CONNECT_TIMEOUT_MS);
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

/** Listens for the SPs' requests to the data path and hands them to it. */
export async function listenHostIo(core: ChassisCore): Promise<void> {
  const hooks = core.opts.dataPath;
  if (core.hostIoServer) return;
  const server = new CmiServer(chassisSocketPath(core.array.dir), {
    array: core.array.name,
    expectFrom: ['A', 'B'],
    handler: async (req, ctx) => {
      const io = parseIoOp(req.args);
      let r: IoResult & { savedSeq?: number };
      if (req.op === 'host-io') r = await hooks.hostIo(Number(req.args.lun), io, io.op === 'write' ? req.bin : undefined, ctx.signal);
      else if (req.op === 'snapshot-io') r = await hooks.snapshotIo(String(req.args.export), io);
      else throw new CmiError('unknown-op', `unknown chassis operation ${req.op}`);
      return { result: { ...(r.extents ? { extents: r.extents } : {}), ...(r.savedSeq !== undefined ? { savedSeq: r.savedSeq } : {}) }, bin: r.data };
    },
  });
  server.on('protocol-error', (why: string) => core.publish('cmi.protocol-error', { problem: `chassis host-I/O channel: ${why}` }));
  await server.listen();
  core.hostIoServer = server;
}

/**
 * The device the chassis's data path reads and writes a LUN through: the current owner SP's
 * cache (so its writes are in the mirrored write cache before they are acknowledged, and its
 * reads see every write the hosts saw acknowledged).
 */
export function lunDevice(core: ChassisCore, id: number): OwnerLunDevice | undefined {
  const l = core.array.getLun(id);
  if (!l || l.state !== 'online') return undefined;
  let d = core.devices.get(id);
  if (!d) {
    const below = core.array.device(id);
    if (!below) return undefined;
    d = new OwnerLunDevice(id, l.blockSize, below.capabilities, core.opts.readOnly, {
      ownerChannel: (lun) => {
        let owner: SpName | null = null;
        try {
          owner = core.ownership.owner(lun);
        } catch {
          return null; // not in the ownership table (being deleted): no owner to ask
        }
        const h = owner ? core.sp[owner] : null;
        return h?.io ? { sp: h.name, client: h.io } : null;
      },
      unavailable: (lun) => {
        // While power fails the SPs hold I/O (and answer nothing once they stop).
        if (core.power === 'off') return `array ${core.array.name} lost power`;
        if (!core.array.getLun(lun)) return 'the LUN was deleted';
        if (core.closing && !core.sp.A.proc && !core.sp.B.proc) return `array ${core.array.name} stopped`;
        return undefined;
      },
      lunSize: (lun) => core.array.getLun(lun)?.size,
    });
    core.devices.set(id, d);
  }
  return d;
}
