/**
 * The prefix workload's state file: every write issued (which LUN, which block, how many writes
 * had been acknowledged when it was issued, when it was acknowledged) and the acknowledgement
 * order. Versioned (`format: sanbox-prefix/1`) and validated on load.
 */
import * as fs from 'node:fs';

export const PREFIX_FORMAT = 'sanbox-prefix/1';
/** Every write of the prefix workload is one 4096-byte block. */
export const PREFIX_BLOCK = 4096;

export interface PrefixWrite {
  /** index of the write (its place in issue order) */
  k: number;
  lun: number;
  block: number;
  /** epoch ms of the acknowledgement, null while unknown (in flight, failed, or never answered) */
  ackedAt: number | null;
  /** how many writes were acknowledged when this one was issued */
  dependsOn: number;
}

export interface PrefixState {
  run: number;
  /** blocks per LUN the workload may write (each at most once) */
  blocks: number;
  /** one per LUN, in LUN order: the URI written to, and the export name used in messages */
  luns: { uri: string; name: string }[];
  seed: number | null;
  startedAt: number;
  savedAt: number;
  /** false while the writer still runs (a periodic save), true once it finished */
  complete: boolean;
  writes: PrefixWrite[];
  /** write indexes in acknowledgement order */
  ackOrder: number[];
}

/** The file: writes as [lun, block, dependsOn, ackedAt|null] rows (k is the row index). */
interface PrefixFile {
  format: typeof PREFIX_FORMAT;
  run: number;
  blockSize: number;
  blocks: number;
  luns: { uri: string; name: string }[];
  seed: number | null;
  startedAt: number;
  savedAt: number;
  complete: boolean;
  writes: [number, number, number, number | null][];
  ackOrder: number[];
}

/** A state file that cannot be read or is not a valid prefix state. */
export class PrefixFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrefixFileError';
  }
}

export function toPrefixFile(s: PrefixState): PrefixFile {
  return {
    format: PREFIX_FORMAT,
    run: s.run,
    blockSize: PREFIX_BLOCK,
    blocks: s.blocks,
    luns: s.luns,
    seed: s.seed,
    startedAt: s.startedAt,
    savedAt: s.savedAt,
    complete: s.complete,
    writes: s.writes.map((w) => [w.lun, w.block, w.dependsOn, w.ackedAt]),
    ackOrder: s.ackOrder,
  };
}

/** Writes the state file atomically (a temporary file renamed over it). */
export function savePrefixState(path: string, s: PrefixState): void {
  const tmp = `${path}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(toPrefixFile(s)));
  fs.renameSync(tmp, path);
}

export function loadPrefixState(path: string): PrefixState {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (e) {
    throw new PrefixFileError(`cannot read prefix state file ${path}: ${(e as Error).message}`);
  }
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new PrefixFileError(`${path} is not JSON: ${(e as Error).message}`);
  }
  try {
    return parsePrefixState(j);
  } catch (e) {
    throw new PrefixFileError(`${path}: ${(e as Error).message}`);
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Validates a parsed state file; throws PrefixFileError with the path of the first bad field. */
export function parsePrefixState(j: unknown): PrefixState {
  const bad = (where: string, what: string) => new PrefixFileError(`not a valid prefix state: ${where} ${what}`);
  if (!isObj(j)) throw bad('the file', 'is not a JSON object');
  if (j.format !== PREFIX_FORMAT) throw new PrefixFileError(`not a prefix state file (format ${JSON.stringify(j.format)}, expected ${PREFIX_FORMAT})`);
  if (!isUint(j.run) || j.run > 0xffffffff) throw bad('run', 'must be a 32-bit unsigned integer');
  if (j.blockSize !== PREFIX_BLOCK) throw bad('blockSize', `must be ${PREFIX_BLOCK}`);
  if (!isUint(j.blocks) || j.blocks === 0) throw bad('blocks', 'must be a positive integer');
  if (!Array.isArray(j.luns) || j.luns.length === 0) throw bad('luns', 'must be a non-empty list');
  j.luns.forEach((l: unknown, i: number) => {
    if (!isObj(l) || typeof l.uri !== 'string' || typeof l.name !== 'string') throw bad(`luns[${i}]`, 'must be {uri, name}');
  });
  if (j.seed !== null && !Number.isSafeInteger(j.seed)) throw bad('seed', 'must be an integer or null');
  for (const f of ['startedAt', 'savedAt'] as const) if (!isUint(j[f])) throw bad(f, 'must be epoch milliseconds');
  if (typeof j.complete !== 'boolean') throw bad('complete', 'must be true or false');
  if (!Array.isArray(j.writes)) throw bad('writes', 'must be a list');
  if (!Array.isArray(j.ackOrder)) throw bad('ackOrder', 'must be a list');
  const luns = j.luns.length;
  const blocks = j.blocks;
  const writes: PrefixWrite[] = j.writes.map((row: unknown, k: number) => {
    if (!Array.isArray(row) || row.length !== 4) throw bad(`writes[${k}]`, 'must be [lun, block, dependsOn, ackedAt|null]');
    const [lun, block, dependsOn, ackedAt] = row as unknown[];
    if (!isUint(lun) || lun >= luns) throw bad(`writes[${k}][0]`, `(lun) must be below ${luns}`);
    if (!isUint(block) || block >= blocks) throw bad(`writes[${k}][1]`, `(block) must be below ${blocks}`);
    if (!isUint(dependsOn)) throw bad(`writes[${k}][2]`, '(dependsOn) must be a non-negative integer');
    if (ackedAt !== null && !isUint(ackedAt)) throw bad(`writes[${k}][3]`, '(ackedAt) must be epoch milliseconds or null');
    return { k, lun, block, dependsOn, ackedAt: ackedAt as number | null };
  });
  const places = new Set<number>();
  for (const w of writes) {
    if (places.has(w.lun * blocks + w.block)) throw bad(`writes[${w.k}]`, `writes block ${w.block} of lun ${w.lun} a second time (each block is written once)`);
    places.add(w.lun * blocks + w.block);
  }
  const seen = new Set<number>();
  (j.ackOrder as unknown[]).forEach((k, i) => {
    if (!isUint(k) || k >= writes.length) throw bad(`ackOrder[${i}]`, 'is not the index of a write');
    if (seen.has(k)) throw bad(`ackOrder[${i}]`, `repeats write ${k}`);
    if (writes[k]!.ackedAt === null) throw bad(`ackOrder[${i}]`, `names write ${k}, which has no ackedAt`);
    seen.add(k);
  });
  for (const w of writes) {
    if (w.dependsOn > seen.size) throw bad(`writes[${w.k}][2]`, `(dependsOn ${w.dependsOn}) exceeds the ${seen.size} acknowledged writes`);
    if (w.ackedAt !== null && !seen.has(w.k)) throw bad(`writes[${w.k}][3]`, 'is acknowledged but missing from ackOrder');
  }
  return {
    run: j.run,
    blocks,
    luns: j.luns as PrefixState['luns'],
    seed: j.seed as number | null,
    startedAt: j.startedAt as number,
    savedAt: j.savedAt as number,
    complete: j.complete,
    writes,
    ackOrder: j.ackOrder as number[],
  };
}
