// `sanbox group ...`, in process, against real ControlServers with recording fake drivers (mirrors
// and groups): argument errors (exit 2, nothing sent), each verb's request, finding the right
// array of a lab (primary, secondary for promote, the first member's primary for create), status
// with the secondaries' receivers, refresh progress, output and exit codes.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { captureCli, type CliCapture } from '../support/cli.js';
import { writeState, removeState, parseDuration } from '../../src/cli/lab.js';
import { promotionText } from '../../src/cli/group-verbs.js';
import { GroupError, type PromotionReport } from '../../src/replication/group/index.js';
import { FakeMirrors, view as mirrorView } from '../support/fake-mirrors.js';
import { FakeGroups, groupView, secondaryView } from '../support/fake-groups.js';

let tmp: string;
const arrays: StorageArray[] = [];
const servers: ControlServer[] = [];
type Site = { mirrors: FakeMirrors; groups: FakeGroups; url: string };
let alpha: Site;
let bravo: Site;
let plainUrl: string; // an array without a mirror driver
let counter: Server;
let counterUrl: string;
let requests = 0;

async function arrayWith(name: string, fakes?: { mirrors: FakeMirrors; groups: FakeGroups }): Promise<string> {
  const a = await StorageArray.open({ name, dir: join(tmp, name), noSync: true });
  arrays.push(a);
  const srv = new ControlServer({ array: a, ...(fakes ? { mirrors: fakes.mirrors, groups: fakes.groups } : {}) });
  servers.push(srv);
  return (await srv.listen()).url;
}

