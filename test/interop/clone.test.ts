// Clones with real clients: `sanbox clone create` of a LUN while qemu-io writers keep
// overwriting it; the copy taken at clone time (qemu-img convert of the clone's source snapshot
// export LUN@clone-NAME) is a point in time of the writers; the clone is read and written with
// qemu-io and compared with qemu-img while it copies; after the copy `qemu-img compare` finds it
// equal to the copy taken at clone time (with its own writes), and the source different. Then a
// SIGKILL of the server in the middle of a copy: after a restart the copy resumes and completes,
// and the clone's acknowledged write is there. The second pass (SANBOX_INTEROP_SPS=1) runs it on a
// two-SP array: the clone's reads and writes cross the chassis, the crash is a held-up power loss.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KiB, MiB, makeMixedImage, mustRun, REPO, rmrf, run, SERVER_KIND, startServer, tempDir, waitFor, type NbdServer } from './harness.js';

const SIZE = 64 * MiB;
const BLOCK = 64 * KiB;
const LUNS = [{ name: 'disk', size: SIZE }];
const BIN = join(REPO, 'bin', 'sanbox.js');
/** The clone's own write while it copies: 8 KiB inside a 256 KiB region far ahead of the copy (copy-before-write). */
const OWN = { offset: 48 * MiB + 4 * KiB, length: 8 * KiB };
const skip = SERVER_KIND !== 'sanbox';
/**
 * The first clone's copy rate: its source snapshot is read out whole while the copy runs (the
 * completed copy deletes it). Through two SPs every read and write crosses the chassis, so the
 * read-out takes longer there under the writers: a slower copy.
 */
const RATE = process.env.SANBOX_INTEROP_SPS === '1' ? '4M' : '8M';

let srv: NbdServer;
let dir: string;
let work: string;

async function sanbox(...args: string[]): Promise<any> {
  const r = await mustRun(process.execPath, [BIN, ...args, '--api', (await srv.apiUrl())!, '--json'], { server: srv });
  return JSON.parse(r.stdout);
}

/** The clone's status from the API (polled often: no CLI process per look). */
async function cloneState(name: string): Promise<{ state: string; percent: number; copiedBytes: number }> {
  const r = await fetch(`${(await srv.apiUrl())!}/v1/clones/${name}`);
  return ((await r.json()) as { clone: { state: string; percent: number; copiedBytes: number } }).clone;
}

