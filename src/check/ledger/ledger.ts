/**
 * What the ledger writer knows, per block: the latest acknowledged write, and the writes issued
 * after it whose outcome is unknown ('inflight': the connection died before the reply; 'failed':
 * an error reply; 'pending': still outstanding when the ledger was saved). `checkBlock` is the
 * pure check of one block's content against it. The state file (`save`/`load`) is versioned
 * (`format: sanbox-ledger/1`) and validated on load.
 */
import * as fs from 'node:fs';
import { decodeBlock, SECTOR } from './block-format.js';

export const LEDGER_FORMAT = 'sanbox-ledger/1';

export type UncertainState = 'pending' | 'inflight' | 'failed';
export interface LedgerEntry {
  acked: { seq: number; writer: number } | null;
  uncertain: { seq: number; writer: number; state: UncertainState }[];
  writes: number;
  frozen: boolean;
}
export type InitialContent = 'zero' | 'any';

/** How the run that wrote the ledger was made (informational; kept in the state file). */
export interface LedgerRunInfo {
  seed?: number;
  endpoints?: string[];
  startedAt?: string;
  savedAt?: string;
  /** false while the writer still runs (a periodic save), true once it finished. */
  complete?: boolean;
}

export interface LedgerFile {
  format: typeof LEDGER_FORMAT;
  runId: number;
  blockSize: number;
  baseOffset: number;
  blocks: number;
  initial: InitialContent;
  run?: LedgerRunInfo;
  entries: Record<string, LedgerEntry>;
}

/** A state file that cannot be read or is not a valid ledger. */
export class LedgerFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LedgerFileError';
  }
}

export class Ledger {
  readonly runId: number;
  readonly blockSize: number;
  readonly baseOffset: number;
  readonly blocks: number;
  /** 'zero': a block with no acknowledged write must read as zeroes (or an uncertain write); 'any': not checked. */
  readonly initial: InitialContent;
  readonly entries = new Map<number, LedgerEntry>();
  run: LedgerRunInfo = {};

  constructor(o: { runId: number; blockSize?: number; baseOffset?: number; blocks: number; initial?: InitialContent }) {
    if (!Number.isInteger(o.blocks) || o.blocks <= 0) throw new Error(`blocks must be a positive integer, got ${o.blocks}`);
    this.runId = o.runId >>> 0;
    this.blockSize = o.blockSize ?? 4096;
    this.baseOffset = o.baseOffset ?? 0;
    this.blocks = o.blocks;
    this.initial = o.initial ?? 'zero';
  }

  offsetOf(block: number): number {
    return this.baseOffset + block * this.blockSize;
  }

  /** The highest sequence number this ledger knows of (acknowledged or issued). */
  highestSeq(): number {
    let n = 0;
    for (const e of this.entries.values()) n = Math.max(n, e.acked?.seq ?? 0, ...e.uncertain.map((u) => u.seq));
    return n;
  }

  entry(block: number): LedgerEntry {
    let e = this.entries.get(block);
    if (!e) this.entries.set(block, (e = { acked: null, uncertain: [], writes: 0, frozen: false }));
    return e;
  }

  issued(block: number, seq: number, writer: number): void {
    const e = this.entry(block);
    e.writes++;
    e.uncertain.push({ seq, writer, state: 'pending' });
  }

  settle(block: number, seq: number, state: 'acked' | 'inflight' | 'failed'): void {
    const e = this.entry(block);
    const i = e.uncertain.findIndex((u) => u.seq === seq);
    if (i < 0) throw new Error(`ledger: block ${block} seq ${seq} settled twice or never issued`);
    if (state === 'acked') {
      const u = e.uncertain[i]!;
      if (e.acked && e.acked.seq > seq) throw new Error(`ledger: block ${block} acked seq ${seq} after seq ${e.acked.seq} (blocks must be serialized)`);
      e.acked = { seq, writer: u.writer };
      // Everything issued before it is older: no longer acceptable.
      e.uncertain = e.uncertain.slice(i + 1);
    } else {
      e.uncertain[i]!.state = state;
      if (state === 'inflight') e.frozen = true;
    }
  }

  toJSON(): LedgerFile {
    const entries: Record<string, LedgerEntry> = {};
    for (const [b, e] of [...this.entries.entries()].sort((x, y) => x[0] - y[0])) entries[b] = e;
    return { format: LEDGER_FORMAT, runId: this.runId, blockSize: this.blockSize, baseOffset: this.baseOffset, blocks: this.blocks, initial: this.initial, run: this.run, entries };
  }

  /** Builds a ledger from a parsed state file; throws LedgerFileError naming the first bad field. */
  static fromJSON(j: unknown): Ledger {
    const f = validateLedgerFile(j);
    const l = new Ledger(f);
    l.run = f.run ?? {};
    for (const [b, e] of Object.entries(f.entries)) l.entries.set(Number(b), e);
    return l;
  }

