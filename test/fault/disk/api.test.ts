// A LUN's disk fault through the management API and the `sanbox fault disk` verb, on a
// single-process array run in this process (real NBD and HTTP sockets, real image files), with
// qemu-io as the host: EIO in the faulted range, success outside it, counters, events, clear;
// lose-unflushed shown and written down at the clear; bad input is refused with every problem
// listed and changes nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startArray, type RunningArray } from '../../../src/control/service.js';
import { ApiClient, ClientError } from '../../../src/control/index.js';
import { EXIT } from '../../../src/cli/index.js';
import { captureCli } from '../../support/cli.js';
import { NbdClient } from '../../../src/check/nbd-client/index.js';

const MiB = 1024 * 1024;
let dir: string;
let run: RunningArray;
let api: ApiClient;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-diskfault-api-'));
  run = await startArray({ name: 'alpha', dir, nbd: { bind: '127.0.0.1', port: 0 }, api: { bind: '127.0.0.1', port: 0 }, luns: [{ name: 'disk0', size: 16 * MiB }, { name: 'disk1', size: 16 * MiB }], sync: false });
  api = new ApiClient({ url: run.apiUrl! });
});
afterAll(async () => {
  await run?.close();
  await rm(dir, { recursive: true, force: true });
});

/** qemu-io on a fresh connection; resolves with what it printed and whether it reported an I/O failure. */
async function qemuIo(exp: string, cmds: string[]): Promise<string> {
  const args = ['-f', 'raw', ...cmds.flatMap((c) => ['-c', c]), `nbd://127.0.0.1:${run.nbd.port}/${exp}`];
  try {
    const r = await promisify(execFile)('qemu-io', args, { timeout: 60_000 });
    return r.stdout + r.stderr;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string };
    return `${x.stdout ?? ''}${x.stderr ?? ''}`;
  }
}

const cli = (args: string[]) => captureCli(['fault', 'disk', ...args, '--api', run.apiUrl!], { SANBOX_API: undefined, SANBOX_LAB: undefined, SANBOX_TOKEN: undefined });
const eventsOf = (type: string) => run.array.eventsSince(0).filter((e) => e.type === type);

async function apiError(p: Promise<unknown>): Promise<ClientError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ClientError) return e;
    throw e;
  }
  throw new Error('expected the API to refuse');
}

