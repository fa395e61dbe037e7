/**
 * Lab files (YAML) and lab state files.
 *
 * A lab file describes arrays and their LUNs:
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
 * Links (remote links between arrays, each carried by a link emulator in the supervisor):
 *
 *     arrays:
 *       - name: alpha
 *         remoteLink: { bind: 127.0.0.1, port: 10870 }   # the array's remote-link port
 *       - name: bravo
 *         host: 10.0.0.2                 # runs on another host: not started here
 *         remoteLink: { port: 10880 }    # address: HOST:PORT (default host:port)
 *     links:
 *       - name: alpha-bravo
 *         between: [alpha, bravo]        # a and b: directions are a-to-b and b-to-a
 *         listen: { bind: 127.0.0.1, toB: 10871, toA: 10872 }  # alpha dials toB, bravo toA
 *         api: { bind: 127.0.0.1, port: 8490 }
 *         latency: 5                     # ms, or { a-to-b: 5, b-to-a: 7 }; jitter the same
 *         bandwidth: 100M                # bytes/s (0 / unlimited: no cap), or per direction
 *         cut: none                      # none | a-to-b | b-to-a | both
 *         queueSize: 1M                  # per connection and direction
 *         cutResetMs: 15000              # a cut this long resets the connections (0: never)
 *         secret: ...                    # shared handshake secret (16+ characters), or secretFile: PATH
 *
 * Mirrors (`sanbox up` creates them on their primary arrays when absent; see parseMirrors):
 *
 *     mirrors:
 *       - name: m0
 *         primary: alpha:disk0           # ARRAY:LUN
 *         secondaries: [bravo:disk0]     # or { image, synchronized, recovery, syncRate }
 *         writePolicy: synchronous       # regionSize, syncRate, activation, minImages, maxMissing,
 *                                        # secondaryReads, syncPriority: optional
 *
 * Consistency groups (`sanbox up` creates them on the members' primary array after the mirrors;
 * see parseGroups):
 *
 *     groups:
 *       - name: g0
 *         members: [m1, m2]              # mirrors of mirrors: (same primary array, same secondary arrays)
 *         mode: asynchronous             # or near-synchronous (with nearSync) or synchronous
 *         nearSync: { maxEntries: 0, maxBytes: 64M, lowEntries: 0, lowBytes: 32M }
 *         writelog: { capacity: 256M, extensions: 2, extensionSize: 64M, extendAt: 90 }
 *         throttleEvery: 10s
 *         throttles: [{ from: "08:00:00", to: "18:00:00", measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }]
 *         perf: { every: 10s, maxSize: 1M }
 *
 * Each array process gets `remoteLink: { bind, port, peers }` (arrayConfig / peersOf).
 *
 * The state file of a running lab is `<images>/.labs/<lab>.json` (mode 0600): supervisor pid,
 * and for every array its pid, directory, NBD endpoint and API URL (and token if any).
 */
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import { BLOCK_SIZES, checkName, checkSize, formatSize, parseSize } from '../array/index.js';
import { isLoopback } from '../control/index.js';
import type { ArrayServiceConfig, LunSpec } from '../control/service.js';
import type { PeerConfig } from '../replication/mirror/types.js';
import { DEFAULT_SPS, type SpsConfig } from '../array/chassis/index.js';
import { CliError, EXIT, imagesDir, labsDir, pidAlive } from './common.js';
import { attributeProblems, parseThrottles, withDefaults, type GroupAttributes, type GroupMode } from '../replication/group/index.js';

export interface LabArray {
  name: string;
  dir: string;
  nbd: { bind: string; port: number; ports?: [number, number] };
  api: { bind: string; port: number; token?: string };
  readOnly: boolean;
  luns: LunSpec[];
  /** Two SP processes (present when the lab file has an `sps` key). */
  sps?: SpsConfig;
  /** Set when the array runs on another host: `sanbox up` here does not start it. */
  host?: string;
  /** The array's remote-link port (where links deliver) and the address peers use to reach it. */
  remoteLink?: { bind: string; port: number; address: { host: string; port: number } };
  /** Shared remote-link secret of an array on another host, for the direct connection to it (no link in this lab). */
  secret?: string;
}

export type LinkDirection = 'a-to-b' | 'b-to-a';
export interface LabLinkSettings {
  latencyMs: number;
  jitterMs: number;
  bandwidth: number;
}

/** A remote link between arrays a and b, carried by a link emulator. */
export interface LabLink {
  name: string;
  a: string;
  b: string;
  /** Listeners: array a dials `toB` to reach b, array b dials `toA` to reach a. */
  listen: { bind: string; toB: number; toA: number };
  /** Where the emulator forwards: each array's remote-link address. */
  targets: { a: { host: string; port: number }; b: { host: string; port: number } };
  api: { bind: string; port: number; token?: string };
  settings: Record<LinkDirection, LabLinkSettings>;
  cut: 'none' | 'a-to-b' | 'b-to-a' | 'both';
  queueBytes: number;
  cutResetMs: number;
  /** Shared secret of the remote-link handshake between a and b (required when a mirror uses the link). */
  secret?: string;
}

/** `ARRAY:LUN` in a lab file: the LUN by name, or by id when it is all digits and no LUN has that name. */
export interface LabLunRef {
  array: string;
  lun: string | number;
}

export interface LabSecondary extends LabLunRef {
  /** Declared identical already: no initial copy. */
  synchronized: boolean;
  recoveryPolicy?: 'auto' | 'manual';
  syncRate?: number;
}

/** A mirror `sanbox up` creates on the primary array when it does not exist. */
export interface LabMirror {
  name: string;
  primary: LabLunRef;
  secondaries: LabSecondary[];
  writePolicy: 'synchronous';
  regionSize?: number;
  syncRate?: number;
  activationPolicy?: 'automatic' | 'manual';
  minImagesRequired?: number;
  maxMissingImages?: number;
  allowSecondaryReads?: boolean;
  syncPriority?: 'low' | 'medium' | 'high';
}

