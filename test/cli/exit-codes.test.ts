// Every verb's refusal paths against the exit-code rule of docs/cli.md (EXIT STATUS): 2 when the
// command line is wrong by itself (nothing sent, nothing changed), 1 when whoever answered refused
// or failed, 3 when nobody answered. In process, against a real array's API (with a mirror
// driver that records calls), a lab state file, and ports where nothing listens.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { freePort } from '../support/net.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer } from '../../src/control/index.js';
import { MirrorError } from '../../src/replication/index.js';
import { writeState } from '../../src/cli/lab.js';
import { captureCli } from '../support/cli.js';
import { FakeMirrors } from '../support/fake-mirrors.js';

/** A mirror driver whose peer is cut off: the array answers 503 "unreachable" to a sync. */
class CutOffMirrors extends FakeMirrors {
  override async synchronize(ref: string): Promise<never> {
    this.calls.push({ op: 'synchronize', args: [ref] });
    throw new MirrorError('unreachable', `mirror ${ref}: secondary bravo:0 cannot be reached (link down)`);
  }
}

let tmp: string;
let array: StorageArray;
let locked: StorageArray;
const servers: ControlServer[] = [];
let url: string;
let lockedUrl: string;
let deadUrl: string; // a port where nothing listens
const mirrors = new CutOffMirrors();

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'sanbox-exit-'));
  array = await StorageArray.open({ name: 'alpha', dir: join(tmp, 'alpha'), noSync: true });
  await array.createLun({ name: 'disk0', size: 1 << 20 });
  const srv = new ControlServer({ array, mirrors });
  servers.push(srv);
  url = (await srv.listen()).url;
  locked = await StorageArray.open({ name: 'locked', dir: join(tmp, 'locked'), noSync: true });
  const lsrv = new ControlServer({ array: locked, token: 'right-token' });
  servers.push(lsrv);
  lockedUrl = (await lsrv.listen()).url;
  deadUrl = `http://127.0.0.1:${await freePort()}`;
  process.env.SANBOX_IMAGES = tmp;
  const nbd = { host: '127.0.0.1', port: 1 };
  await writeState({
    lab: 'ec',
    file: '/x/ec.yaml',
    supervisorPid: process.pid,
    startedAt: new Date().toISOString(),
    state: 'running',
    arrays: [
      { name: 'alpha', pid: process.pid, dir: '', nbd, api: { url } },
      { name: 'gone', pid: process.pid, dir: '', nbd, api: { url: deadUrl } },
      { name: 'down', pid: process.pid, dir: '', nbd, api: { url: deadUrl }, state: 'crashed', lastExit: { code: null, signal: 'SIGKILL', at: new Date().toISOString() } },
    ],
    links: [{ name: 'ab', between: ['alpha', 'gone'], api: { url: deadUrl } }],
  } as Parameters<typeof writeState>[0]);
  delete process.env.SANBOX_IMAGES;
});

afterAll(async () => {
  for (const s of servers) await s.close();
  await array.close();
  await locked.close();
  await rm(tmp, { recursive: true, force: true });
});

const cli = (args: string[]) => captureCli(args, { SANBOX_IMAGES: tmp, SANBOX_LAB: 'ec', SANBOX_API: undefined, SANBOX_TOKEN: undefined });

/** [args, exit code, why] */
const USAGE: [string[], string][] = [
  [['nosuchverb'], 'unknown verb'],
  [['lun', 'create', 'x'], 'missing argument'],
  [['status', '--api', 'notaurl'], 'a malformed URL is not an unreachable array'],
  [['status', '--api', 'ftp://127.0.0.1:1'], 'not an http URL'],
  [['status', '--array', 'a/b'], 'malformed array name'],
  [['lun', 'create', 'a/b', '1M'], 'malformed LUN name, caught before sending (serve --lun bad/name=1M says 2 too)'],
  [['lun', 'create', '..', '1M'], '.. is not a name'],
  [['lun', 'create', 'x', '12Q'], 'malformed size'],
  [['lun', 'create', 'x', '1000'], 'the array finds the size is not a multiple of the block size: HTTP 400, a usage error'],
  [['lun', 'delete', 'a/b'], 'malformed LUN reference'],
  [['lun', 'grow', 'disk0', '+zz'], 'malformed relative size'],
  [['lun', 'trespass', 'alpha', 'disk0', '--to', 'C'], 'unknown SP'],
  [['lun', 'recover', 'alpha', 'disk0'], 'recover without --accept-data-loss'],
  [['fault', 'sp-crash', 'alpha', 'C'], 'unknown SP'],
  [['fault', 'disk', 'alpha', 'disk0', '--rate', '7'], 'a rate outside [0, 1]'],
  [['fault', 'disk', 'alpha', 'a/b', '--delay', '5'], 'malformed LUN reference'],
  [['fault', 'array-crash', 'a/b'], 'malformed array name'],
  [['fault', 'site-fail', '..'], 'malformed site name'],
  [['mirror', 'sync', 'a/b'], 'malformed mirror name'],
  [['mirror', 'create', 'mx', 'alpha:disk0'], 'missing secondary'],
  [['group', 'info', 'a/b'], 'malformed group name'],
  [['snapshot', 'create', 'disk0', 'a/b'], 'malformed snapshot name'],
  [['snapshot', 'list', 'a/b'], 'malformed LUN reference'],
  [['clone', 'create', 'disk0', 'x/y'], 'malformed clone name'],
  [['clone', 'set', 'c1', '--rate', 'fast'], 'malformed rate'],
  [['link', 'cut', 'a/b'], 'malformed link name'],
  [['link', 'status', '--api', 'notaurl'], 'malformed link emulator URL'],
  [['link', 'set', 'ab', '--latency', '-1'], 'malformed latency'],
  [['status', '--watch', '--count', '0'], 'bad count'],
  [['monitor', 'show', 'app'], "a nested verb's missing argument (commander's errors at every depth)"],
  [['check', 'ledger', 'run', '--bogus'], 'unknown option two levels down'],
  [['link', 'cut'], 'missing link name'],
];

