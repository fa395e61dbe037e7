/**
 * Lab files (YAML) and lab state files.
 *
 * A lab file describes arrays and their LUNs (one array for now; later links and hosts):
 *
 *     lab: default                  # optional; default: the file name without extension
 *     arrays:
 *       - name: alpha
 *         dir: ../images/alpha      # optional; relative to this file; default <images>/<name>
 *         nbd: { bind: 127.0.0.1, port: 10809 }
 *         api: { bind: 127.0.0.1, port: 8470 }   # token: required off loopback
 *         readOnly: false           # optional
 *         luns:
 *           - { name: disk0, size: 1G }
 *           - { name: disk1, size: 256M, blockSize: 4096 }
 *
 * The state file of a running lab is `<images>/.labs/<lab>.json` (mode 0600): supervisor pid,
 * and for every array its pid, directory, NBD endpoint and API URL (and token if any).
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { BLOCK_SIZES, checkName, checkSize, parseSize } from '../array/index.js';
import { isLoopback } from '../control/index.js';
import type { ArrayServiceConfig, LunSpec } from '../control/service.js';
import { DEFAULT_SPS, type SpsConfig } from '../array/chassis/index.js';
import { CliError, EXIT, imagesDir, labsDir, pidAlive } from './common.js';

export interface LabArray {
  name: string;
  dir: string;
  nbd: { bind: string; port: number; ports?: [number, number] };
  api: { bind: string; port: number; token?: string };
  readOnly: boolean;
  luns: LunSpec[];
  /** Two SP processes (present when the lab file has an `sps` key). */
  sps?: SpsConfig;
}

export interface Lab {
  name: string;
  file: string;
  arrays: LabArray[];
}

