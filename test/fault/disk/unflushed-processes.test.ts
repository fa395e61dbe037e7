// Lose-unflushed on arrays run as real processes (bin/sanbox.js runs dist/: build first), set with
// the real `sanbox fault disk --lose-unflushed` and met by an NBD client (src/check/nbd-client,
// which, unlike qemu-io, does not flush when it disconnects):
// - a single-process `sanbox serve`, SIGKILLed and started again from its directory: the blocks
//   written before a flush (and the FUA one) are there, the ones written after it are not;
// - a two-SP array: the fault reaches the owner SP's stack (the write cache destages through it
//   and flushes), and an SP crash loses no acknowledged write: the cache's mirror on the peer and
//   its flush after every destage batch make a volatile disk below it safe.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NbdClient } from '../../../src/check/nbd-client/index.js';
import { killProcess, launchSanbox, runSanbox, stopProcess } from '../../support/launch.js';
import { until } from '../../support/net.js';
import { requireBuild } from '../../support/paths.js';
import { startSpArray, type SpArray } from '../../support/sp-array.js';

const BLOCK = 4096;
const block = (n: number) => Buffer.alloc(BLOCK, n);

beforeAll(() => requireBuild('cli/index.js'));

describe('sanbox serve (single process): SIGKILL loses exactly the unflushed writes', () => {
  let dir: string;
  let proc: ChildProcess | undefined;
  let client: NbdClient | undefined;

  const start = async () => {
    const l = await launchSanbox<{ nbd: { port: number }; api: { url: string } }>(
      ['serve', '--dir', dir, '--name', 'solo', '--port', '0', '--api-port', '0', '--json', '-q', '--lun', 'disk=16M'],
      'sanbox serve',
    );
    proc = l.proc;
    return { url: l.ready.api.url, uri: `nbd://127.0.0.1:${l.ready.nbd.port}/disk` };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sanbox-unflushed-serve-'));
  });
  afterEach(() => client?.destroy());
  afterAll(async () => {
    if (proc) await stopProcess(proc);
    await rm(dir, { recursive: true, force: true });
  });

  it('flushed and FUA blocks survive the crash and the restart; the blocks after the flush are gone', async () => {
    const first = await start();
    const set = await runSanbox(['fault', 'disk', 'solo', 'disk', '--lose-unflushed', '--json', '--api', first.url]);
    expect(set.code, set.err).toBe(0);
    expect(set.json.diskFault).toMatchObject({ spec: { loseUnflushed: true, errors: [] }, unflushedBytes: 0 });
    expect(set.json.diskFault.summary).toMatch(/loses unflushed writes at a crash/);

    client = await NbdClient.connect(first.uri);
    for (let i = 0; i < 4; i++) await client.write(i * BLOCK, block(0xa0 + i));
    await client.flush();
    for (let i = 4; i < 8; i++) await client.write(i * BLOCK, block(0xb0 + i));
    await client.write(8 * BLOCK, block(0xcc), { fua: true });
    for (let i = 0; i < 8; i++) expect((await client.read(i * BLOCK, BLOCK)).equals(block(i < 4 ? 0xa0 + i : 0xb0 + i)), `block ${i} before the crash`).toBe(true);

    const show = await runSanbox(['fault', 'disk', 'solo', 'disk', '--show', '--api', first.url]);
    expect(show.out).toMatch(/8 writes held, 16384 bytes unflushed, 16384 bytes written down at flush/);

    client.destroy();
    await killProcess(proc!);
    const second = await start();
    client = await NbdClient.connect(second.uri);
    for (let i = 0; i < 4; i++) expect((await client.read(i * BLOCK, BLOCK)).equals(block(0xa0 + i)), `flushed block ${i}`).toBe(true);
    for (let i = 4; i < 8; i++) expect((await client.read(i * BLOCK, BLOCK)).equals(block(0)), `unflushed block ${i}`).toBe(true);
    expect((await client.read(8 * BLOCK, BLOCK)).equals(block(0xcc)), 'the FUA block').toBe(true);
    // a fault is not persisted: the new process holds nothing
    const st = await runSanbox(['status', '--json', '--api', second.url]);
    expect(st.json.diskFaults).toEqual([]);
  });

  it('a clear writes what is held down first: a crash after it loses nothing', async () => {
    if (proc) await stopProcess(proc); // the previous test left its second run going
    const { url, uri } = await start();
    const set = await runSanbox(['fault', 'disk', 'solo', 'disk', '--lose-unflushed', '--api', url]);
    expect(set.code, set.err).toBe(0);
    client = await NbdClient.connect(uri);
    await client.write(100 * BLOCK, block(0xdd));
    client.destroy();
    const clear = await runSanbox(['fault', 'disk', 'solo', 'disk', '--clear', '--api', url]);
    expect(clear.code, clear.err).toBe(0);
    expect(clear.out).toMatch(/4096 unflushed bytes written down first/);
    await killProcess(proc!);
    const again = await start();
    client = await NbdClient.connect(again.uri);
    expect((await client.read(100 * BLOCK, BLOCK)).equals(block(0xdd))).toBe(true);
  });
});

