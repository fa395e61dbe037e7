// Every BlockDevice implementation of the tree, each built on real image files (and, where the
// device crosses a process boundary, a real Unix-socket CMI channel), for the conformance suite.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileBackingStore, LayerDevice, checked, execIoOp, type BlockDevice, type IoOp } from '../../src/block/index.js';
import { CacheBudget, WriteCache } from '../../src/array/cache/index.js';
import { LunRouter } from '../../src/array/sp-process/router.js';
import { OwnerLunDevice } from '../../src/array/chassis/owner-device.js';
import { CmiClient, CmiServer } from '../../src/array/cmi/index.js';
import { MirrorLayer } from '../../src/replication/index.js';
import { makeLab, until } from '../support/mirror-lab.js';
import { DiskFaultLayer, DiskFaultState, type DiskFaultSpec } from '../../src/fault/index.js';

export const SUBJECT_SIZE = 8 * 1024 * 1024;

export interface Opened {
  dev: BlockDevice;
  /** Reads the bytes the device's data ended up in, below every layer (after a flush). */
  below?: () => Promise<Buffer>;
  /** Closing the device closes what it owns (I/O afterwards must fail, not crash). */
  ownsStore: boolean;
  cleanup(): Promise<void>;
}

export interface Subject {
  name: string;
  open(): Promise<Opened>;
}

async function image(size = SUBJECT_SIZE): Promise<{ dir: string; store: FileBackingStore; path: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'sanbox-conf-'));
  const path = join(dir, 'lun.img');
  await FileBackingStore.create(path, size);
  return { dir, path, store: await FileBackingStore.open(path, { blockSize: 512 }) };
}

