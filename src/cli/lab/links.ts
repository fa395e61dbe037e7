/** `links:` of a lab file: remote links between arrays, each carried by a link emulator. */
import { checkName, parseSize } from '../../array/index.js';
import { isLoopback } from '../../control/index.js';
import { isObj, type LabArray, type LabLink, type LabLinkSettings, type LinkDirection } from './types.js';
import { parseRate, parseSecret } from './values.js';

const LINK_KEYS = ['name', 'between', 'listen', 'api', 'latency', 'jitter', 'bandwidth', 'cut', 'queueSize', 'cutResetMs', 'precise', 'secret', 'secretFile'];

/** A cut this long resets the link's connections unless the lab file says otherwise (cutResetMs). */
const DEFAULT_CUT_RESET_MS = 15_000;
/** Largest latency or jitter a lab file may give a link direction. */
const MAX_DELAY_MS = 3_600_000;

export function parseLinks(v: unknown, arrays: LabArray[], problems: string[], usePort: (port: number, what: string) => void, file: string): LabLink[] {
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
    const ms = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= MAX_DELAY_MS ? x : undefined);
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
    let cutResetMs = DEFAULT_CUT_RESET_MS;
    if (l.cutResetMs !== undefined) {
      if (!Number.isInteger(l.cutResetMs) || (l.cutResetMs as number) < 0) problems.push(`${at}.cutResetMs must be an integer >= 0 (0: never reset)`);
      else cutResetMs = l.cutResetMs as number;
    }
    if (l.precise !== undefined && typeof l.precise !== 'boolean') problems.push(`${at}.precise must be true or false, not ${JSON.stringify(l.precise)}`);
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
      precise: l.precise === true,
      ...(secret !== undefined ? { secret } : {}),
    });
  });
  return out;
}

/** The link of a lab between two arrays (either order), if any. */
export function linkBetween(links: LabLink[], x: string, y: string): LabLink | undefined {
  return links.find((l) => (l.a === x && l.b === y) || (l.a === y && l.b === x));
}
