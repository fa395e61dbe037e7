// `sanbox events`: a lab's event streams merged in time order, filtered, followed. In process,
// against two real arrays' APIs and a real link emulator's API named by a lab state file.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { LinkEmulator, LinkApiServer } from '../../src/link/index.js';
import { writeState } from '../../src/cli/lab.js';
import { readSse } from '../../src/events/index.js';
import { eventLine, typeFilter } from '../../src/cli/events/index.js';
import { captureCli } from '../support/cli.js';

let tmp: string;
const arrays: Record<string, StorageArray> = {};
const servers: { close(): Promise<void> }[] = [];
let emu: LinkEmulator;
let alphaUrl: string;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-events-'));
  const urls: Record<string, string> = {};
  for (const name of ['alpha', 'bravo']) {
    arrays[name] = await StorageArray.open({ name, dir: join(tmp, name), noSync: true });
    const srv = new ControlServer({ array: arrays[name]! });
    servers.push(srv);
    urls[name] = (await srv.listen()).url;
  }
  alphaUrl = urls.alpha!;
  emu = new LinkEmulator({ name: 'ab', a: 'alpha', b: 'bravo', routes: [{ name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: 9 }, forward: 'a-to-b' }] });
  await emu.start();
  const api = new LinkApiServer({ emulator: emu });
  const linkUrl = (await api.listen()).url;
  servers.push(api);
  const nbd = { host: '127.0.0.1', port: 1 };
  process.env.SANBOX_IMAGES = tmp;
  await writeState({
    lab: 'ev',
    file: '/x/ev.yaml',
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
    state: 'running',
    arrays: [
      { name: 'alpha', pid: process.pid, dir: '', nbd, api: { url: urls.alpha! } },
      { name: 'bravo', pid: process.pid, dir: '', nbd, api: { url: urls.bravo! } },
    ],
    links: [{ name: 'ab', between: ['alpha', 'bravo'], api: { url: linkUrl } }],
  } as Parameters<typeof writeState>[0]);
  delete process.env.SANBOX_IMAGES;
  // in a known order, a few milliseconds apart: alpha, link, bravo, alpha
  await arrays.alpha!.createLun({ name: 'a1', size: 1 << 20 });
  await sleep(5);
  emu.cutLink('both');
  await sleep(5);
  await arrays.bravo!.createLun({ name: 'b1', size: 1 << 20 });
  await sleep(5);
  await arrays.alpha!.createLun({ name: 'a2', size: 1 << 20 });
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await emu.stop();
  for (const a of Object.values(arrays)) await a.close();
  await rm(tmp, { recursive: true, force: true });
});