/** qemu-io writers: batch k writes 64 KiB blocks at random offsets with pattern k+1; remembers when each batch started and ended. */
function writers(uri: string): { batches: Array<{ blocks: number[]; start: number; end?: number }>; stop(): Promise<void> } {
  const batches: Array<{ blocks: number[]; start: number; end?: number }> = [];
  let stopping = false;
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) % 0x7fffffff) / 0x7fffffff;
  const done = (async () => {
    while (!stopping && batches.length < 250) {
      const blocks = Array.from({ length: 24 }, () => Math.floor(rnd() * (SIZE / BLOCK)));
      const b = { blocks, start: Date.now() } as (typeof batches)[number];
      batches.push(b);
      const k = batches.length; // pattern
      await mustRun('qemu-io', ['-f', 'raw', uri, ...blocks.flatMap((x) => ['-c', `write -P ${k} ${x * BLOCK} ${BLOCK}`])], { server: srv });
      b.end = Date.now();
    }
  })();
  return {
    batches,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

describe.skipIf(skip)('clones with real clients', () => {
  beforeAll(async () => {
    dir = tempDir();
    work = tempDir();
    srv = await startServer({ luns: LUNS, dir });
    const src = join(work, 'initial.img');
    makeMixedImage(src, SIZE);
    await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'raw', src, srv.uri('disk')], { server: srv, timeoutMs: 120_000 });
  });
  afterAll(async () => {
    await srv?.stop();
    rmrf(dir);
    rmrf(work);
  });

  it('a clone of a LUN under writers equals the LUN at clone create, and is usable while it copies', async () => {
    const w = writers(srv.uri('disk'));
    try {
      await cloneUnderWriters(w);
    } finally {
      await w.stop();
    }
  });

  async function cloneUnderWriters(w: ReturnType<typeof writers>): Promise<void> {
    await waitFor(() => w.batches.filter((b) => b.end).length >= 3, 20_000, 'the writers to get going');
    const sent = Date.now();
    const made = (await sanbox('clone', 'create', 'disk', 'c1', '--rate', RATE)).clone;
    const answered = Date.now();
    expect(made).toMatchObject({ name: 'c1', state: 'copying', source: { export: 'disk@clone-c1' } });
    // The copy taken at clone time: the clone's source snapshot, read out at once.
    const ref = join(work, 'ref.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('disk@clone-c1'), ref], { server: srv, timeoutMs: 60_000 });

    // Usable while copying: a partial-region write and a read back through qemu-io, and the
    // whole clone (copied regions from its image, the rest from its source) compares equal.
    expect((await cloneState('c1')).state).toBe('copying');
    const own = `${OWN.offset} ${OWN.length}`;
    const io = await mustRun('qemu-io', ['-f', 'raw', srv.uri('c1'), '-c', `write -P 0xcc ${own}`, '-c', `read -P 0xcc ${own}`], { server: srv });
    expect(io.stdout).not.toMatch(/fail/i);
    await mustRun('qemu-io', ['-f', 'raw', ref, '-c', `write -P 0xcc ${own}`]);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', ref, srv.uri('c1')], { server: srv, timeoutMs: 60_000 });
    const mid = await cloneState('c1');
    expect(mid.state, `the copy should still run (${RATE}/s over 64M)`).toBe('copying');
    expect(mid.copiedBytes).toBeLessThan(SIZE);

    await waitFor(async () => (await cloneState('c1')).state === 'completed', 60_000, 'the copy to complete');
    await w.stop();
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', ref, srv.uri('c1')], { server: srv, timeoutMs: 60_000 });
    const differs = await run('qemu-img', ['compare', '-q', '-f', 'raw', '-F', 'raw', ref, srv.uri('disk')], { timeoutMs: 60_000 });
    expect(differs.code, 'the writers changed the source after the clone was made').toBe(1);
    const list = await mustRun('nbdinfo', ['--list', '--json', srv.uri('')], { server: srv });
    expect(list.stdout).not.toContain('disk@clone-c1');

    // The reference is a point in time of the writers: every 64 KiB block written with a pattern
    // holds a batch that started before the create was answered, and not one older than the last
    // batch writing it that had finished before the create was sent.
    const bytes = readFileSync(ref);
    let checked = 0;
    for (let blk = 0; blk < SIZE / BLOCK; blk++) {
      if (blk * BLOCK < OWN.offset + OWN.length && (blk + 1) * BLOCK > OWN.offset) continue; // the clone's own write
      const k = bytes[blk * BLOCK]!;
      const writers_ = w.batches.map((b, i) => ({ ...b, k: i + 1 })).filter((b) => b.blocks.includes(blk));
      const floor = writers_.filter((b) => b.end !== undefined && b.end < sent).at(-1);
      if (!floor) continue;
      checked++;
      expect(bytes.subarray(blk * BLOCK, (blk + 1) * BLOCK).every((x) => x === k), `block ${blk} is one write`).toBe(true);
      expect(k, `block ${blk}`).toBeGreaterThanOrEqual(floor.k);
      expect(w.batches[k - 1]!.start, `block ${blk} holds batch ${k}, started after the create was answered`).toBeLessThanOrEqual(answered);
    }
    expect(checked).toBeGreaterThan(20);
  }

  it('a SIGKILL of the server in the middle of a copy: after a restart it resumes, completes, and lost nothing', async () => {
    // Data in the region of the clone's own write below, so a missing copy-before-write shows.
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `write -P 0x5e ${SIZE - MiB} ${MiB}`], { server: srv });
    const made = (await sanbox('clone', 'create', 'disk', 'c2', '--rate', '4M')).clone;
    expect(made.state).toBe('copying');
    const ref = join(work, 'ref2.img');
    await mustRun('qemu-img', ['convert', '-f', 'raw', '-O', 'raw', srv.uri('disk@clone-c2'), ref], { server: srv, timeoutMs: 60_000 });
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('c2'), '-c', `write -P 0xdd ${SIZE - 100 * KiB} ${40 * KiB}`], { server: srv });
    await mustRun('qemu-io', ['-f', 'raw', ref, '-c', `write -P 0xdd ${SIZE - 100 * KiB} ${40 * KiB}`]);
    await mustRun('qemu-io', ['-f', 'raw', srv.uri('disk'), '-c', `write -P 0x77 0 ${4 * MiB}`], { server: srv });
    await waitFor(async () => (await cloneState('c2')).copiedBytes >= 4 * MiB, 20_000, 'some copying');
    if (process.env.SANBOX_INTEROP_SPS === '1') {
      // Two SPs: killing the whole array would be a power loss with no hold-up (every cached
      // write lost, the LUNs cache dirty). A crash that keeps its promises is a power failure
      // the battery holds up: the SPs dump their caches to the vault, then the chassis dies.
      const r = await fetch(`${(await srv.apiUrl())!}/v1/faults/power-fail`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      expect(r.status, await r.text()).toBe(200);
    }
    process.kill(srv.pid, 'SIGKILL');
    await waitFor(() => srv.exited(), 10_000, 'the server to die');
    srv = await startServer({ luns: LUNS, dir });
    const after = await cloneState('c2');
    expect(after.state).toBe('copying');
    expect(after.copiedBytes).toBeGreaterThan(0);
    expect(after.copiedBytes).toBeLessThan(SIZE);
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', ref, srv.uri('c2')], { server: srv, timeoutMs: 60_000 });
    await sanbox('clone', 'set', 'c2', '--rate', '1G');
    await waitFor(async () => (await cloneState('c2')).state === 'completed', 60_000, 'the copy to complete');
    await mustRun('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', ref, srv.uri('c2')], { server: srv, timeoutMs: 60_000 });
    const del = await sanbox('clone', 'delete', 'c2');
    expect(del.deleted.name).toBe('c2');
  });
});