const REFUSED: [string[], string][] = [
  [['status', '--array', 'nosuch'], 'a well-formed array name the lab does not have'],
  [['fault', 'sp-crash', 'nosuch', 'A'], 'the same, for a fault verb'],
  [['fault', 'sp-crash', 'alpha', 'A'], 'a single-process array has no SPs'],
  [['lun', 'delete', 'disk9'], 'no such LUN'],
  [['lun', 'create', 'disk0', '1M'], 'the LUN exists'],
  [['lun', 'grow', 'disk0', '512K'], 'a LUN does not shrink'],
  [['mirror', 'sync', 'm0'], 'the array answered that the peer cannot be reached: refused, not unreachable'],
  [['mirror', 'sync', 'nosuch'], 'no such mirror on any array of the lab'],
  [['snapshot', 'show', 'disk0', 'nosnap'], 'no such snapshot'],
  [['clone', 'delete', 'noclone'], 'no such clone'],
  [['link', 'cut', 'nosuch'], 'the lab has no such link'],
  [['status', '--api', '', '--token', 'wrong-token'], 'a wrong token'],
];

const UNREACHABLE: [string[], string][] = [
  [['status', '--api', ''], 'nothing listens there'],
  [['status', '--array', 'gone'], "the lab's array does not answer"],
  [['status', '--array', 'down'], "the lab's array crashed"],
  [['lun', 'list', '--lab', 'nolab'], 'no such lab running'],
  [['link', 'cut', 'ab'], 'the link emulator does not answer'],
  [['fault', 'array-crash', 'alpha'], 'the lab has no supervisor control API'],
  [['monitor', 'stop', '--state', 'MONITOR'], 'no monitor daemon runs'],
];

function fill(args: string[], want: number): string[] {
  // '' after --api: the dead port for the unreachable rows, the token-protected array otherwise
  return args.map((a, i) => (a === '' && args[i - 1] === '--api' ? (want === 3 ? deadUrl : lockedUrl) : a === 'MONITOR' ? join(tmp, 'monitor') : a));
}

async function expectCode(args: string[], want: number, why: string): Promise<void> {
  const full = fill(args, want);
  const r = await cli(full);
  expect(r.code, `sanbox ${full.join(' ')} (${why}): ${r.err}`).toBe(want);
  expect(r.err.trim(), `sanbox ${full.join(' ')} says why`).not.toBe('');
  expect(r.err).not.toMatch(/\n\s+at /); // a message, never a stack trace
  const j = await cli([...full, '--json']);
  if (j.json?.error) expect(j.json.error.exitCode, `sanbox ${full.join(' ')} --json`).toBe(want);
}

describe('exit codes (docs/cli.md EXIT STATUS)', () => {
  it('2: the command line is wrong by itself, and nothing changes', async () => {
    const before = array.listLuns().map((l) => `${l.name}:${l.size}`);
    const callsBefore = mirrors.calls.length;
    for (const [args, why] of USAGE) await expectCode(args, 2, why);
    expect(array.listLuns().map((l) => `${l.name}:${l.size}`)).toEqual(before);
    expect(mirrors.calls.slice(callsBefore).filter((c) => c.op !== 'get' && c.op !== 'list')).toEqual([]);
  });

  it('1: whoever answered refused (a well-formed name that names nothing, a state, a token)', async () => {
    for (const [args, why] of REFUSED) await expectCode(args, 1, why);
    expect(mirrors.calls.some((c) => c.op === 'synchronize')).toBe(true); // the sync was asked, and refused
  });

  it('3: nobody answered', async () => {
    for (const [args, why] of UNREACHABLE) await expectCode(args, 3, why);
  });
});
