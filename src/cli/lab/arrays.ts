/** `arrays:` of a lab file: each array's directory, endpoints, LUNs, SPs and remote-link port. */
import { dirname, join, resolve } from 'node:path';
import { BLOCK_SIZES, checkName, checkSize, parseSize } from '../../array/index.js';
import { isLoopback } from '../../control/index.js';
import type { LunSpec } from '../../control/service.js';
import { imagesDir } from '../common.js';
import { parseSps } from './sps.js';
import { DEFAULT_SNAPSHOT_REGION_SIZE, OVERFLOW_POLICIES, type OverflowPolicy, type SnapshotDefaults } from '../../snapshot/index.js';
import { isObj, type LabArray, type Obj, type ParseContext } from './types.js';
import { isWildcard, parseSecret } from './values.js';
import { nbdMemoryProblem, type NbdTlsConfig } from '../../nbd/index.js';
import { tlsConfigFrom } from '../tls-args.js';

type RemoteLink = { bind: string; port: number; address?: { host: string; port: number } };
type Endpoint = { bind: string; port: number; token?: string; ports?: [number, number] };

/** The `arrays:` list; at least one array must run on this host. */
export function parseArrays(v: unknown, ctx: ParseContext): LabArray[] {
  const { problems } = ctx;
  const arrays: LabArray[] = [];
  if (!Array.isArray(v) || v.length === 0) {
    problems.push('"arrays" must be a non-empty list');
    return arrays;
  }
  const names = new Set<string>();
  v.forEach((a: unknown, i: number) => {
    const arr = parseArray(a, i, names, ctx);
    if (arr) arrays.push(arr);
  });
  if (arrays.length && arrays.every((x) => x.host)) problems.push('every array runs on another host: nothing to start here');
  return arrays;
}

/** One entry of `arrays:`; undefined when it is not even a mapping. */
function parseArray(a: unknown, i: number, names: Set<string>, ctx: ParseContext): LabArray | undefined {
  const { problems, known, usePort } = ctx;
  const where = `arrays[${i}]`;
  if (!isObj(a)) {
    problems.push(`${where} must be a mapping`);
    return undefined;
  }
  known(a, where, ['name', 'dir', 'nbd', 'api', 'readOnly', 'luns', 'sps', 'host', 'remoteLink', 'secret', 'secretFile', 'snapshots']);
  const bad = checkName(a.name, `${where}.name`);
  if (bad) problems.push(bad);
  const aname = bad ? `#${i}` : (a.name as string);
  const at = bad ? where : `array ${aname}`;
  if (!bad) {
    if (names.has(aname)) problems.push(`${at}: duplicate array name`);
    names.add(aname);
  }
  const remoteLink = parseRemoteLink(a, at, problems);
  if (a.host !== undefined) return remoteHostArray(a, aname, at, remoteLink, ctx);
  for (const k of ['secret', 'secretFile']) {
    if (a[k] !== undefined) problems.push(`${at}.${k}: only an array on another host (host:) takes a secret; put it on the link (links: ... secret:)`);
  }
  if (remoteLink) usePort(remoteLink.port, `${at}.remoteLink`);
  let dir = join(imagesDir(), aname);
  if (a.dir !== undefined) {
    if (typeof a.dir !== 'string' || a.dir === '') problems.push(`${at}.dir must be a path`);
    else dir = resolve(dirname(ctx.file), a.dir);
  }
  const nbd = parseEndpoint(a.nbd, at, 'nbd', 10809, false, ctx);
  const tls = parseNbdTls(a.nbd, at, ctx);
  const nbdMemory = parseNbdMemory(a.nbd, at, ctx);
  const api = parseEndpoint(a.api, at, 'api', 8470, true, ctx);
  if (!isLoopback(api.bind) && !api.token) problems.push(`${at}.api: binding ${api.bind} (not loopback) needs a token`);
  const sps = a.sps === undefined || a.sps === false ? undefined : parseSps(a.sps, `${at}.sps`, problems);
  if (sps) {
    const [pa, pb] = nbd.ports ?? (nbd.port === 0 ? [0, 0] : [nbd.port, nbd.port + 1]);
    usePort(pa, `${at}.nbd (SP A)`);
    if (pb !== pa || pb !== 0) usePort(pb, `${at}.nbd (SP B)`);
  } else usePort(nbd.port, `${at}.nbd`);
  usePort(api.port, `${at}.api`);
  if (a.readOnly !== undefined && typeof a.readOnly !== 'boolean') problems.push(`${at}.readOnly must be true or false`);
  const luns = parseLuns(a.luns, at, ctx);
  const snapshots = a.snapshots === undefined ? undefined : parseSnapshotDefaults(a.snapshots, `${at}.snapshots`, problems);
  return {
    name: aname,
    dir,
    nbd: { bind: nbd.bind, port: nbd.ports?.[0] ?? nbd.port, ...(nbd.ports ? { ports: nbd.ports } : {}), ...(tls ? { tls } : {}), ...(nbdMemory ? { memory: nbdMemory } : {}) },
    ...(sps ? { sps } : {}),
    api: { bind: api.bind, port: api.port, ...(api.token ? { token: api.token } : {}) },
    readOnly: a.readOnly === true,
    luns,
    ...(snapshots ? { snapshots } : {}),
    ...(remoteLink
      ? { remoteLink: { ...remoteLink, address: remoteLink.address ?? { host: isWildcard(remoteLink.bind) ? '127.0.0.1' : remoteLink.bind, port: remoteLink.port } } }
      : {}),
  };
}