  /** Writes the state file atomically (a temporary file renamed over it). */
  save(path: string): void {
    const tmp = `${path}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.toJSON()));
    fs.renameSync(tmp, path);
  }

  static load(path: string): Ledger {
    let text: string;
    try {
      text = fs.readFileSync(path, 'utf8');
    } catch (e) {
      throw new LedgerFileError(`cannot read ledger state file ${path}: ${(e as Error).message}`);
    }
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch (e) {
      throw new LedgerFileError(`${path} is not JSON: ${(e as Error).message}`);
    }
    try {
      return Ledger.fromJSON(j);
    } catch (e) {
      throw new LedgerFileError(`${path}: ${(e as Error).message}`);
    }
  }
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isUint = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const UNCERTAIN_STATES = new Set(['pending', 'inflight', 'failed']);

/** Checks the shape of a ledger state file; throws LedgerFileError with the path of the first bad field. */
export function validateLedgerFile(j: unknown): LedgerFile {
  const bad = (where: string, what: string) => new LedgerFileError(`not a valid ledger: ${where} ${what}`);
  if (!isObj(j)) throw bad('the file', 'is not a JSON object');
  if (j.format !== LEDGER_FORMAT) throw new LedgerFileError(`not a ledger file (format ${JSON.stringify(j.format)}, expected ${LEDGER_FORMAT})`);
  if (!isUint(j.runId) || j.runId > 0xffffffff) throw bad('runId', 'must be a 32-bit unsigned integer');
  if (!isUint(j.blockSize) || j.blockSize === 0 || j.blockSize % SECTOR !== 0) throw bad('blockSize', `must be a positive multiple of ${SECTOR}`);
  if (!isUint(j.baseOffset)) throw bad('baseOffset', 'must be a non-negative integer');
  if (!isUint(j.blocks) || j.blocks === 0) throw bad('blocks', 'must be a positive integer');
  if (j.initial !== 'zero' && j.initial !== 'any') throw bad('initial', 'must be zero or any');
  if (j.run !== undefined && !isObj(j.run)) throw bad('run', 'must be an object');
  if (!isObj(j.entries)) throw bad('entries', 'must be an object');
  for (const [k, e] of Object.entries(j.entries)) {
    const at = `entries[${k}]`;
    if (!/^\d+$/.test(k) || Number(k) >= (j.blocks as number)) throw bad(at, `is not a block index below ${j.blocks}`);
    if (!isObj(e)) throw bad(at, 'must be an object');
    if (e.acked !== null && !(isObj(e.acked) && isUint(e.acked.seq) && isUint(e.acked.writer))) throw bad(`${at}.acked`, 'must be null or {seq, writer}');
    if (!Array.isArray(e.uncertain)) throw bad(`${at}.uncertain`, 'must be a list');
    e.uncertain.forEach((u: unknown, i: number) => {
      if (!isObj(u) || !isUint(u.seq) || !isUint(u.writer) || !UNCERTAIN_STATES.has(u.state as string)) throw bad(`${at}.uncertain[${i}]`, 'must be {seq, writer, state: pending|inflight|failed}');
    });
    if (!isUint(e.writes)) throw bad(`${at}.writes`, 'must be a non-negative integer');
    if (typeof e.frozen !== 'boolean') throw bad(`${at}.frozen`, 'must be true or false');
  }
  return j as unknown as LedgerFile;
}

export type ViolationKind = 'lost' | 'stale' | 'mixed' | 'garbage' | 'misplaced' | 'foreign' | 'phantom';
export interface Violation {
  block: number;
  offset: number;
  kind: ViolationKind;
  expected: { acked: number | null; uncertain: string[] };
  found: string;
  detail: string;
}

/**
 * Checks one block's content against the ledger. Returns null when acceptable, else a violation.
 * Kinds: 'lost' (zeroes where a write was acknowledged), 'stale' (an older version of this block),
 * 'mixed' (sectors of several versions), 'garbage', 'misplaced' (another block's data), 'foreign'
 * (another run's data), 'phantom' (a version of this block the writer never issued after the
 * latest ack).
 */
export function checkBlock(ledger: Ledger, block: number, buf: Buffer, o: { savedThrough?: number } = {}): Violation | null {
  const e = ledger.entries.get(block) ?? { acked: null, uncertain: [] };
  const d = decodeBlock(buf);
  const acked = e.acked;
  const okSeqs = new Set(e.uncertain.map((u) => u.seq));
  if (acked) okSeqs.add(acked.seq);
  const expected = { acked: acked?.seq ?? null, uncertain: e.uncertain.map((u) => `${u.seq}(${u.state})`) };
  const v = (kind: ViolationKind, detail: string, found: string): Violation => ({ block, offset: ledger.offsetOf(block), kind, expected, found, detail });
  switch (d.kind) {
    case 'zero':
      if (acked) return v('lost', `block reads as zeroes but seq ${acked.seq} was acknowledged`, 'zeroes');
      return null;
    case 'stamp': {
      const found = `run ${d.run} block ${d.block} seq ${d.seq} writer ${d.writer}`;
      if (d.run !== ledger.runId) {
        if (!acked && e.uncertain.length === 0 && ledger.initial === 'any') return null;
        return v('foreign', `holds data of run ${d.run}, not of this run ${ledger.runId}`, found);
      }
      if (d.block !== block) return v('misplaced', `holds block ${d.block}'s data`, found);
      if (okSeqs.has(d.seq)) return null;
      if (acked && d.seq < acked.seq) return v('stale', `holds seq ${d.seq}, older than the acknowledged seq ${acked.seq}`, found);
      if (!acked && ledger.initial === 'any') return null;
      // the writer was killed: it issued writes after its last save, all numbered above what the save knows
      if (o.savedThrough !== undefined && d.seq > o.savedThrough) return null;
      return v('phantom', `holds seq ${d.seq}, which was never written to this block after its latest ack`, found);
    }
    case 'mixed':
      return v('mixed', `sectors of ${d.versions.length} versions: ${d.versions.map((x) => `seq ${x.seq} (run ${x.run} block ${x.block}) sectors ${x.sectors}`).join(' | ')}${d.detail ? `; ${d.detail}` : ''}`, 'mixed');
    default:
      if (!acked && e.uncertain.length === 0 && ledger.initial === 'any') return null;
      return v('garbage', d.detail, 'garbage');
  }
}
