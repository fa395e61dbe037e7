/**
 * Chassis ↔ SP messages (Node IPC, JSON) and the SP's files in the array directory.
 *
 * chassis → SP: `{type: 'init', id, init: SpInit}` once, then `{type: 'cmd', id, op, args}`.
 * SP → chassis: `{type: 'reply', id, ok, result | error}` and `{type: 'event', event}`.
 *
 * Files of SP X under the array directory: `sp-X/vault/` (two vault copies + consumed record),
 * `sp-X/dirty-luns.json` (LUNs that may hold dirty cache: written before the first write-back
 * write of a LUN is acknowledged, cleared lazily once its cache is clean), `sp-X/cmi.sock`;
 * `sp-X/chassis-io.sock` (chassis -> SP) and `chassis.sock` (SP -> chassis).
 *
 * The chassis's data path (the mirror driver, snapshots and clones run in the chassis): chassis
 * -> SP command `routes {routes: HostRoutes}` sets every LUN's route and the snapshot exports
 * (init carries the first ones, or null: host I/O waits for them). The SP answers once every
 * direct host request of a LUN whose route changed, admitted before the change, has ended: after
 * the answer, nothing the chassis must see gets past it.
 *
 * Disk faults: chassis -> SP command `disk-fault {action: 'set', lun, spec} | {action: 'clear',
 * lun} | {action: 'list'}` answers `{faults: DiskFaultView[]}` (this SP's counters).
 */
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { BatteryThresholds } from '../sp/index.js';
import type { DiskFaultSpec } from '../../fault/index.js';
import type { NbdTlsConfig } from '../../nbd/index.js';

export interface SpLunSpec {
  id: number;
  name: string;
  size: number;
  blockSize: number;
  imagePath: string;
}

export interface BatteryView {
  failed: boolean;
  /** The SPs know about the failure (a latent failure is found only by the next power loss). */
  detected: boolean;
  charge: number;
  thresholds: BatteryThresholds;
}

export interface SpCacheConfig {
  idleMs: number;
  highWatermark: number;
  lowWatermark: number;
  writeThrough: boolean;
}

/** A LUN's role in a remote mirror, as the chassis's mirror driver tells the SPs. */
export interface MirrorRole {
  role: 'primary' | 'secondary';
  /** A secondary serves host reads (never writes). */
  allowReads: boolean;
  /** No host reads or writes at all (e.g. the consistency group is being backfreshed). */
  offline?: boolean;
}

/**
 * How one LUN's host I/O runs on the SPs, as the chassis says. A LUN absent from the table has
 * nothing in the chassis's data path: every request goes to the owner's cache directly.
 */
export interface LunRoute {
  /** The LUN's role in a remote mirror (absent: no mirror image). */
  mirror?: MirrorRole;
  /**
   * Which host requests cross the chassis for the LUN's own layers there: `writes` (the LUN has
   * snapshots: copy-on-write before a change) or `all` (a clone still copying: reads of regions
   * not copied yet come from its source).
   */
  through?: 'writes' | 'all';
  /**
   * With `through: 'writes'`: the LUN's newest snapshot (`seq`) and its region size. A change
   * whose regions the chassis said are all saved for that snapshot (`savedSeq` in its answers)
   * needs no copy any more and goes to the owner SP directly; a new cut changes the route first
   * (and so drains those direct changes).
   */
  saved?: { seq: number; regionSize: number };
  /** The LUN is offline to hosts (rolled back to a snapshot): not listed, every request refused. */
  offline?: string;
  /** The LUN is fenced (`POST /v1/luns/REF/fence`, persisted in its LUN record): why and by whom; host writes, trims and zeroes refused (`fenceRefusal`). */
  fenced?: { reason: string; by: string };
}

/** A snapshot served as the read-only NBD export `LUN@SNAP` (its data read through the chassis). */
export interface SnapshotExportSpec {
  name: string;
  lun: number;
  size: number;
  blockSize: number;
  description: string;
}

export interface HostRoutes {
  /** LUN id -> route. */
  luns: Record<string, LunRoute>;
  snapshots: SnapshotExportSpec[];
}

/**
 * The chassis's data path: where the SP sends the host requests a LUN's route sends there (ops
 * `host-io`, `snapshot-io`), and the first routes (`routes` null: not known yet; host I/O waits).
 */
export interface SpChassisPathInit {
  /** The chassis's host-I/O CMI socket. */
  socket: string;
  routes: HostRoutes | null;
}

export interface SpInit {
  sp: 'A' | 'B';
  array: string;
  dir: string;
  /** `memory`: this SP's NBD memory budget in bytes (default 256 MiB). */
  nbd: { bind: string; port: number; tls?: NbdTlsConfig; memory?: number };
  luns: SpLunSpec[];
  cacheBytes: number;
  cache: SpCacheConfig;
  battery: BatteryView;
  readOnly: boolean;
  chassisPath: SpChassisPathInit;
  /** The array's active disk faults (a restarted SP gets them again); command `disk-fault` changes them. */
  diskFaults?: { lun: number; spec: DiskFaultSpec }[];
}

export type ToSp = { type: 'init'; id: number; init: SpInit } | { type: 'cmd'; id: number; op: string; args?: Record<string, unknown> };

export function spDir(arrayDir: string, sp: string): string {
  return join(arrayDir, `sp-${sp}`);
}
export function vaultDir(arrayDir: string, sp: string): string {
  return join(spDir(arrayDir, sp), 'vault');
}
export function markerPath(arrayDir: string, sp: string): string {
  return join(spDir(arrayDir, sp), 'dirty-luns.json');
}
/** Unix socket paths are limited to ~107 bytes: long array paths use a hashed name in tmpdir. */
export function cmiSocketPath(arrayDir: string, sp: string): string {
  return socketPath(join(spDir(arrayDir, sp), 'cmi.sock'), (h) => `sanbox-cmi-${h}-${sp}.sock`, arrayDir);
}
/** SP X's server for the chassis (op `cache-io`: the chassis's I/O on the owner's cache). */
export function spChassisSocketPath(arrayDir: string, sp: string): string {
  return socketPath(join(spDir(arrayDir, sp), 'chassis-io.sock'), (h) => `sanbox-io-${h}-${sp}.sock`, arrayDir);
}
/** The chassis's server for the SPs (ops `host-io`, `snapshot-io`: what the routes send to the chassis). */
export function chassisSocketPath(arrayDir: string): string {
  return socketPath(join(arrayDir, 'chassis.sock'), (h) => `sanbox-chassis-${h}.sock`, arrayDir);
}
function socketPath(p: string, short: (hash: string) => string, arrayDir: string): string {
  if (Buffer.byteLength(p) < 100) return p;
  return join(tmpdir(), short(createHash('sha256').update(arrayDir).digest('hex').slice(0, 16)));
}
