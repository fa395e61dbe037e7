// prmd, chkmon and `sanbox monitor wait` as the real executables (child processes of the build in
// dist/), each test against its own state directory, no arrays: every resource's instance is
// http://127.0.0.1:1, where nothing listens, so its polls fail and lastError is set. The socket,
// the start race and the remote listener: socket.test.ts.
//
// chkmon's return codes are the seed's Table 1.0 (OPERATION_CODES): below as data, one `it` per
// cell. SHOW 0 (in PAIR) and SHOW 1 (not in PAIR) need a real mirror: test/system/monitor-lab.test.ts
// covers them against a lab.
import { afterAll, beforeAll, describe, it, type ExpectStatic } from 'vitest';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireBuild } from '../../support/paths.js';
import { DEAD_INSTANCE, MonitorSandbox, alive, ask, daemonPid, servePids, specOfView, waitFor, type ToolRun } from '../../support/monitor-tools.js';
import { OPERATION_CODES, EXIT_WAIT_TIMEOUT } from '../../../src/cli/monitor/index.js';

let sb: MonitorSandbox;
beforeAll(async () => {
  requireBuild('cli/monitor/index.js');
  sb = await MonitorSandbox.create();
});
afterAll(async () => {
  await sb?.cleanup();
});

/**
 * Where a cell runs: an empty state dir (no daemon); the shared daemon (A/G and A/H), for the
 * cells that must change nothing (checked after each); a daemon of its own with these resources
 * (the cells that change something); or a daemon started by prmd.
 */
type Fixture = 'none' | 'shared' | 'prmd' | Array<{ group: string; resync?: 'yes' | 'no' }>;
interface Ctx {
  dir: string;
  pid?: number;
  expect: ExpectStatic;
}
interface Cell {
  op: keyof typeof OPERATION_CODES;
  code: number;
  how: string;
  fixture: Fixture;
  args: string[];
  /** what else must hold after the call (the interval changed, the daemon stopped, ...) */
  then?: (c: Ctx, r: ToolRun) => Promise<void>;
}

const one = async (dir: string, group = 'G') => (await ask(dir, { msgType: 'SHOW', appName: 'A', deviceGroup: group })).resource;
const groups = async (dir: string) => (await ask(dir, { msgType: 'SHOWALL' })).resources.map((r: any) => `${r.appName}/${r.deviceGroup}`);
const specs = async (dir: string) => (await ask(dir, { msgType: 'SHOWALL' })).resources.map(specOfView);
const GH = [{ group: 'G' }, { group: 'H' }];