describe('disk faults: API', () => {
  it('refuses a bad fault with every problem listed (400) and changes nothing', async () => {
    const e = await apiError(api.request('PUT', '/v1/luns/disk0/disk-fault', { errors: ['read', 'scribble'], rate: 2, range: { offset: 64 * MiB, length: 1 }, errno: 'EPERM' }));
    expect(e.status).toBe(400);
    expect(e.code).toBe('invalid-argument');
    for (const w of ['scribble', 'rate', 'beyond the end of the LUN', 'errno']) expect(e.message).toContain(w);
    expect((await api.request<{ diskFault: unknown }>('GET', '/v1/luns/disk0/disk-fault')).diskFault).toBeNull();
    expect((await api.status<{ diskFaults: unknown[] }>()).diskFaults).toEqual([]);
    expect(eventsOf('fault.disk-set')).toEqual([]);
    expect((await apiError(api.request('PUT', '/v1/luns/nope/disk-fault', {}))).status).toBe(404);
  });

  it('a host sees EIO for a read in the faulted range and succeeds outside it; status counts it; clear ends it', async () => {
    const r = await api.request<{ diskFault: { lun: number; summary: string } }>('PUT', '/v1/luns/disk0/disk-fault', { errors: ['read'], range: '1M:64K' });
    expect(r.diskFault.summary).toBe('EIO on read, range 1048576:65536, seed 1');
    expect(eventsOf('fault.disk-set').at(-1)).toMatchObject({ lun: r.diskFault.lun, name: 'disk0', errors: ['read'], errno: 'EIO', range: { offset: MiB, length: 65536 } });

    const inside = await qemuIo('disk0', [`read ${MiB + 4096} 4096`]);
    expect(inside).toMatch(/Input\/output error/);
    const outside = await qemuIo('disk0', [`read 0 4096`, `read ${2 * MiB} 4096`, `write -P 0x5a ${MiB} 4096`]);
    expect(outside).not.toMatch(/error/i);
    expect(await qemuIo('disk1', [`read ${MiB} 4096`])).not.toMatch(/error/i); // another LUN is untouched

    const st = await api.status<{ diskFaults: { name: string; injected: number; counters: { injected: Record<string, number> } }[] }>();
    expect(st.diskFaults).toHaveLength(1);
    expect(st.diskFaults[0]!.name).toBe('disk0');
    expect(st.diskFaults[0]!.counters.injected.read).toBeGreaterThanOrEqual(1);
    expect(st.diskFaults[0]!.counters.injected.write).toBe(0);

    const cleared = await api.request<{ cleared: { injected: number } }>('DELETE', '/v1/luns/disk0/disk-fault');
    expect(cleared.cleared.injected).toBeGreaterThanOrEqual(1);
    expect(eventsOf('fault.disk-cleared').at(-1)).toMatchObject({ name: 'disk0', injected: cleared.cleared.injected });
    expect(await qemuIo('disk0', [`read -P 0x5a ${MiB} 4096`, `read ${MiB + 4096} 4096`])).not.toMatch(/error/i);
    // clearing again changes nothing and says so
    const again = await api.request<{ cleared: unknown }>('DELETE', '/v1/luns/disk0/disk-fault');
    expect(again.cleared).toBeNull();
    expect(eventsOf('fault.disk-cleared')).toHaveLength(1);
  });

  it('loseUnflushed: held writes are shown (unflushedBytes, counters) and events say so; DELETE writes them down first', async () => {
    expect((await apiError(api.request('PUT', '/v1/luns/disk1/disk-fault', { loseUnflushed: 'yes', maxUnflushed: 1 }))).message).toMatch(/loseUnflushed must be true or false.*maxUnflushed/);
    const r = await api.request<{ diskFault: { summary: string; unflushedBytes: number } }>('PUT', '/v1/luns/disk1/disk-fault', { loseUnflushed: true, maxUnflushed: '8M' });
    expect(r.diskFault).toMatchObject({ summary: 'loses unflushed writes at a crash (holds up to 8 MiB)', unflushedBytes: 0 });
    expect(eventsOf('fault.disk-set').at(-1)).toMatchObject({ name: 'disk1', loseUnflushed: true, maxUnflushed: 8 * MiB, errors: [] });
    const client = await NbdClient.connect(`nbd://127.0.0.1:${run.nbd.port}/disk1`);
    try {
      await client.write(0, Buffer.alloc(8192, 0x77));
      await client.flush();
      await client.write(8192, Buffer.alloc(4096, 0x78));
      expect((await client.read(8192, 4096)).equals(Buffer.alloc(4096, 0x78))).toBe(true);
    } finally {
      client.destroy();
    }
    const image = run.array.device('disk1')!;
    expect((await image.read(8192, 4096)).equals(Buffer.alloc(4096))).toBe(true); // held, not in the image
    type Df = { unflushedBytes: number; counters: { unflushed: { held: number; flushedBytes: number } } };
    const shown = (await api.request<{ diskFault: Df }>('GET', '/v1/luns/disk1/disk-fault')).diskFault;
    expect(shown).toMatchObject({ unflushedBytes: 4096, counters: { unflushed: { held: 2, flushedBytes: 8192 } } });
    expect((await api.status<{ diskFaults: Df[] }>()).diskFaults[0]!.unflushedBytes).toBe(4096);
    const cleared = await api.request<{ cleared: Df }>('DELETE', '/v1/luns/disk1/disk-fault');
    expect(cleared.cleared.unflushedBytes).toBe(4096);
    expect(eventsOf('fault.disk-cleared').at(-1)).toMatchObject({ name: 'disk1', unflushedBytes: 4096 });
    expect((await image.read(8192, 4096)).equals(Buffer.alloc(4096, 0x78))).toBe(true); // written down before the answer
  });

  it('ENOSPC on writes reaches the host as "No space left on device"', async () => {
    await api.request('PUT', '/v1/luns/disk1/disk-fault', { errors: ['write'], errno: 'ENOSPC' });
    expect(await qemuIo('disk1', ['write 0 4096'])).toMatch(/No space left on device/);
    expect(await qemuIo('disk1', ['read 0 4096'])).not.toMatch(/error/i);
    await api.request('DELETE', '/v1/luns/disk1/disk-fault');
  });
});

