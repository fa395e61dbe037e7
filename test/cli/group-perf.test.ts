// `sanbox group perf` and GET /v1/groups/:ref/perf against two real arrays in this process
// (test/support/mirror-lab: alpha -> bravo through a real link emulator) with a real asynchronous
// group g0 recording every 100 ms; their API servers on real sockets, a lab state file naming
// bravo first (the verb finds the primary, alpha). Host writes go through the LUN's host stack;
// the group is paused for a while so that the backlog, the writelog and the lag move.
// SANBOX_PERF_SVG=FILE keeps the chart this test draws (an example to look at).
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer } from '../../src/control/index.js';
import { removeState, writeState } from '../../src/cli/lab.js';
import type { GroupMetrics } from '../../src/replication/group/index.js';
import { captureCli, type CliCapture } from '../support/cli.js';
import { groupLab, until, type Lab } from '../support/mirror-lab.js';
import { findAll, parseXml, texts } from '../support/xml.js';

let lab: Lab;
let tmp: string;
const servers: ControlServer[] = [];
const urls: Record<string, string> = {};
let counter: Server;
let counterUrl: string;
let requests = 0;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function writeFor(ms: number): Promise<void> {
  const dev = lab.hostDevice('alpha', 'disk0');
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    await dev.write((i % 512) * 8192, Buffer.alloc(8192, i & 0xff));
    await sleep(5);
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-gperf-'));
  lab = await groupLab({ perfEveryMs: 100 });
  for (const name of ['alpha', 'bravo']) {
    const r = lab.sites[name]!.running!;
    const srv = new ControlServer({ array: r.array, mirrors: r.mirrors });
    servers.push(srv);
    urls[name] = (await srv.listen()).url;
  }
  process.env.SANBOX_IMAGES = tmp;
  await writeState({
    lab: 'plab',
    file: '/x/plab.yaml',
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
    state: 'running',
    arrays: [
      { name: 'bravo', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: urls.bravo! } },
      { name: 'alpha', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: urls.alpha! } },
    ],
  });
  delete process.env.SANBOX_IMAGES;
  counter = createServer((_req, res) => {
    requests++;
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', () => r()));
  counterUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}`;
  // a steady writer, then the sender paused (the backlog and the lag grow), resumed, idle
  const n = lab.node('alpha');
  await writeFor(800);
  await n.groups.pause('g0', true);
  await writeFor(800);
  await n.groups.pause('g0', false);
  await writeFor(500);
  await until(() => n.groups.get('g0').metrics?.entriesWaiting === 0, 10_000, 'drained');
  await sleep(400);
}, 90_000);

afterAll(async () => {
  process.env.SANBOX_IMAGES = tmp;
  await removeState('plab').catch(() => undefined);
  delete process.env.SANBOX_IMAGES;
  for (const s of servers) await s.close();
  await lab?.close();
  await new Promise<void>((r) => counter.close(() => r()));
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  requests = 0;
});

const cli = (args: string[]): Promise<CliCapture> => captureCli(args, { SANBOX_IMAGES: tmp, SANBOX_LAB: 'plab', SANBOX_API: undefined });

async function get(url: string): Promise<{ status: number; body: any }> {
  const r = await fetch(url);
  return { status: r.status, body: await r.json() };
}

describe('GET /v1/groups/:ref/perf', () => {
  it("answers the primary's records in time order, with the interval", async () => {
    const r = await get(`${urls.alpha}/v1/groups/g0/perf`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ group: 'g0', perfEveryMs: 100, since: null });
    const recs = r.body.records as GroupMetrics[];
    expect(recs.length).toBeGreaterThan(15);
    const times = recs.map((m) => Date.parse(m.time));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(Math.max(...recs.map((m) => m.netkbps))).toBeGreaterThan(0);
    expect(Math.max(...recs.map((m) => m.entriesWaiting))).toBeGreaterThan(10); // while paused
    expect(Math.max(...recs.map((m) => m.oldestEntryAgeMs))).toBeGreaterThan(200);
  });

  it('?since= keeps the records at or after it: ms since the epoch, a duration, an ISO time', async () => {
    const all = (await get(`${urls.alpha}/v1/groups/g0/perf`)).body.records as GroupMetrics[];
    const mid = Date.parse(all[Math.floor(all.length / 2)]!.time);
    for (const since of [String(mid), encodeURIComponent(new Date(mid).toISOString())]) {
      const r = await get(`${urls.alpha}/v1/groups/g0/perf?since=${since}`);
      expect(r.status).toBe(200);
      expect(r.body.since).toBe(new Date(mid).toISOString());
      const recs = r.body.records as GroupMetrics[];
      expect(recs.length).toBeGreaterThan(0);
      expect(recs.length).toBeLessThan(all.length);
      expect(recs.every((m) => Date.parse(m.time) >= mid)).toBe(true);
      expect(recs[0]!.time).toBe(all[Math.floor(all.length / 2)]!.time);
    }
    const before = Date.now();
    const r = await get(`${urls.alpha}/v1/groups/g0/perf?since=1s`);
    expect(Date.parse(r.body.since)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(r.body.since)).toBeLessThanOrEqual(Date.now() - 1000);
    expect(r.body.records.length).toBeLessThan(all.length);
    expect((r.body.records as GroupMetrics[]).every((m) => Date.parse(m.time) >= Date.parse(r.body.since))).toBe(true);
  });

  it('a bad since or query is 400; an unknown group 404; a secondary 409 not-primary', async () => {
    for (const q of ['since=soon', 'since=', 'since=-5', 'since=10x', 'from=1']) {
      const r = await get(`${urls.alpha}/v1/groups/g0/perf?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('invalid-argument');
    }
    const nf = await get(`${urls.alpha}/v1/groups/nosuch/perf`);
    expect(nf.status).toBe(404);
    expect(nf.body).toEqual({ error: { code: 'not-found', message: expect.stringMatching(/no consistency group "nosuch"/) } });
    const sec = await get(`${urls.bravo}/v1/groups/g0/perf`);
    expect(sec.status).toBe(409);
    expect(sec.body.error.code).toBe('not-primary');
  });
});

