// The relative grow of a LUN (`POST /v1/luns/:ref/grow {"by": SIZE}`, `sanbox lun grow NAME +SIZE`)
// is one array operation: concurrent relative grows each add their amount (none is lost), where a
// client reading the size, adding and posting it would lose all but one of them. `size` and `by`
// exclude each other; `by` must be positive and a multiple of the block size.
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StorageArray } from '../../src/array/index.js';
import { ControlServer, ApiClient, ClientError, type LunView } from '../../src/control/index.js';
import { main } from '../../src/cli/index.js';
import { runSanbox } from '../support/launch.js';
import { requireBuild } from '../support/paths.js';
import { startSpArray, type SpArray } from '../support/sp-array.js';

const MiB = 1024 * 1024;
let dir: string;
let array: StorageArray;
let srv: ControlServer;
let url: string;
let events: Array<Record<string, unknown>>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-growby-'));
  array = await StorageArray.open({ name: 'alpha', dir, noSync: true });
  events = [];
  array.on('event', (e: Record<string, unknown>) => events.push(e));
  srv = new ControlServer({ array });
  url = (await srv.listen()).url;
  await array.createLun({ name: 'disk0', size: MiB });
  await array.createLun({ name: 'disk4k', size: MiB, blockSize: 4096 });
});
afterEach(async () => {
  await srv.close();
  await array.close();
  await rm(dir, { recursive: true, force: true });
});

