/**
 * Chassis ↔ SP messages (Node IPC, JSON) and the SP's files in the array directory.
 *
 * chassis → SP: `{type: 'init', id, init: SpInit}` once, then `{type: 'cmd', id, op, args}`.
 * SP → chassis: `{type: 'reply', id, ok, result | error}` and `{type: 'event', event}`.
 *
 * Files of SP X under the array directory: `sp-X/vault/` (two vault copies + consumed record),
 * `sp-X/dirty-luns.json` (LUNs that may hold dirty cache: written before the first write-back
 * write of a LUN is acknowledged, cleared lazily once its cache is clean), `sp-X/cmi.sock`.
 */
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { BatteryThresholds } from '../sp/index.js';

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
  const p = join(spDir(arrayDir, sp), 'cmi.sock');
  if (Buffer.byteLength(p) < 100) return p;
  const h = createHash('sha256').update(arrayDir).digest('hex').slice(0, 16);
  return join(tmpdir(), `sanbox-cmi-${h}-${sp}.sock`);
}
