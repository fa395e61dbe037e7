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
import { CliError, EXIT, imagesDir, labsDir, pidAlive } from './common.js';

export interface LabArray {
  name: string;
  dir: string;
  nbd: { bind: string; port: number };
  api: { bind: string; port: number; token?: string };
  readOnly: boolean;
  luns: LunSpec[];
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
      known(a, where, ['name', 'dir', 'nbd', 'api', 'readOnly', 'luns']);
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
        known(v, `${at}.${what}`, allowToken ? ['bind', 'port', 'token'] : ['bind', 'port']);
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
      const nbd = endpoint(a.nbd, 'nbd', 10809, false);
      const api = endpoint(a.api, 'api', 8470, true);
      if (!isLoopback(api.bind) && !api.token) problems.push(`${at}.api: binding ${api.bind} (not loopback) needs a token`);
      usePort(nbd.port, `${at}.nbd`);
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
        nbd: { bind: nbd.bind, port: nbd.port },
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
  return { name: a.name, dir: a.dir, nbd: a.nbd, api: a.api, luns: a.luns, readOnly: a.readOnly };
}

// ---- state files ----

export interface LabStateArray {
  name: string;
  pid: number;
  dir: string;
  nbd: { host: string; port: number };
  api: { url: string; token?: string };
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
