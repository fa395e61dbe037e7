/** `sps:` of an array in a lab file: the two storage processors and their battery. */
import { parseSize } from '../../array/index.js';
import { DEFAULT_SPS, type SpsConfig } from '../../array/chassis/index.js';
import { isObj } from './types.js';

/**
 * `sps:` of an array: `true` (defaults) or a mapping:
 *   cacheSize (per SP, default 64M), failback (automatic | manual), writeThrough (bool),
 *   idleMs (destage after this long idle; 0: only under pressure), vaultBandwidth (bytes/s,
 *   emulated vault speed for dump and restore; 0: disk speed), owners ({LUN name: A|B}),
 *   battery: { charge (0-100), holdUpMs (at full charge), low, high (hysteresis thresholds, %), failed,
 *              rechargePerSec (% per second with power on) }.
 */
export function parseSps(v: unknown, at: string, problems: string[]): SpsConfig | undefined {
  const out: SpsConfig = structuredClone(DEFAULT_SPS);
  if (v === true || v === null) return out;
  if (!isObj(v)) {
    problems.push(`${at} must be true or a mapping (cacheSize, failback, writeThrough, idleMs, vaultBandwidth, owners, battery)`);
    return undefined;
  }
  const keys = ['cacheSize', 'failback', 'writeThrough', 'idleMs', 'vaultBandwidth', 'owners', 'battery'];
  for (const k of Object.keys(v)) if (!keys.includes(k)) problems.push(`${at}: unknown key "${k}" (expected ${keys.join(', ')})`);
  if (v.cacheSize !== undefined) {
    const n = typeof v.cacheSize === 'string' || typeof v.cacheSize === 'number' ? parseSize(v.cacheSize) : undefined;
    if (n === undefined || n < 65536) problems.push(`${at}.cacheSize must be a size of at least 64K, not ${JSON.stringify(v.cacheSize)}`);
    else out.cacheBytes = n;
  }
  if (v.failback !== undefined) {
    if (v.failback !== 'automatic' && v.failback !== 'manual') problems.push(`${at}.failback must be automatic or manual`);
    else out.failback = v.failback;
  }
  if (v.writeThrough !== undefined) {
    if (typeof v.writeThrough !== 'boolean') problems.push(`${at}.writeThrough must be true or false`);
    else out.cache.writeThrough = v.writeThrough;
  }
  if (v.idleMs !== undefined) {
    if (!Number.isInteger(v.idleMs) || (v.idleMs as number) < 0) problems.push(`${at}.idleMs must be an integer >= 0`);
    else out.cache.idleMs = v.idleMs as number;
  }
  if (v.vaultBandwidth !== undefined) {
    const n = typeof v.vaultBandwidth === 'string' || typeof v.vaultBandwidth === 'number' ? (v.vaultBandwidth === 0 ? 0 : parseSize(v.vaultBandwidth)) : undefined;
    if (n === undefined) problems.push(`${at}.vaultBandwidth must be bytes per second (e.g. 4M) or 0`);
    else out.vaultBytesPerSec = n;
  }
  if (v.owners !== undefined) {
    if (!isObj(v.owners)) problems.push(`${at}.owners must map LUN names to A or B`);
    else
      for (const [k, o] of Object.entries(v.owners)) {
        if (o !== 'A' && o !== 'B') problems.push(`${at}.owners.${k} must be A or B, not ${JSON.stringify(o)}`);
        else out.owners[k] = o;
      }
  }
  if (v.battery !== undefined) {
    const b = v.battery;
    if (!isObj(b)) problems.push(`${at}.battery must be a mapping (charge, holdUpMs, low, high, failed, rechargePerSec)`);
    else {
      for (const k of Object.keys(b)) if (!['charge', 'holdUpMs', 'low', 'high', 'failed', 'rechargePerSec'].includes(k)) problems.push(`${at}.battery: unknown key "${k}"`);
      const pct = (k: string) => {
        const x = b[k];
        if (x === undefined) return undefined;
        if (typeof x !== 'number' || x < 0 || x > 100) {
          problems.push(`${at}.battery.${k} must be a percentage 0-100`);
          return undefined;
        }
        return x;
      };
      out.battery.charge = pct('charge') ?? out.battery.charge;
      const low = pct('low') ?? out.battery.thresholds.low;
      const high = pct('high') ?? out.battery.thresholds.high;
      if (low > high) problems.push(`${at}.battery: low (${low}) must not exceed high (${high})`);
      out.battery.thresholds = { low, high };
      if (b.rechargePerSec !== undefined) {
        const r = b.rechargePerSec;
        if (typeof r !== 'number' || !Number.isFinite(r) || r < 0 || r > 100) problems.push(`${at}.battery.rechargePerSec must be a percentage per second, 0-100`);
        else out.battery.rechargePerSec = r;
      }
      if (b.holdUpMs !== undefined) {
        if (!Number.isInteger(b.holdUpMs) || (b.holdUpMs as number) < 0) problems.push(`${at}.battery.holdUpMs must be an integer >= 0`);
        else out.battery.holdUpMs = b.holdUpMs as number;
      }
      if (b.failed !== undefined) {
        if (typeof b.failed !== 'boolean') problems.push(`${at}.battery.failed must be true or false`);
        else out.battery.failed = b.failed;
      }
    }
  }
  return out;
}
