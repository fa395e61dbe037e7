/**
 * One running array: its LUN table (StorageArray), the NBD server that exports its LUNs, and the
 * management API. `sanbox serve` and `sanbox array serve --config` both run exactly this.
 */
import { readFileSync } from 'node:fs';
import { loadNbdTls, NbdServer, type NbdTlsConfig } from '../nbd/index.js';
import { ArrayError, StorageArray, formatSize, type ArrayEvent, type ArrayExport } from '../array/index.js';
import { Chassis, type SpsConfig } from '../array/chassis/index.js';
import { hostReadOnly, type BlockDevice } from '../block/index.js';
import { ignoreOnClose } from '../errors/index.js';
import { MirrorNode, type LunProvider, type MirrorTimers, type PeerConfig } from '../replication/index.js';
import { mirrorLunDevice, singleProcessStack } from '../stack/index.js';
import type { SnapshotDefaults, SnapshotManager } from '../snapshot/index.js';
import { openSnapshots, type SnapshotComposition } from './snapshots.js';
import type { CloneManager } from '../clone/index.js';
import { openClones } from './clones.js';
import { imageBase } from './lun-base.js';
import { ChassisLayers } from './chassis-layers.js';
import { DiskFaultTable } from '../fault/index.js';
import { chassisDiskFaults, DiskFaultControl, localDiskFaults } from './disk-faults.js';
import { ControlServer, type NbdEndpoint } from './api.js';
import { IoStatsTable } from '../io-stats/index.js';

export interface LunSpec {
  name: string;
  size: number;
  blockSize?: number;
}

export interface ArrayServiceConfig {
  /** Array name. */
  name: string;
  /** Array directory (metadata, lock, images). */
  dir: string;
  /** NBD host port; with SPs, SP-A listens on `ports[0]` (default `port`) and SP-B on `ports[1]` (default `port + 1`). */
  nbd: { bind: string; port: number; ports?: [number, number]; tls?: NbdTlsConfig; memory?: number };
  /** Two storage processors (separate processes) instead of one in-process server. */
  sps?: SpsConfig;
  /** Management API; `false` for none. */
  api: { bind: string; port: number; token?: string } | false;
  /** LUNs to create when absent (an existing LUN must match). */
  luns: LunSpec[];
  readOnly?: boolean;
  /** fsync metadata (default true; tests may turn it off). */
  sync?: boolean;
  /**
   * The remote-link port (mirror traffic from other arrays) and the arrays this one replicates
   * with. Present: the array runs the mirror driver.
   */
  remoteLink?: { bind: string; port: number; peers: PeerConfig[]; timers?: Partial<MirrorTimers> };
  /** Snapshot store defaults for the array's LUNs. */
  snapshots?: SnapshotDefaults;
}