async function post(path: string, body: string): Promise<{ status: number; json: any }> {
  const res = await fetch(url + path, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  const t = await res.text();
  return { status: res.status, json: t ? JSON.parse(t) : undefined };
}
const sizeOf = (lun: string) => array.getLun(lun)!.size;

describe('relative grow: {"by": SIZE}', () => {
  it('six concurrent relative grows of +1M through the API add exactly 6M', async () => {
    const c = new ApiClient({ url });
    const rs = await Promise.all(Array.from({ length: 6 }, () => c.growLun<LunView>('disk0', { by: '1M' })));
    expect(sizeOf('disk0')).toBe(7 * MiB);
    // each one applied to the size the one before it left
    expect(rs.map((r) => r.lun.size).sort((x, y) => x - y)).toEqual([2, 3, 4, 5, 6, 7].map((n) => n * MiB));
    // raw requests too, by number and by string; and the absolute form still works
    const raw = await Promise.all(Array.from({ length: 6 }, (_, i) => post('/v1/luns/disk0/grow', JSON.stringify({ by: i % 2 ? MiB : '1M' }))));
    expect(raw.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(sizeOf('disk0')).toBe(13 * MiB);
    expect((await c.growLun<LunView>('disk0', { size: '16M' })).lun.size).toBe(16 * MiB);
    expect((await c.growLun<LunView>('disk0', '17M')).lun.size).toBe(17 * MiB);
    const grown = events.filter((e) => e.type === 'lun.grown' && e.name === 'disk0');
    expect(grown.length).toBe(14);
  });

  it('size and by together, neither, by 0, negative or not a multiple of the block size: 400, nothing changed', async () => {
    const cases: [string, string, RegExp][] = [
      ['disk0', JSON.stringify({ size: '2M', by: '1M' }), /size .*or by.*not both/],
      ['disk0', JSON.stringify({}), /size .*or by/],
      ['disk0', JSON.stringify({ by: 0 }), /by must be greater than 0/],
      ['disk0', JSON.stringify({ by: '0' }), /by must be greater than 0/],
      ['disk0', JSON.stringify({ by: '0M' }), /by must be greater than 0/],
      ['disk0', JSON.stringify({ by: -MiB }), /by must be greater than 0/],
      ['disk0', JSON.stringify({ by: '-1M' }), /by must be greater than 0/],
      ['disk0', JSON.stringify({ by: 1000 }), /1000 is not a multiple of the block size 512/],
      ['disk4k', JSON.stringify({ by: 512 }), /512 is not a multiple of the block size 4096/],
      ['disk0', JSON.stringify({ by: 1.5 }), /by must be/],
      ['disk0', JSON.stringify({ by: 'lots' }), /by must be/],
      ['disk0', JSON.stringify({ by: '1P' }), /exceeds the maximum/],
      ['disk0', JSON.stringify({ by: '1M', extra: 1 }), /unknown field extra/],
    ];
    for (const [lun, body, msg] of cases) {
      const r = await post(`/v1/luns/${lun}/grow`, body);
      expect([r.status, r.json?.error?.code], `${lun} ${body}: ${JSON.stringify(r.json)}`).toEqual([400, 'invalid-argument']);
      expect(r.json.error.message, body).toMatch(msg);
    }
    expect([sizeOf('disk0'), sizeOf('disk4k')]).toEqual([MiB, MiB]);
    expect(events.filter((e) => e.type === 'lun.grown')).toEqual([]);
    const c = new ApiClient({ url });
    await expect(c.growLun('disk0', { size: '2M', by: '1M' } as never)).rejects.toMatchObject({ status: 400 });
    await expect(c.growLun('nope', { by: '1M' })).rejects.toBeInstanceOf(ClientError);
    await expect(c.growLun('nope', { by: '1M' })).rejects.toMatchObject({ status: 404 });
    expect(sizeOf('disk0')).toBe(MiB);
  });

  it('the CLI: six concurrent `lun grow disk0 +1M` in process add exactly 6M', async () => {
    let out = '';
    const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
    const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
    const saved = { api: process.env.SANBOX_API, lab: process.env.SANBOX_LAB };
    delete process.env.SANBOX_API;
    delete process.env.SANBOX_LAB;
    let codes: number[];
    try {
      codes = await Promise.all(Array.from({ length: 6 }, () => main(['lun', 'grow', 'disk0', '+1M', '--api', url])));
    } finally {
      o.mockRestore();
      e.mockRestore();
      if (saved.api !== undefined) process.env.SANBOX_API = saved.api;
      if (saved.lab !== undefined) process.env.SANBOX_LAB = saved.lab;
    }
    expect(codes, out).toEqual([0, 0, 0, 0, 0, 0]);
    expect(sizeOf('disk0')).toBe(7 * MiB);
    expect(out.match(/^grew LUN 0 disk0 to \d+M \(\d+ bytes\)$/gm)?.length, out).toBe(6);
    expect(out).toMatch(/grew LUN 0 disk0 to 7M \(7340032 bytes\)/);
  });

  it('the CLI: six concurrent `sanbox lun grow disk0 +1M` processes add exactly 6M; +0 and +1000 are refused', async () => {
    requireBuild('cli/index.js');
    const rs = await Promise.all(Array.from({ length: 6 }, () => runSanbox(['lun', 'grow', 'disk0', '+1M', '--api', url], { SANBOX_API: '', SANBOX_LAB: '' })));
    expect(rs.map((r) => r.code), rs.map((r) => r.err).join('')).toEqual([0, 0, 0, 0, 0, 0]);
    expect(sizeOf('disk0')).toBe(7 * MiB);
    for (const [arg, msg] of [['+0', /by must be greater than 0/], ['+1000', /not a multiple of the block size 512/]] as const) {
      const r = await runSanbox(['lun', 'grow', 'disk0', arg, '--api', url], { SANBOX_API: '', SANBOX_LAB: '' });
      expect(r.code, r.out + r.err).toBe(2); // the array's 400: wrong by itself, a usage error (docs/cli.md)
      expect(r.err).toMatch(msg);
    }
    expect(sizeOf('disk0')).toBe(7 * MiB);
  }, 60_000);
});

describe('relative grow on a two-SP array', () => {
  let a: SpArray | undefined;
  afterEach(async () => {
    await a?.stop();
    a = undefined;
  }, 30_000);

  it('six concurrent `sanbox lun grow d1 +1M` processes: 38M on both SP ports', async () => {
    requireBuild('cli/index.js');
    a = await startSpArray('growby');
    const rs = await Promise.all(Array.from({ length: 6 }, () => runSanbox(['lun', 'grow', 'd1', '+1M', '--api', a!.url], { SANBOX_API: '', SANBOX_LAB: '' })));
    expect(rs.map((r) => r.code), rs.map((r) => r.err).join('')).toEqual([0, 0, 0, 0, 0, 0]);
    expect((await a.api.request<{ lun: LunView }>('GET', '/v1/luns/d1')).lun.size).toBe(38 * MiB);
    for (const port of [a.ports.A, a.ports.B]) {
      expect(execFileSync('nbdinfo', ['--size', `nbd://127.0.0.1:${port}/d1`]).toString().trim()).toBe(String(38 * MiB));
    }
  }, 90_000);
});