export class LabError extends CliError {
  constructor(
    file: string,
    readonly problems: string[],
  ) {
    super(EXIT.USAGE, 'invalid-lab', `invalid lab file ${file}:\n  - ${problems.join('\n  - ')}`);
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Parses and validates a lab file; every problem is reported at once. */
export function loadLab(path: string): Lab {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(EXIT.USAGE, 'invalid-lab', `cannot read lab file ${file}: ${(e as Error).message}`);
  }
  return parseLab(text, file);
}

export function parseLab(text: string, file: string): Lab {
  const problems: string[] = [];
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length) throw new LabError(file, doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`));
  const root = doc.toJS() as unknown;
  if (!isObj(root)) throw new LabError(file, ['the lab file must be a mapping with an "arrays" list']);

  const known = (o: Obj, where: string, keys: string[]) => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) problems.push(`${where}: unknown key "${k}" (expected ${keys.join(', ')})`);
  };
  known(root, 'top level', ['lab', 'arrays']);

  let name = basename(file, extname(file));
  if (root.lab !== undefined) {
    const bad = checkName(root.lab, 'lab name');
    if (bad) problems.push(bad);
    else name = root.lab as string;
  } else if (checkName(name, 'lab name')) {
    problems.push(`lab name from the file name ${JSON.stringify(name)} is invalid; give "lab:"`);
  }

  const arrays: LabArray[] = [];
  if (!Array.isArray(root.arrays) || root.arrays.length === 0) {
    problems.push('"arrays" must be a non-empty list');
  } else {
    const names = new Set<string>();
    const ports = new Map<number, string>();
    const usePort = (port: number, what: string) => {
      if (port === 0) return;
      const prev = ports.get(port);
      if (prev) problems.push(`${what}: port ${port} is already used by ${prev}`);
      else ports.set(port, what);
    };
    root.arrays.forEach((a: unknown, i: number) => {
      const where = `arrays[${i}]`;
      if (!isObj(a)) {
        problems.push(`${where} must be a mapping`);
        return;
      }
      known(a, where, ['name', 'dir', 'nbd', 'api', 'readOnly', 'luns', 'sps']);
      const bad = checkName(a.name, `${where}.name`);
      if (bad) problems.push(bad);
      const aname = bad ? `#${i}` : (a.name as string);
      const at = bad ? where : `array ${aname}`;
      if (!bad) {
        if (names.has(aname)) problems.push(`${at}: duplicate array name`);
        names.add(aname);
      }
      let dir = join(imagesDir(), aname);
      if (a.dir !== undefined) {
        if (typeof a.dir !== 'string' || a.dir === '') problems.push(`${at}.dir must be a path`);
        else dir = resolve(dirname(file), a.dir);
      }
      const endpoint = (v: unknown, what: string, defPort: number, allowToken: boolean) => {
        const ep = { bind: '127.0.0.1', port: defPort, token: undefined as string | undefined };
        if (v === undefined) return ep;
        if (!isObj(v)) {
          problems.push(`${at}.${what} must be a mapping like { bind: 127.0.0.1, port: ${defPort} }`);
          return ep;
        }
        known(v, `${at}.${what}`, allowToken ? ['bind', 'port', 'token'] : ['bind', 'port', 'ports']);
        if (!allowToken && v.ports !== undefined) {
          const ps = v.ports;
          if (!Array.isArray(ps) || ps.length !== 2 || !ps.every((p) => Number.isInteger(p) && p >= 0 && p <= 65535)) {
            problems.push(`${at}.${what}.ports must be two ports [SP-A, SP-B], e.g. [10809, 10810]`);
          } else (ep as { ports?: [number, number] }).ports = [ps[0], ps[1]];
        }
        if (v.bind !== undefined) {
          if (typeof v.bind !== 'string' || v.bind === '') problems.push(`${at}.${what}.bind must be an address`);
          else ep.bind = v.bind;
        }
        if (v.port !== undefined) {
          if (!Number.isInteger(v.port) || (v.port as number) < 0 || (v.port as number) > 65535) {
            problems.push(`${at}.${what}.port must be an integer 0-65535 (0: any free port), not ${JSON.stringify(v.port)}`);
          } else ep.port = v.port as number;
        }
        if (v.token !== undefined) {
          if (typeof v.token !== 'string' || v.token.length < 8) problems.push(`${at}.${what}.token must be a string of at least 8 characters`);
          else ep.token = v.token;
        }
        return ep;
      };
      const nbd = endpoint(a.nbd, 'nbd', 10809, false) as { bind: string; port: number; ports?: [number, number] };
      const api = endpoint(a.api, 'api', 8470, true);
      if (!isLoopback(api.bind) && !api.token) problems.push(`${at}.api: binding ${api.bind} (not loopback) needs a token`);
      const sps = a.sps === undefined || a.sps === false ? undefined : parseSps(a.sps, `${at}.sps`, problems);
      if (sps) {
        const [pa, pb] = nbd.ports ?? (nbd.port === 0 ? [0, 0] : [nbd.port, nbd.port + 1]);
        usePort(pa, `${at}.nbd (SP A)`);
        if (pb !== pa || pb !== 0) usePort(pb, `${at}.nbd (SP B)`);
      } else usePort(nbd.port, `${at}.nbd`);
      usePort(api.port, `${at}.api`);
      if (a.readOnly !== undefined && typeof a.readOnly !== 'boolean') problems.push(`${at}.readOnly must be true or false`);

      const luns: LunSpec[] = [];
      if (!Array.isArray(a.luns)) problems.push(`${at}.luns must be a list (it may be empty: [])`);
      else {
        const lnames = new Set<string>();
        a.luns.forEach((l: unknown, j: number) => {
          const lw = `${at}.luns[${j}]`;
          if (!isObj(l)) {
            problems.push(`${lw} must be a mapping like { name: disk0, size: 1G }`);
            return;
          }
          known(l, lw, ['name', 'size', 'blockSize']);
          const nbad = checkName(l.name);
          if (nbad) problems.push(`${lw}: ${nbad}`);
          else if (lnames.has(l.name as string)) problems.push(`${lw}: duplicate LUN name ${l.name}`);
          else lnames.add(l.name as string);
          const blockSize = l.blockSize === undefined ? 512 : l.blockSize;
          if (!BLOCK_SIZES.includes(blockSize as 512)) problems.push(`${lw}.blockSize must be 512 or 4096, not ${JSON.stringify(l.blockSize)}`);
          const size = typeof l.size === 'string' || typeof l.size === 'number' ? parseSize(l.size) : undefined;
          if (size === undefined) problems.push(`${lw}.size must be a size like 1G, 256M or a byte count, not ${JSON.stringify(l.size)}`);
          else {
            const sbad = checkSize(size, BLOCK_SIZES.includes(blockSize as 512) ? (blockSize as number) : 512);
            if (sbad) problems.push(`${lw}: ${sbad}`);
          }
          if (!nbad && size !== undefined) {
            luns.push({ name: l.name as string, size, ...(l.blockSize !== undefined ? { blockSize: blockSize as number } : {}) });
          }
        });
      }
      arrays.push({
        name: aname,
        dir,
        nbd: { bind: nbd.bind, port: nbd.ports?.[0] ?? nbd.port, ...(nbd.ports ? { ports: nbd.ports } : {}) },
        ...(sps ? { sps } : {}),
        api: { bind: api.bind, port: api.port, ...(api.token ? { token: api.token } : {}) },
        readOnly: a.readOnly === true,
        luns,
      });
    });
  }
  if (problems.length) throw new LabError(file, problems);
  return { name, file, arrays };
}