describe('sanbox group perf', () => {
  it("prints a table of the primary's records (found in the lab: alpha, not bravo)", async () => {
    const r = await cli(['group', 'perf', 'g0']);
    expect(r.code, r.err).toBe(0);
    const lines = r.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^group g0 on alpha: \d+ performance records \(every 0\.1 s\)$/);
    expect(lines[1]).toMatch(/^TIME \(UTC\)\s+KB\/S SENT\s+DATA KB\/S\s+ENTRIES\/S\s+BACKLOG\s+WRITELOG %\s+LAG S$/);
    const n = Number(/: (\d+) performance/.exec(lines[0]!)![1]);
    expect(lines).toHaveLength(n + 2);
    expect(lines[2]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+\d+\s+[\d.]+\s+[\d.]+$/);
  });

  it('--json prints the records', async () => {
    const r = await cli(['group', 'perf', 'g0', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.json).toMatchObject({ group: 'g0', perfEveryMs: 100, since: null });
    expect(r.json.records.length).toBeGreaterThan(15);
    expect(r.json.records[0]).toHaveProperty('pctwl');
  });

  it('--svg writes one chart with the five panels, lines with points, and says where', async () => {
    const file = process.env.SANBOX_PERF_SVG ?? join(tmp, 'g0-perf.svg');
    const r = await cli(['group', 'perf', 'g0', '--svg', file]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(new RegExp(`^wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\d+ performance records of group g0 on alpha plotted\\n$`));
    expect(existsSync(file)).toBe(true);
    const doc = parseXml(readFileSync(file, 'utf8'));
    expect(doc.name).toBe('svg');
    const t = texts(doc);
    for (const title of ['sent to the secondaries (KB/s)', 'entries sent (entries/s)', 'backlog: entries not yet acknowledged (entries)', 'writelog in use (%)', 'lag: age of the oldest entry (s)']) {
      expect(t).toContain(title);
    }
    const lines = findAll(doc, 'path').filter((p) => p.attrs.class === 'series');
    expect(lines).toHaveLength(6);
    for (const p of lines) expect((p.attrs.d!.match(/L/g) ?? []).length).toBeGreaterThan(10);
    const j = await cli(['group', 'perf', 'g0', '--svg', file, '--json']);
    expect(j.json.svg).toBe(file);
  });

  it.skipIf(!existsSync('/usr/bin/rsvg-convert'))('--png writes the same chart as a PNG, alone or with --svg', async () => {
    const png = join(tmp, 'g0-perf.png');
    const svg = join(tmp, 'g0-perf-too.svg');
    const r = await cli(['group', 'perf', 'g0', '--png', png, '--svg', svg]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^wrote .*g0-perf-too\.svg and .*g0-perf\.png: \d+ performance records of group g0 on alpha plotted\n$/);
    const bytes = readFileSync(png);
    expect(bytes.readUInt32BE(0)).toBe(0x89504e47);
    const width = Number(/<svg[^>]* width="(\d+)"/.exec(readFileSync(svg, 'utf8'))![1]);
    expect(bytes.readUInt32BE(16)).toBe(width); // IHDR: the PNG is the SVG's size
    const j = await cli(['group', 'perf', 'g0', '--png', png, '--json']);
    expect(j.json.png).toBe(png);
    expect(j.json.svg).toBeUndefined();
  });

  it('--since keeps the recent records: a duration or an ISO time', async () => {
    const all = (await cli(['group', 'perf', 'g0', '--json'])).json.records as GroupMetrics[];
    const recent = await cli(['group', 'perf', 'g0', '--since', '1s', '--json']);
    expect(recent.code, recent.err).toBe(0);
    expect(recent.json.records.length).toBeGreaterThan(0);
    expect(recent.json.records.length).toBeLessThan(all.length);
    const day = await cli(['group', 'perf', 'g0', '--since', '1d', '--json']);
    expect(day.json.records.length).toBeGreaterThanOrEqual(all.length);
    expect(day.json.records[0].time).toBe(all[0]!.time);
    const mid = all[Math.floor(all.length / 2)]!.time;
    const iso = await cli(['group', 'perf', 'g0', '--since', mid, '--json']);
    expect(iso.json.records[0].time).toBe(mid);
    expect(iso.json.records.length).toBeLessThan(all.length);
    const none = await cli(['group', 'perf', 'g0', '--since', new Date(Date.now() + 3_600_000).toISOString()]);
    expect(none.code).toBe(0);
    expect(none.out).toMatch(/^no performance records of group g0 on alpha since .* UTC \(one is written every 0\.1 s\)\n$/);
    const file = join(tmp, 'empty.svg');
    const e = await cli(['group', 'perf', 'g0', '--since', new Date(Date.now() + 3_600_000).toISOString(), '--svg', file]);
    expect(e.code).toBe(0);
    expect(texts(parseXml(readFileSync(file, 'utf8'))).some((x) => /^no performance records of group g0 since/.test(x))).toBe(true);
  });

  it('a bad --since or --svg is a usage error (exit 2) and nothing is sent', async () => {
    for (const [args, re] of [
      [['--since', 'soon'], /--since must be a duration like 10m/],
      [['--since', '1w'], /--since must be/],
      [['--since', '0'], /--since must be/],
      [['--since', '2026-13-45T00:00:00Z'], /--since must be/],
      [['--svg', '/nonexistent-dir/x.svg'], /directory \/nonexistent-dir does not exist/],
      [['--svg', tmp], /is a directory/],
      [['--png', '/nonexistent-dir/x.png'], /--png .*directory \/nonexistent-dir does not exist/],
      [['--png', ''], /--png needs a file name/],
    ] as Array<[string[], RegExp]>) {
      const r = await captureCli(['group', 'perf', 'g0', ...args, '--api', counterUrl], { SANBOX_IMAGES: tmp, SANBOX_LAB: undefined, SANBOX_API: undefined });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(re);
    }
    expect(requests).toBe(0);
  });

  it('an unknown group: exit 1; an array that does not answer: exit 3', async () => {
    const r = await cli(['group', 'perf', 'nosuch']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no group "nosuch" on the arrays of lab plab/);
    const direct = await captureCli(['group', 'perf', 'nosuch', '--api', urls.alpha!, '--json'], { SANBOX_IMAGES: tmp, SANBOX_LAB: undefined, SANBOX_API: undefined });
    expect(direct.code).toBe(1);
    expect(direct.json.error).toMatchObject({ code: 'not-found', exitCode: 1 });
    const down = await captureCli(['group', 'perf', 'g0', '--api', 'http://127.0.0.1:1'], { SANBOX_IMAGES: tmp, SANBOX_LAB: undefined, SANBOX_API: undefined });
    expect(down.code).toBe(3);
  });
});
