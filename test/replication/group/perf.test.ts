import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerfRecorder, formatQdsinfo, groupStateWords, readPerfRecords, type QdsinfoGroup } from '../../../src/replication/group/perf.js';
import type { GroupMetrics } from '../../../src/replication/group/types.js';

const metrics = (i: number, over: Partial<GroupMetrics> = {}): GroupMetrics => ({
  time: new Date(Date.UTC(2024, 0, 1, 0, 0, i * 10)).toISOString(),
  netkbps: 210.5,
  dataKbps: 198.25,
  entriesPerSec: 52,
  entriesWaiting: 121,
  writelogBytes: 12 * 1024 * 1024,
  pctwl: 4.6875,
  pctcpu: 3.14,
  oldestEntryAgeMs: 3200,
  nextSeq: 1235,
  ackedThrough: 1113,
  writesDelayed: 0,
  delayedMs: 0,
  senderSleepMs: 15,
  ackDelayMs: 0,
  ...over,
  // i makes every record distinct
  ...(over.nextSeq === undefined ? { nextSeq: 1000 + i } : {}),
});
const lineBytes = (m: GroupMetrics) => Buffer.byteLength(JSON.stringify(m) + '\n');

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'perf-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('PerfRecorder', () => {
  it('appends one JSON line per record', async () => {
    const path = join(dir, 'g0.prf');
    const r = new PerfRecorder(path, 1024 * 1024);
    expect(await r.append(metrics(0))).toBeNull();
    expect(await r.append(metrics(1))).toBeNull();
    await r.close();
    const lines = readFileSync(path, 'utf8').split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[2]).toBe('');
    expect(JSON.parse(lines[0]!)).toEqual(metrics(0));
    expect(JSON.parse(lines[1]!)).toEqual(metrics(1));
    expect(r.records).toBe(2);
    expect(r.errors).toBe(0);
    expect(await readPerfRecords(path)).toEqual([metrics(0), metrics(1)]);
  });

  it('keeps the file at or under maxBytes by rotating to <path>.1, one previous generation', async () => {
    const path = join(dir, 'g0.prf');
    const one = lineBytes(metrics(0));
    const r = new PerfRecorder(path, one * 3 + 10); // three records fit, a fourth does not
    const all = Array.from({ length: 10 }, (_, i) => metrics(i));
    for (const m of all) await r.append(m);
    await r.close();
    expect(r.records).toBe(10);
    expect(r.rotations).toBe(3);
    expect(statSync(path).size).toBeLessThanOrEqual(one * 3 + 10);
    expect(await readPerfRecords(path)).toEqual(all.slice(9));
    expect(await readPerfRecords(`${path}.1`)).toEqual(all.slice(6, 9));
    expect(await readPerfRecords(path, { previous: true })).toEqual(all.slice(6));
    expect(existsSync(`${path}.2`)).toBe(false);
  });

  it('a record larger than the limit still gets a file of its own', async () => {
    const path = join(dir, 'g0.prf');
    const r = new PerfRecorder(path, 10);
    await r.append(metrics(0));
    await r.append(metrics(1));
    await r.close();
    expect(await readPerfRecords(path)).toEqual([metrics(1)]);
    expect(await readPerfRecords(`${path}.1`)).toEqual([metrics(0)]);
  });

  it('appends in call order when called without waiting', async () => {
    const path = join(dir, 'g0.prf');
    const r = new PerfRecorder(path, lineBytes(metrics(0)) * 5);
    const all = Array.from({ length: 40 }, (_, i) => metrics(i));
    const results = await Promise.all(all.map((m) => r.append(m)));
    expect(results.every((x) => x === null)).toBe(true);
    expect(await readPerfRecords(path, { previous: true })).toEqual(all.slice(35 - 5));
  });

  it('follows the file on disk: a restart continues it, a removed file is started again', async () => {
    const path = join(dir, 'g0.prf');
    const one = lineBytes(metrics(0));
    const r1 = new PerfRecorder(path, one * 2 + 1);
    await r1.append(metrics(0));
    await r1.close();
    const r2 = new PerfRecorder(path, one * 2 + 1);
    await r2.append(metrics(1));
    expect(r2.rotations).toBe(0);
    await r2.append(metrics(2));
    expect(r2.rotations).toBe(1);
    expect(await readPerfRecords(`${path}.1`)).toEqual([metrics(0), metrics(1)]);
    rmSync(path);
    await r2.append(metrics(3));
    expect(await readPerfRecords(path)).toEqual([metrics(3)]);
    expect(r2.errors).toBe(0);
  });

  it('errors are counted and returned, never thrown', async () => {
    const path = join(dir, 'gone', 'g0.prf');
    const r = new PerfRecorder(path, 1000);
    const err = await r.append(metrics(0));
    expect(err).toMatch(/ENOENT/);
    expect(r.errors).toBe(1);
    expect(r.lastError).toBe(err);
    expect(r.records).toBe(0);
    // a later append works once the directory is there
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'gone'));
    expect(await r.append(metrics(1))).toBeNull();
    // the path is a directory: stat works, append fails
    const r2 = new PerfRecorder(dir, 1_000_000);
    expect(await r2.append(metrics(0))).toMatch(/EISDIR/);
    expect(r2.errors).toBe(1);
  });

  it('after close, appends are refused; close waits for the appends already made', async () => {
    const path = join(dir, 'g0.prf');
    const r = new PerfRecorder(path, 1_000_000);
    const p = r.append(metrics(0));
    await r.close();
    expect(r.records).toBe(1);
    expect(await p).toBeNull();
    expect(await r.append(metrics(1))).toBe('the performance file is closed');
    expect(await readPerfRecords(path)).toEqual([metrics(0)]);
  });

  it('rejects a limit that is not a positive number', () => {
    for (const bad of [0, -1, NaN, Infinity]) expect(() => new PerfRecorder(join(dir, 'x'), bad)).toThrow(RangeError);
  });

  it('readPerfRecords skips a torn last line and lines that are not records; a missing file is empty', async () => {
    const path = join(dir, 'g0.prf');
    writeFileSync(path, JSON.stringify(metrics(0)) + '\n\n[1,2]\n');
    appendFileSync(path, JSON.stringify(metrics(1)).slice(0, 40));
    expect(await readPerfRecords(path)).toEqual([metrics(0)]);
    expect(await readPerfRecords(join(dir, 'none'), { previous: true })).toEqual([]);
  });
});