/** `snapshots: { storeSize, policy, regionSize }`: the snapshot store defaults of the array's LUNs. */
function parseSnapshotDefaults(v: unknown, at: string, problems: string[]): SnapshotDefaults | undefined {
  if (!isObj(v)) {
    problems.push(`${at} must be a mapping like { storeSize: 1G, policy: invalidate-oldest }`);
    return undefined;
  }
  const out: SnapshotDefaults = {};
  for (const k of Object.keys(v)) if (!['storeSize', 'policy', 'regionSize'].includes(k)) problems.push(`${at}: unknown key "${k}" (expected storeSize, policy, regionSize)`);
  if (v.storeSize !== undefined) {
    const n = typeof v.storeSize === 'string' || typeof v.storeSize === 'number' ? parseSize(v.storeSize) : undefined;
    if (n === undefined || n <= 0) problems.push(`${at}.storeSize must be a size like 1G, not ${JSON.stringify(v.storeSize)}`);
    else out.storeBytes = n;
  }
  if (v.policy !== undefined) {
    if (!OVERFLOW_POLICIES.includes(v.policy as OverflowPolicy)) problems.push(`${at}.policy must be ${OVERFLOW_POLICIES.join(' or ')}, not ${JSON.stringify(v.policy)}`);
    else out.policy = v.policy as OverflowPolicy;
  }
  if (v.regionSize !== undefined) {
    const n = typeof v.regionSize === 'string' || typeof v.regionSize === 'number' ? parseSize(v.regionSize) : undefined;
    if (n === undefined || n < 4096 || n > 64 << 20 || (n & (n - 1)) !== 0) problems.push(`${at}.regionSize must be a power of two from 4K to 64M, not ${JSON.stringify(v.regionSize)}`);
    else out.regionSize = n;
  }
  if (out.storeBytes !== undefined && out.storeBytes < (out.regionSize ?? DEFAULT_SNAPSHOT_REGION_SIZE)) problems.push(`${at}.storeSize must hold at least one region`);
  return out;
}

/** An array on another host: only its name and remote-link address (and secret) matter here. */
function remoteHostArray(a: Obj, aname: string, at: string, remoteLink: RemoteLink | undefined, ctx: ParseContext): LabArray {
  const { problems } = ctx;
  if (typeof a.host !== 'string' || a.host === '') problems.push(`${at}.host must be a host name or address`);
  const secret = parseSecret(a, at, ctx.file, problems);
  for (const k of Object.keys(a)) {
    if (!['name', 'host', 'remoteLink', 'secret', 'secretFile'].includes(k)) problems.push(`${at}: "${k}" does not apply to an array on another host (host: ${String(a.host)}); describe it in the lab file of that host`);
  }
  return {
    name: aname,
    dir: '',
    nbd: { bind: '', port: 0 },
    api: { bind: '', port: 0 },
    readOnly: false,
    luns: [],
    host: String(a.host),
    ...(remoteLink ? { remoteLink: { ...remoteLink, address: remoteLink.address ?? { host: String(a.host), port: remoteLink.port } } } : {}),
    ...(secret !== undefined ? { secret } : {}),
  };
}