const cli = (args: string[]) => captureCli(['events', ...args], { SANBOX_IMAGES: tmp, SANBOX_LAB: 'ev', SANBOX_API: undefined, SANBOX_TOKEN: undefined });
const lines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('sanbox events', () => {
  it("merges the lab's arrays and links in time order, each event with its source", async () => {
    const r = await cli(['--json', '--type', 'lun.created,link.cut']);
    expect(r.code, r.err).toBe(0);
    const evs = lines(r.out);
    expect(evs.map((e) => `${e.kind} ${e.source} ${e.type} ${e.name ?? ''}`.trim())).toEqual(['array alpha lun.created a1', 'link ab link.cut', 'array bravo lun.created b1', 'array alpha lun.created a2']);
    const times = evs.map((e) => Date.parse(e.time as string));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    const text = await cli(['--type', 'lun.*']);
    expect(text.out).toMatch(/^\S+Z {2}array alpha\s+lun\.created\s+.*name=a1/m);
  });

  it('--array and --link pick sources; --since SEQ with one source; --since 1h for all', async () => {
    const a = lines((await cli(['--json', '--array', 'alpha'])).out);
    expect(new Set(a.map((e) => e.source))).toEqual(new Set(['alpha']));
    const seqs = a.map((e) => e.seq as number);
    const after = lines((await cli(['--json', '--array', 'alpha', '--since', String(seqs[0])])).out);
    expect(after.map((e) => e.seq)).toEqual(seqs.slice(1));
    const l = lines((await cli(['--json', '--link', 'ab', '--type', 'link.*'])).out);
    expect(l.map((e) => e.type)).toContain('link.cut');
    expect(lines((await cli(['--json', '--since', '1h', '--type', 'lun.created'])).out)).toHaveLength(3);
  });

  it('--follow prints what was kept, then what happens next from every source, and stops after --count more', async () => {
    const following = cli(['--json', '--follow', '--count', '2', '--type', 'lun.created,link.restored']);
    await sleep(300);
    await arrays.bravo!.createLun({ name: 'b2', size: 1 << 20 });
    emu.restore();
    const r = await following;
    expect(r.code, r.err).toBe(0);
    const evs = lines(r.out);
    // what the sources kept first (in time order), then the two that happened while following
    expect(evs.slice(0, 3).map((e) => e.name)).toEqual(['a1', 'b1', 'a2']);
    expect(evs.slice(3).map((e) => `${e.source} ${e.type}`).sort()).toEqual(['ab link.restored', 'bravo lun.created']);
  });

  it('refuses bad input with the exit codes of docs/cli.md', async () => {
    expect((await cli(['--since', '3'])).code).toBe(2); // a sequence number needs one source
    expect((await cli(['--since', 'yesterday'])).code).toBe(2);
    expect((await cli(['--type', 'mirror.(x)'])).code).toBe(2);
    expect((await cli(['--count', '2'])).code).toBe(2); // --count goes with --follow
    expect((await cli(['--array', 'a/b'])).code).toBe(2);
    const missing = await cli(['--array', 'zulu']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('lab ev has no "zulu"');
    expect((await cli(['--lab', 'nolab'])).code).toBe(3);
    expect((await cli(['--api', 'http://127.0.0.1:9'])).code).toBe(3);
  });

  it("an array's /v1/events answers JSON to Accept: application/json, and the stream is still SSE", async () => {
    const doc = (await (await fetch(`${alphaUrl}/v1/events?since=0`, { headers: { Accept: 'application/json' } })).json()) as { events: { type: string }[] };
    expect(doc.events.map((e) => e.type)).toContain('lun.created');
    expect((await fetch(`${alphaUrl}/v1/events?since=x`, { headers: { Accept: 'application/json' } })).status).toBe(400);
    const ctl = new AbortController();
    const res = await fetch(`${alphaUrl}/v1/events?since=0`, { headers: { Accept: 'text/event-stream' }, signal: ctl.signal });
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const first = await readSse(res.body as unknown as AsyncIterable<Uint8Array>).next();
    ctl.abort();
    expect(JSON.parse(first.value!.data).type).toBe(doc.events[0]!.type);
  });

  it('prints one readable line per event and filters types by pattern', () => {
    const line = eventLine({ source: 'alpha', kind: 'array', seq: 3, time: '2026-12-02T10:00:00.000Z', type: 'mirror.fractured', array: 'alpha', mirror: 'm0', reason: 'link down', lag: { ms: 5 } });
    expect(line).toBe('2026-12-02T10:00:00.000Z  array alpha       mirror.fractured          mirror=m0 reason="link down" lag={"ms":5}');
    const f = typeFilter('mirror.*,link.cut');
    expect(['mirror.fractured', 'link.cut', 'link.restored', 'mirrorx'].map(f)).toEqual([true, true, false, false]);
  });
});

describe('readSse', () => {
  it('joins data lines, skips comments, splits on blank lines across chunk boundaries', async () => {
    const text = ': hello\n\nid: 1\nevent: a\ndata: {"x":\ndata: 1}\n\nretry: 5\nid: 2\r\nevent: b\r\ndata: y\r\n\r\n';
    async function* chunks() {
      for (let i = 0; i < text.length; i += 7) yield new TextEncoder().encode(text.slice(i, i + 7));
    }
    const got = [];
    for await (const m of readSse(chunks())) got.push(m);
    expect(got).toEqual([
      { id: '1', event: 'a', data: '{"x":\n1}' },
      { id: '2', event: 'b', data: 'y' },
    ]);
  });
});
