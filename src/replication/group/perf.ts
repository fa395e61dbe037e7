/**
 * Performance files and the qdsinfo report of a consistency group
 * (003_aa2ee289f275629d.txt, "performance tracking file", "qdsinfo").
 *
 * What the source says. Each group's primary daemon periodically appends a row to an ASCII
 * performance file named after the group's configuration file (dsgrp000.prf): one row per update,
 * new rows at the end. The metrics, since the last update: total KB/s sent to the secondary
 * (header plus data), data KB/s, data entries per second, entries in the writelog awaiting
 * transfer, writelog sectors in use, percent of the writelog in use, age of the oldest entry in
 * seconds. The file may grow to a configurable limit (64 KB by default); one previous generation
 * is kept. qdsinfo prints the state and metrics of the writelogs on the primary: whether the
 * writelog is in a special mode (bypass, refresh) and its performance metrics.
 *
 * What sanbox does.
 *  - `PerfRecorder` appends one JSON line (a GroupMetrics) per record. Before a record that would
 *    take the file over `maxBytes`, the file is renamed to `<path>.1` (replacing the previous
 *    generation) and a new one is started; a record larger than `maxBytes` on its own still gets a
 *    file of its own. The size is taken from the file itself (stat) before every record, so a
 *    restart, or a file removed by the operator, is followed. Appends run one at a time in call
 *    order; an error (disk full, directory gone) never reaches the caller: `append` resolves to
 *    the error message, and `errors`/`lastError` count it. A torn last line (crash mid-append) is
 *    skipped by `readPerfRecords`.
 *  - `formatQdsinfo` prints a group like qdsinfo: mode and special states (paused, bypass,
 *    refresh), members, writelog usage and extensions, entries waiting and the oldest one's age,
 *    sequence numbers, rates, CPU, the sender's state and the throttle-controlled sleep and delay.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { GroupFreeze, GroupMetrics, GroupMode } from './types.js';

/** The performance file of the group whose directory is `groupDir` (the previous generation: `.1` beside it). */
export function perfPath(groupDir: string): string {
  return join(groupDir, 'perf.jsonl');
}