const TABLE: Cell[] = [
  // SHOW (-n -g -show); 0 and 1 need a mirror: test/system/monitor-lab.test.ts
  { op: 'SHOW', code: 2, how: 'a resource not in the list', fixture: 'shared', args: ['-n', 'A', '-g', 'NOPE', '-show'] },
  { op: 'SHOW', code: 3, how: 'no daemon', fixture: 'none', args: ['-n', 'A', '-g', 'G', '-show'] },
  { op: 'SHOW', code: 10, how: 'two operations (-show -pid)', fixture: 'none', args: ['-n', 'A', '-g', 'B', '-show', '-pid'] },
  { op: 'SHOW', code: 10, how: '-n without -g', fixture: 'none', args: ['-n', 'A', '-show'] },
  { op: 'SHOW', code: 10, how: 'a name the daemon refuses (-g ..)', fixture: 'shared', args: ['-n', 'A', '-g', '..', '-show'] },
  {
    op: 'SHOW', code: 100, how: 'the instance is unreachable (added with prmd, polled)', fixture: 'prmd', args: ['-n', 'A', '-g', 'G', '-show'],
    then: async ({ expect }, r) => expect(r.err).toMatch(/^chkmon: the array reported an error: unreachable/),
  },
  // SHOWALL (-show)
  { op: 'SHOWALL', code: 0, how: 'lists the resources', fixture: 'shared', args: ['-show'], then: async ({ expect }, r) => expect(r.out).toMatch(/A\s+G\s+http:\/\/127\.0\.0\.1:1\s[\s\S]*\nA\s+H\s/) },
  { op: 'SHOWALL', code: 3, how: 'no daemon', fixture: 'none', args: ['-show'] },
  { op: 'SHOWALL', code: 10, how: '-force without -remove', fixture: 'none', args: ['-show', '-force'] },
  // REMOVE (-n -g -remove)
  { op: 'REMOVE', code: 0, how: 'removed with -force', fixture: GH, args: ['-n', 'A', '-g', 'G', '-remove', '-force'], then: async ({ dir, expect }) => expect(await groups(dir)).toEqual(['A/H']) },
  { op: 'REMOVE', code: 2, how: 'a resource not in the list', fixture: 'shared', args: ['-n', 'A', '-g', 'NOPE', '-remove', '-force'] },
  { op: 'REMOVE', code: 3, how: 'no daemon', fixture: 'none', args: ['-n', 'A', '-g', 'G', '-remove', '-force'] },
  { op: 'REMOVE', code: 10, how: 'no -force and no terminal to confirm on: still there', fixture: 'shared', args: ['-n', 'A', '-g', 'G', '-remove'], then: async ({ expect }, r) => expect(r.err).toMatch(/-force/) },
  // REMOVEALL (-remove)
  {
    op: 'REMOVEALL', code: 0, how: 'everything removed, the daemon stops', fixture: GH, args: ['-remove', '-force'],
    then: async ({ dir, pid, expect }) => {
      await waitFor(async () => (await sb.chkmon(dir, ['-pid'])).code === 3, 10_000, 'chkmon -pid to return 3');
      await waitFor(() => !alive(pid!), 10_000, `daemon ${pid} to exit`);
      expect(await servePids(dir)).toEqual([]);
    },
  },
  { op: 'REMOVEALL', code: 3, how: 'no daemon', fixture: 'none', args: ['-remove', '-force'] },
  { op: 'REMOVEALL', code: 10, how: 'no -force and no terminal: nothing removed, the daemon runs', fixture: 'shared', args: ['-remove'] },
  // CHANGE (-n -g -t)
  {
    op: 'CHANGE', code: 0, how: 'interval changed, seen by -show --json', fixture: GH, args: ['-n', 'A', '-g', 'G', '-t', '77'],
    then: async ({ dir, expect }) => {
      const r = await sb.chkmon(dir, ['-n', 'A', '-g', 'G', '-show', '--json']);
      expect(r.json.resource.intervalSeconds).toBe(77);
      expect((await one(dir, 'H')).intervalSeconds).toBe(3600);
    },
  },
  { op: 'CHANGE', code: 2, how: 'a resource not in the list', fixture: 'shared', args: ['-n', 'A', '-g', 'NOPE', '-t', '60'] },
  { op: 'CHANGE', code: 3, how: 'no daemon', fixture: 'none', args: ['-n', 'A', '-g', 'G', '-t', '60'] },
  { op: 'CHANGE', code: 10, how: '-t 0: the daemon refuses, nothing changed', fixture: 'shared', args: ['-n', 'A', '-g', 'G', '-t', '0'] },
  { op: 'CHANGE', code: 10, how: '-t 999999: over the daemon\'s limit', fixture: 'shared', args: ['-n', 'A', '-g', 'G', '-t', '999999'] },
  { op: 'CHANGE', code: 10, how: '-t 999999999: refused by chkmon', fixture: 'shared', args: ['-n', 'A', '-g', 'G', '-t', '999999999'] },
  { op: 'CHANGE', code: 10, how: '-t abc', fixture: 'none', args: ['-n', 'A', '-g', 'G', '-t', 'abc'] },
  // CHANGEALL (-t)
  {
    op: 'CHANGEALL', code: 0, how: 'every interval changed', fixture: GH, args: ['-t', '45'],
    then: async ({ dir, expect }) => expect((await specs(dir)).map((s: any) => s.intervalSeconds)).toEqual([45, 45]),
  },
  { op: 'CHANGEALL', code: 3, how: 'no daemon', fixture: 'none', args: ['-t', '60'] },
  { op: 'CHANGEALL', code: 10, how: '-t 0: the daemon refuses, nothing changed', fixture: 'shared', args: ['-t', '0'] },
  { op: 'CHANGEALL', code: 10, how: '-t with -remove', fixture: 'none', args: ['-t', '30', '-remove'] },
  // START (-a yes) / STOP (-a no)
  { op: 'START', code: 0, how: 'autorecover turned on', fixture: [{ group: 'G', resync: 'no' }], args: ['-n', 'A', '-g', 'G', '-a', 'yes'], then: async ({ dir, expect }) => expect((await one(dir)).autorecover).toBe(true) },
  { op: 'START', code: 2, how: 'a resource not in the list', fixture: 'shared', args: ['-n', 'A', '-g', 'NOPE', '-a', 'yes'] },
  { op: 'START', code: 3, how: 'no daemon', fixture: 'none', args: ['-n', 'A', '-g', 'G', '-a', 'yes'] },
  { op: 'START', code: 10, how: '-a yes without -n/-g', fixture: 'shared', args: ['-a', 'yes'] },
  { op: 'STOP', code: 0, how: 'autorecover turned off', fixture: [{ group: 'G' }], args: ['-n', 'A', '-g', 'G', '-a', 'no'], then: async ({ dir, expect }) => expect((await one(dir)).autorecover).toBe(false) },
  { op: 'STOP', code: 2, how: 'a resource not in the list', fixture: 'shared', args: ['-n', 'A', '-g', 'NOPE', '-a', 'no'] },
  { op: 'STOP', code: 3, how: 'no daemon', fixture: 'none', args: ['-n', 'A', '-g', 'G', '-a', 'no'] },
  { op: 'STOP', code: 10, how: '-a maybe: nothing changed', fixture: 'shared', args: ['-n', 'A', '-g', 'G', '-a', 'maybe'] },
  // GETPID (-pid): not in Table 1.0; 0, 3 or 10
  {
    op: 'GETPID', code: 0, how: 'prints the pid of monitor.json', fixture: 'shared', args: ['-pid'],
    then: async ({ dir, pid, expect }, r) => {
      expect(r.out.trim()).toBe(String(pid));
      expect(await daemonPid(dir)).toBe(pid);
    },
  },
  { op: 'GETPID', code: 3, how: 'no daemon', fixture: 'none', args: ['-pid'] },
  { op: 'GETPID', code: 10, how: '-pid with -n/-g', fixture: 'none', args: ['-pid', '-n', 'A', '-g', 'G'] },
];

