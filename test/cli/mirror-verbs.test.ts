// `sanbox mirror ...` and the mirrors section of `sanbox status`, in process, against real
// ControlServers with recording fake drivers: argument errors (exit 2, nothing sent), each verb's
// request, finding the right array of a lab, output and exit codes.
import { describe, it, expect, beforeAll, afterAll, beforeEach } from 'vitest';
import { createServer, type Server } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { captureCli, type CliCapture } from '../support/cli.js';
import { writeState, removeState } from '../../src/cli/lab.js';
import { resyncText, ibytes } from '../../src/cli/mirror-verbs.js';
import { FakeMirrors, image, view } from '../support/fake-mirrors.js';
import type { ImageView, MirrorView } from '../../src/replication/mirror/types.js';

let tmp: string;
const arrays: StorageArray[] = [];
const servers: ControlServer[] = [];
let alpha: { fake: FakeMirrors; url: string };
let bravo: { fake: FakeMirrors; url: string };
let plainUrl: string; // an array without a mirror driver
let counter: Server;
let counterUrl: string;
let requests = 0;

async function arrayWith(name: string, fake: FakeMirrors | undefined): Promise<string> {
  const a = await StorageArray.open({ name, dir: join(tmp, name), noSync: true });
  arrays.push(a);
  await a.createLun({ name: 'disk0', size: 1 << 20 });
  const srv = new ControlServer({ array: a, ...(fake ? { mirrors: fake } : {}) });
  servers.push(srv);
  return (await srv.listen()).url;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-mcli-'));
  const fa = new FakeMirrors();
  const fb = new FakeMirrors();
  // bravo sees m0 as its secondary image
  fb.views.set('m0', view('m0', { local: { imageId: 'bravo:0', role: 'secondary', lun: 0, lunName: 'disk0' } }));
  alpha = { fake: fa, url: await arrayWith('alpha', fa) };
  bravo = { fake: fb, url: await arrayWith('bravo', fb) };
  plainUrl = await arrayWith('plain', undefined);
  counter = createServer((req, res) => {
    requests++;
    res.writeHead(500).end();
  });
  await new Promise<void>((r) => counter.listen(0, '127.0.0.1', () => r()));
  counterUrl = `http://127.0.0.1:${(counter.address() as AddressInfo).port}`;
});

afterAll(async () => {
  process.env.SANBOX_IMAGES = tmp;
  await removeState('mlab').catch(() => undefined);
  delete process.env.SANBOX_IMAGES;
  for (const s of servers) await s.close();
  for (const a of arrays) await a.close();
  await new Promise<void>((r) => counter.close(() => r()));
  await rm(tmp, { recursive: true, force: true });
});

beforeEach(() => {
  alpha.fake.calls = [];
  bravo.fake.calls = [];
  requests = 0;
});

function cli(args: string[]): Promise<CliCapture> {
  return captureCli(args, { SANBOX_IMAGES: tmp, SANBOX_LAB: undefined, SANBOX_API: undefined });
}