describe('two-SP array', () => {
  let a: SpArray;
  let client: NbdClient | undefined;
  beforeAll(async () => {
    a = await startSpArray('duo', { cache: { idleMs: 100 } }); // destage soon after the writes stop
  }, 60_000);
  afterEach(() => client?.destroy());
  afterAll(async () => {
    await a?.stop();
  });

  type Df = { unflushedBytes: number; counters: { unflushed: { held: number; flushedBytes: number } }; sps: { sp: string }[] };
  const diskFault = async () => (await a.api.request<{ diskFault: Df | null }>('GET', '/v1/luns/d0/disk-fault')).diskFault;

  it('the SP cache destages through the fault and flushes; an SP crash loses no acknowledged write', async () => {
    const set = await runSanbox(['fault', 'disk', 'duo', 'd0', '--lose-unflushed', '--api', a.url]);
    expect(set.code, set.err).toBe(0);
    const st = await a.api.status<{ luns: { name: string; currentOwner: string }[] }>();
    const owner = st.luns.find((l) => l.name === 'd0')!.currentOwner as 'A' | 'B';
    const peer = owner === 'A' ? 'B' : 'A';
    client = await NbdClient.connect(`nbd://127.0.0.1:${a.ports[owner]}/d0`);
    for (let i = 0; i < 4; i++) await client.write(i * BLOCK, block(0x10 + i));
    await client.flush();
    for (let i = 4; i < 8; i++) await client.write(i * BLOCK, block(0x10 + i));
    // the cache writes its pages down through the fault layer (held), then flushes them below
    await until(async () => ((await diskFault())?.counters.unflushed.flushedBytes ?? 0) >= 8 * BLOCK, 20_000, 'the cache destaged through the fault layer');
    const df = (await diskFault())!;
    expect(df.counters.unflushed.held).toBeGreaterThan(0);
    expect(df.sps.map((s) => s.sp).sort()).toEqual(['A', 'B']);
    client.destroy();

    const crash = await runSanbox(['fault', 'sp-crash', 'duo', owner, '--api', a.url]);
    expect(crash.code, crash.err).toBe(0);
    client = await NbdClient.connect(`nbd://127.0.0.1:${a.ports[peer]}/d0`);
    for (let i = 0; i < 8; i++) expect((await client.read(i * BLOCK, BLOCK)).equals(block(0x10 + i)), `block ${i} after the crash of SP ${owner}`).toBe(true);
    const clear = await runSanbox(['fault', 'disk', 'duo', 'd0', '--clear', '--api', a.url]);
    expect(clear.code, clear.err).toBe(0);
  }, 90_000);
});