describe.concurrent('chkmon return codes (Table 1.0, OPERATION_CODES)', () => {
  // the cells that must change nothing share one daemon; each checks afterwards that nothing changed
  let shared: { dir: string; pid: number };
  let sharedSpecs: unknown;
  beforeAll(async () => {
    shared = await sb.daemonWith(GH);
    sharedSpecs = await specs(shared.dir);
  });
  afterAll(async () => {
    if (shared) await sb.stopDaemon(shared.dir);
  });

  it('the data below covers every cell of the table but SHOW 0 and 1 (test/system/monitor-lab.test.ts)', ({ expect }) => {
    const want = Object.entries(OPERATION_CODES).flatMap(([op, codes]) => codes.map((c) => `${op} ${c}`)).filter((c) => c !== 'SHOW 0' && c !== 'SHOW 1');
    const have = new Set(TABLE.map((c) => `${c.op} ${c.code}`));
    expect(want.filter((c) => !have.has(c))).toEqual([]);
    // and no cell the table forbids
    expect(TABLE.filter((c) => !(OPERATION_CODES[c.op] as readonly number[]).includes(c.code)).map((c) => `${c.op} ${c.code}`)).toEqual([]);
  });

  for (const cell of TABLE) {
    it(`${cell.op} ${cell.code}: ${cell.how} (chkmon ${cell.args.join(' ')})`, async ({ expect, onTestFinished }) => {
      let dir: string;
      let pid: number | undefined;
      if (cell.fixture === 'none') dir = await sb.stateDir();
      else if (cell.fixture === 'shared') ({ dir, pid } = shared);
      else if (cell.fixture === 'prmd') {
        dir = await sb.stateDir();
        onTestFinished(() => sb.stopDaemon(dir));
        const add = await sb.prmd(dir, ['-n', 'A', '-g', 'G', '-i', DEAD_INSTANCE, '-t', '3600', '-r', 'yes']);
        expect(add.code, add.err).toBe(0);
        // the first poll runs at once; wait until chkmon reports it
        const polled = await waitFor(async () => (await sb.chkmon(dir, ['-n', 'A', '-g', 'G', '-show', '--json'])).json?.resource?.lastPoll, 10_000, 'the first poll', 200);
        expect(Date.parse(polled)).toBeGreaterThan(0);
        pid = await daemonPid(dir);
      } else {
        ({ dir, pid } = await sb.daemonWith(cell.fixture));
        onTestFinished(() => sb.stopDaemon(dir));
      }
      const r = await sb.chkmon(dir, cell.args);
      expect(r.code, `${r.out}\n${r.err}`).toBe(cell.code);
      if (cell.code !== 0 && cell.code !== 100) expect(r.err).toMatch(/^chkmon: \S/);
      await cell.then?.({ dir, pid, expect }, r);
      if (cell.fixture === 'shared') {
        expect(await specs(dir), 'the shared database changed').toEqual(sharedSpecs);
        expect(alive(pid!)).toBe(true);
      }
    });
  }
});