/** `nbd: { memory: 256M }`: the NBD memory budget of each NBD server process of the array (docs/nbd.md). */
function parseNbdMemory(v: unknown, at: string, ctx: ParseContext): number | undefined {
  if (!isObj(v) || v.memory === undefined) return undefined;
  const n = typeof v.memory === 'string' || typeof v.memory === 'number' ? parseSize(v.memory) : undefined;
  const bad = nbdMemoryProblem(n);
  if (bad) {
    ctx.problems.push(`${at}.nbd.memory ${bad}, not ${JSON.stringify(v.memory)}`);
    return undefined;
  }
  return n;
}

/** `nbd:` (bind, port, ports for two SPs) or `api:` (bind, port, token) of an array. */
function parseEndpoint(v: unknown, at: string, what: string, defPort: number, allowToken: boolean, ctx: ParseContext): Endpoint {
  const { problems, known } = ctx;
  const ep: Endpoint = { bind: '127.0.0.1', port: defPort, token: undefined };
  if (v === undefined) return ep;
  if (!isObj(v)) {
    problems.push(`${at}.${what} must be a mapping like { bind: 127.0.0.1, port: ${defPort} }`);
    return ep;
  }
  known(v, `${at}.${what}`, allowToken ? ['bind', 'port', 'token'] : ['bind', 'port', 'ports', 'tls', 'tlsCertificates', 'tlsPsk', 'memory']);
  if (!allowToken && v.ports !== undefined) {
    const ps = v.ports;
    if (!Array.isArray(ps) || ps.length !== 2 || !ps.every((p) => Number.isInteger(p) && p >= 0 && p <= 65535)) {
      problems.push(`${at}.${what}.ports must be two ports [SP-A, SP-B], e.g. [10809, 10810]`);
    } else ep.ports = [ps[0], ps[1]];
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
}

/**
 * `nbd: { tls: off|on|require, tlsCertificates: DIR, tlsPsk: FILE }` (paths relative to the lab
 * file; credentials without `tls` mean require). The files are read now, so a bad one stops `up`
 * before anything starts. YAML's `tls: true` is `on`, `false` is `off`.
 */
function parseNbdTls(v: unknown, at: string, ctx: ParseContext): NbdTlsConfig | undefined {
  if (!isObj(v) || (v.tls === undefined && v.tlsCertificates === undefined && v.tlsPsk === undefined)) return undefined;
  const where = `${at}.nbd`;
  const mode = v.tls === true ? 'on' : v.tls === false ? 'off' : v.tls;
  if (mode !== undefined && typeof mode !== 'string') {
    ctx.problems.push(`${where}.tls must be off, on or require, not ${JSON.stringify(v.tls)}`);
    return undefined;
  }
  for (const k of ['tlsCertificates', 'tlsPsk'] as const) {
    if (v[k] !== undefined && (typeof v[k] !== 'string' || v[k] === '')) {
      ctx.problems.push(`${where}.${k} must be a path`);
      return undefined;
    }
  }
  try {
    return tlsConfigFrom({ mode, certificates: v.tlsCertificates as string | undefined, psk: v.tlsPsk as string | undefined }, dirname(ctx.file), {
      mode: `${where}.tls`,
      certificates: `${where}.tlsCertificates`,
      psk: `${where}.tlsPsk`,
    });
  } catch (e) {
    const msg = (e as Error).message;
    ctx.problems.push(msg.startsWith(where) ? msg : `${where}: ${msg}`);
    return undefined;
  }
}

/** `luns:` of an array (may be empty); only LUNs with a valid name and size are kept. */
function parseLuns(v: unknown, at: string, ctx: ParseContext): LunSpec[] {
  const { problems, known } = ctx;
  const luns: LunSpec[] = [];
  if (!Array.isArray(v)) {
    problems.push(`${at}.luns must be a list (it may be empty: [])`);
    return luns;
  }
  const lnames = new Set<string>();
  v.forEach((l: unknown, j: number) => {
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
  return luns;
}

/** `remoteLink: { bind, port, address }` of an array; undefined when absent or invalid. */
function parseRemoteLink(a: Obj, at: string, problems: string[]): RemoteLink | undefined {
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
  const out: RemoteLink = { bind: '127.0.0.1', port: 0 };
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