export interface RunningArray {
  array: StorageArray;
  /** The in-process NBD server (single-process arrays only). */
  nbdServer: NbdServer | undefined;
  /** The chassis (two-SP arrays only). */
  chassis?: Chassis;
  /** Every NBD host port (one per SP for two-SP arrays). */
  nbdAll: (NbdEndpoint & { sp?: string })[];
  api: ControlServer | undefined;
  /** The mirror driver (arrays with a remote link). */
  mirrors?: MirrorNode;
  /** The LUNs' disk faults (what `/v1/luns/:lun/disk-fault` runs). */
  diskFaults: DiskFaultControl;
  /** The array's snapshots. */
  snapshots?: SnapshotManager;
  /** The array's clones. */
  clones?: CloneManager;
  nbd: NbdEndpoint;
  apiUrl: string | undefined;
  /** Stops the API, then the NBD server (graceful), then closes the array. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Creates the LUNs of `specs` that do not exist; an existing LUN of another size is an error. */
export async function provisionLuns(array: StorageArray, specs: LunSpec[]): Promise<string[]> {
  const created: string[] = [];
  // Check everything first so a bad spec changes nothing.
  for (const spec of specs) {
    const have = array.getLunByName(spec.name);
    if (!have) continue;
    if (have.size !== spec.size) {
      throw new ArrayError(
        'exists',
        `LUN ${spec.name} exists with size ${have.size} (${formatSize(have.size)}), not ${spec.size} (${formatSize(spec.size)}); ` +
          `give its current size, or grow it with "sanbox lun grow"`,
      );
    }
    if (spec.blockSize !== undefined && have.blockSize !== spec.blockSize) {
      throw new ArrayError('exists', `LUN ${spec.name} exists with block size ${have.blockSize}, not ${spec.blockSize}`);
    }
  }
  for (const spec of specs) {
    if (array.getLunByName(spec.name)) continue;
    await array.createLun({ name: spec.name, size: spec.size, blockSize: spec.blockSize, provision: true });
    created.push(spec.name);
  }
  return created;
}

/**
 * The array's LUNs as the mirror driver sees them: the device below the host layers, behind the
 * LUN's disk fault layer (a secondary's remote writes and resync I/O meet a failing disk too).
 */
function lunProvider(array: StorageArray, diskFaults: DiskFaultTable, snapshots: SnapshotManager, clones: CloneManager): LunProvider {
  const faulted = new WeakMap<BlockDevice, BlockDevice>();
  const over = (id: number, store: BlockDevice): BlockDevice => {
    let d = faulted.get(store);
    if (!d) faulted.set(store, (d = mirrorLunDevice(id, store, diskFaults.state(id), snapshots, clones)));
    return d;
  };
  return {
    lun(ref) {
      const l = array.getLun(ref);
      const store = l ? array.device(l.id) : undefined;
      const device = l && store ? over(l.id, store) : undefined;
      return l && device ? { id: l.id, name: l.name, size: l.size, blockSize: l.blockSize, device } : undefined;
    },
  };
}

/** Starts the mirror driver of an array with a remote link and puts its layer on every LUN. */
async function startMirrors(array: StorageArray, cfg: ArrayServiceConfig, diskFaults: DiskFaultTable, snapshots: SnapshotManager, clones: CloneManager): Promise<MirrorNode | undefined> {
  if (!cfg.remoteLink) return undefined;
  const node = await MirrorNode.open({
    array: cfg.name,
    dir: cfg.dir,
    luns: lunProvider(array, diskFaults, snapshots, clones),
    listen: { bind: cfg.remoteLink.bind, port: cfg.remoteLink.port },
    peers: cfg.remoteLink.peers,
    timers: cfg.remoteLink.timers,
    event: (type, details) => array.publish(type, details),
    sync: cfg.sync,
    snapshots,
  });
  array.setGuard((lunId) => node.guard(lunId) ?? clones.guard(lunId) ?? snapshots.guard(lunId));
  return node;
}

export async function startArray(cfg: ArrayServiceConfig, extraInfo: () => Record<string, unknown> = () => ({})): Promise<RunningArray> {
  // Bad TLS credentials stop the start before the array is even opened.
  const tls = loadNbdTls(cfg.nbd.tls);
  const array = await StorageArray.open({ name: cfg.name, dir: cfg.dir, readOnly: cfg.readOnly, noSync: cfg.sync === false });
  let nbdServer: NbdServer | undefined;
  let api: ControlServer | undefined;
  let mirrors: MirrorNode | undefined;
  let snaps: SnapshotComposition | undefined;
  let clones: CloneManager | undefined;
  try {
    await provisionLuns(array, cfg.luns);
    // The disk fault layer over each image asks this table (set by `sanbox fault disk`).
    const diskFaults = new DiskFaultTable();
    // Snapshots first: the mirror driver's I/O on a LUN crosses its copy-on-write layer too.
    let node: MirrorNode | undefined;
    const base = imageBase(array, diskFaults);
    snaps = await openSnapshots(array, base, { defaults: cfg.snapshots, noSync: cfg.sync === false, mirrorGuard: (id) => node?.rollbackGuard(id) });
    const snapshots = snaps.manager;
    // Clones next: a clone copies from a snapshot, and its layer is in every stack of its LUN.
    const cloneManager = (clones = await openClones(array, base, snapshots, { noSync: cfg.sync === false }));
    array.setGuard((lunId) => cloneManager.guard(lunId) ?? snapshots.guard(lunId));
    mirrors = await startMirrors(array, cfg, diskFaults, snapshots, cloneManager);
    node = mirrors;
    // Every LUN's host I/O counters (the top of its stack), read by GET /metrics; each LUN has
    // its series (zeros) from the start, not only once a host opened it.
    const ioStats = new IoStatsTable();
    for (const l of array.listLuns()) ioStats.for(l.id, l.name);
    array.on('event', (ev: { type: string; lun?: number }) => {
      if (ev.type === 'lun.created' && typeof ev.lun === 'number') ioStats.for(ev.lun, array.getLun(ev.lun)?.name ?? String(ev.lun));
      if (ev.type === 'lun.deleted' && typeof ev.lun === 'number') {
        diskFaults.remove(ev.lun);
        ioStats.remove(ev.lun);
      }
    });
    // A secondary refuses every host write: its exports say READ_ONLY (settled at each open).
    array.setHostReadOnly((lunId) => hostReadOnly(node?.roleOf(lunId)));
    array.setLayer((lunId, device) => {
      const name = array.getLun(lunId)?.name ?? String(lunId);
      return singleProcessStack({ array: cfg.name, lun: name }, lunId, device, node, diskFaults.state(lunId), snapshots, cloneManager, ioStats.for(lunId, name), () => array.fenceOf(lunId));
    });
    const faultControl = new DiskFaultControl(array, localDiskFaults(diskFaults));
    // The NBD server sees the array's catalog plus the snapshot exports; its export type is structurally the same.
    nbdServer = new NbdServer({ catalog: snaps.catalog, tls, ...(cfg.nbd.memory ? { memoryBudget: cfg.nbd.memory } : {}) });
    const bound = await nbdServer.listen(cfg.nbd.port, cfg.nbd.bind);
    array.attachSessions(nbdServer);
    snaps.attachSessions(nbdServer);
    const nbd: NbdEndpoint = { host: cfg.nbd.bind, port: bound.port, ...(tls ? { tls: tls.mode } : {}) };
    const startedAt = new Date().toISOString();
    if (cfg.api) {
      api = new ControlServer({
        array,
        host: cfg.api.bind,
        port: cfg.api.port,
        token: cfg.api.token,
        nbd: () => [nbd],
        info: () => ({ sanbox: packageVersion(), pid: process.pid, startedAt, ...(nbdServer ? { nbdMemory: nbdServer.memoryStats() } : {}), ...extraInfo() }),
        mirrors,
        diskFaults: faultControl,
        snapshots,
        clones: cloneManager,
        metrics: {
          ioStats: async () => [{ luns: ioStats.snapshot() }],
          nbdSessions: () => nbdServer?.sessionCount() ?? 0,
        },
      });
    }
    const apiBound = api ? await api.listen() : undefined;
    let closing: Promise<void> | undefined;
    const srv = nbdServer;
    return {
      array,
      nbdServer: srv,
      nbdAll: [nbd],
      api,
      mirrors: node,
      diskFaults: faultControl,
      snapshots,
      clones: cloneManager,
      nbd,
      apiUrl: apiBound?.url,
      close(graceMs = 5000) {
        closing ??= (async () => {
          if (api) await ignoreOnClose(api.close(), 'stopping the array: closing the management API');
          await ignoreOnClose(srv.close(graceMs), 'stopping the array: closing the NBD server');
          if (node) await ignoreOnClose(node.close(), 'stopping the array: closing the mirror driver');
          await ignoreOnClose(cloneManager.close(), 'stopping the array: stopping the clone copies');
          await ignoreOnClose(snapshots.close(), 'stopping the array: closing the snapshot stores');
          // An orderly stop is no crash: a lose-unflushed disk writes down what it holds.
          await diskFaults.writeDownAll();
          await array.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    if (api) await ignoreOnClose(api.close(), 'cleaning up after a failed start: closing the management API');
    if (nbdServer) await ignoreOnClose(nbdServer.close(100), 'cleaning up after a failed start: closing the NBD server');
    if (mirrors) await ignoreOnClose(mirrors.close(), 'cleaning up after a failed start: closing the mirror driver');
    if (clones) await ignoreOnClose(clones.close(), 'cleaning up after a failed start: stopping the clone copies');
    if (snaps) await ignoreOnClose(snaps.manager.close(), 'cleaning up after a failed start: closing the snapshot stores');
    await ignoreOnClose(array.close(), 'cleaning up after a failed start: closing the array');
    throw e;
  }
}

/** The SP ports of a two-SP array: `nbd.ports`, else `port` and `port + 1` (0: both any free port). */
export function spPorts(nbd: ArrayServiceConfig['nbd']): [number, number] {
  if (nbd.ports) return nbd.ports;
  return nbd.port === 0 ? [0, 0] : [nbd.port, nbd.port + 1];
}

/**
 * A two-SP array: this process is the chassis (metadata, management API, power, battery,
 * ownership, and the mirror driver when the array has a remote link); it spawns SP A and SP B
 * (`sanbox sp serve`), each serving every LUN on its own NBD port.
 */
export async function startChassisArray(
  cfg: ArrayServiceConfig & { sps: SpsConfig },
  spCommand: { exec: string; args: string[] },
  extraInfo: () => Record<string, unknown> = () => ({}),
  log: (line: string) => void = () => undefined,
): Promise<RunningArray> {
  // The SPs load the credentials themselves; checked here first so a bad one changes nothing.
  const tls = loadNbdTls(cfg.nbd.tls);
  const array = await StorageArray.open({ name: cfg.name, dir: cfg.dir, readOnly: cfg.readOnly, noSync: cfg.sync === false });
  let api: ControlServer | undefined;
  let chassis: Chassis | undefined;
  const layers = new ChassisLayers(array, cfg);
  let opened = false;
  try {
    await provisionLuns(array, cfg.luns);
    chassis = new Chassis({
      array,
      spCommand,
      nbd: { bind: cfg.nbd.bind, ports: [...spPorts(cfg.nbd)] as [number, number], ...(tls ? { tls: cfg.nbd.tls } : {}), ...(cfg.nbd.memory ? { memory: cfg.nbd.memory } : {}) },
      sps: cfg.sps,
      readOnly: cfg.readOnly === true,
      log,
      dataPath: layers.hooks,
    });
    array.attachSessions(chassis);
    // The SPs come up holding host I/O until they have the LUNs' routes (pushed by `layers.open`).
    await chassis.start();
    await layers.open(chassis);
    opened = true;
    const ch = chassis;
    const startedAt = new Date().toISOString();
    const faultControl = new DiskFaultControl(array, chassisDiskFaults(ch));
    if (cfg.api) {
      api = new ControlServer({
        array,
        host: cfg.api.bind,
        port: cfg.api.port,
        token: cfg.api.token,
        nbd: () => ch.endpoints(),
        info: () => ({ sanbox: packageVersion(), pid: process.pid, startedAt, ...extraInfo() }),
        chassis: ch,
        mirrors: layers.node,
        diskFaults: faultControl,
        snapshots: layers.snapshots,
        clones: layers.clones,
        // Each SP counts its own host I/O: collected over the chassis↔SP IPC at scrape time.
        metrics: { ioStats: () => ch.ioStats() },
      });
    }
    const apiBound = api ? await api.listen() : undefined;
    let closing: Promise<void> | undefined;
    const eps = ch.endpoints();
    return {
      array,
      nbdServer: undefined,
      chassis: ch,
      nbdAll: eps,
      api,
      mirrors: layers.node,
      diskFaults: faultControl,
      snapshots: layers.snapshots,
      clones: layers.clones,
      nbd: eps[0]!,
      apiUrl: apiBound?.url,
      close() {
        closing ??= (async () => {
          if (api) await ignoreOnClose(api.close(), 'stopping the array: closing the management API');
          await ignoreOnClose(layers.stopCopies(), 'stopping the array: stopping the clone copies');
          // SPs first: their last host writes and flushes still go through the chassis's layers.
          await ignoreOnClose(ch.close(), 'stopping the array: closing the chassis');
          await ignoreOnClose(layers.close(), 'stopping the array: closing the mirror driver and the snapshot stores');
          await array.close();
        })();
        return closing;
      },
    };
  } catch (e) {
    if (api) await ignoreOnClose(api.close(), 'cleaning up after a failed start: closing the management API');
    if (opened) await ignoreOnClose(layers.stopCopies(), 'cleaning up after a failed start: stopping the clone copies');
    if (chassis) await ignoreOnClose(chassis.close(), 'cleaning up after a failed start: closing the chassis');
    await ignoreOnClose(layers.close(), 'cleaning up after a failed start: closing the mirror driver and the snapshot stores');
    await ignoreOnClose(array.close(), 'cleaning up after a failed start: closing the array');
    throw e;
  }
}

/** One log line per event: `2026-11-21T23:00:00.000Z alpha lun.created name=disk0 size=1073741824`. */
export function formatEvent(e: ArrayEvent): string {
  const skip = new Set(['seq', 'time', 'array', 'type']);
  const kv = Object.entries(e)
    .filter(([k, v]) => !skip.has(k) && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === 'string' && /^[\w./:@-]+$/.test(v) ? v : JSON.stringify(v)}`);
  return `${e.time} ${e.array} ${e.type}${kv.length ? ' ' + kv.join(' ') : ''}`;
}

export type { ArrayExport };