describe('formatQdsinfo', () => {
  const group = (over: Partial<QdsinfoGroup> = {}): QdsinfoGroup => ({
    name: 'g0',
    mode: 'asynchronous',
    paused: false,
    bypass: { on: false, reason: null, since: null },
    members: [
      { mirror: 'm0', lun: 'disk0', secondary: 'bravo:disk0' },
      { mirror: 'm1', lun: 'disk1', secondary: 'bravo:disk1' },
    ],
    metrics: metrics(0, { nextSeq: 1235 }),
    writelog: { capacity: 256 * 1024 * 1024, extensionsInUse: 1, extensionsFree: 3 },
    ...over,
  });

  it('shows state, members, writelog, entries, sequence numbers, rates, CPU and the sender', () => {
    const text = formatQdsinfo(group({ throttles: 5 }));
    expect(text).toBe(
      [
        'group g0  (asynchronous)',
        '  state:     replicating',
        '  members:   2',
        '    LUN 0   mirror m0  lun disk0  ->  bravo:disk0',
        '    LUN 1   mirror m1  lun disk1  ->  bravo:disk1',
        '  writelog:  12.0 MiB of 256.0 MiB in use (4.7%), extensions 1 in use, 3 free',
        '  entries:   121 waiting, oldest 3.2 s',
        '  sequence:  next 1235, acknowledged through 1113 (121 behind)',
        '  rates:     net 210.5 KB/s, data 198.3 KB/s, 52 entries/s',
        '  cpu:       3.1%',
        '  sender:    sending; sleep 15 ms before each transmission, host-ack delay 0 ms',
        '  throttles: 5',
        '  as of:     2024-01-01T00:00:00.000Z',
        '',
      ].join('\n'),
    );
  });

  it('special modes: bypass with its reason, refresh with its progress, paused; an idle sender', () => {
    const bypass = formatQdsinfo(group({ bypass: { on: true, reason: 'overflow', since: '2024-01-01T00:00:00Z' } }));
    expect(bypass).toContain('state:     BYPASS (overflow since 2024-01-01T00:00:00Z)');
    expect(bypass).toContain('sender:    stopped (bypass: changes go to the fracture logs)');
    expect(formatQdsinfo(group({ bypass: true }))).toContain('state:     BYPASS\n');
    const refresh = formatQdsinfo(group({ paused: true, refresh: { running: true, bytesDone: 1, bytesTotal: 3 } }));
    expect(refresh).toContain('state:     REFRESH 33% (secondaries incoherent), PAUSED');
    expect(refresh).toContain('sender:    paused by the operator');
    const idle = formatQdsinfo(group({ metrics: metrics(0, { entriesWaiting: 0, nextSeq: 1114, ackedThrough: 1113, senderSleepMs: 0 }) }));
    expect(idle).toContain('state:     replicating (caught up)');
    expect(idle).toContain('entries:   0 waiting\n');
    expect(idle).toContain('sequence:  next 1114, acknowledged through 1113\n');
    expect(idle).toContain('sender:    idle; sleep 0 ms');
  });

  it('near-synchronous: the bound and the delayed writes', () => {
    const text = formatQdsinfo(group({ mode: 'near-synchronous', nearSync: { maxEntries: 500, maxBytes: 64 * 1024 * 1024 }, metrics: metrics(0, { writesDelayed: 7, delayedMs: 12.5, ackDelayMs: 2 }) }));
    expect(text).toContain('group g0  (near-synchronous)');
    expect(text).toContain('bound:     host writes wait at 500 entries or 64.0 MiB not acknowledged');
    expect(text).toContain('delayed:   7 host writes waited, 12.5 ms in all (since the last record)');
    expect(text).toContain('host-ack delay 2 ms');
    expect(formatQdsinfo(group({ mode: 'near-synchronous', nearSync: { maxEntries: 0, maxBytes: 0 } }))).toContain('bound:     none');
  });

  it('takes the metrics as a second argument, and works before the first record', () => {
    const { metrics: _m, ...g } = group();
    expect(formatQdsinfo(g, metrics(3, { netkbps: 99 }))).toContain('net 99 KB/s');
    const none = formatQdsinfo(g);
    expect(none).toContain('writelog:  256.0 MiB, extensions 1 in use, 3 free');
    expect(none).toContain('metrics:   none yet');
    expect(none).not.toContain('rates');
  });

  it('long ages', () => {
    expect(formatQdsinfo(group({ metrics: metrics(0, { oldestEntryAgeMs: 95_000 }) }))).toContain('oldest 95 s');
    expect(formatQdsinfo(group({ metrics: metrics(0, { oldestEntryAgeMs: 3_725_000 }) }))).toContain('oldest 62 min 5 s');
    expect(formatQdsinfo(group({ metrics: metrics(0, { oldestEntryAgeMs: 9_000_000 }) }))).toContain('oldest 2 h 30 min');
  });

  it('groupStateWords', () => {
    expect(groupStateWords({ paused: true, bypass: false })).toBe('PAUSED');
    expect(groupStateWords({ paused: false, bypass: { on: true, reason: null, since: 'x' } })).toBe('BYPASS (since x)');
  });
});
