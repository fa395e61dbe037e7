// Fencing a LUN (POST /v1/luns/REF/fence, `sanbox lun fence`) on a single-process array: strict
// request validation (nothing changes on a bad request), real NBD clients (src/check/nbd-client,
// qemu-io and nbdsh when installed) see host writes, trims and zeroes refused with EPERM while
// reads are served, the fence lifts, and it survives a restart of the array (LUN metadata).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NbdClient, NbdReplyError } from '../../src/check/nbd-client/index.js';
import { startArray, type ArrayServiceConfig, type RunningArray } from '../../src/control/service.js';
import { captureCli } from '../support/cli.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let root: string;
let cfg: ArrayServiceConfig;
let running: RunningArray;
let url: string;

async function post(path: string, body: unknown, raw?: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url + path, { method: 'POST', body: raw ?? JSON.stringify(body), headers: { 'Content-Type': 'application/json' } });
  const t = await res.text();
  return { status: res.status, json: t ? JSON.parse(t) : undefined };
}
async function getLun(ref: string): Promise<any> {
  return (await (await fetch(`${url}/v1/luns/${ref}`)).json()).lun;
}
const nbdUri = (lun: string) => `nbd://127.0.0.1:${running.nbd.port}/${lun}`;

async function start(): Promise<void> {
  running = await startArray(cfg);
  url = running.apiUrl!;
}

async function expectEperm(p: Promise<unknown>): Promise<void> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the request should have failed').toBeInstanceOf(NbdReplyError);
  expect((err as NbdReplyError).errno).toBe('EPERM');
}

async function have(cmd: string): Promise<boolean> {
  return run('which', [cmd]).then(
    () => true,
    () => false,
  );
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'sanbox-fence-'));
  cfg = {
    name: 'alpha',
    dir: join(root, 'alpha'),
    nbd: { bind: '127.0.0.1', port: 0 },
    api: { bind: '127.0.0.1', port: 0 },
    luns: [
      { name: 'd0', size: 4 * MiB },
      { name: 'd1', size: 4 * MiB },
    ],
    sync: false,
  };
  await start();
});
afterAll(async () => {
  await running?.close(100);
  await rm(root, { recursive: true, force: true });
});

