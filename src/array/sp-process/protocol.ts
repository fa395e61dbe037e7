/**
 * Chassis ↔ SP messages (Node IPC, JSON) and the SP's files in the array directory.
 *
 * chassis → SP: `{type: 'init', id, init: SpInit}` once, then `{type: 'cmd', id, op, args}`.
 * SP → chassis: `{type: 'reply', id, ok, result | error}` and `{type: 'event', event}`.
 *
 * Files of SP X under the array directory: `sp-X/vault/` (two vault copies + consumed record),
 * `sp-X/dirty-luns.json` (LUNs that may hold dirty cache: written before the first write-back
 * write of a LUN is acknowledged, cleared lazily once its cache is clean), `sp-X/cmi.sock`;
 * with a mirror driver also `sp-X/chassis-io.sock` (chassis -> SP) and `chassis.sock` (SP -> chassis).
 *
 * Mirroring (the mirror driver runs in the chassis): chassis -> SP command `mirror-roles {roles}`
 * sets every LUN's MirrorRole (init carries the first ones, or null: wait for them).
 *
 * Disk faults: chassis -> SP command `disk-fault {action: 'set', lun, spec} | {action: 'clear',
 * lun} | {action: 'list'}` answers `{faults: DiskFaultView[]}` (this SP's counters).
 */
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { BatteryThresholds } from '../sp/index.js';
import type { DiskFaultSpec } from '../../fault/index.js';

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
 * Arrays with a mirror driver (in the chassis process): where the SP sends host writes of
 * primary images, and every LUN's role (`roles` null: not known yet; host I/O waits for it).
 */
export interface SpMirrorInit {
  /** The chassis's host-I/O CMI socket (op `host-io`). */
  socket: string;
  /** LUN id -> role; a LUN not listed is no mirror image. */
  roles: Record<string, MirrorRole> | null;
}

export interface SpInit {
  sp: 'A' | 'B';
  array: string;
  dir: string;
  nbd: { bind: string; port: number };
  luns: SpLunSpec[];
  cacheBytes: number;
  cache: SpCacheConfig;
  battery: BatteryView;
  readOnly: boolean;
  mirror?: SpMirrorInit;
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
/** SP X's server for the chassis (op `cache-io`: the mirror driver's I/O on the owner's cache). */
export function spChassisSocketPath(arrayDir: string, sp: string): string {
  return socketPath(join(spDir(arrayDir, sp), 'chassis-io.sock'), (h) => `sanbox-io-${h}-${sp}.sock`, arrayDir);
}
/** The chassis's server for the SPs (op `host-io`: host writes of primary mirror images). */
export function chassisSocketPath(arrayDir: string): string {
  return socketPath(join(arrayDir, 'chassis.sock'), (h) => `sanbox-chassis-${h}.sock`, arrayDir);
}
function socketPath(p: string, short: (hash: string) => string, arrayDir: string): string {
  if (Buffer.byteLength(p) < 100) return p;
  return join(tmpdir(), short(createHash('sha256').update(arrayDir).digest('hex').slice(0, 16)));
}