describe.concurrent('prmd', () => {
  it('returns 0 for an add (seen by chkmon -show), 10 for every bad call, which adds nothing', async ({ expect }) => {
    const dir = await sb.stateDir();
    try {
      const added = await sb.prmd(dir, ['-n', 'A', '-g', 'G', '-i', DEAD_INSTANCE, '-t', '30', '-r', 'yes']);
      expect(added.code, added.err).toBe(0);
      const all = await sb.chkmon(dir, ['-show', '--json']);
      expect(all.code).toBe(0);
      expect(all.json.resources.map(specOfView)).toEqual([{ appName: 'A', deviceGroup: 'G', instance: DEAD_INSTANCE, intervalSeconds: 30, autorecover: true, resyncAdminFractures: false }]);

      const malformed = join(sb.root, 'malformed.json');
      // one good resource and one with interval 0: the whole file is refused
      const good = { appName: 'A', deviceGroup: 'F1', instance: DEAD_INSTANCE, intervalSeconds: 30, autorecover: true };
      await writeFile(malformed, JSON.stringify({ format: 'sanbox.monitor.resources', version: 1, resources: [good, { ...good, deviceGroup: 'F2', intervalSeconds: 0 }] }));
      const notJson = join(sb.root, 'not-json.txt');
      await writeFile(notJson, 'A F3 http://127.0.0.1:1 30 yes\n');
      const add = (g: string) => ['-n', 'A', '-g', g, '-i', DEAD_INSTANCE, '-t', '30'];
      const bad: Array<[string, string[]]> = [
        ['missing -r', add('B1')],
        ['-r maybe', [...add('B2'), '-r', 'maybe']],
        ['-t x', ['-n', 'A', '-g', 'B3', '-i', DEAD_INSTANCE, '-t', 'x', '-r', 'yes']],
        ['two operations (-n .. -u f)', [...add('B4'), '-r', 'yes', '-u', malformed]],
        ['an unknown option', [...add('B5'), '-r', 'yes', '--bogus']],
        ['a bad name (-g ..)', [...add('..'), '-r', 'yes']],
        ['-u of a missing file', ['-u', join(sb.root, 'missing.json')]],
        ['-u of a malformed file', ['-u', malformed]],
        ['-u of a file that is not JSON', ['-u', notJson]],
      ];
      const runs = await Promise.all(bad.map(([, args]) => sb.prmd(dir, args)));
      runs.forEach((r, i) => {
        expect(r.code, `${bad[i]![0]}: ${r.err}`).toBe(10);
        expect(r.err, bad[i]![0]).toMatch(/^prmd: \S/);
      });
      expect(await groups(dir)).toEqual(['A/G']);
    } finally {
      await sb.stopDaemon(dir);
    }
  });

  it('prmd -d FILE, then prmd -u FILE into a fresh state dir, round-trips the resources', async ({ expect }) => {
    const [from, to] = [await sb.stateDir(), await sb.stateDir()];
    try {
      const adds = [
        ['-n', 'App1', '-g', 'app1_vg', '-i', DEAD_INSTANCE, '-t', '30', '-r', 'yes'],
        ['-n', 'App2', '-g', 'app2_vg', '-i', 'http://127.0.0.1:2', '-t', '45', '-r', 'no'],
        ['-n', 'App1', '-g', 'other.vg', '-i', 'alpha', '-t', '86400', '-r', 'no'],
      ];
      for (const a of adds) expect((await sb.prmd(from, a)).code).toBe(0);
      const file = join(sb.root, 'myconfig');
      const save = await sb.prmd(from, ['-d', file]);
      expect(save.code, save.err).toBe(0);
      expect(JSON.parse(await readFile(file, 'utf8'))).toMatchObject({ format: 'sanbox.monitor.resources', version: 1 });
      const load = await sb.prmd(to, ['-u', file]);
      expect(load.code, load.err).toBe(0);
      const [a, b] = await Promise.all([sb.chkmon(from, ['-show', '--json']), sb.chkmon(to, ['-show', '--json'])]);
      expect(b.json.resources.map(specOfView)).toEqual(a.json.resources.map(specOfView));
      expect(b.json.resources.map(specOfView)).toEqual([
        { appName: 'App1', deviceGroup: 'app1_vg', instance: DEAD_INSTANCE, intervalSeconds: 30, autorecover: true, resyncAdminFractures: false },
        { appName: 'App2', deviceGroup: 'app2_vg', instance: 'http://127.0.0.1:2', intervalSeconds: 45, autorecover: false, resyncAdminFractures: false },
        { appName: 'App1', deviceGroup: 'other.vg', instance: 'alpha', intervalSeconds: 86400, autorecover: false, resyncAdminFractures: false },
      ]);
      expect(await daemonPid(to)).not.toBe(await daemonPid(from));
    } finally {
      await Promise.all([sb.stopDaemon(from), sb.stopDaemon(to)]);
    }
  });
});