describe('sanbox mirror: argument errors send nothing (exit 2)', () => {
  const cases: [string[], RegExp][] = [
    [['mirror', 'create', 'disk0', '--region-size', '3K'], /--region-size must be a power of two from 4K to 64M/],
    [['mirror', 'create', 'disk0', '--region-size', '128M'], /--region-size must be a power of two/],
    [['mirror', 'create', 'disk0', '--sync-rate', 'fast'], /--sync-rate must be a positive rate/],
    [['mirror', 'create', 'disk0', '--sync-rate', '0'], /--sync-rate must be a positive rate/],
    [['mirror', 'create', 'disk0', '--write-policy', 'asynchronous'], /--write-policy asynchronous: a mirror is synchronous; asynchronous replication is a mode of a consistency group \(sanbox group create NAME --members MIRROR --mode asynchronous\)/],
    [['mirror', 'create', 'disk0', '--write-policy', 'lazy'], /--write-policy must be synchronous/],
    [['mirror', 'create', 'disk0', '--activation', 'sometimes'], /--activation must be automatic or manual/],
    [['mirror', 'create', 'disk0', '--min-images', '-2'], /--min-images must be an integer >= -1/],
    [['mirror', 'create', 'disk0', '--max-missing', 'x'], /--max-missing must be an integer >= -1/],
    [['mirror', 'create', 'disk0', '--sync-priority', 'urgent'], /--sync-priority must be low, medium or high/],
    [['mirror', 'create', 'a:b:c'], /LUN must be ARRAY:LUN/],
    [['mirror', 'create', '..:disk0'], /LUN must be ARRAY:LUN/],
    [['mirror', 'create', 'alpha:disk0', '--array', 'bravo'], /LUN alpha:disk0 is on array alpha, but --array says bravo/],
    [['mirror', 'add-secondary', 'm0'], /add-secondary needs --to ARRAY:LUN/],
    [['mirror', 'add-secondary', 'm0', '--to', 'bravo'], /--to must be ARRAY:LUN/],
    [['mirror', 'add-secondary', 'm0', '--to', 'bravo:..'], /--to must be ARRAY:LUN/],
    [['mirror', 'add-secondary', 'm0', '--to', '.:disk0'], /--to must be ARRAY:LUN/],
    [['mirror', 'add-secondary', 'm0', '--to', 'bravo:disk0', '--recovery', 'later'], /--recovery must be auto or manual/],
    [['mirror', 'add-secondary', 'm0', '--to', 'bravo:disk0', '--sync-rate', '-1'], /--sync-rate must be a positive rate/],
    [['mirror', 'set', 'm0'], /nothing to set/],
    [['mirror', 'set', 'm0', '--recovery', 'auto'], /give --image/],
    [['mirror', 'set', 'm0', '--image', 'bravo'], /--image needs --recovery/],
    [['mirror', 'set', 'm0', '--secondary-reads', 'maybe'], /--secondary-reads must be on or off/],
    [['mirror', 'set', 'm0', '--image', 'bravo', '--image-sync-rate', 'x'], /--image-sync-rate must be a positive rate/],
    [['mirror', 'status', '--count', '3'], /--count goes with --watch/],
    [['mirror', 'status', '--watch', '--count', '0'], /--count must be a positive integer/],
    [['mirror', 'resolve', 'm0'], /resolve needs --survivor ARRAY/],
    [['mirror', 'resolve', 'm0', '--survivor', 'a b'], /--survivor must be an array name/],
    [['mirror', 'resolve', 'm0', '--survivor', '..'], /--survivor must be an array name/],
  ];
  for (const [args, msg] of cases) {
    it(args.slice(1).join(' '), async () => {
      const r = await cli([...args, '--api', counterUrl]);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      const j = await cli([...args, '--api', counterUrl, '--json']);
      expect(j.code).toBe(2);
      expect(j.json.error).toMatchObject({ code: 'usage', exitCode: 2 });
      expect(requests).toBe(0);
    });
  }

  it('unknown verbs and options, missing arguments', async () => {
    for (const args of [['mirror', 'explode'], ['mirror', 'promote'], ['mirror', 'status', '--colour'], ['mirror', 'verify'], ['mirror', 'remove-secondary', 'm0']]) {
      const r = await cli([...args, '--api', counterUrl]);
      expect(r.code, args.join(' ')).toBe(2);
    }
    expect(requests).toBe(0);
    expect((await cli(['mirror', '--help'])).code).toBe(0);
  });
});