describe('disk faults: sanbox fault disk', () => {
  it('refuses bad options with exit 2, listing every problem, and changes nothing', async () => {
    const bad = await cli(['alpha', 'disk0', '--errors', 'read,bogus', '--rate', '7', '--delay', 'x', '--json']);
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.json.error).toMatchObject({ code: 'usage', exitCode: EXIT.USAGE });
    for (const w of ['bogus', 'rate', 'delay']) expect(bad.json.error.message).toContain(w);
    const mixed = await cli(['alpha', 'disk0', '--clear', '--rate', '0.5']);
    expect(mixed.code).toBe(EXIT.USAGE);
    const mixedLose = await cli(['alpha', 'disk0', '--show', '--lose-unflushed']);
    expect(mixedLose.code).toBe(EXIT.USAGE);
    expect(mixedLose.err).toMatch(/--show takes no fault options \(got --lose-unflushed\)/);
    const maxAlone = await cli(['alpha', 'disk0', '--max-unflushed', '8M']);
    expect(maxAlone.code).toBe(EXIT.USAGE);
    expect(maxAlone.err).toMatch(/give loseUnflushed too/);
    // beyond the LUN: only the array knows its size; refused as usage too, nothing changed
    const far = await cli(['alpha', 'disk0', '--range', '1G:4K']);
    expect(far.code).toBe(EXIT.USAGE);
    expect(far.err).toMatch(/beyond the end/);
    expect((await api.request<{ diskFault: unknown }>('GET', '/v1/luns/disk0/disk-fault')).diskFault).toBeNull();
    expect((await cli(['alpha', 'nope', '--errors', 'read'])).code).toBe(EXIT.ERROR);
    expect((await cli(['bravo', 'disk0', '--errors', 'read'])).code).toBe(EXIT.ERROR);
  });

  it('sets, shows and clears a fault (--json), and the host sees it in between', async () => {
    const set = await cli(['alpha', 'disk0', '--errors', 'read,write', '--range', '0:4096', '--seed', '9', '--json']);
    expect(set.code).toBe(EXIT.OK);
    expect(set.json.diskFault.spec).toEqual({ errors: ['read', 'write'], rate: 1, range: { offset: 0, length: 4096 }, errno: 'EIO', seed: 9, loseUnflushed: false });
    expect(await qemuIo('disk0', ['read 0 512'])).toMatch(/Input\/output error/);
    const show = await cli(['alpha', 'disk0', '--show']);
    expect(show.code).toBe(EXIT.OK);
    expect(show.out).toMatch(/EIO on read,write.*[1-9]\d* errors injected/);
    const clear = await cli(['alpha', 'disk0', '--clear', '--json']);
    expect(clear.code).toBe(EXIT.OK);
    expect(clear.json.cleared.injected).toBeGreaterThanOrEqual(1);
    expect(await qemuIo('disk0', ['read 0 512'])).not.toMatch(/error/i);
    const none = await cli(['alpha', 'disk0', '--show', '--json']);
    expect(none.json.diskFault).toBeNull();
  });
});