export class PerfRecorder {
  /** records written, records that failed, the last failure */
  records = 0;
  errors = 0;
  lastError: string | null = null;
  /** generations started by rotation */
  rotations = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly path: string,
    readonly maxBytes: number,
  ) {
    if (!(Number.isFinite(maxBytes) && maxBytes > 0)) throw new RangeError(`perf file size limit must be a positive number of bytes, not ${maxBytes}`);
  }

  /** Appends one record; resolves to null, or to the error (never rejects). Ignored after close. */
  append(m: GroupMetrics): Promise<string | null> {
    if (this.closed) return Promise.resolve('the performance file is closed');
    const run = this.tail.then(() => this.write(m));
    this.tail = run;
    return run;
  }

  private async write(m: GroupMetrics): Promise<string | null> {
    try {
      const line = Buffer.from(JSON.stringify(m) + '\n');
      let size = 0;
      try {
        size = (await fsp.stat(this.path)).size;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      if (size > 0 && size + line.length > this.maxBytes) {
        await fsp.rename(this.path, `${this.path}.1`);
        this.rotations++;
      }
      await fsp.appendFile(this.path, line);
      this.records++;
      return null;
    } catch (e) {
      this.errors++;
      this.lastError = `${this.path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
      return this.lastError;
    }
  }

  /** Waits for the appends already made; later ones are refused. */
  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
  }
}

/**
 * The records of a performance file, oldest first (with `previous`: the previous generation's
 * before them). Lines that are not JSON objects (a torn last line) are skipped; a missing file is
 * empty.
 */
export async function readPerfRecords(path: string, opts: { previous?: boolean } = {}): Promise<GroupMetrics[]> {
  const out: GroupMetrics[] = [];
  for (const p of opts.previous ? [`${path}.1`, path] : [path]) {
    let text: string;
    try {
      text = await fsp.readFile(p, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const v = JSON.parse(line) as unknown;
        if (v && typeof v === 'object' && !Array.isArray(v)) out.push(v as GroupMetrics);
      } catch {
        /* torn line */
      }
    }
  }
  return out;
}

/**
 * The records of both generations at or after `sinceMs` (ms since the epoch; null: all), oldest
 * first. A record whose time does not parse is kept only without `sinceMs` (it cannot be placed).
 */
export async function perfRecordsSince(path: string, sinceMs: number | null): Promise<GroupMetrics[]> {
  const all = await readPerfRecords(path, { previous: true });
  if (sinceMs === null) return all;
  return all.filter((r) => Date.parse(r.time) >= sinceMs);
}

// ---------------------------------------------------------------------------------------------
// qdsinfo

export interface QdsinfoGroup {
  name: string;
  mode: GroupMode;
  paused: boolean;
  /** true, or the record's bypass state */
  bypass: boolean | { on: boolean; reason: 'overflow' | 'operator' | null; since: string | null };
  /** in LUN-number order (a member's index is its LUN number in the writelog records) */
  members: Array<{ mirror: string; lun: string; secondary: string }>;
  metrics: GroupMetrics;
  writelog: {
    /** bytes of the writelog chain now: the main segment and the extensions chained in */
    capacity: number;
    extensionsInUse: number;
    extensionsFree: number;
  };
  /** optional: a refresh copying every allocated region (the secondaries are incoherent) */
  refresh?: { running: boolean; bytesDone: number; bytesTotal: number } | null;
  /** optional: near-synchronous bounds (0: no bound) */
  nearSync?: { maxEntries: number; maxBytes: number };
  /** optional: how many throttles the group has */
  throttles?: number;
  /** optional: why a running refresh may not progress (view.ts `refreshWaits`) */
  waiting?: string[];
  /** optional: the armed freeze (shown when armed, or in synchronous mode) */
  freeze?: GroupFreeze;
}

function bytes(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) (v /= 1024), u++;
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

const num = (n: number, digits = 1) => (Number.isFinite(n) ? (Number.isInteger(n) ? String(n) : n.toFixed(digits)) : '-');

function age(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0 s';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor(s / 60) % 60} min`;
}

/**
 * The armed freeze in words (`status`, `info`): shown when armed, or when off in synchronous mode
 * (where it would act); undefined otherwise (and for a view from an array without the attribute).
 */
export function freezeWords(mode: GroupMode, freeze: GroupFreeze | undefined): string | undefined {
  if (freeze === 'armed') return mode === 'synchronous' ? 'armed (a member that stops replicating to an array stops every member\'s writes to it)' : `armed (acts in synchronous mode; the group is ${mode})`;
  if (freeze === 'off' && mode === 'synchronous') return 'off (each member replicates on its own: a rolling failure may leave the secondaries at different points)';
  return undefined;
}

/** The state of a group in a few words: the special modes first. */
export function groupStateWords(g: Pick<QdsinfoGroup, 'paused' | 'bypass' | 'refresh'> & { metrics?: GroupMetrics | null }): string {
  const words: string[] = [];
  const bypass = typeof g.bypass === 'boolean' ? { on: g.bypass, reason: null, since: null } : g.bypass;
  if (bypass.on) words.push(`BYPASS${bypass.reason ? ` (${bypass.reason}${bypass.since ? ` since ${bypass.since}` : ''})` : bypass.since ? ` (since ${bypass.since})` : ''}`);
  if (g.refresh?.running) {
    const pct = g.refresh.bytesTotal > 0 ? ` ${Math.floor((100 * g.refresh.bytesDone) / g.refresh.bytesTotal)}%` : '';
    words.push(`REFRESH${pct} (secondaries incoherent)`);
  }
  if (g.paused) words.push('PAUSED');
  if (!words.length) words.push(!g.metrics || g.metrics.entriesWaiting > 0 ? 'replicating' : 'replicating (caught up)');
  return words.join(', ');
}

/**
 * A qdsinfo-like ASCII report of one group (ends with a newline). The measurements are `m`, else
 * `g.metrics`; without either (no record yet) only the group's state and members are shown.
 */
export function formatQdsinfo(g: Omit<QdsinfoGroup, 'metrics'> & { metrics?: GroupMetrics | null }, m: GroupMetrics | null = g.metrics ?? null): string {
  const bypassOn = typeof g.bypass === 'boolean' ? g.bypass : g.bypass.on;
  const lines: string[] = [];
  const row = (k: string, v: string) => lines.push(`  ${(k + ':').padEnd(11)}${v}`);

  lines.push(`group ${g.name}  (${g.mode})`);
  row('state', groupStateWords({ ...g, metrics: m }));
  if (g.mode === 'near-synchronous' && g.nearSync) {
    const b = [g.nearSync.maxEntries > 0 ? `${g.nearSync.maxEntries} entries` : '', g.nearSync.maxBytes > 0 ? bytes(g.nearSync.maxBytes) : ''].filter(Boolean);
    row('bound', b.length ? `host writes wait at ${b.join(' or ')} not acknowledged` : 'none');
  }
  const fz = freezeWords(g.mode, g.freeze);
  if (fz) row('freeze', fz);
  row('members', String(g.members.length));
  g.members.forEach((mb, i) => lines.push(`    LUN ${String(i).padEnd(3)} mirror ${mb.mirror}  lun ${mb.lun}  ->  ${mb.secondary}`));

  const ext = `extensions ${g.writelog.extensionsInUse} in use, ${g.writelog.extensionsFree} free`;
  if (!m) {
    row('writelog', `${bytes(g.writelog.capacity)}, ${ext}`);
    row('metrics', 'none yet');
    if (g.throttles !== undefined) row('throttles', String(g.throttles));
    return lines.join('\n') + '\n';
  }
  row('writelog', `${bytes(m.writelogBytes)} of ${bytes(g.writelog.capacity)} in use (${num(m.pctwl)}%), ${ext}`);
  row('entries', `${m.entriesWaiting} waiting${m.entriesWaiting > 0 ? `, oldest ${age(m.oldestEntryAgeMs)}` : ''}`);
  const behind = Math.max(0, m.nextSeq - 1 - m.ackedThrough);
  row('sequence', `next ${m.nextSeq}, acknowledged through ${m.ackedThrough}${behind ? ` (${behind} behind)` : ''}`);
  row('rates', `net ${num(m.netkbps)} KB/s, data ${num(m.dataKbps)} KB/s, ${num(m.entriesPerSec)} entries/s`);
  row('cpu', `${num(m.pctcpu)}%`);

  let sender: string;
  if (bypassOn) sender = 'stopped (bypass: changes go to the fracture logs)';
  else if (g.paused) sender = 'paused by the operator';
  else if (m.entriesWaiting > 0) sender = 'sending';
  else sender = 'idle';
  const knobs = [`sleep ${num(m.senderSleepMs)} ms before each transmission`, `host-ack delay ${num(m.ackDelayMs)} ms`];
  row('sender', `${sender}; ${knobs.join(', ')}`);
  if (g.waiting?.length) row('waiting', `the refresh waits: ${g.waiting.join('; ')}`);
  if (g.throttles !== undefined) row('throttles', String(g.throttles));
  if (g.mode === 'near-synchronous' || m.writesDelayed > 0) row('delayed', `${m.writesDelayed} host writes waited, ${num(m.delayedMs)} ms in all (since the last record)`);
  row('as of', m.time);
  return lines.join('\n') + '\n';
}
