// The sanbox command: client verbs in process (against a real API server), and serve, up/down
// and doctor as real child processes of bin/sanbox.js (which runs the build in dist/: `npm test`
// builds it first; after editing src, run `npm run build` before `npx vitest run test/cli`).
import { describe, it, expect, beforeAll, afterAll, beforeEach, afterEach } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile, readFile, stat } from 'node:fs/promises';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { EXIT } from '../../src/cli/index.js';
import { captureCli, type CliCapture } from '../support/cli.js';
import { BIN, REPO as ROOT, requireBuild } from '../support/paths.js';
import { freePort } from '../support/net.js';

let tmp: string;
beforeAll(async () => {
  requireBuild('cli/index.js');
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-cli-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Runs main() in process, capturing stdout/stderr. */
function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliCapture> {
  return captureCli(args, { SANBOX_API: undefined, SANBOX_TOKEN: undefined, SANBOX_LAB: undefined, SANBOX_IMAGES: join(tmp, 'no-images'), ...env });
}

describe('client verbs (in process, real API)', () => {
  let dir: string;
  let array: StorageArray;
  let srv: ControlServer;
  let url: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmp, 'arr-'));
    array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
    srv = new ControlServer({ array, nbd: () => [{ host: '127.0.0.1', port: 10999 }], token: 'token-1234' });
    url = (await srv.listen()).url;
  });
  afterEach(async () => {
    await srv.close();
    await array.close();
  });

  it('lun create/list/grow/delete and status, human and --json', async () => {
    const api = ['--api', url, '--token', 'token-1234'];
    let r = await cli(['lun', 'create', 'disk0', '1M', ...api]);
    expect([r.code, r.out]).toEqual([0, 'created LUN 0 disk0: 1M, block 512, nbd://127.0.0.1:10999/disk0\n']);
    r = await cli(['lun', 'create', 'disk1', '64K', '--block-size', '4096', '--json', ...api]);
    expect(r.code).toBe(0);
    expect(r.json.lun).toMatchObject({ id: 1, name: 'disk1', size: 65536, blockSize: 4096, export: 'disk1' });
    r = await cli(['lun', 'grow', 'disk0', '+1M', ...api]);
    expect([r.code, r.out]).toEqual([0, 'grew LUN 0 disk0 to 2M (2097152 bytes)\n']);
    r = await cli(['lun', 'grow', '1', '128K', '--json', ...api]);
    expect(r.json.lun.size).toBe(131072);
    r = await cli(['lun', 'list', ...api]);
    expect(r.out).toMatch(/^ID\s+NAME\s+SIZE\s+BLOCK\s+STATE\s+SESSIONS\s+URI\s+IMAGE\n0\s+disk0\s+2M\s+512\s+online\s+0\s+nbd:\/\/127\.0\.0\.1:10999\/disk0\s+\S+lun0\.img\n1\s+disk1\s+128K\s+4096/);
    // Token from the environment, URL from the environment.
    r = await cli(['status', '--json'], { SANBOX_API: url, SANBOX_TOKEN: 'token-1234' });
    expect(r.code).toBe(0);
    expect(r.json).toMatchObject({ array: 'alpha', dir, readOnly: false, nbd: [{ host: '127.0.0.1', port: 10999 }] });
    expect(r.json.luns.map((l: any) => [l.name, l.export, l.uris, l.size, l.blockSize, l.image])).toEqual([
      ['disk0', 'disk0', ['nbd://127.0.0.1:10999/disk0'], 2 << 20, 512, join(dir, 'lun0.img')],
      ['disk1', 'disk1', ['nbd://127.0.0.1:10999/disk1'], 131072, 4096, join(dir, 'lun1.img')],
    ]);
    r = await cli(['status', ...api]);
    expect(r.out).toMatch(/array alpha: read-write/);
    r = await cli(['lun', 'delete', 'disk1', ...api]);
    expect([r.code, r.out]).toEqual([0, 'deleted LUN 1 disk1\n']);
    r = await cli(['lun', 'rm', '0', '--json', ...api]);
    expect(r.json.deleted.name).toBe('disk0');
    expect(array.listLuns()).toEqual([]);
  });

  it('exit codes: 1 refused by the array, 2 usage, 3 unreachable', async () => {
    const api = ['--api', url, '--token', 'token-1234'];
    await cli(['lun', 'create', 'disk0', '1M', ...api]);
    const gen = array.metadataGeneration;
    const cases: Array<[string[], number, RegExp]> = [
      [['lun', 'create', 'disk0', '1M', ...api], EXIT.ERROR, /already exists/],
      [['lun', 'create', 'bad/name', '1M', ...api], EXIT.USAGE, /invalid/], // wrong by itself (docs/cli.md EXIT STATUS)
      [['lun', 'create', 'x', '1000', ...api], EXIT.USAGE, /multiple of the block size/], // the array's 400
      [['lun', 'grow', 'disk0', '512K', ...api], EXIT.ERROR, /only grow/],
      [['lun', 'delete', 'nope', ...api], EXIT.ERROR, /no LUN/],
      [['status', '--api', url, '--token', 'wrong-token'], EXIT.ERROR, /wrong API token/],
      [['status', '--api', url], EXIT.ERROR, /Bearer/],
      [['lun', 'create', 'x', 'lots', ...api], EXIT.USAGE, /not a size/],
      [['lun', 'create', 'x', ...api], EXIT.USAGE, /missing required argument/],
      [['lun', 'frob', ...api], EXIT.USAGE, /unknown command/],
      [['status', '--bogus'], EXIT.USAGE, /unknown option/],
      [['nonsense'], EXIT.USAGE, /unknown command/],
      [['lun'], EXIT.USAGE, /Usage: sanbox lun/],
      [[], EXIT.USAGE, /Usage: sanbox/],
      [['status', '--api', 'http://127.0.0.1:1'], EXIT.UNREACHABLE, /cannot reach/],
      [['status', '--api', 'not a url'], EXIT.USAGE, /must be an API URL/],
      [['status'], EXIT.UNREACHABLE, /no array to talk to/],
      [['lun', 'list', '--lab', 'nolab'], EXIT.UNREACHABLE, /not running/],
    ];
    for (const [args, code, re] of cases) {
      const r = await cli(args);
      expect([args.join(' '), r.code]).toEqual([args.join(' '), code]);
      expect(r.err + r.out).toMatch(re);
    }
    // --json errors go to stdout as JSON with the same exit code.
    const r = await cli(['lun', 'delete', 'nope', '--json', ...api]);
    expect(r.code).toBe(EXIT.ERROR);
    expect(r.json.error).toMatchObject({ code: 'not-found', exitCode: 1 });
    const u = await cli(['status', '--json', '--api', 'http://127.0.0.1:1']);
    expect(u.json.error).toMatchObject({ code: 'unreachable', exitCode: 3 });
    expect(array.metadataGeneration).toBe(gen);
    expect(array.listLuns().map((l) => l.name)).toEqual(['disk0']);
  });

  it('help and version exit 0', async () => {
    expect((await cli(['--help'])).code).toBe(0);
    expect((await cli(['lun', 'create', '--help'])).code).toBe(0);
    const v = await cli(['--version']);
    expect([v.code, v.out.trim()]).toEqual([0, JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version]);
  });
});