/** A consistency group `sanbox up` creates on its members' primary array when it does not exist. */
export interface LabGroup {
  name: string;
  /** mirror names (of the lab's mirrors:) */
  members: string[];
  /** the members' primary array, and their secondary arrays (sorted) */
  primary: string;
  secondaries: string[];
  /** what the lab file sets, in the API's units (the rest: the driver's defaults) */
  attributes: Partial<GroupAttributes>;
}

export interface Lab {
  name: string;
  file: string;
  arrays: LabArray[];
  links: LabLink[];
  mirrors: LabMirror[];
  groups: LabGroup[];
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
  known(root, 'top level', ['lab', 'arrays', 'links', 'mirrors', 'groups']);

  let name = basename(file, extname(file));
  if (root.lab !== undefined) {
    const bad = checkName(root.lab, 'lab name');
    if (bad) problems.push(bad);
    else name = root.lab as string;
  } else if (checkName(name, 'lab name')) {
    problems.push(`lab name from the file name ${JSON.stringify(name)} is invalid; give "lab:"`);
  }

  const ports = new Map<number, string>();
  const usePort = (port: number, what: string) => {
    if (port === 0) return;
    const prev = ports.get(port);
    if (prev) problems.push(`${what}: port ${port} is already used by ${prev}`);
    else ports.set(port, what);
  };
  const arrays: LabArray[] = [];
  if (!Array.isArray(root.arrays) || root.arrays.length === 0) {
    problems.push('"arrays" must be a non-empty list');
  } else {
    const names = new Set<string>();
    root.arrays.forEach((a: unknown, i: number) => {
      const where = `arrays[${i}]`;
      if (!isObj(a)) {
        problems.push(`${where} must be a mapping`);
        return;
      }
      known(a, where, ['name', 'dir', 'nbd', 'api', 'readOnly', 'luns', 'sps', 'host', 'remoteLink', 'secret', 'secretFile']);
      const bad = checkName(a.name, `${where}.name`);
      if (bad) problems.push(bad);
      const aname = bad ? `#${i}` : (a.name as string);
      const at = bad ? where : `array ${aname}`;
      if (!bad) {
        if (names.has(aname)) problems.push(`${at}: duplicate array name`);
        names.add(aname);
      }
      const remoteLink = parseRemoteLink(a, at, problems);
      if (a.host !== undefined) {
        // An array on another host: only its name and remote-link address matter here.
        if (typeof a.host !== 'string' || a.host === '') problems.push(`${at}.host must be a host name or address`);
        const secret = parseSecret(a, at, file, problems);
        for (const k of Object.keys(a)) {
          if (!['name', 'host', 'remoteLink', 'secret', 'secretFile'].includes(k)) problems.push(`${at}: "${k}" does not apply to an array on another host (host: ${String(a.host)}); describe it in the lab file of that host`);
        }
        arrays.push({
          name: aname,
          dir: '',
          nbd: { bind: '', port: 0 },
          api: { bind: '', port: 0 },
          readOnly: false,
          luns: [],
          host: String(a.host),
          ...(remoteLink ? { remoteLink: { ...remoteLink, address: remoteLink.address ?? { host: String(a.host), port: remoteLink.port } } } : {}),
          ...(secret !== undefined ? { secret } : {}),
        });
        return;
      }
      for (const k of ['secret', 'secretFile']) {
        if (a[k] !== undefined) problems.push(`${at}.${k}: only an array on another host (host:) takes a secret; put it on the link (links: ... secret:)`);
      }
      if (remoteLink) usePort(remoteLink.port, `${at}.remoteLink`);
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
        ...(remoteLink
          ? { remoteLink: { ...remoteLink, address: remoteLink.address ?? { host: isWildcard(remoteLink.bind) ? '127.0.0.1' : remoteLink.bind, port: remoteLink.port } } }
          : {}),
      });
    });
    if (arrays.length && arrays.every((x) => x.host)) problems.push('every array runs on another host: nothing to start here');
  }
  const links = parseLinks(root.links, arrays, problems, usePort, file);
  const mirrors = parseMirrors(root.mirrors, arrays, links, root.links, problems);
  const groups = parseGroups(root.groups, mirrors, root.mirrors, problems);
  if (problems.length) throw new LabError(file, problems);
  return { name, file, arrays, links, mirrors, groups };
}

const isWildcard = (h: string) => h === '0.0.0.0' || h === '::';

/** `remoteLink: { bind, port, address }` of an array; undefined when absent or invalid. */
function parseRemoteLink(a: Obj, at: string, problems: string[]): { bind: string; port: number; address?: { host: string; port: number } } | undefined {
  const v = a.remoteLink;
  if (v === undefined) return undefined;
  if (!isObj(v)) {
    problems.push(`${at}.remoteLink must be a mapping like { bind: 127.0.0.1, port: 10870 }`);
    return undefined;
  }
  let ok = true;
  for (const k of Object.keys(v)) {
    if (!['bind', 'port', 'address'].includes(k)) {
      problems.push(`${at}.remoteLink: unknown key "${k}" (expected bind, port, address)`);
      ok = false;
    }
  }
  const out: { bind: string; port: number; address?: { host: string; port: number } } = { bind: '127.0.0.1', port: 0 };
  if (v.bind !== undefined) {
    if (typeof v.bind !== 'string' || v.bind === '') (problems.push(`${at}.remoteLink.bind must be an address`), (ok = false));
    else out.bind = v.bind;
  }
  if (!Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535) {
    problems.push(`${at}.remoteLink.port must be a port 1-65535 (links need to know it), not ${JSON.stringify(v.port)}`);
    ok = false;
  } else out.port = v.port as number;
  if (v.address !== undefined) {
    const m = typeof v.address === 'string' ? /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(v.address) : null;
    const port = m ? Number(m[2]) : 0;
    if (!m || port < 1 || port > 65535) (problems.push(`${at}.remoteLink.address must be HOST:PORT, not ${JSON.stringify(v.address)}`), (ok = false));
    else out.address = { host: m[1]!.replace(/^\[|\]$/g, ''), port };
  }
  return ok ? out : undefined;
}

const LINK_KEYS = ['name', 'between', 'listen', 'api', 'latency', 'jitter', 'bandwidth', 'cut', 'queueSize', 'cutResetMs', 'secret', 'secretFile'];