export function arrayConfig(a: LabArray): ArrayServiceConfig {
  return { name: a.name, dir: a.dir, nbd: a.nbd, api: a.api, luns: a.luns, readOnly: a.readOnly, ...(a.sps ? { sps: a.sps } : {}) };
}

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

// ---- state files ----

export interface LabStateArray {
  name: string;
  pid: number;
  dir: string;
  nbd: { host: string; port: number };
  api: { url: string; token?: string };
  /** Two-SP arrays: each SP's NBD endpoint. */
  sps?: { name: string; host: string; port: number }[];
}

export interface LabState {
  lab: string;
  file: string;
  supervisorPid: number;
  startedAt: string;
  state: 'starting' | 'running' | 'stopping';
  /** Log file of a detached lab. */
  log?: string;
  arrays: LabStateArray[];
}

export function statePath(lab: string): string {
  return join(labsDir(), `${lab}.json`);
}

export async function writeState(state: LabState): Promise<void> {
  await mkdir(labsDir(), { recursive: true });
  const path = statePath(state.lab);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(tmp, path);
}

export async function readState(lab: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(statePath(lab), 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

export async function removeState(lab: string, onlyIfPid?: number): Promise<void> {
  if (onlyIfPid !== undefined) {
    const s = await readState(lab);
    if (s && s.supervisorPid !== onlyIfPid) return;
  }
  await rm(statePath(lab), { force: true });
}

/** Whether any process of the lab is alive. */
export function labAlive(s: LabState): boolean {
  return pidAlive(s.supervisorPid) || s.arrays.some((a) => pidAlive(a.pid));
}

/** State files of labs with a live process (stale files of dead labs are ignored). */
export async function runningLabs(): Promise<LabState[]> {
  let files: string[] = [];
  try {
    files = (await readdir(labsDir())).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: LabState[] = [];
  for (const f of files) {
    const s = await readState(f.slice(0, -5));
    if (s && labAlive(s)) out.push(s);
  }
  return out.sort((a, b) => a.lab.localeCompare(b.lab));
}

/** A lab reference: a lab name, or a path to a lab file (its name is read from the file). */
export function labNameOf(ref: string): string {
  if (/\.ya?ml$/i.test(ref) || ref.includes('/')) {
    try {
      return loadLab(ref).name;
    } catch {
      return basename(ref, extname(ref));
    }
  }
  return ref;
}