describe('sanbox mirror with --api', () => {
  it('create sends the parsed values; "-1" and ARRAY:LUN forms', async () => {
    const r = await cli([
      'mirror', 'create', 'disk0', '--api', alpha.url, '--name', 'm9', '--region-size', '128K', '--sync-rate', '32M/s', '--write-policy', 'synchronous',
      '--activation', 'manual', '--min-images', '-1', '--max-missing=0', '--secondary-reads', '--sync-priority', 'high',
    ]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/created mirror m9/);
    expect(alpha.fake.calls).toEqual([
      {
        op: 'create',
        args: [{ lun: 'disk0', name: 'm9', regionSize: 131072, attributes: { syncRate: 32 << 20, writePolicy: 'synchronous', activationPolicy: 'manual', minImagesRequired: -1, maxMissingImages: 0, allowSecondaryReads: true, syncPriority: 'high' } }],
      },
    ]);
    alpha.fake.calls = [];
    const j = await cli(['mirror', 'create', '0', '--api', alpha.url, '--json']);
    expect(j.code).toBe(0);
    expect(j.json.record.name).toBe('0');
    expect(alpha.fake.calls[0]!.args[0]).toEqual({ lun: 0 });
    alpha.fake.views.delete('m9');
    alpha.fake.views.delete('0');
  });

  it('create names the images as every later view does (ARRAY:NAME, not ARRAY:ID)', async () => {
    const r = await cli(['mirror', 'create', 'disk0', '--api', alpha.url, '--name', 'mnames']);
    expect(r.code, r.err).toBe(0);
    const s = await cli(['mirror', 'status', 'mnames', '--api', alpha.url]);
    expect(s.code, s.err).toBe(0);
    alpha.fake.views.delete('mnames');
    // the image table: the local (primary) image by its LUN's name, the same row as status shows
    const primaryRow = (out: string) => out.split('\n').find((l) => / primary /.test(l) && !/local image/.test(l));
    expect(primaryRow(r.out)).toMatch(/^ {2}alpha:disk0 +primary/);
    expect(r.out).not.toMatch(/alpha:0\b/);
    expect(primaryRow(r.out)).toBe(primaryRow(s.out));
  });

  it('each verb calls its operation', async () => {
    const run = async (args: string[]) => {
      const r = await cli([...args, '--api', alpha.url]);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
      return r;
    };
    await run(['mirror', 'add-secondary', 'm0', '--to', 'bravo:disk0', '--synchronized', '--recovery', 'manual', '--sync-rate', '16M']);
    await run(['mirror', 'add-secondary', 'm0', '--to', 'bravo:3']);
    await run(['mirror', 'remove-secondary', 'm0', 'bravo:0', '--force']);
    await run(['mirror', 'promote', 'm0']);
    await run(['mirror', 'sync', 'm0']);
    await run(['mirror', 'sync', 'm0', 'bravo', '--force']);
    await run(['mirror', 'fracture', 'm0', 'bravo:0']);
    await run(['mirror', 'activate', 'm0']);
    await run(['mirror', 'deactivate', 'm0', '--force']);
    await run(['mirror', 'set', 'm0', '--sync-rate', '8M', '--secondary-reads', 'on', '--min-images', '-1']);
    await run(['mirror', 'set', 'm0', '--image', 'bravo', '--recovery', 'auto', '--image-sync-rate', 'default']);
    await run(['mirror', 'resolve', 'm0', '--survivor', 'alpha']);
    expect(alpha.fake.calls).toEqual([
      { op: 'addSecondary', args: ['m0', { array: 'bravo', lun: 'disk0', synchronized: true, recoveryPolicy: 'manual', syncRate: 16 << 20 }] },
      { op: 'addSecondary', args: ['m0', { array: 'bravo', lun: 3 }] },
      { op: 'removeSecondary', args: ['m0', 'bravo:0', { force: true }] },
      { op: 'promote', args: ['m0', undefined] },
      { op: 'synchronize', args: ['m0', undefined, undefined] },
      { op: 'synchronize', args: ['m0', 'bravo', { force: true }] },
      { op: 'fracture', args: ['m0', 'bravo:0'] },
      { op: 'activate', args: ['m0'] },
      { op: 'deactivate', args: ['m0', { force: true }] },
      { op: 'setAttributes', args: ['m0', { syncRate: 8 << 20, allowSecondaryReads: true, minImagesRequired: -1 }] },
      { op: 'setAttributes', args: ['m0', { image: 'bravo', recoveryPolicy: 'auto', imageSyncRate: null }] },
      { op: 'resolveSplitBrain', args: ['m0', { survivor: 'alpha' }] },
    ]);
  });

  it('sync --wait follows the resync until the secondary is in sync (plain lines off a terminal); --json prints only JSON', async () => {
    const step = (bytesDone: number | null, over: Partial<ImageView> = {}): MirrorView => {
      const v = view('m0');
      const s = v.images[1]!;
      s.resync = bytesDone === null ? null : { ...s.resync!, bytesDone };
      Object.assign(s, over);
      return v;
    };
    const get = alpha.fake.get.bind(alpha.fake);
    const follow = (steps: MirrorView[]) => {
      alpha.fake.get = (ref: string) => {
        get(ref);
        return steps.length > 1 ? steps.shift()! : steps[0]!;
      };
    };
    try {
      follow([step(40 << 20), step(null, { state: 'CONSISTENT', syncProgress: null })]);
      const r = await cli(['mirror', 'sync', 'm0', '--wait', '--api', alpha.url]);
      expect(r.code, r.err).toBe(0);
      const lines = r.err.trimEnd().split('\n');
      expect(lines[0]).toBe('synchronizing mirror m0: 12.5 MiB of 64 MiB (19%) after 0s, ?/s, ETA ?; waiting for bravo:0 SYNCHRONIZING');
      expect(lines.at(-1)).toMatch(/^synchronizing mirror m0: done, 64 MiB of 64 MiB \(100%\) in [\d.]+s, [\d.]+ MiB\/s on average$/);
      expect(r.out).toMatch(/^mirror m0: every secondary in sync after [\d.]+ s \(the resyncs seen covered 64 MiB\)\nmirror m0 {2}ACTIVE/);
      expect(alpha.fake.calls.map((c) => c.op)).toEqual(['synchronize', 'get', 'get']);

      follow([step(40 << 20), step(null, { state: 'CONSISTENT', syncProgress: null })]);
      const j = await cli(['mirror', 'sync', 'm0', 'bravo', '--wait', '--json', '--api', alpha.url]);
      expect(j.code, j.err).toBe(0);
      expect(j.err).toBe('');
      expect(j.json.images[1].state).toBe('CONSISTENT');

      // a fractured image with manual recovery: nothing will resume it, exit 1 with why
      follow([step(null, { fractured: true, fractureReason: 'link', recoveryPolicy: 'manual' })]);
      const w = await cli(['mirror', 'wait', 'm0', '--api', alpha.url, '-q']);
      expect(w.code).toBe(1);
      expect(w.err).toMatch(/mirror m0: the synchronization stopped after [\d.]+ s: bravo:0: fractured \(link\), recovery manual: sanbox mirror sync starts it/);
      expect(w.err).not.toMatch(/synchronizing mirror m0/); // -q
      const nf = await cli(['mirror', 'wait', 'm0', 'charlie', '--api', alpha.url, '--json']);
      expect(nf.json.error).toMatchObject({ code: 'not-found', exitCode: 1 });
    } finally {
      alpha.fake.get = get;
    }
  });

  it('status: the table with resync progress; --json; --watch --count', async () => {
    const r = await cli(['mirror', 'status', 'm0', '--api', alpha.url]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^mirror m0 {2}ACTIVE {2}epoch 1 {2}synchronous {2}region 64K/m);
    expect(r.out).toMatch(/local image alpha:disk0 \(primary\)/);
    expect(r.out).toMatch(/bravo:0 +secondary +SYNCHRONIZING +REACHABLE +connected +no +192K +12\.5 MiB of 64 MiB, 30 MiB\/s, ETA 2 s \(partial: fracture log\)/);
    const j = await cli(['mirror', 'status', '--api', alpha.url, '--json']);
    expect(j.json.mirrors.map((m: any) => m.record.name)).toEqual(['m0']);
    const w = await cli(['mirror', 'status', 'm0', '--api', alpha.url, '--watch', '--count', '2', '--interval', '0.1', '--json']);
    expect(w.code).toBe(0);
    const lines = w.out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(2);
    expect(lines[0].mirror.record.name).toBe('m0');
  });

  it('status shows fractures, paused syncs and split brain', async () => {
    const v = view('sb', { splitBrain: true });
    v.images[1] = {
      ...image('bravo', 0, { state: 'UNSYNCHRONIZED', fractured: true, fractureReason: 'link', reachability: 'UNREACHABLE', syncProgress: { bytesDone: 1 << 20, bytesTotal: 64 << 20 } }),
      link: 'down',
      linkError: 'ECONNREFUSED',
      fractureLog: { regions: 16, bytes: 1 << 20 },
      resync: null,
      splitBrain: { local: { regions: 2, bytes: 131072, ranges: [[0, 2]] }, remote: { regions: 1, bytes: 65536, ranges: [[5, 1]] } },
    };
    alpha.fake.views.set('sb', v);
    try {
      const r = await cli(['mirror', 'status', 'sb', '--api', alpha.url]);
      expect(r.out).toMatch(/bravo:0 +secondary +UNSYNCHRONIZED +UNREACHABLE +down \(\*\) +yes \(link\) +1M +paused at 1 MiB of 64 MiB/);
      expect(r.out).toMatch(/\(\*\) bravo:0: ECONNREFUSED/);
      expect(r.out).toMatch(/SPLIT BRAIN with bravo:0: here 2 regions \(128K\) changed, there 1 \(64K\); keep one side: sanbox mirror resolve sb --survivor ARRAY/);
    } finally {
      alpha.fake.views.delete('sb');
    }
  });

  it('verify: exit 0 when identical, 1 listing the mismatched regions', async () => {
    const ok = await cli(['mirror', 'verify', 'm0', '--api', alpha.url]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/mirror m0: bravo:0 is identical to the primary/);
    expect(ok.out).toMatch(/1024 regions \(64 MiB\) compared/);
    alpha.fake.verifyResult = { ...alpha.fake.verifyResult, identical: false, mismatched: [{ region: 7, offset: 458752, length: 65536 }, { region: 9, offset: 589824, length: 65536 }] };
    try {
      const bad = await cli(['mirror', 'verify', 'm0', 'bravo', '--api', alpha.url]);
      expect(bad.code).toBe(1);
      expect(bad.out).toMatch(/DIFFERS from the primary in 2 regions/);
      expect(bad.out).toMatch(/7 +458752 +64K/);
      const j = await cli(['mirror', 'verify', 'm0', '--api', alpha.url, '--json']);
      expect(j.code).toBe(1);
      expect(j.json.mismatched).toHaveLength(2);
      expect(alpha.fake.calls.filter((c) => c.op === 'verify').map((c) => c.args)).toEqual([['m0', undefined], ['m0', 'bravo'], ['m0', undefined]]);
    } finally {
      alpha.fake.verifyResult = { ...alpha.fake.verifyResult, identical: true, mismatched: [] };
    }
  });

  it('errors from the array: exit 1 with its code; no driver; unreachable exit 3', async () => {
    const nf = await cli(['mirror', 'status', 'nope', '--api', alpha.url, '--json']);
    expect(nf.code).toBe(1);
    expect(nf.json.error).toMatchObject({ code: 'not-found', exitCode: 1 });
    const nd = await cli(['mirror', 'status', '--api', plainUrl]);
    expect(nd.code).toBe(1);
    expect(nd.err).toMatch(/this array runs no mirror driver \(no remoteLink configured\)/);
    const un = await cli(['mirror', 'status', '--api', 'http://127.0.0.1:1']);
    expect(un.code).toBe(3);
    alpha.fake.fail = new (await import('../../src/replication/mirror/types.js')).MirrorError('state', 'mirror m0 is ACTIVE: deactivate it first');
    const st = await cli(['mirror', 'destroy', 'm0', '--api', alpha.url]);
    expect(st.code).toBe(1);
    expect(st.err).toMatch(/deactivate it first/);
  });

  it('sanbox status has a mirrors section when the array has mirrors', async () => {
    const r = await cli(['status', '--api', alpha.url]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/mirrors:\n {2}m0 {2}ACTIVE {2}epoch 1 {2}here: primary {2}alpha:disk0 -> bravo:0 SYNCHRONIZING 19%/);
    const plain = await cli(['status', '--api', plainUrl]);
    expect(plain.code).toBe(0);
    expect(plain.out).not.toMatch(/mirrors:/);
    const j = await cli(['status', '--api', alpha.url, '--json']);
    expect(j.json.mirrors).toBeUndefined();
  });

  it('formats progress', () => {
    expect(ibytes(0)).toBe('0 B');
    expect(ibytes(1536)).toBe('1.5 KiB');
    expect(ibytes(2 ** 30)).toBe('1 GiB');
    expect(resyncText({ full: true, reason: 'new secondary', bytesDone: 0, bytesTotal: 2 ** 30, rate: 0, eta: null, startedAt: '' })).toBe('0 B of 1 GiB (full: new secondary)');
    expect(resyncText({ full: false, reason: 'fracture log', bytesDone: 12.5 * 2 ** 20, bytesTotal: 64 << 20, rate: 30 << 20, eta: 125, startedAt: '' })).toBe(
      '12.5 MiB of 64 MiB, 30 MiB/s, ETA 2 min 5 s (partial: fracture log)',
    );
  });
});