/** Shortest shared secret accepted for a remote link. */
export const MIN_SECRET = 16;

/**
 * `secret:` (the string itself) or `secretFile:` (a file holding it, relative to the lab file;
 * surrounding whitespace is dropped) of a link or of an array on another host.
 */
function parseSecret(o: Obj, at: string, file: string, problems: string[]): string | undefined {
  if (o.secret !== undefined && o.secretFile !== undefined) {
    problems.push(`${at}: give secret or secretFile, not both`);
    return undefined;
  }
  let secret: string;
  if (o.secret !== undefined) {
    if (typeof o.secret !== 'string') {
      problems.push(`${at}.secret must be a string (quote it if it looks like a number)`);
      return undefined;
    }
    secret = o.secret;
  } else if (o.secretFile !== undefined) {
    if (typeof o.secretFile !== 'string' || o.secretFile === '') {
      problems.push(`${at}.secretFile must be a path`);
      return undefined;
    }
    const path = resolve(dirname(file), o.secretFile);
    try {
      secret = readFileSync(path, 'utf8').trim();
    } catch (e) {
      problems.push(`${at}.secretFile: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      return undefined;
    }
  } else return undefined;
  if (secret.length < MIN_SECRET) {
    problems.push(`${at}.${o.secret !== undefined ? 'secret' : 'secretFile'}: the shared secret must have at least ${MIN_SECRET} characters (has ${secret.length})`);
    return undefined;
  }
  return secret;
}

/** Parses a bandwidth: bytes per second (`100M`, `1.5G`, `1048576`, with an optional `/s`), 0/off/unlimited: no cap. */
export function parseRate(v: unknown): number | undefined {
  if (v === 0 || v === 'off' || v === 'unlimited' || v === '0') return 0;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v > 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const n = parseSize(v.replace(/(B)?\/s$/i, ''));
  return n !== undefined && n > 0 ? n : undefined;
}

function parseLinks(v: unknown, arrays: LabArray[], problems: string[], usePort: (port: number, what: string) => void, file: string): LabLink[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    problems.push('"links" must be a list');
    return [];
  }
  const out: LabLink[] = [];
  const names = new Set<string>();
  v.forEach((l: unknown, i: number) => {
    const where = `links[${i}]`;
    if (!isObj(l)) return void problems.push(`${where} must be a mapping (${LINK_KEYS.join(', ')})`);
    const before = problems.length;
    for (const k of Object.keys(l)) if (!LINK_KEYS.includes(k)) problems.push(`${where}: unknown key "${k}" (expected ${LINK_KEYS.join(', ')})`);
    const bad = checkName(l.name, `${where}.name`);
    if (bad) problems.push(bad);
    const at = bad ? where : `link ${l.name as string}`;
    if (!bad) {
      if (names.has(l.name as string)) problems.push(`${at}: duplicate link name`);
      names.add(l.name as string);
    }
    const ends: LabArray[] = [];
    if (!Array.isArray(l.between) || l.between.length !== 2) problems.push(`${at}.between must name two arrays, e.g. [alpha, bravo]`);
    else {
      for (const n of l.between) {
        const arr = arrays.find((a) => a.name === n);
        if (!arr) problems.push(`${at}.between: no array ${JSON.stringify(n)} in this lab (arrays: ${arrays.map((a) => a.name).join(', ')})`);
        else if (!arr.remoteLink) problems.push(`${at}: array ${arr.name} needs remoteLink: { port: N } (where the link delivers its traffic)`);
        else ends.push(arr);
      }
      if (l.between[0] === l.between[1]) problems.push(`${at}.between: a link joins two different arrays`);
    }
    const listen = { bind: '127.0.0.1', toB: 0, toA: 0 };
    if (l.listen !== undefined) {
      if (!isObj(l.listen)) problems.push(`${at}.listen must be a mapping like { bind: 127.0.0.1, toB: 10871, toA: 10872 }`);
      else {
        for (const k of Object.keys(l.listen)) if (!['bind', 'toB', 'toA'].includes(k)) problems.push(`${at}.listen: unknown key "${k}" (expected bind, toB, toA)`);
        if (l.listen.bind !== undefined) {
          if (typeof l.listen.bind !== 'string' || l.listen.bind === '') problems.push(`${at}.listen.bind must be an address`);
          else listen.bind = l.listen.bind;
        }
        for (const k of ['toB', 'toA'] as const) {
          const p = l.listen[k];
          if (p === undefined) continue;
          if (!Number.isInteger(p) || (p as number) < 0 || (p as number) > 65535) problems.push(`${at}.listen.${k} must be an integer 0-65535 (0: any free port), not ${JSON.stringify(p)}`);
          else listen[k] = p as number;
        }
      }
    }
    const api = { bind: '127.0.0.1', port: 0, token: undefined as string | undefined };
    if (l.api !== undefined) {
      if (!isObj(l.api)) problems.push(`${at}.api must be a mapping like { bind: 127.0.0.1, port: 8490 }`);
      else {
        for (const k of Object.keys(l.api)) if (!['bind', 'port', 'token'].includes(k)) problems.push(`${at}.api: unknown key "${k}" (expected bind, port, token)`);
        if (l.api.bind !== undefined) {
          if (typeof l.api.bind !== 'string' || l.api.bind === '') problems.push(`${at}.api.bind must be an address`);
          else api.bind = l.api.bind;
        }
        if (l.api.port !== undefined) {
          if (!Number.isInteger(l.api.port) || (l.api.port as number) < 0 || (l.api.port as number) > 65535) problems.push(`${at}.api.port must be an integer 0-65535, not ${JSON.stringify(l.api.port)}`);
          else api.port = l.api.port as number;
        }
        if (l.api.token !== undefined) {
          if (typeof l.api.token !== 'string' || l.api.token.length < 8) problems.push(`${at}.api.token must be a string of at least 8 characters`);
          else api.token = l.api.token;
        }
      }
    }
    if (!isLoopback(api.bind) && !api.token) problems.push(`${at}.api: binding ${api.bind} (not loopback) needs a token`);
    const settings: Record<LinkDirection, LabLinkSettings> = {
      'a-to-b': { latencyMs: 0, jitterMs: 0, bandwidth: 0 },
      'b-to-a': { latencyMs: 0, jitterMs: 0, bandwidth: 0 },
    };
    const perDir = (key: 'latency' | 'jitter' | 'bandwidth', field: keyof LabLinkSettings, parse: (x: unknown) => number | undefined, hint: string) => {
      const x = l[key];
      if (x === undefined) return;
      const vals: [LinkDirection, unknown][] = isObj(x) ? [] : [['a-to-b', x], ['b-to-a', x]];
      if (isObj(x)) {
        for (const k of Object.keys(x)) {
          if (k !== 'a-to-b' && k !== 'b-to-a') problems.push(`${at}.${key}: unknown direction "${k}" (expected a-to-b, b-to-a)`);
          else vals.push([k, x[k]]);
        }
      }
      for (const [d, raw] of vals) {
        const n = parse(raw);
        if (n === undefined) problems.push(`${at}.${key}${isObj(x) ? `.${d}` : ''} must be ${hint}, not ${JSON.stringify(raw)}`);
        else settings[d][field] = n;
      }
    };
    const ms = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 3_600_000 ? x : undefined);
    perDir('latency', 'latencyMs', ms, 'milliseconds >= 0 (or { a-to-b: MS, b-to-a: MS })');
    perDir('jitter', 'jitterMs', ms, 'milliseconds >= 0 (or { a-to-b: MS, b-to-a: MS })');
    perDir('bandwidth', 'bandwidth', parseRate, 'bytes per second like 100M or 10M/s, or 0 / unlimited');
    let cut: LabLink['cut'] = 'none';
    if (l.cut !== undefined) {
      if (l.cut === false) cut = 'none';
      else if (l.cut === true) cut = 'both';
      else if (['none', 'a-to-b', 'b-to-a', 'both'].includes(l.cut as string)) cut = l.cut as LabLink['cut'];
      else problems.push(`${at}.cut must be none, a-to-b, b-to-a or both, not ${JSON.stringify(l.cut)}`);
    }
    let queueBytes = 1 << 20;
    if (l.queueSize !== undefined) {
      const n = typeof l.queueSize === 'string' || typeof l.queueSize === 'number' ? parseSize(l.queueSize) : undefined;
      if (n === undefined || n < 1024) problems.push(`${at}.queueSize must be a size of at least 1K, not ${JSON.stringify(l.queueSize)}`);
      else queueBytes = n;
    }
    let cutResetMs = 15_000;
    if (l.cutResetMs !== undefined) {
      if (!Number.isInteger(l.cutResetMs) || (l.cutResetMs as number) < 0) problems.push(`${at}.cutResetMs must be an integer >= 0 (0: never reset)`);
      else cutResetMs = l.cutResetMs as number;
    }
    const secret = parseSecret(l, at, file, problems);
    usePort(listen.toB, `${at}.listen.toB`);
    if (listen.toA !== listen.toB || listen.toA !== 0) usePort(listen.toA, `${at}.listen.toA`);
    usePort(api.port, `${at}.api`);
    if (problems.length > before || ends.length !== 2) return;
    out.push({
      name: l.name as string,
      a: ends[0]!.name,
      b: ends[1]!.name,
      listen,
      targets: { a: ends[0]!.remoteLink!.address, b: ends[1]!.remoteLink!.address },
      api: { bind: api.bind, port: api.port, ...(api.token ? { token: api.token } : {}) },
      settings,
      cut,
      queueBytes,
      cutResetMs,
      ...(secret !== undefined ? { secret } : {}),
    });
  });
  return out;
}

const MIRROR_KEYS = ['name', 'primary', 'secondaries', 'writePolicy', 'regionSize', 'syncRate', 'activation', 'minImages', 'maxMissing', 'secondaryReads', 'syncPriority'];
const SECONDARY_KEYS = ['image', 'synchronized', 'recovery', 'syncRate'];

/** The link of a lab between two arrays (either order), if any. */
export function linkBetween(links: LabLink[], x: string, y: string): LabLink | undefined {
  return links.find((l) => (l.a === x && l.b === y) || (l.a === y && l.b === x));
}

/**
 * `mirrors:` — each { name, primary: ARRAY:LUN, secondaries: [ARRAY:LUN | { image, synchronized,
 * recovery, syncRate }], writePolicy (synchronous; async is a group's mode), regionSize, syncRate,
 * activation, minImages, maxMissing, secondaryReads, syncPriority }. Every problem is reported:
 * unknown keys, arrays or LUNs not in the lab, no link (with a secret) between the primary and a
 * secondary, a secondary LUN smaller than the primary, a LUN in two mirrors.
 */
function parseMirrors(v: unknown, arrays: LabArray[], links: LabLink[], rawLinks: unknown, problems: string[]): LabMirror[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push('"mirrors" must be a list');
    return [];
  }
  const out: LabMirror[] = [];
  const names = new Set<string>();
  /** "array:lun" -> the mirror using it, so a LUN is in at most one mirror. */
  const used = new Map<string, string>();
  // A link declared in the file but invalid has its own problems; do not also say it is missing.
  const declaredPairs = new Set<string>();
  if (Array.isArray(rawLinks)) {
    for (const l of rawLinks) {
      const b = isObj(l) ? l.between : undefined;
      if (Array.isArray(b) && b.length === 2) declaredPairs.add([String(b[0]), String(b[1])].sort().join('\u0000'));
    }
  }
  v.forEach((m: unknown, i: number) => {
    const where = `mirrors[${i}]`;
    if (!isObj(m)) return void problems.push(`${where} must be a mapping (${MIRROR_KEYS.join(', ')})`);
    const before = problems.length;
    for (const k of Object.keys(m)) if (!MIRROR_KEYS.includes(k)) problems.push(`${where}: unknown key "${k}" (expected ${MIRROR_KEYS.join(', ')})`);
    const bad = checkName(m.name, `${where}.name`);
    if (bad) problems.push(m.name === undefined ? `${where}.name is required (the mirror's name on the arrays)` : bad);
    const at = bad ? where : `mirror ${m.name as string}`;
    if (!bad) {
      if (names.has(m.name as string)) problems.push(`${at}: duplicate mirror name`);
      names.add(m.name as string);
    }

    /** Parses ARRAY:LUN and checks it against the lab; returns the ref and the LUN size when known. */
    const lunRef = (x: unknown, what: string): { ref: LabLunRef; size?: number; arr: LabArray } | undefined => {
      const mm = typeof x === 'string' ? /^([^:\s]+):([^:\s]+)$/.exec(x) : null;
      if (!mm) return void problems.push(`${at}.${what} must be ARRAY:LUN (e.g. alpha:disk0), not ${JSON.stringify(x)}`);
      const [, an, ln] = mm as unknown as [string, string, string];
      const arr = arrays.find((a) => a.name === an);
      if (!arr) return void problems.push(`${at}.${what}: no array ${JSON.stringify(an)} in this lab (arrays: ${arrays.map((a) => a.name).join(', ')})`);
      if (arr.host) {
        // On another host: its LUNs are described there.
        if (checkName(ln)) return void problems.push(`${at}.${what}: ${checkName(ln)}`);
        return { ref: { array: an, lun: /^\d+$/.test(ln) ? Number(ln) : ln }, arr };
      }
      const byName = arr.luns.find((l) => l.name === ln);
      if (byName) return { ref: { array: an, lun: ln }, size: byName.size, arr };
      if (/^\d+$/.test(ln) && Number.isSafeInteger(Number(ln))) {
        // A LUN id: the lab's LUNs get ids in file order on a new array; others may exist.
        return { ref: { array: an, lun: Number(ln) }, arr };
      }
      return void problems.push(`${at}.${what}: array ${an} has no LUN ${JSON.stringify(ln)} in this lab (LUNs: ${arr.luns.map((l) => l.name).join(', ') || 'none'})`);
    };
    const claim = (r: { ref: LabLunRef }, what: string) => {
      const key = `${r.ref.array}:${r.ref.lun}`;
      const prev = used.get(key);
      if (prev !== undefined) problems.push(`${at}.${what}: LUN ${key} is already an image of mirror ${prev}${prev === m.name ? '' : ' (a LUN belongs to at most one mirror)'}`);
      else used.set(key, String(m.name ?? where));
    };

    if (m.primary === undefined) problems.push(`${at}.primary is required: ARRAY:LUN of the primary image`);
    const primary = m.primary === undefined ? undefined : lunRef(m.primary, 'primary');
    if (primary) claim(primary, 'primary');

    const secondaries: LabSecondary[] = [];
    const secArrays = new Set<string>();
    if (!Array.isArray(m.secondaries) || m.secondaries.length === 0) {
      problems.push(`${at}.secondaries must be a non-empty list of ARRAY:LUN (or { image: ARRAY:LUN, synchronized, recovery, syncRate })`);
    } else {
      m.secondaries.forEach((s: unknown, j: number) => {
        const sw = `secondaries[${j}]`;
        let img: unknown = s;
        const sec: Omit<LabSecondary, 'array' | 'lun'> = { synchronized: false };
        if (isObj(s)) {
          for (const k of Object.keys(s)) if (!SECONDARY_KEYS.includes(k)) problems.push(`${at}.${sw}: unknown key "${k}" (expected ${SECONDARY_KEYS.join(', ')})`);
          img = s.image;
          if (img === undefined) problems.push(`${at}.${sw}.image is required: ARRAY:LUN`);
          if (s.synchronized !== undefined) {
            if (typeof s.synchronized !== 'boolean') problems.push(`${at}.${sw}.synchronized must be true or false`);
            else sec.synchronized = s.synchronized;
          }
          if (s.recovery !== undefined) {
            if (s.recovery !== 'auto' && s.recovery !== 'manual') problems.push(`${at}.${sw}.recovery must be auto or manual, not ${JSON.stringify(s.recovery)}`);
            else sec.recoveryPolicy = s.recovery;
          }
          if (s.syncRate !== undefined) {
            const r = parseRate(s.syncRate);
            if (!r) problems.push(`${at}.${sw}.syncRate must be a positive rate like 32M (bytes per second), not ${JSON.stringify(s.syncRate)}`);
            else sec.syncRate = r;
          }
        }
        if (img === undefined) return;
        const r = lunRef(img, sw);
        if (!r) return;
        claim(r, sw);
        if (primary) {
          const pa = primary.ref.array;
          const sa = r.ref.array;
          if (sa === pa) problems.push(`${at}.${sw}: the secondary must be on another array than the primary (${pa})`);
          else {
            if (secArrays.has(sa)) problems.push(`${at}.${sw}: a mirror has at most one image per array (${sa} twice)`);
            secArrays.add(sa);
            const link = linkBetween(links, pa, sa);
            const far = [primary.arr, r.arr].find((x) => x.host);
            if (link) {
              if (link.secret === undefined) problems.push(`${at}: link ${link.name} needs secret: or secretFile: (the mirror replicates ${pa} -> ${sa} over it)`);
            } else if (declaredPairs.has([pa, sa].sort().join('\u0000'))) {
              // the link has problems of its own (reported above)
            } else if (far && far.remoteLink && far.secret !== undefined) {
              // direct connection to an array on another host
            } else if (far && far.remoteLink) {
              problems.push(`${at}: array ${far.name} (on ${far.host}) is reached directly (no link in this lab): give it secret: or secretFile:`);
            } else {
              problems.push(`${at}: no link between ${pa} and ${sa}; add one under links: (between: [${pa}, ${sa}], with a secret)`);
            }
          }
          if (primary.size !== undefined && r.size !== undefined && r.size < primary.size) {
            problems.push(`${at}.${sw}: LUN ${sa}:${String(r.ref.lun)} (${formatSize(r.size)}) is smaller than the primary ${pa}:${String(primary.ref.lun)} (${formatSize(primary.size)})`);
          }
        }
        secondaries.push({ ...r.ref, ...sec });
      });
    }

    const mirror: Partial<LabMirror> = {};
    if (m.writePolicy !== undefined && m.writePolicy !== 'synchronous') {
      if (m.writePolicy === 'asynchronous' || m.writePolicy === 'near-synchronous') {
        problems.push(`${at}.writePolicy ${m.writePolicy} is not supported yet (asynchronous modes come with issue 6); use synchronous`);
      } else problems.push(`${at}.writePolicy must be synchronous (asynchronous and near-synchronous come later), not ${JSON.stringify(m.writePolicy)}`);
    }
    if (m.regionSize !== undefined) {
      const n = typeof m.regionSize === 'string' || typeof m.regionSize === 'number' ? parseSize(m.regionSize) : undefined;
      if (n === undefined || n < 4096 || n > 64 << 20 || (n & (n - 1)) !== 0) problems.push(`${at}.regionSize must be a power of two from 4K to 64M, not ${JSON.stringify(m.regionSize)}`);
      else mirror.regionSize = n;
    }
    if (m.syncRate !== undefined) {
      const r = parseRate(m.syncRate);
      if (!r) problems.push(`${at}.syncRate must be a positive rate like 64M (bytes per second), not ${JSON.stringify(m.syncRate)}`);
      else mirror.syncRate = r;
    }
    if (m.activation !== undefined) {
      if (m.activation !== 'automatic' && m.activation !== 'manual') problems.push(`${at}.activation must be automatic or manual, not ${JSON.stringify(m.activation)}`);
      else mirror.activationPolicy = m.activation;
    }
    const images = 1 + (Array.isArray(m.secondaries) ? m.secondaries.length : 0);
    if (m.minImages !== undefined) {
      if (!Number.isInteger(m.minImages) || (m.minImages as number) < -1) problems.push(`${at}.minImages must be an integer >= -1 (-1: no minimum), not ${JSON.stringify(m.minImages)}`);
      else if ((m.minImages as number) > images) problems.push(`${at}.minImages ${m.minImages as number} is more than the mirror's ${images} images: it could never be active`);
      else mirror.minImagesRequired = m.minImages as number;
    }
    if (m.maxMissing !== undefined) {
      if (!Number.isInteger(m.maxMissing) || (m.maxMissing as number) < -1) problems.push(`${at}.maxMissing must be an integer >= -1 (-1: no limit), not ${JSON.stringify(m.maxMissing)}`);
      else mirror.maxMissingImages = m.maxMissing as number;
    }
    if (m.secondaryReads !== undefined) {
      if (typeof m.secondaryReads !== 'boolean') problems.push(`${at}.secondaryReads must be true or false`);
      else mirror.allowSecondaryReads = m.secondaryReads;
    }
    if (m.syncPriority !== undefined) {
      if (!['low', 'medium', 'high'].includes(m.syncPriority as string)) problems.push(`${at}.syncPriority must be low, medium or high, not ${JSON.stringify(m.syncPriority)}`);
      else mirror.syncPriority = m.syncPriority as LabMirror['syncPriority'];
    }
    if (problems.length > before || !primary) return;
    out.push({ name: m.name as string, primary: primary.ref, secondaries, writePolicy: 'synchronous', ...mirror });
  });
  return out;
}

/**
 * A duration in milliseconds: `10s`, `500ms`, `2m`, `1h`, `1.5s`; a bare number is seconds.
 * Undefined when it is not one.
 */
export function parseDuration(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.round(v * 1000) : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h)?\s*$/i.exec(v);
  if (!m) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }[(m[2] ?? 's').toLowerCase() as 'ms'];
  const ms = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

const GROUP_KEYS = ['name', 'members', 'mode', 'nearSync', 'writelog', 'throttleEvery', 'throttles', 'perf'];
const GROUP_MODES: GroupMode[] = ['asynchronous', 'near-synchronous', 'synchronous'];

/**
 * `groups:` — each { name, members: [mirror names of mirrors:], mode, nearSync: { maxEntries,
 * maxBytes, lowEntries, lowBytes }, writelog: { capacity, extensions, extensionSize, extendAt },
 * throttleEvery, throttles (parseThrottles), perf: { every, maxSize } }. Every problem is
 * reported: unknown keys, members that are not mirrors of the file, members with different primary
 * or secondary arrays, a mirror in two groups, bad sizes, counts, durations and throttles.
 */
function parseGroups(v: unknown, mirrors: LabMirror[], rawMirrors: unknown, problems: string[]): LabGroup[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) {
    problems.push('"groups" must be a list');
    return [];
  }
  // A mirror of the file that is invalid has its own problems; do not also call it missing.
  const declared = new Set<string>();
  if (Array.isArray(rawMirrors)) for (const m of rawMirrors) if (isObj(m) && typeof m.name === 'string') declared.add(m.name);
  const out: LabGroup[] = [];
  const names = new Set<string>();
  /** mirror name -> the group it is in */
  const taken = new Map<string, string>();
  v.forEach((g: unknown, i: number) => {
    const where = `groups[${i}]`;
    if (!isObj(g)) return void problems.push(`${where} must be a mapping (${GROUP_KEYS.join(', ')})`);
    const before = problems.length;
    for (const k of Object.keys(g)) if (!GROUP_KEYS.includes(k)) problems.push(`${where}: unknown key "${k}" (expected ${GROUP_KEYS.join(', ')})`);
    const bad = checkName(g.name, `${where}.name`);
    if (bad) problems.push(g.name === undefined ? `${where}.name is required (the group's name on the arrays)` : bad);
    const at = bad ? where : `group ${g.name as string}`;
    if (!bad) {
      if (names.has(g.name as string)) problems.push(`${at}: duplicate group name`);
      names.add(g.name as string);
    }

    // members
    const members: LabMirror[] = [];
    let memberProblem = false;
    if (!Array.isArray(g.members) || g.members.length === 0) {
      problems.push(`${at}.members must be a non-empty list of mirror names (from mirrors:), e.g. [m1, m2]`);
      memberProblem = true;
    } else {
      const seen = new Set<string>();
      g.members.forEach((x: unknown, j: number) => {
        const mw = `${at}.members[${j}]`;
        if (typeof x !== 'string' || x === '') return void ((memberProblem = true), problems.push(`${mw} must be a mirror name, not ${JSON.stringify(x)}`));
        if (seen.has(x)) return void ((memberProblem = true), problems.push(`${mw}: mirror ${x} is listed twice`));
        seen.add(x);
        const m = mirrors.find((y) => y.name === x);
        if (!m) {
          memberProblem = true;
          if (!declared.has(x)) problems.push(`${mw}: no mirror ${JSON.stringify(x)} under mirrors: (mirrors: ${mirrors.map((y) => y.name).join(', ') || 'none'})`);
          return;
        }
        const prev = taken.get(x);
        if (prev !== undefined) problems.push(`${mw}: mirror ${x} is already in group ${prev} (a mirror belongs to at most one group)`);
        else taken.set(x, bad ? where : (g.name as string));
        members.push(m);
      });
    }
    const secs = (m: LabMirror) => [...new Set(m.secondaries.map((s) => s.array))].sort();
    if (members.length > 1) {
      const primaries = [...new Set(members.map((m) => m.primary.array))];
      if (primaries.length > 1) problems.push(`${at}.members: every member must have its primary on the same array (${members.map((m) => `${m.name}: ${m.primary.array}`).join(', ')})`);
      const s0 = secs(members[0]!).join(',');
      if (members.some((m) => secs(m).join(',') !== s0)) {
        problems.push(`${at}.members: every member must replicate to the same arrays (${members.map((m) => `${m.name}: ${secs(m).join(', ')}`).join('; ')})`);
      }
    }

    const attributes: Partial<GroupAttributes> = {};
    const size = (x: unknown, what: string, min: number, multipleOf = 1): number | undefined => {
      const n = typeof x === 'string' || typeof x === 'number' ? parseSize(x) : undefined;
      if (n === undefined || n < min || n % multipleOf !== 0) {
        problems.push(`${at}.${what} must be a size like 64M${min > 0 ? ` of at least ${formatSize(min)}` : ''}${multipleOf > 1 ? ` (a multiple of ${multipleOf} bytes)` : ''}, not ${JSON.stringify(x)}`);
        return undefined;
      }
      return n;
    };
    const int = (x: unknown, what: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined => {
      if (!Number.isSafeInteger(x) || (x as number) < min || (x as number) > max) {
        problems.push(`${at}.${what} must be an integer ${max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`}, not ${JSON.stringify(x)}`);
        return undefined;
      }
      return x as number;
    };
    const duration = (x: unknown, what: string): number | undefined => {
      const ms = parseDuration(x);
      if (ms === undefined || ms < 100) {
        problems.push(`${at}.${what} must be a duration of at least 100ms like 10s, 500ms or 1m (a bare number is seconds), not ${JSON.stringify(x)}`);
        return undefined;
      }
      return ms;
    };
    const sub = (key: string, keys: string[]): Obj | undefined => {
      const x = g[key];
      if (x === undefined || x === null) return undefined;
      if (!isObj(x)) return void problems.push(`${at}.${key} must be a mapping (${keys.join(', ')})`);
      for (const k of Object.keys(x)) if (!keys.includes(k)) problems.push(`${at}.${key}: unknown key "${k}" (expected ${keys.join(', ')})`);
      return x;
    };

    let mode: GroupMode = 'asynchronous';
    if (g.mode !== undefined) {
      if (!GROUP_MODES.includes(g.mode as GroupMode)) problems.push(`${at}.mode must be asynchronous, near-synchronous or synchronous, not ${JSON.stringify(g.mode)}`);
      else mode = attributes.mode = g.mode as GroupMode;
    }

    const ns = sub('nearSync', ['maxEntries', 'maxBytes', 'lowEntries', 'lowBytes']);
    if (ns) {
      const n: Partial<GroupAttributes['nearSync']> = {};
      if (ns.maxEntries !== undefined) n.maxEntries = int(ns.maxEntries, 'nearSync.maxEntries', 0);
      if (ns.maxBytes !== undefined) n.maxBytes = size(ns.maxBytes, 'nearSync.maxBytes', 0);
      if (ns.lowEntries !== undefined) n.lowEntries = int(ns.lowEntries, 'nearSync.lowEntries', 0);
      if (ns.lowBytes !== undefined) n.lowBytes = size(ns.lowBytes, 'nearSync.lowBytes', 0);
      if (!(Object.values(n) as unknown[]).includes(undefined)) {
        const maxE = n.maxEntries ?? 0;
        const maxB = n.maxBytes ?? 0;
        if (maxE === 0 && maxB === 0) problems.push(`${at}.nearSync needs a bound: maxEntries and/or maxBytes above 0`);
        if (n.lowEntries !== undefined && (maxE === 0 ? n.lowEntries > 0 : n.lowEntries >= maxE)) problems.push(`${at}.nearSync.lowEntries (${n.lowEntries}) must be below maxEntries (${maxE})`);
        if (n.lowBytes !== undefined && (maxB === 0 ? n.lowBytes > 0 : n.lowBytes >= maxB)) problems.push(`${at}.nearSync.lowBytes (${formatSize(n.lowBytes)}) must be below maxBytes (${formatSize(maxB)})`);
        // An unbounded measure has no low mark.
        attributes.nearSync = { maxEntries: maxE, maxBytes: maxB, ...(n.lowEntries !== undefined ? { lowEntries: n.lowEntries } : maxE === 0 ? { lowEntries: 0 } : {}), ...(n.lowBytes !== undefined ? { lowBytes: n.lowBytes } : maxB === 0 ? { lowBytes: 0 } : {}) } as GroupAttributes['nearSync'];
      }
    } else if (mode === 'near-synchronous' && g.nearSync === undefined) {
      problems.push(`${at}: near-synchronous needs nearSync: { maxEntries: N and/or maxBytes: SIZE } (the backlog at which host writes wait)`);
    }

    const wl = sub('writelog', ['capacity', 'extensions', 'extensionSize', 'extendAt']);
    if (wl) {
      const w: Partial<GroupAttributes['writelog']> = {};
      if (wl.capacity !== undefined) w.capacity = size(wl.capacity, 'writelog.capacity', 64 * 1024, 8);
      if (wl.extensions !== undefined) w.extensions = int(wl.extensions, 'writelog.extensions', 0, 128);
      if (wl.extensionSize !== undefined) w.extensionCapacity = size(wl.extensionSize, 'writelog.extensionSize', 64 * 1024, 8);
      if (wl.extendAt !== undefined) {
        const x = typeof wl.extendAt === 'string' && /^\d+%$/.test(wl.extendAt) ? Number(wl.extendAt.slice(0, -1)) : wl.extendAt;
        w.extendAtPercent = int(x, 'writelog.extendAt (percent in use)', 1, 100);
      }
      attributes.writelog = w as GroupAttributes['writelog'];
    }

    if (g.throttleEvery !== undefined) attributes.throttleEveryMs = duration(g.throttleEvery, 'throttleEvery');
    if (g.throttles !== undefined && g.throttles !== null) {
      const t = parseThrottles(g.throttles, `${at}.throttles`);
      problems.push(...t.problems);
      attributes.throttles = t.throttles;
    }
    const perf = sub('perf', ['every', 'maxSize']);
    if (perf) {
      if (perf.every !== undefined) attributes.perfEveryMs = duration(perf.every, 'perf.every');
      if (perf.maxSize !== undefined) attributes.perfMaxBytes = size(perf.maxSize, 'perf.maxSize', 4096);
    }

    if (problems.length > before || memberProblem || members.length === 0) return;
    // Whatever the driver would still refuse (a safety net: the checks above cover its rules).
    const left = attributeProblems(withDefaults(attributes));
    if (left.length) return void problems.push(...left.map((p) => `${at}: ${p}`));
    out.push({ name: g.name as string, members: members.map((m) => m.name), primary: members[0]!.primary.array, secondaries: secs(members[0]!), attributes });
  });
  return out;
}

/** What an array process is started with; `remoteLink` runs its mirror driver. */
export type LabArrayConfig = ArrayServiceConfig & { remoteLink?: { bind: string; port: number; peers: PeerConfig[] } };

/** Where each link's emulator listens: per link name, `toB` (array a dials it) and `toA` (b dials it). */
export type LinkListeners = Map<string, { toB: { host: string; port: number }; toA: { host: string; port: number } }>;

/**
 * The remote-link peers of array `a`: for each link of the lab touching it (with a secret), the
 * other array reached through the emulator's listener for traffic from `a` (toB when `a` is the
 * link's a, toA when it is b); for an array on another host with no link to `a` and a secret,
 * its remote-link address directly. `listeners` has the emulators' actual ports (the lab file's
 * may be 0: any free port).
 */
export function peersOf(a: LabArray, lab: Pick<Lab, 'arrays' | 'links'>, listeners?: LinkListeners): PeerConfig[] {
  const peers: PeerConfig[] = [];
  const loop = (h: string) => (isWildcard(h) || h === '' ? '127.0.0.1' : h);
  for (const l of lab.links) {
    if (l.a !== a.name && l.b !== a.name) continue;
    if (l.secret === undefined) continue;
    const isA = l.a === a.name;
    const actual = listeners?.get(l.name);
    const ep = actual ? (isA ? actual.toB : actual.toA) : { host: l.listen.bind, port: isA ? l.listen.toB : l.listen.toA };
    peers.push({ array: isA ? l.b : l.a, host: loop(ep.host), port: ep.port, secret: l.secret });
  }
  for (const o of lab.arrays) {
    if (o === a || !o.host || !o.remoteLink || o.secret === undefined) continue;
    if (linkBetween(lab.links, a.name, o.name)) continue;
    peers.push({ array: o.name, host: o.remoteLink.address.host, port: o.remoteLink.address.port, secret: o.secret });
  }
  return peers;
}

/**
 * The config an array process is started with. It gets `remoteLink` (and so runs its mirror
 * driver, listening on that port) when it has a remote-link port and at least one peer: a link
 * with a secret, or an array on another host with one. Without a secret nobody could connect, and
 * the port stays free for whatever else the link should reach.
 */
export function arrayConfig(a: LabArray, lab?: Pick<Lab, 'arrays' | 'links'>, listeners?: LinkListeners): LabArrayConfig {
  const peers = a.remoteLink && lab ? peersOf(a, lab, listeners) : [];
  return {
    name: a.name,
    dir: a.dir,
    nbd: a.nbd,
    api: a.api,
    luns: a.luns,
    readOnly: a.readOnly,
    ...(a.sps ? { sps: a.sps } : {}),
    ...(a.remoteLink && peers.length ? { remoteLink: { bind: a.remoteLink.bind, port: a.remoteLink.port, peers } } : {}),
  };
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

/** A running link emulator of a lab (in the supervisor process). */
export interface LabStateLink {
  name: string;
  a: string;
  b: string;
  api: { url: string; token?: string };
  routes: { name: string; listen: { host: string; port: number }; target: { host: string; port: number }; forward: LinkDirection }[];
}

/** A mirror of the lab file, as `sanbox up` left it. */
export interface LabStateMirror {
  name: string;
  /** `alpha:disk0` */
  primary: string;
  secondaries: string[];
  /** created now; existed already; not ours to create (primary on another host); could not be created */
  status: 'created' | 'exists' | 'skipped' | 'failed';
  detail?: string;
  /** Differences between the lab file and the mirror, secondaries that could not be added. */
  warnings: string[];
  /** Right after `up`: each secondary's state and synchronization progress. */
  progress?: string[];
}

/** A consistency group of the lab file, as `sanbox up` left it. */
export interface LabStateGroup {
  name: string;
  /** the members' primary array */
  primary: string;
  members: string[];
  secondaries: string[];
  mode: string;
  /** created now; existed already; not ours to create (primary on another host); could not be created */
  status: 'created' | 'exists' | 'skipped' | 'failed';
  detail?: string;
  /** Differences between the lab file and the group on the array. */
  warnings: string[];
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
  /** Link emulators (run by the supervisor). */
  links?: LabStateLink[];
  /** The lab file's mirrors as `sanbox up` found or created them. */
  mirrors?: LabStateMirror[];
  /** The lab file's consistency groups as `sanbox up` found or created them. */
  groups?: LabStateGroup[];
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