// ---- child processes ----

interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}
const procs: Proc[] = [];
afterAll(() => {
  for (const p of procs) p.child.kill('SIGKILL');
});

function start(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env }, cwd: tmp });
  let out = '';
  let err = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on('exit', (code, signal) => r({ code, signal })));
  const p = { child, out: () => out, err: () => err, exit };
  procs.push(p);
  return p;
}

function runSync(args: string[], env: Record<string, string> = {}, timeout = 30_000) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, cwd: tmp, timeout });
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    /* not JSON */
  }
  return { code: r.status, out: r.stdout, err: r.stderr, json };
}

async function until<T>(fn: () => T | undefined | false, ms = 15_000, what = 'condition'): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Reads the NBD greeting: proves something speaks NBD on the port. */
function nbdGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 16) {
        s.destroy();
        resolve(buf.subarray(0, 8).toString('latin1'));
      }
    });
    s.on('error', reject);
    setTimeout(() => (s.destroy(), reject(new Error('no greeting'))), 5000);
  });
}

/** The process has exited (a zombie not yet reaped by its new parent counts as exited). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return true;
  }
}

function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { env: { ...process.env, PATH: `/usr/sbin:/usr/bin:${process.env.PATH}` } }).status === 0;
}

describe('sanbox serve (child process)', () => {
  it('serves LUNs over NBD with a management API, and shuts down cleanly on SIGTERM', async () => {
    const dir = join(tmp, 'serve1');
    const p = start(['serve', '--dir', dir, '--port', '0', '--lun', 'disk0=4M', '--lun', 'disk1=1M:4096', '--json']);
    const ready = await until(() => {
      try {
        return JSON.parse(p.out());
      } catch {
        return undefined;
      }
    }, 20_000, `serve ready (stderr: ${p.err()})`);
    expect(ready).toMatchObject({ name: 'serve1', dir, nbd: { host: '127.0.0.1' } });
    expect(ready.luns.map((l: any) => [l.name, l.size, l.blockSize])).toEqual([
      ['disk0', 4 << 20, 512],
      ['disk1', 1 << 20, 4096],
    ]);
    expect(ready.luns[0].uri).toBe(`nbd://127.0.0.1:${ready.nbd.port}/disk0`);
    expect(await nbdGreeting(ready.nbd.port)).toBe('NBDMAGIC');
    const st = runSync(['status', '--json', '--api', ready.api.url]);
    expect(st.code).toBe(0);
    expect(st.json.luns.map((l: any) => l.uris[0])).toEqual([
      `nbd://127.0.0.1:${ready.nbd.port}/disk0`,
      `nbd://127.0.0.1:${ready.nbd.port}/disk1`,
    ]);
    if (hasTool('qemu-io')) {
      const q = spawnSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 4096 8192', '-c', 'read -P 0x5a 4096 8192', ready.luns[0].uri], { encoding: 'utf8', timeout: 20_000 });
      expect(q.status, q.stderr + q.stdout).toBe(0);
      expect(q.stdout).not.toMatch(/Pattern verification failed/);
    }
    p.child.kill('SIGTERM');
    const ex = await p.exit;
    expect(ex).toEqual({ code: 0, signal: null });
    expect(p.err()).toMatch(/SIGTERM: shutting down array serve1/);
    expect(existsSync(join(dir, 'array.lock'))).toBe(false);
    if (hasTool('qemu-io')) {
      const img = await readFile(join(dir, 'lun0.img'));
      expect(img.subarray(4096, 4096 + 8192).every((b) => b === 0x5a)).toBe(true);
    }

    // Restart: existing LUNs are reused; a different size is a clear error, nothing changes.
    const bad = runSync(['serve', '--dir', dir, '--port', '0', '--lun', 'disk0=8M']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/LUN disk0 exists with size 4194304 \(4M\), not 8388608 \(8M\)/);
    expect((await stat(join(dir, 'lun0.img'))).size).toBe(4 << 20);
  });

  it('runs read-only: exports read-only and the API refuses changes', async () => {
    const dir = join(tmp, 'serve-ro');
    const p = start(['serve', '--dir', dir, '--port', '0', '--lun', 'd=1M', '--read-only', '--json', '-q']);
    const ready = await until(() => {
      try {
        return JSON.parse(p.out());
      } catch {
        return undefined;
      }
    }, 20_000, 'serve ready');
    const r = runSync(['lun', 'create', 'x', '1M', '--api', ready.api.url, '--json']);
    expect(r.code).toBe(1);
    expect(r.json.error.code).toBe('read-only');
    const st = runSync(['status', '--json', '--api', ready.api.url]);
    expect(st.json.readOnly).toBe(true);
    expect(st.json.luns[0].readOnly).toBe(true);
    p.child.kill('SIGINT');
    expect((await p.exit).code).toBe(0);
  });

  it('refuses bad invocations with exit 2 and a busy port with exit 1', async () => {
    const dir = join(tmp, 'serve-bad');
    const cases: Array<[string[], RegExp]> = [
      [['serve', '--port', '0', '--lun', 'd=1M'], /needs --dir/],
      [['serve', '--dir', dir, '--lun', 'd'], /expected NAME=SIZE/],
      [['serve', '--dir', dir, '--lun', 'd=1Q'], /not a size/],
      [['serve', '--dir', dir, '--lun', 'd=1000'], /multiple of the block size 512/],
      [['serve', '--dir', dir, '--lun', 'd=1M:1024'], /512 or 4096/],
      [['serve', '--dir', dir, '--lun', 'a b=1M'], /invalid/],
      [['serve', '--dir', dir, '--port', '0', '--no-api', '--name', '..'], /array name "\.\." is invalid: .* \(not \. or \.\.\)/],
      [['serve', '--dir', dir, '--port', '0', '--no-api', '--name', '.'], /array name "\." is invalid: .* \(not \. or \.\.\)/],
      [['serve', '--dir', dir, '--port', '0', '--no-api', '--lun', '..=1M'], /LUN name "\.\." is invalid: .* \(not \. or \.\.\)/],
      [['serve', '--dir', dir, '--lun', 'd=1M', '--lun', 'd=2M'], /given twice/],
      [['serve', '--dir', dir, '--port', '99999'], /port number/],
      [['serve', '--dir', dir, '--api-bind', '0.0.0.0'], /not loopback: give --api-token/],
    ];
    for (const [args, re] of cases) {
      const r = runSync(args, { SANBOX_TOKEN: '' });
      expect([args.join(' '), r.code]).toEqual([args.join(' '), 2]);
      expect(r.err).toMatch(re);
    }
    expect(existsSync(dir)).toBe(false); // nothing was created
    const blocker = createServer();
    const port = await new Promise<number>((r) => blocker.listen(0, '127.0.0.1', () => r((blocker.address() as AddressInfo).port)));
    try {
      const r = runSync(['serve', '--dir', dir, '--port', String(port), '--lun', 'd=1M']);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/EADDRINUSE|in use/);
      // The lock was released: the same directory serves fine afterwards.
      const again = runSync(['serve', '--dir', dir, '--port', '0', '--api-port', String(port)]);
      expect(again.code).toBe(1);
      expect(again.err).toMatch(/EADDRINUSE|in use/);
    } finally {
      blocker.close();
    }
    expect(existsSync(join(dir, 'array.lock'))).toBe(false);
  });

  it('array serve --config refuses an array named . or .. before making its directory', async () => {
    for (const name of ['.', '..']) {
      const dir = join(tmp, 'cfg-dots', name === '.' ? 'one' : 'two');
      const cfg = join(tmp, `cfg-dots-${name.length}.json`);
      await writeFile(cfg, JSON.stringify({ name, dir, nbd: { bind: '127.0.0.1', port: 0 }, api: false, luns: [] }));
      const r = runSync(['array', 'serve', '--config', cfg, '-q'], {}, 10_000);
      expect([name, r.code]).toEqual([name, 1]);
      expect(r.err).toContain(`array name ${JSON.stringify(name)} is invalid`);
      expect(existsSync(dir)).toBe(false);
    }
  });
});

describe('sanbox up / down (child processes)', () => {
  it('starts a lab detached, serves it, finds it for status and lun, stops it with down', async () => {
    const images = join(tmp, 'images-up');
    const env = { SANBOX_IMAGES: images };
    const [nbdPort, apiPort] = [await freePort(), await freePort()];
    const labFile = join(tmp, 'testlab.yaml');
    await writeFile(
      labFile,
      `lab: testlab\narrays:\n  - name: alpha\n    nbd: { port: ${nbdPort} }\n    api: { port: ${apiPort} }\n    luns:\n      - { name: disk0, size: 8M }\n      - { name: disk1, size: 1M, blockSize: 4096 }\n`,
    );
    const up = runSync(['up', labFile, '--detach', '--json'], env, 60_000);
    expect(up.code, up.err + up.out).toBe(0);
    expect(up.json).toMatchObject({ lab: 'testlab', state: 'running', arrays: [{ name: 'alpha', nbd: { host: '127.0.0.1', port: nbdPort }, api: { url: `http://127.0.0.1:${apiPort}` } }] });
    const statePath = join(images, '.labs', 'testlab.json');
    expect(((await stat(statePath)).mode & 0o777).toString(8)).toBe('600');
    expect(await nbdGreeting(nbdPort)).toBe('NBDMAGIC');

    // Running it twice is refused.
    const twice = runSync(['up', labFile], env);
    expect(twice.code).toBe(1);
    expect(twice.err).toMatch(/already running/);

    // status and lun find the array through the lab state file.
    const st = runSync(['status', '--json'], env);
    expect(st.code, st.err).toBe(0);
    expect(st.json).toMatchObject({ array: 'alpha', lab: 'testlab', dir: join(images, 'alpha') });
    expect(st.json.luns.map((l: any) => [l.name, l.size, l.blockSize, l.uris[0], l.image])).toEqual([
      ['disk0', 8 << 20, 512, `nbd://127.0.0.1:${nbdPort}/disk0`, join(images, 'alpha', 'lun0.img')],
      ['disk1', 1 << 20, 4096, `nbd://127.0.0.1:${nbdPort}/disk1`, join(images, 'alpha', 'lun1.img')],
    ]);
    expect(runSync(['lun', 'create', 'disk2', '2M', '--lab', 'testlab'], env).code).toBe(0);
    expect(runSync(['lun', 'list', '--json', '--array', 'alpha'], env).json.luns).toHaveLength(3);
    expect(runSync(['lun', 'list', '--array', 'bravo'], env).code).toBe(1); // a well-formed name the lab does not have (docs/cli.md)

    const pids = [up.json.supervisorPid, up.json.arrays[0].pid];
    const down = runSync(['down', 'testlab', '--json'], env);
    expect(down.code, down.err).toBe(0);
    expect(down.json).toMatchObject({ lab: 'testlab', wasRunning: true, stopped: true, killed: [] });
    for (const pid of pids) expect(gone(pid), `pid ${pid} still running`).toBe(true);
    expect(existsSync(statePath)).toBe(false);
    // down is idempotent; status now cannot reach anything.
    expect(runSync(['down', 'testlab'], env).code).toBe(0);
    expect(runSync(['status'], env).code).toBe(3);
    // The array's log went to the lab log, including the shutdown.
    const log = await readFile(join(images, '.labs', 'testlab.log'), 'utf8');
    expect(log).toMatch(/\[alpha\].*lun\.created.*disk2/);
    expect(log).toMatch(/SIGTERM: stopping lab testlab/);

    // Up again: the LUN created through the API is still there (metadata persisted).
    const up2 = runSync(['up', labFile, '--detach'], env, 60_000);
    expect(up2.code, up2.err).toBe(0);
    expect(up2.out).toMatch(/nbd-client 127\.0\.0\.1 \d+ \/dev\/nbd0 -N disk0/);
    expect(runSync(['lun', 'list', '--json'], env).json.luns.map((l: any) => l.name)).toEqual(['disk0', 'disk1', 'disk2']);
    expect(runSync(['down'], env).code).toBe(0);
  });

  it('runs in the foreground until SIGINT, and its arrays die with it on SIGKILL', async () => {
    const images = join(tmp, 'images-fg');
    const env = { SANBOX_IMAGES: images };
    const labFile = join(tmp, 'fg.yaml');
    await writeFile(labFile, `arrays:\n  - name: alpha\n    nbd: { port: 0 }\n    api: { port: 0 }\n    luns: [ { name: d, size: 1M } ]\n`);
    const p = start(['up', labFile], env);
    await until(() => p.out().includes('Ctrl-C stops the lab'), 30_000, `lab up (${p.err()})`);
    expect(p.out()).toMatch(/lab fg is up/);
    const state = JSON.parse(await readFile(join(images, '.labs', 'fg.json'), 'utf8'));
    const arrayPid = state.arrays[0].pid;
    p.child.kill('SIGINT');
    expect(await p.exit).toEqual({ code: 0, signal: null });
    expect(gone(arrayPid)).toBe(true);
    expect(existsSync(join(images, '.labs', 'fg.json'))).toBe(false);

    // A supervisor killed outright takes its arrays down too (they watch the IPC channel).
    const p2 = start(['up', labFile], env);
    await until(() => p2.out().includes('Ctrl-C stops the lab'), 30_000, 'lab up again');
    const pid2 = JSON.parse(await readFile(join(images, '.labs', 'fg.json'), 'utf8')).arrays[0].pid;
    p2.child.kill('SIGKILL');
    await p2.exit;
    await until(() => gone(pid2), 15_000, 'array to exit after its supervisor died');
    // The stale state file does not fool status or down.
    expect(runSync(['status'], env).code).toBe(3);
    expect(runSync(['down', 'fg', '--json'], env).json).toMatchObject({ wasRunning: false });
  });

  it('refuses an invalid lab file with exit 2 and starts nothing', async () => {
    const labFile = join(tmp, 'bad.yaml');
    await writeFile(labFile, 'arrays:\n  - name: alpha\n    luns: [ { name: d, size: 1Q } ]\n    extra: 1\n');
    const r = runSync(['up', labFile], { SANBOX_IMAGES: join(tmp, 'images-bad') });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/invalid lab file .*bad\.yaml/);
    expect(r.err).toMatch(/unknown key "extra"/);
    expect(r.err).toMatch(/size must be a size/);
    expect(existsSync(join(tmp, 'images-bad'))).toBe(false);
    expect(runSync(['up', join(tmp, 'missing.yaml')]).code).toBe(2);
  });
});

describe('sanbox doctor', () => {
  it('reports node, the native addon and the client tools', () => {
    const r = runSync(['doctor', '--json']);
    expect(r.code, r.err).toBe(0);
    expect(r.json.node).toMatchObject({ version: process.version, ok: true });
    expect(typeof r.json.native.loaded).toBe('boolean');
    expect(typeof r.json.native.crcImpl).toBe('string');
    expect(r.json.tools.map((t: any) => t.name)).toEqual([
      'qemu-io', 'qemu-img', 'nbdinfo', 'nbdcopy', 'nbdsh', 'nbdfuse', 'fio', 'nbd-client', 'nbdkit', 'mkfs.ext4',
    ]);
    for (const t of r.json.tools) {
      expect(t.installed).toBe(hasTool(t.name));
      if (t.ok) expect(t.version).toMatch(/^\d+\.\d+/);
    }
    const human = runSync(['doctor']);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/^node\s+v\d+/m);
    expect(human.out).toMatch(/^native\s+/m);
  });
});