describe('POST /v1/luns/REF/fence', () => {
  it('refuses bad requests with 400 (unknown LUN: 404) and changes nothing', async () => {
    const seq = running.array.lastSeq;
    const bad: Array<[unknown, RegExp]> = [
      [{}, /missing field fenced/],
      [[], /JSON object/],
      [{ fenced: 'yes', reason: 'x', by: 'a' }, /fenced must be true or false/],
      [{ fenced: true, by: 'agent' }, /missing field reason/],
      [{ fenced: true, reason: 'r' }, /missing field by/],
      [{ fenced: true, reason: 'r', by: '' }, /by must be a non-empty string/],
      [{ fenced: true, reason: 7, by: 'a' }, /reason must be a non-empty string/],
      [{ fenced: true, reason: 'r', by: 'a', force: true }, /unknown field force/],
      [{ fenced: true, reason: 'r', by: 'a', __proto__x: 1 }, /unknown field/],
      [{ fenced: false, reason: 'r', by: 'a' }, /reason goes with fenced: true/],
    ];
    for (const [body, msg] of bad) {
      const r = await post('/v1/luns/d0/fence', body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.code).toBe('invalid-argument');
      expect(r.json.error.message).toMatch(msg);
    }
    const junk = await post('/v1/luns/d0/fence', undefined, '{"fenced": tru');
    expect(junk.status).toBe(400);
    const missing = await post('/v1/luns/nope/fence', { fenced: true, reason: 'r', by: 'a' });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('not-found');
    expect((await getLun('d0')).fenced).toBeUndefined();
    expect(running.array.metadata().luns.every((l) => l.fenced === undefined)).toBe(true);
    expect(running.array.eventsSince(seq).filter((e) => e.type.startsWith('lun.'))).toEqual([]);
  });

  it('fenced: host writes, trims and zeroes fail with EPERM, reads succeed; unfenced: writes succeed', async () => {
    const c = await NbdClient.connect(nbdUri('d0'));
    try {
      await c.write(0, Buffer.alloc(4096, 0x11));
      const seq = running.array.lastSeq;
      const r = await post('/v1/luns/d0/fence', { fenced: true, reason: 'partition: lost the standby and the witness', by: 'hb-master-1' });
      expect(r.status).toBe(200);
      expect(r.json.lun.fenced).toMatchObject({ reason: 'partition: lost the standby and the witness', by: 'hb-master-1' });
      expect(typeof r.json.lun.fenced.sinceMs).toBe('number');
      const ev = running.array.eventsSince(seq).find((e) => e.type === 'lun.fenced') as any;
      expect(ev).toMatchObject({ lun: 0, name: 'd0', reason: 'partition: lost the standby and the witness', by: 'hb-master-1' });
      // the session opened before the fence: refused from now on
      await expectEperm(c.write(4096, Buffer.alloc(4096, 0x22)));
      expect((await c.read(0, 4096)).equals(Buffer.alloc(4096, 0x11))).toBe(true);
      await c.flush(); // changes no data: passes
      // a new session too, and the other LUN is not fenced
      const c2 = await NbdClient.connect(nbdUri('d0'));
      await expectEperm(c2.write(0, Buffer.alloc(512, 0x33)));
      await c2.close();
      const other = await NbdClient.connect(nbdUri('d1'));
      await other.write(0, Buffer.alloc(512, 0x44));
      await other.close();
      // fencing again with the same reason and agent changes nothing (no event)
      const seq2 = running.array.lastSeq;
      expect((await post('/v1/luns/0/fence', { fenced: true, reason: 'partition: lost the standby and the witness', by: 'hb-master-1' })).status).toBe(200);
      expect(running.array.eventsSince(seq2).filter((e) => e.type === 'lun.fenced')).toEqual([]);
      // the LUN list shows it
      const list = (await (await fetch(`${url}/v1/luns`)).json()).luns as any[];
      expect(list.find((l) => l.name === 'd0').fenced.by).toBe('hb-master-1');
      expect(list.find((l) => l.name === 'd1').fenced).toBeUndefined();
      const off = await post('/v1/luns/d0/fence', { fenced: false, by: 'operator' });
      expect(off.status).toBe(200);
      expect(off.json.lun.fenced).toBeUndefined();
      expect(running.array.eventsSince(seq2).find((e) => e.type === 'lun.unfenced')).toMatchObject({ lun: 0, by: 'operator', fencedBy: 'hb-master-1' });
      await c.write(4096, Buffer.alloc(4096, 0x22));
      expect((await c.read(4096, 4096)).equals(Buffer.alloc(4096, 0x22))).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('external clients: qemu-io write and nbdsh trim/zero refused (EPERM), reads served', async (ctx) => {
    const qemu = await have('qemu-io');
    const nbdsh = await have('nbdsh');
    if (!qemu && !nbdsh) ctx.skip();
    expect((await post('/v1/luns/d1/fence', { fenced: true, reason: 'test', by: 'hb' })).status).toBe(200);
    try {
      if (qemu) {
        const w = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4k', nbdUri('d1')]).then(
          (r) => r.stdout + r.stderr,
          (e: { stdout?: string; stderr?: string }) => `${e.stdout ?? ''}${e.stderr ?? ''}`,
        );
        expect(w).toMatch(/Operation not permitted/);
        const rd = await run('qemu-io', ['-f', 'raw', '-c', 'read -P 0x44 0 512', nbdUri('d1')]);
        expect(rd.stdout + rd.stderr).not.toMatch(/error|fail/i);
      }
      if (nbdsh) {
        const script = [
          'import errno',
          `h.connect_uri("${nbdUri('d1')}")`,
          'out = []',
          'for name, op in (("write", lambda: h.pwrite(b"x" * 512, 0)), ("trim", lambda: h.trim(4096, 0)), ("zero", lambda: h.zero(4096, 0))):',
          '    try:',
          '        op()',
          '        out.append(name + ":ok")',
          '    except nbd.Error as e:',
          '        out.append(name + ":" + str(errno.errorcode.get(e.errno, e.errno)))',
          'out.append("read:" + h.pread(512, 0)[:1].hex())',
          'print(" ".join(out))',
        ].join('\n');
        // Debian's python3 has libnbd's module (a pyenv python first on PATH would not)
        const sys = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
        const r = await run('nbdsh', ['-c', script], { env: { ...process.env, PATH: [...sys, process.env.PATH ?? ''].join(':') } });
        expect(r.stdout.trim()).toBe('write:EPERM trim:EPERM zero:EPERM read:44');
      }
    } finally {
      await post('/v1/luns/d1/fence', { fenced: false, by: 'hb' });
    }
    if (qemu) await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4k', nbdUri('d1')]);
  });

  it('`sanbox lun fence`: exit codes, human and JSON output, lun list', async () => {
    const env = { SANBOX_LAB: undefined, SANBOX_API: undefined };
    const on = await captureCli(['lun', 'fence', 'd0', '--reason', 'cli test', '--by', 'op-1', '--api', url], env);
    expect(on.code, on.err).toBe(0);
    expect(on.out).toMatch(/LUN 0 d0 is FENCED since .* by op-1: host writes refused \(EPERM\), reads served; reason: cli test/);
    const list = await captureCli(['lun', 'list', '--api', url], env);
    expect(list.out).toMatch(/online,fenced/);
    expect(list.out).toMatch(/LUN 0 d0 is FENCED/);
    const usage = await captureCli(['lun', 'fence', 'd0', '--off', '--reason', 'x', '--api', url], env);
    expect(usage.code).toBe(2);
    const missing = await captureCli(['lun', 'fence', 'nope', '--api', url], env);
    expect(missing.code).toBe(1);
    const off = await captureCli(['lun', 'fence', 'd0', '--off', '--json', '--api', url], env);
    expect(off.code, off.err).toBe(0);
    expect(off.json.lun.name).toBe('d0');
    expect(off.json.lun.fenced).toBeUndefined();
  });

  it('the fence survives a restart of the array', async () => {
    expect((await post('/v1/luns/d0/fence', { fenced: true, reason: 'kept', by: 'hb-master-1' })).status).toBe(200);
    const since = (await getLun('d0')).fenced.sinceMs;
    await running.close(100);
    await start();
    expect(await getLun('d0')).toMatchObject({ fenced: { reason: 'kept', by: 'hb-master-1', sinceMs: since } });
    const c = await NbdClient.connect(nbdUri('d0'));
    try {
      await expectEperm(c.write(0, Buffer.alloc(512, 1)));
      await c.read(0, 512);
      await post('/v1/luns/d0/fence', { fenced: false, by: 'operator' });
      await c.write(0, Buffer.alloc(512, 1));
    } finally {
      await c.close();
    }
  });
});
