/** `mirrors:` of a lab file: the mirrors `sanbox up` creates on their primary arrays. */
import { checkName, formatSize, parseSize } from '../../array/index.js';
import { linkBetween } from './links.js';
import { isObj, type LabArray, type LabLink, type LabLunRef, type LabMirror, type LabSecondary } from './types.js';
import { parseRate } from './values.js';

const MIRROR_KEYS = ['name', 'primary', 'secondaries', 'writePolicy', 'regionSize', 'syncRate', 'activation', 'minImages', 'maxMissing', 'secondaryReads', 'syncPriority', 'protectResync'];
const SECONDARY_KEYS = ['image', 'synchronized', 'recovery', 'syncRate'];

/**
 * `mirrors:` — each { name, primary: ARRAY:LUN, secondaries: [ARRAY:LUN | { image, synchronized,
 * recovery, syncRate }], writePolicy (synchronous; async is a group's mode), regionSize, syncRate,
 * activation, minImages, maxMissing, secondaryReads, syncPriority, protectResync }. Every problem is reported:
 * unknown keys, arrays or LUNs not in the lab, no link (with a secret) between the primary and a
 * secondary, a secondary LUN smaller than the primary, a LUN in two mirrors.
 */
export function parseMirrors(v: unknown, arrays: LabArray[], links: LabLink[], rawLinks: unknown, problems: string[]): LabMirror[] {
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
        problems.push(`${at}.writePolicy ${m.writePolicy}: a mirror is synchronous; ${m.writePolicy} replication is a mode of a consistency group (groups: [{ name, members: [${String(m.name ?? 'MIRROR')}], mode: ${m.writePolicy} }])`);
      } else problems.push(`${at}.writePolicy must be synchronous (a mirror's only policy; groups have the asynchronous modes), not ${JSON.stringify(m.writePolicy)}`);
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
    if (m.protectResync !== undefined) {
      if (typeof m.protectResync !== 'boolean') problems.push(`${at}.protectResync must be true or false (snapshot a secondary before a resync rewrites it; default true)`);
      else mirror.protectResync = m.protectResync;
    }
    if (problems.length > before || !primary) return;
    out.push({ name: m.name as string, primary: primary.ref, secondaries, writePolicy: 'synchronous', ...mirror });
  });
  return out;
}