function site(role: 'primary' | 'secondary'): { mirrors: FakeMirrors; groups: FakeGroups } {
  const mirrors = new FakeMirrors();
  const groups = new FakeGroups();
  for (const [n, lun] of [['m1', 1], ['m2', 2]] as const) {
    mirrors.views.set(n, mirrorView(n, { local: { imageId: `${role === 'primary' ? 'alpha' : 'bravo'}:${lun}`, role, lun, lunName: `disk${lun}` } }));
  }
  if (role === 'secondary') groups.views.set('g0', secondaryView('g0'));
  return { mirrors, groups };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-gcli-'));
  const a = site('primary');
  const b = site('secondary');
  alpha = { ...a, url: await arrayWith('alpha', a) };
  bravo = { ...b, url: await arrayWith('bravo', b) };
  plainUrl = await arrayWith('plain');
  counter = createServer((req, res) => {
    requests++;
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', () => r()));
  counterUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}`;
  await writeFile(join(tmp, 'good.yaml'), '- { measure: netkbps, op: gt, value: 200, actions: [{ do: sleep-incr, ms: 15 }] }\n');
  await writeFile(join(tmp, 'mapping.yaml'), 'throttles:\n  - { from: "22:00:00", to: "06:00:00", measure: pctwl, op: rises-above, value: 80, actions: [{ do: extension-chain }] }\n');
  await writeFile(
    join(tmp, 'bad.yaml'),
    '- { measure: iops, op: gt, value: 1, actions: [{ do: sleep-incr, ms: 15 }] }\n- { from: "08:00:00", measure: netkbps, op: gt, value: 1, actions: [{ do: fly }] }\n',
  );
  await writeFile(join(tmp, 'other.yaml'), 'limits: []\n');
});

afterAll(async () => {
  process.env.SANBOX_IMAGES = tmp;
  await removeState('glab').catch(() => undefined);
  delete process.env.SANBOX_IMAGES;
  for (const s of servers) await s.close();
  for (const a of arrays) await a.close();
  await new Promise<void>((r) => counter.close(() => r()));
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  for (const s of [alpha, bravo]) {
    s.groups.calls = [];
    s.mirrors.calls = [];
  }
  requests = 0;
});

function cli(args: string[]): Promise<CliCapture> {
  return captureCli(args, { SANBOX_IMAGES: tmp, SANBOX_LAB: undefined, SANBOX_API: undefined });
}

describe('sanbox group: argument errors send nothing (exit 2)', () => {
  const cases: [string[], RegExp][] = [
    [['group', 'create', 'g1'], /create needs --members m1,m2/],
    [['group', 'create', 'g 1', '--members', 'm1'], /group name "g 1" is invalid/],
    [['group', 'create', '.', '--members', 'm1'], /group name "\." is invalid: .* \(not \. or \.\.\)/],
    [['group', 'create', '..', '--members', 'm1'], /group name "\.\." is invalid: .* \(not \. or \.\.\)/],
    [['group', 'create', 'g1', '--members', 'm1,..'], /--members must be mirror names separated by commas/],
    [['group', 'create', 'g1', '--members', 'm1,,m2'], /--members must be mirror names separated by commas/],
    [['group', 'create', 'g1', '--members', 'm1,m1'], /--members lists mirror m1 twice/],
    [['group', 'create', 'g1', '--members', 'm1', '--mode', 'lazy'], /--mode must be asynchronous, near-synchronous or synchronous, not "lazy"/],
    [['group', 'create', 'g1', '--members', 'm1', '--max-bytes', 'lots'], /--max-bytes must be a size like 64M/],
    [['group', 'create', 'g1', '--members', 'm1', '--max-entries', '-1'], /--max-entries must be an integer >= 0/],
    [['group', 'create', 'g1', '--members', 'm1', '--max-bytes', '8M', '--low-bytes', '8M'], /--low-bytes \(8M\) must be below --max-bytes \(8M\)/],
    [['group', 'create', 'g1', '--members', 'm1', '--max-entries', '10', '--low-entries', '20'], /--low-entries \(20\) must be below --max-entries \(10\)/],
    [['group', 'create', 'g1', '--members', 'm1', '--writelog', '4K'], /--writelog must be a size like 64M of at least 64K/],
    [['group', 'create', 'g1', '--members', 'm1', '--writelog', '65540'], /multiple of 8 bytes/],
    [['group', 'create', 'g1', '--members', 'm1', '--extensions', '200'], /--extensions must be an integer from 0 to 128/],
    [['group', 'create', 'g1', '--members', 'm1', '--extension-size', 'big'], /--extension-size must be a size/],
    [['group', 'create', 'g1', '--members', 'm1', '--extend-at', '0'], /--extend-at must be an integer from 1 to 100/],
    [['group', 'create', 'g1', '--members', 'm1', '--throttle-every', '50ms'], /--throttle-every must be a duration of at least 100ms/],
    [['group', 'create', 'g1', '--members', 'm1', '--perf-every', 'soon'], /--perf-every must be a duration/],
    [['group', 'create', 'g1', '--members', 'm1', '--perf-max', '1K'], /--perf-max must be a size like 64M of at least 4K/],
    [['group', 'create', 'g1', '--members', 'm1', '--throttles', '/nonexistent/t.yaml'], /cannot read throttle file \/nonexistent\/t.yaml: ENOENT/],
    [['group', 'mode', 'g0', 'fast'], /MODE must be asynchronous, near-synchronous or synchronous, not "fast"/],
    [['group', 'mode', 'g0', 'near-synchronous', '--max-entries', '0', '--max-bytes', '0'], /leave near-synchronous without a bound/],
    [['group', 'bypass', 'g0', 'maybe'], /bypass must be on or off, not "maybe"/],
    [['group', 'backfresh', 'g0', '--from', 'a b'], /--from must be an array name/],
    [['group', 'backfresh', 'g0', '--from', '..'], /--from must be an array name/],
    [['group', 'snapshot', 'g0', '..'], /snapshot name "\.\." is invalid: .* \(not \. or \.\.\)/],
    [['group', 'throttle', 'g0'], /throttle needs --file THROTTLES.yaml or --clear/],
    [['group', 'throttle', 'g0', '--file', 'x.yaml', '--clear'], /throttle needs --file THROTTLES.yaml or --clear \(one of them\)/],
    [['group', 'set', 'g0'], /nothing to set/],
    [['group', 'set', 'g0', '--perf-every', '0'], /--perf-every must be a duration of at least 100ms/],
    [['group', 'set', 'g0', '--perf-max', 'x'], /--perf-max must be a size/],
    [['group', 'set', 'g0', '--freeze', 'yes'], /--freeze must be armed or off, not "yes"/],
    [['group', 'create', 'g1', '--members', 'm1', '--freeze', 'on'], /--freeze must be armed or off, not "on"/],
    [['group', 'status', '--count', '3'], /--count goes with --watch/],
    [['group', 'status', '--interval', '1'], /--interval goes with --watch/],
    [['group', 'status', '--watch', '--count', '0'], /--count must be a positive integer/],
    [['group', 'refresh', 'g0', '--interval', '0'], /--interval must be seconds >= 0.1/],
  ];
  for (const [args, msg] of cases) {
    it(args.slice(1).join(' '), async () => {
      const r = await cli([...args, '--api', counterUrl]);
      expect(r.code, r.err).toBe(2);
      expect(r.err).toMatch(msg);
      const j = await cli([...args, '--api', counterUrl, '--json']);
      expect(j.code).toBe(2);
      expect(j.json.error).toMatchObject({ code: 'usage', exitCode: 2 });
      expect(requests).toBe(0);
    });
  }

  it('a throttle file with problems lists every one of them, with where', async () => {
    for (const verb of [['group', 'throttle', 'g0', '--file'], ['group', 'create', 'g1', '--members', 'm1', '--throttles']]) {
      const r = await cli([...verb, join(tmp, 'bad.yaml'), '--api', counterUrl]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(/invalid throttles:/);
      expect(r.err).toMatch(/bad\.yaml\[0\]\.measure must be one of netkbps, pctcpu, pctwl, not "iops"/);
      expect(r.err).toMatch(/bad\.yaml\[1\]: give both from and to/);
      expect(r.err).toMatch(/bad\.yaml\[1\]\.actions\[0\]\.do must be one of/);
    }
    const o = await cli(['group', 'throttle', 'g0', '--file', join(tmp, 'other.yaml'), '--api', counterUrl]);
    expect(o.code).toBe(2);
    expect(o.err).toMatch(/must be a list of throttles, or a mapping with only "throttles:" \(found limits\)/);
    expect(requests).toBe(0);
  });

  it('unknown verbs and options, missing arguments', async () => {
    for (const args of [['group', 'explode'], ['group', 'mode', 'g0'], ['group', 'status', '--colour'], ['group', 'info'], ['group', 'bypass', 'g0'], ['group', 'create']]) {
      const r = await cli([...args, '--api', counterUrl]);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(requests).toBe(0);
    expect((await cli(['group', '--help'])).code).toBe(0);
  });

  it('durations', () => {
    expect([parseDuration('10s'), parseDuration('500ms'), parseDuration('1.5s'), parseDuration('2m'), parseDuration('1h'), parseDuration(10), parseDuration('10')]).toEqual([
      10_000, 500, 1500, 120_000, 3_600_000, 10_000, 10_000,
    ]);
    expect([parseDuration('soon'), parseDuration(-1), parseDuration('10 days'), parseDuration(null)]).toEqual([undefined, undefined, undefined, undefined]);
  });
});

describe('sanbox group with --api', () => {
  it('create sends the parsed values', async () => {
    const r = await cli([
      'group', 'create', 'g1', '--api', alpha.url, '--members', 'm1,m2', '--mode', 'near-synchronous', '--max-bytes', '8M', '--max-entries', '1000', '--low-entries', '100',
      '--writelog', '64M', '--extensions', '2', '--extension-size', '32M', '--extend-at', '80%', '--throttle-every', '10s', '--perf-every', '2s', '--perf-max', '64K',
      '--throttles', join(tmp, 'good.yaml'),
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^created group g1 \(id g1-0a1b2c3d\): m1, m2, near-synchronous/);
    expect(r.out).toMatch(/bound +host writes wait at 1000 entries \(resume below 100\) or 8 MiB \(resume below 4 MiB\)/);
    expect(alpha.groups.calls).toEqual([
      {
        op: 'create',
        args: [
          {
            name: 'g1',
            members: ['m1', 'm2'],
            attributes: {
              mode: 'near-synchronous',
              nearSync: { maxEntries: 1000, maxBytes: 8 << 20, lowEntries: 100, lowBytes: 4 << 20 },
              writelog: { capacity: 64 << 20, extensions: 2, extensionCapacity: 32 << 20, extendAtPercent: 80 },
              throttleEveryMs: 10_000,
              perfEveryMs: 2000,
              perfMaxBytes: 65536,
              throttles: [{ measure: 'netkbps', op: 'gt', value: 200, actions: [{ do: 'sleep-incr', ms: 15 }] }],
            },
          },
        ],
      },
    ]);
    alpha.groups.calls = [];
    const j = await cli(['group', 'create', 'g2', '--members', 'm1', '--api', alpha.url, '--json']);
    expect(j.code).toBe(0);
    expect(j.json.record.name).toBe('g2');
    expect(alpha.groups.calls[0]!.args[0]).toEqual({ name: 'g2', members: ['m1'] });
    alpha.groups.views.delete('g1');
    alpha.groups.views.delete('g2');
  });

  it('--freeze: create and set send it; status shows it', async () => {
    alpha.groups.calls = [];
    const r = await cli(['group', 'create', 'g3', '--api', alpha.url, '--members', 'm1,m2', '--mode', 'synchronous', '--freeze', 'armed']);
    expect(r.code, r.err).toBe(0);
    expect(alpha.groups.calls[0]!.args[0]).toEqual({ name: 'g3', members: ['m1', 'm2'], attributes: { mode: 'synchronous', freeze: 'armed' } });
    expect(r.out).toMatch(/\n  freeze +armed \(a member that stops replicating to an array stops every member's writes to it\)\n/);
    const s = await cli(['group', 'set', 'g3', '--api', alpha.url, '--freeze', 'off']);
    expect(s.code, s.err).toBe(0);
    expect(alpha.groups.calls.at(-1)).toEqual({ op: 'setAttributes', args: ['g3', { freeze: 'off' }] });
    alpha.groups.views.delete('g3');
    alpha.groups.calls = [];
  });

  it('each verb calls its operation', async () => {
    const run = async (args: string[]) => {
      const r = await cli([...args, '--api', alpha.url]);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
      return r;
    };
    await run(['group', 'mode', 'g0', 'near-synchronous', '--max-bytes', '16M']);
    await run(['group', 'mode', 'g0', 'asynchronous']);
    await run(['group', 'pause', 'g0']);
    await run(['group', 'resume', 'g0']);
    await run(['group', 'bypass', 'g0', 'on']);
    await run(['group', 'bypass', 'g0', 'off']);
    await run(['group', 'refresh', 'g0', '--no-wait']);
    await run(['group', 'backfresh', 'g0', '--from', 'bravo']);
    await run(['group', 'backfresh', 'g0']);
    await run(['group', 'promote', 'g0', '--force']);
    await run(['group', 'throttle', 'g0', '--file', join(tmp, 'mapping.yaml')]);
    await run(['group', 'throttle', 'g0', '--clear']);
    await run(['group', 'set', 'g0', '--throttle-every', '2s', '--perf-every', '500ms', '--perf-max', '1M']);
    await run(['group', 'set', 'g0', '--max-entries', '64']);
    const info = await run(['group', 'info', 'g0']);
    expect(info.out).toBe('group g0  (asynchronous)\n  state:     replicating\n');
    expect(alpha.groups.calls).toEqual([
      { op: 'setMode', args: ['g0', 'near-synchronous', { maxBytes: 16 << 20, lowBytes: 8 << 20 }] },
      { op: 'setMode', args: ['g0', 'asynchronous', undefined] },
      { op: 'pause', args: ['g0', true] },
      { op: 'pause', args: ['g0', false] },
      { op: 'bypass', args: ['g0', true] },
      { op: 'bypass', args: ['g0', false] },
      { op: 'refresh', args: ['g0'] },
      // the view first: the group's id, to follow its backfresh-progress events
      { op: 'get', args: ['g0'] },
      { op: 'backfresh', args: ['g0', { from: 'bravo' }] },
      { op: 'get', args: ['g0'] },
      { op: 'backfresh', args: ['g0', undefined] },
      { op: 'promote', args: ['g0', { force: true }] },
      { op: 'setAttributes', args: ['g0', { throttles: [{ from: '22:00:00', to: '06:00:00', measure: 'pctwl', op: 'rises-above', value: 80, actions: [{ do: 'extension-chain' }] }] }] },
      { op: 'setAttributes', args: ['g0', { throttles: [] }] },
      { op: 'setAttributes', args: ['g0', { throttleEveryMs: 2000, perfEveryMs: 500, perfMaxBytes: 1 << 20 }] },
      { op: 'setAttributes', args: ['g0', { nearSync: { maxEntries: 64, lowEntries: 32 } }] },
      { op: 'info', args: ['g0'] },
    ]);
    const ij = await cli(['group', 'info', 'g0', '--api', alpha.url, '--json']);
    expect(Object.keys(ij.json)).toEqual(['text', 'view']);
    alpha.groups.views.get('g0')!.record.refresh = null;
  });

  it('refresh shows progress until done; a stopped refresh is exit 1', async () => {
    const g = alpha.groups;
    g.refreshSteps = [{ running: true, bytesDone: 4 << 20, bytesTotal: 8 << 20 }, null];
    const r = await cli(['group', 'refresh', 'g0', '--api', alpha.url, '--interval', '0.1']);
    expect(r.code, r.err).toBe(0);
    // not a terminal: plain lines, the start (with what it waits for: the fake's metrics say a
    // sender sleep of 15 ms) and the end; the 50 % in between is within the few seconds of the
    // start, so it gets no line of its own (test/cli/progress/ covers that spacing)
    expect(r.err).toMatch(/^refreshing group g0: 0 B of 8 MiB \(0%\) after 0s, \?\/s, ETA \?; waiting: sender sleeping 15 ms per transmission \(set by a throttle\)$/m);
    expect(r.err).toMatch(/^refreshing group g0: done, 8 MiB of 8 MiB \(100%\) in [\d.]+s, [\d.]+ [KM]iB\/s on average/m);
    expect(r.err).not.toContain('\r');
    expect(r.out).toMatch(/^group g0: refresh done, 8 MiB copied in [\d.]+ s; the secondaries are coherent again/);
    expect(g.calls.map((c) => c.op)).toEqual(['refresh', 'get', 'get']);
    g.calls = [];
    g.refreshSteps = [{ running: false, bytesDone: 2 << 20, bytesTotal: 8 << 20 }];
    const bad = await cli(['group', 'refresh', 'g0', '--api', alpha.url, '--interval', '0.1', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.json.error).toMatchObject({ code: 'refresh-failed', exitCode: 1 });
    expect(bad.json.error.message).toMatch(/stopped at 2 MiB of 8 MiB/);
    expect(bad.err).toBe(''); // --json: no progress for people
    g.views.get('g0')!.record.refresh = null;
  });

  it('backfresh follows the group\'s backfresh-progress events (plain lines off a terminal); -q and --json show none', async () => {
    const g = alpha.groups;
    const array = arrays[0]!; // alpha's: its API streams what it publishes
    const plain = g.backfresh.bind(g);
    g.backfresh = async (ref, p) => {
      for (const done of [64, 128, 192, 256]) {
        await new Promise((r) => setTimeout(r, 50));
        array.publish('group.backfresh-progress', { groupId: 'some-other-group', bytesDone: 1, bytesTotal: 2 });
        array.publish('group.backfresh-progress', { groupId: g.views.get('g0')!.record.groupId, bytesDone: done << 20, bytesTotal: 256 << 20 });
      }
      return plain(ref, p);
    };
    try {
      const r = await cli(['group', 'backfresh', 'g0', '--api', alpha.url, '--from', 'bravo']);
      expect(r.code, r.err).toBe(0);
      const lines = r.err.trimEnd().split('\n');
      expect(lines[0]).toBe('backfresh of group g0 from bravo: 0 B so far after 0s, ?/s; the members are offline to hosts meanwhile');
      expect(lines.at(-1)).toMatch(/^backfresh of group g0 from bravo: done, 256 MiB of 256 MiB \(100%\) in [\d.]+s, [\d.]+ [MG]iB\/s on average$/m);
      expect(r.err).not.toMatch(/of 2 B/); // another group's events are not this one's
      expect(r.out).toMatch(/^group g0: backfresh from bravo done in [\d.]+ s/);
      for (const quiet of [['-q'], ['--json']]) {
        const q = await cli(['group', 'backfresh', 'g0', '--api', alpha.url, ...quiet]);
        expect(q.code, q.err).toBe(0);
        expect(q.err).toBe('');
      }
      expect((await cli(['group', 'backfresh', 'g0', '--api', alpha.url, '--json'])).json.record.name).toBe('g0');
    } finally {
      g.backfresh = plain;
    }
  });

  it('status: mode, state, backlog, sequence, senders; --json; --watch --count', async () => {
    const r = await cli(['group', 'status', 'g0', '--api', alpha.url]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^group g0 {2}asynchronous {2}id g0-0a1b2c3d {2}here: primary$/m);
    expect(r.out).toMatch(/state +replicating$/m);
    expect(r.out).toMatch(/members +m1 \(LUN 1\), m2 \(LUN 2\) -> bravo/);
    expect(r.out).toMatch(/bypass +off/);
    expect(r.out).toMatch(/coherent +yes/);
    expect(r.out).toMatch(/backlog +3 entries, 12 KiB \(0\.0% of the writelog 256 MiB\), oldest 0\.3 s/);
    expect(r.out).toMatch(/sequence +next 101, acknowledged through 97/);
    expect(r.out).toMatch(/SENDER TO +STATE +ACKED THROUGH +ERROR\n +bravo +running +97 +-/);
    const v = alpha.groups.views.get('g0')!;
    v.record.bypass = { on: true, reason: 'overflow', since: '2026-01-01T00:00:00.000Z' };
    v.incoherent = 'bypass (overflow): the secondaries are being resynchronized from the fracture logs';
    try {
      const b = await cli(['group', 'status', 'g0', '--api', alpha.url]);
      expect(b.out).toMatch(/state +BYPASS \(overflow since 2026-01-01T00:00:00.000Z\)/);
      expect(b.out).toMatch(/coherent +NO: bypass \(overflow\)/);
    } finally {
      v.record.bypass = { on: false, reason: null, since: null };
      v.incoherent = null;
    }
    const j = await cli(['group', 'status', '--api', alpha.url, '--json']);
    expect(j.json.groups.map((g: any) => g.record.name)).toEqual(['g0']);
    const w = await cli(['group', 'status', 'g0', '--api', alpha.url, '--watch', '--count', '2', '--interval', '0.1', '--json']);
    expect(w.code).toBe(0);
    const lines = w.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0].group.record.name).toBe('g0');
    const l = await cli(['group', 'list', '--api', alpha.url]);
    expect(l.out).toMatch(/GROUP +MODE +STATE +PRIMARY +MEMBERS +SECONDARIES +BACKLOG\ng0 +asynchronous +replicating +here +m1,m2 +bravo +3 \/ 12 KiB/);
  });

  it('errors from the array: exit 1 with its code; no driver; unreachable exit 3', async () => {
    const nf = await cli(['group', 'status', 'nope', '--api', alpha.url, '--json']);
    expect(nf.code).toBe(1);
    expect(nf.json.error).toMatchObject({ code: 'not-found', exitCode: 1 });
    const nd = await cli(['group', 'list', '--api', plainUrl]);
    expect(nd.code).toBe(1);
    expect(nd.err).toMatch(/this array runs no mirror driver/);
    const un = await cli(['group', 'list', '--api', 'http://127.0.0.1:1']);
    expect(un.code).toBe(3);
    alpha.groups.fail = new GroupError('state', 'a refresh of group g0 is running');
    const st = await cli(['group', 'backfresh', 'g0', '--api', alpha.url]);
    expect(st.code).toBe(1);
    expect(st.err).toMatch(/a refresh of group g0 is running/);
  });
});

describe('sanbox group in a lab: the right array', () => {
  beforeAll(async () => {
    const saved = process.env.SANBOX_IMAGES;
    process.env.SANBOX_IMAGES = tmp;
    await writeState({
      lab: 'glab',
      file: '/x/glab.yaml',
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
      state: 'running',
      arrays: [
        { name: 'bravo', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: bravo.url } },
        { name: 'alpha', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: alpha.url } },
        { name: 'plain', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: plainUrl } },
      ],
    });
    if (saved === undefined) delete process.env.SANBOX_IMAGES;
    else process.env.SANBOX_IMAGES = saved;
  });

  it("primary-side verbs go to the primary's array, promote to a secondary's, create to the first member's primary", async () => {
    expect((await cli(['group', 'pause', 'g0'])).code).toBe(0);
    expect(alpha.groups.calls.map((c) => c.op)).toContain('pause');
    expect(bravo.groups.calls.map((c) => c.op)).not.toContain('pause');
    const p = await cli(['group', 'promote', 'g0']);
    expect(p.code, p.err).toBe(0);
    expect(p.out).toMatch(/^promoted group g0 on bravo/);
    expect(bravo.groups.calls.map((c) => c.op)).toContain('promote');
    expect(alpha.groups.calls.map((c) => c.op)).not.toContain('promote');
    alpha.groups.calls = [];
    expect((await cli(['group', 'promote', 'g0', '--array', 'alpha'])).code).toBe(0);
    expect(alpha.groups.calls.map((c) => c.op)).toEqual(['promote']);
    const c = await cli(['group', 'create', 'g5', '--members', 'm2,m1']);
    expect(c.code, c.err).toBe(0);
    expect(c.out).toMatch(/^created group g5 \(id g5-0a1b2c3d\) on alpha: m2, m1, asynchronous/);
    expect(alpha.groups.calls.at(-1)).toEqual({ op: 'create', args: [{ name: 'g5', members: ['m2', 'm1'] }] });
    expect(bravo.groups.calls.map((c) => c.op)).not.toContain('create');
    alpha.groups.views.delete('g5');
    const nm = await cli(['group', 'create', 'g6', '--members', 'zz']);
    expect(nm.code).toBe(1);
    expect(nm.err).toMatch(/no mirror "zz" on the arrays of lab glab \(bravo, alpha, plain\)/);
  });

  it('status shows each group once, from its primary, with the receivers of the secondaries', async () => {
    const r = await cli(['group', 'status']);
    expect(r.code, r.err).toBe(0);
    expect(r.out.match(/^group g0 /gm)).toHaveLength(1);
    expect(r.out).toMatch(/^group g0 {2}asynchronous {2}id g0-0a1b2c3d {2}alpha: primary$/m);
    expect(r.out).toMatch(/RECEIVER ON +NEXT EXPECTED +APPLIED +BATCHES\n +bravo +98 +97 +9/);
    const j = await cli(['group', 'status', 'g0', '--json']);
    expect(j.json).toMatchObject({ array: 'alpha', role: 'primary', receivers: [{ array: 'bravo', nextExpected: 98, applied: 97, batches: 9 }] });
    const l = await cli(['group', 'list', '--json']);
    expect(l.json.groups).toHaveLength(1);
    expect(l.json.groups[0]).toMatchObject({ array: 'alpha', record: { name: 'g0' } });
    const t = await cli(['group', 'list']);
    expect(t.out).toMatch(/^g0 +asynchronous +replicating +alpha +m1,m2 +bravo/m);
  });

  it('a group no array has: exit 1 naming the arrays', async () => {
    const r = await cli(['group', 'refresh', 'zz']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no group "zz" on the arrays of lab glab \(bravo, alpha, plain\)/);
    const s = await cli(['group', 'status', 'zz']);
    expect(s.code).toBe(1);
    expect(s.err).toMatch(/no group "zz" on the arrays of lab glab/);
  });

  it('promote with no secondary side, info with no primary side', async () => {
    const v = bravo.groups.views.get('g0')!;
    bravo.groups.views.delete('g0');
    try {
      const r = await cli(['group', 'promote', 'g0']);
      expect(r.code).toBe(1);
      expect(r.json).toBeUndefined();
      expect(r.err).toMatch(/group "g0": no array of lab glab holds a secondary side \(alpha: primary\)/);
    } finally {
      bravo.groups.views.set('g0', v);
    }
    const a = alpha.groups.views.get('g0')!;
    alpha.groups.views.delete('g0');
    try {
      const r = await cli(['group', 'info', 'g0']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/group "g0": no array of lab glab holds its primary side \(bravo: secondary\)/);
    } finally {
      alpha.groups.views.set('g0', a);
    }
  });
});

describe('sanbox group promote: how old the copy is', () => {
  const at = '2026-03-01T09:17:16.100Z';
  const promotion: PromotionReport = { at, forced: true, appliedThrough: 12345, lastAppliedAt: '2026-03-01T09:17:13.000Z', lastContactAt: '2026-03-01T09:17:14.000Z', secondsSinceLastApply: 3.1, consistent: true, inconsistentMembers: [] };
  const withPromotion = (p: Partial<PromotionReport>, mode?: 'synchronous') => {
    const v = secondaryView('g0');
    if (mode) v.record.mode = mode;
    return { ...v, promotion: { ...promotion, ...p } };
  };

  it('names the last record applied and how long before the promote; --json carries it', async () => {
    const saved = bravo.groups.views.get('g0')!;
    bravo.groups.views.set('g0', withPromotion({}));
    try {
      const r = await cli(['group', 'promote', 'g0', '--force', '--api', bravo.url]);
      expect(r.code, r.err).toBe(0);
      expect(r.out).toMatch(/^promoted group g0: every member is primary here \(forced\); .*\nthe copy holds the primary's writes through record 12345, last applied 3\.1 s before the promote \(at \d\d:\d\d:\d\d\.0\): host writes the old primary acknowledged after that are not in it\nthe old primary's sender last reached this array 2\.1 s before the promote/);
      const j = await cli(['group', 'promote', 'g0', '--force', '--api', bravo.url, '--json']);
      expect(j.json.promotion).toEqual(promotion);
    } finally {
      bravo.groups.views.set('g0', saved);
    }
  });

  it('says so when nothing was applied, the age is unknown, no receiver was open, or the group was synchronous', () => {
    const unknown = { lastAppliedAt: null, secondsSinceLastApply: null, lastContactAt: null };
    expect(promotionText(withPromotion({ ...unknown, appliedThrough: 0 }))).toEqual([
      'no journal record was ever applied here: the copy holds what the initial synchronization or the last resync left; its age is unknown',
    ]);
    expect(promotionText(withPromotion({ ...unknown, appliedThrough: 40 }))[0]).toMatch(/through record 40; none was applied since this array started, so its age is unknown: host writes/);
    expect(promotionText(withPromotion({ ...unknown, appliedThrough: null }))[0]).toMatch(/no receiver was open here/);
    expect(promotionText(withPromotion({}, 'synchronous'))[0]).toMatch(/^the group was synchronous/);
    expect(promotionText(secondaryView('g0'))).toEqual([]);
    // a member being resynchronized at the promote: no point in time, and it says so first
    const mixed = promotionText(withPromotion({ consistent: false, inconsistentMembers: [{ name: 'm1', state: 'SYNCHRONIZING' }] }));
    expect(mixed).toEqual([expect.stringMatching(/^NOT a consistent copy: m1 SYNCHRONIZING/)]);
  });
});