describe.concurrent('sanbox monitor wait', () => {
  it(`--for connected on a resource that never connects exits ${EXIT_WAIT_TIMEOUT} after --timeout; a list holding the current state exits 0`, async ({ expect }) => {
    const { dir } = await sb.daemonWith([{ group: 'G' }]);
    try {
      const wait = (args: string[]) => sb.run('sanbox', ['monitor', 'wait', 'A', 'G', '--state', dir, ...args]);
      const timedOut = await wait(['--for', 'connected', '--timeout', '1']);
      expect(timedOut.code, timedOut.err).toBe(EXIT_WAIT_TIMEOUT);
      expect(timedOut.out).toMatch(/timed out/);
      expect(timedOut.ms).toBeGreaterThanOrEqual(1000);
      expect(timedOut.ms).toBeLessThan(10_000); // "a few seconds": node's start and the 1 s wait, on a loaded machine
      const now = await wait(['--for', 'error-suspended,suspended,resync,connected,deleted,unknown', '--timeout', '30', '--json']);
      expect(now.code, now.err).toBe(0);
      expect(now.json.resource.pair).toBe('unknown');
      expect(now.ms).toBeLessThan(10_000); // answered at once, not after --timeout 30
      // a resource not in the list: refused at once (exit 1)
      const missing = await sb.run('sanbox', ['monitor', 'wait', 'A', 'NOPE', '--state', dir, '--timeout', '30']);
      expect(missing.code).toBe(1);
      expect(missing.ms).toBeLessThan(10_000);
    } finally {
      await sb.stopDaemon(dir);
    }
  });
});