/** A store that is closed and removed with its folder. */
async function onImage(build: (store: FileBackingStore) => BlockDevice | Promise<BlockDevice>, ownsStore: boolean): Promise<Opened> {
  const { dir, store } = await image();
  const dev = await build(store);
  return {
    dev,
    ownsStore,
    below: async () => {
      await dev.flush();
      return store.read(0, store.size);
    },
    cleanup: async () => {
      await dev.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function cacheOver(store: BlockDevice, mode: 'write-through' | 'write-back'): WriteCache {
  // write-back without a peer SP: the benchmark-only switch, so the cache really holds pages
  return new WriteCache({ lun: 0, lower: store, budget: new CacheBudget(64 * 4096), mode, requireMirror: false, idleMs: 20 });
}

/** A LunRouter on the owner path over a write cache, as an SP's NBD export sees it. */
function routerOver(store: BlockDevice): LunRouter {
  const cache = cacheOver(store, 'write-back');
  const router = new LunRouter(0, store.size, store.blockSize, store.capabilities, false, {
    execLocal: (_lun, op, data) => execIoOp(cache, op, data),
    forward: () => Promise.reject(new Error('the owner path never forwards')),
  }, 'owner');
  const close = router.close.bind(router);
  router.close = async () => {
    await close();
    await cache.close();
  };
  return router;
}

/** An OwnerLunDevice reaching a store through a real CMI server (the SP's `cache-io`). */
async function ownerDeviceOver(store: BlockDevice, dir: string, withSignal: boolean): Promise<{ dev: BlockDevice; stop(): Promise<void> }> {
  const path = join(dir, 'chassis.sock');
  const server = new CmiServer(path, {
    array: 'conf',
    expectFrom: 'chassis',
    handler: async (req) => {
      const { lun: _lun, ...op } = req.args as IoOp & { lun: number };
      const r = await execIoOp(store, op, op.op === 'write' ? req.bin : undefined);
      return { result: r.extents ? { extents: r.extents } : {}, bin: r.data };
    },
  });
  await server.listen();
  const client = await CmiClient.connect(path, { array: 'conf', from: 'chassis', bootId: 'conf' });
  const owner = new OwnerLunDevice(0, store.blockSize, store.capabilities, false, {
    ownerChannel: () => ({ sp: 'A', client }),
    unavailable: () => undefined,
    lunSize: () => store.size,
  });
  const signal = new AbortController().signal;
  return {
    dev: withSignal ? owner.withSignal(signal) : owner,
    stop: async () => {
      client.close();
      await server.close();
    },
  };
}

async function overCmi(withSignal: boolean): Promise<Opened> {
  const { dir, store } = await image();
  const { dev, stop } = await ownerDeviceOver(store, dir, withSignal);
  return {
    dev,
    ownsStore: false,
    below: async () => {
      await dev.flush();
      return store.read(0, store.size);
    },
    cleanup: async () => {
      await stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The replication layer of a single-process array, for a LUN that is no mirror image or a
 * synchronous primary: as its NBD sessions see it (`stack`: the composed stack, hops included),
 * or the MirrorLayer alone over the LUN's image.
 */
async function mirrorLayer(primary: boolean, stack: boolean): Promise<Opened> {
  const lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: SUBJECT_SIZE }]);
  if (primary) {
    await lab.node('alpha').create({ lun: 'disk0', name: 'm0' });
    await lab.node('alpha').addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => lab.node('alpha').get('m0').images[1]!.link === 'connected', 20_000, 'secondary connected');
  }
  const running = lab.sites.alpha!.running!;
  const lun = running.array.getLun('disk0')!;
  const dev = stack ? lab.hostDevice('alpha') : new MirrorLayer(lab.node('alpha').hostDataPath, lun.id, running.array.device(lun.id)!);
  return {
    dev,
    ownsStore: false,
    below: async () => {
      await dev.flush();
      const local = await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SUBJECT_SIZE);
      if (primary) {
        // a synchronous mirror: every completed write is on the secondary's image too
        const remote = await lab.sites.bravo!.running!.array.device('disk0')!.read(0, SUBJECT_SIZE);
        if (!remote.equals(local)) throw new Error('the secondary image differs from the primary');
      }
      return local;
    },
    cleanup: () => lab.close(),
  };
}

/** A disk fault layer whose fault is set but injects nothing the suite's I/O can meet. */
function diskFaultOver(store: BlockDevice, spec: DiskFaultSpec): BlockDevice {
  const state = new DiskFaultState(0);
  state.set(spec);
  return new DiskFaultLayer(store, state);
}

export const SUBJECTS: Subject[] = [
  { name: 'FileBackingStore', open: () => onImage((s) => s, true) },
  { name: 'LayerDevice (pass-through)', open: () => onImage((s) => new LayerDevice(s), true) },
  { name: 'checked hop', open: () => onImage((s) => checked(s, { name: 'conformance' }), true) },
  {
    name: 'DiskFaultLayer (every op, rate 0)',
    open: () => onImage((s) => diskFaultOver(s, { errors: ['read', 'write', 'flush', 'trim', 'zero'], rate: 0, errno: 'EIO', seed: 1, loseUnflushed: false }), true),
  },
  {
    // a flush has no range (any range matches it), so the data ops only
    name: 'DiskFaultLayer (range past the end of the device)',
    open: () => onImage((s) => diskFaultOver(s, { errors: ['read', 'write', 'trim', 'zero'], rate: 1, errno: 'EIO', range: { offset: SUBJECT_SIZE, length: 4096 }, seed: 1, loseUnflushed: false }), true),
  },
  // lose-unflushed: writes held in memory must read back, a flush must put them below every
  // layer (`below` reads the image after one); with a 64 KiB limit the overlay also writes its
  // oldest content down by itself during the suite
  { name: 'DiskFaultLayer (lose-unflushed)', open: () => onImage((s) => diskFaultOver(s, { errors: [], rate: 1, errno: 'EIO', seed: 1, loseUnflushed: true }), true) },
  {
    name: 'DiskFaultLayer (lose-unflushed, 64 KiB limit)',
    open: () => onImage((s) => diskFaultOver(s, { errors: [], rate: 1, errno: 'EIO', seed: 1, loseUnflushed: true, maxUnflushed: 64 * 1024 }), true),
  },
  { name: 'WriteCache write-through', open: () => onImage((s) => cacheOver(s, 'write-through'), true) },
  { name: 'WriteCache write-back', open: () => onImage((s) => cacheOver(s, 'write-back'), true) },
  { name: 'LunRouter (owner path)', open: () => onImage((s) => routerOver(s), true) },
  { name: 'OwnerLunDevice (CMI)', open: () => overCmi(false) },
  { name: 'OwnerLunDevice.withSignal (CMI)', open: () => overCmi(true) },
  { name: 'MirrorLayer (no mirror image)', open: () => mirrorLayer(false, false) },
  { name: 'MirrorLayer (synchronous primary)', open: () => mirrorLayer(true, false) },
  { name: 'single-process stack (no mirror image)', open: () => mirrorLayer(false, true) },
  { name: 'single-process stack (synchronous primary)', open: () => mirrorLayer(true, true) },
];