describe('sanbox mirror in a lab: the right array', () => {
  beforeAll(async () => {
    const saved = process.env.SANBOX_IMAGES;
    process.env.SANBOX_IMAGES = tmp;
    await writeState({
      lab: 'mlab',
      file: '/x/mlab.yaml',
      supervisorPid: process.pid,
      startedAt: new Date().toISOString(),
      state: 'running',
      arrays: [
        { name: 'bravo', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: bravo.url } },
        { name: 'alpha', pid: process.pid, dir: '', nbd: { host: '127.0.0.1', port: 1 }, api: { url: alpha.url } },
      ],
    });
    if (saved === undefined) delete process.env.SANBOX_IMAGES;
    else process.env.SANBOX_IMAGES = saved;
  });

  it("primary-side verbs go to the primary's array, promote to the secondary's", async () => {
    expect((await cli(['mirror', 'fracture', 'm0'])).code).toBe(0);
    expect(alpha.fake.calls.map((c) => c.op)).toContain('fracture');
    expect(bravo.fake.calls.map((c) => c.op)).not.toContain('fracture');
    const p = await cli(['mirror', 'promote', 'm0']);
    expect(p.code, p.err).toBe(0);
    expect(bravo.fake.calls.map((c) => c.op)).toContain('promote');
    expect(alpha.fake.calls.map((c) => c.op)).not.toContain('promote');
    // --array overrides
    alpha.fake.calls = [];
    expect((await cli(['mirror', 'promote', 'm0', '--array', 'alpha'])).code).toBe(0);
    expect(alpha.fake.calls.map((c) => c.op)).toEqual(['promote']);
    // resolve goes to the survivor
    bravo.fake.calls = [];
    expect((await cli(['mirror', 'resolve', 'm0', '--survivor', 'bravo'])).code).toBe(0);
    expect(bravo.fake.calls.map((c) => c.op)).toEqual(['resolveSplitBrain']);
    // create ARRAY:LUN goes to that array
    const c = await cli(['mirror', 'create', 'bravo:disk0', '--name', 'mb']);
    expect(c.code, c.err).toBe(0);
    expect(bravo.fake.calls.at(-1)).toEqual({ op: 'create', args: [{ lun: 'disk0', name: 'mb' }] });
    bravo.fake.views.delete('mb');
  });

  it('status without a mirror shows each mirror once, from its primary, with LUN names', async () => {
    const r = await cli(['mirror', 'status']);
    expect(r.code, r.err).toBe(0);
    expect(r.out.match(/^mirror m0 /gm)).toHaveLength(1);
    expect(r.out).toMatch(/local image alpha:disk0 \(primary\)/);
    expect(r.out).toMatch(/bravo:disk0 +secondary +SYNCHRONIZING/);
    const j = await cli(['mirror', 'status', '--json']);
    expect(j.json.mirrors).toHaveLength(1);
    expect(j.json.mirrors[0].local.role).toBe('primary');
  });

  it('a mirror no array has: exit 1 naming the arrays', async () => {
    const r = await cli(['mirror', 'sync', 'zz']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no mirror "zz" on the arrays of lab mlab \(bravo, alpha\)/);
  });
});
