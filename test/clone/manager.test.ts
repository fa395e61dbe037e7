// Clones on a single-process array in this process (the array service, its API over HTTP, real
// image files): a clone of a live LUN is the LUN at `clone create` while a writer keeps changing
// it, it completes and then depends on nothing; a clone of a snapshot keeps that snapshot (and
// its LUN) from being deleted while it copies; a restart resumes the copy; delete stops it.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CloneView } from '../../src/clone/index.js';
import type { RunningArray } from '../../src/control/service.js';
import { ClientError, type ApiClient } from '../../src/control/index.js';
import type { SnapshotView } from '../../src/snapshot/index.js';
import { hostDevice, KiB, MiB, startCloneArray, tempRoot, waitClone } from './helpers.js';
import { seededRandom, type Random } from '../support/random.js';

const SIZE = 16 * MiB;
const BLOCK = 64 * KiB;
const BLOCKS = SIZE / BLOCK;
const INITIAL = 0xffffffff;

let root: ReturnType<typeof tempRoot>;
let run: RunningArray;
let api: ApiClient;

beforeEach(async () => {
  root = tempRoot('sanbox-clone-svc-');
  ({ run, api } = await startCloneArray(root.path, [
    { name: 'disk0', size: SIZE },
    { name: 'disk1', size: 4 * MiB },
  ]));
});
afterEach(async () => {
  await run?.close(200);
  root.cleanup();
});

const block = (tag: number) => {
  const b = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i += 4) b.writeUInt32LE(tag, i);
  return b;
};
const tagOf = (b: Buffer, at: number) => b.readUInt32LE(at);

/** A single writer of whole blocks, each tagged with its write number, until stopped. */
function writer(dev: ReturnType<typeof hostDevice>, rnd: Random): { log: number[]; stop(): Promise<void> } {
  const log: number[] = [];
  let stopping = false;
  const done = (async () => {
    while (!stopping) {
      const b = Math.floor(rnd() * BLOCKS);
      await dev.write(b * BLOCK, block(log.length));
      log.push(b);
      await new Promise((r) => setTimeout(r, 1));
    }
  })();
  return {
    log,
    stop: async () => {
      stopping = true;
      await done;
    },
  };
}

/** The blocks' tags after the first `k` writes of `log`. */
function prefixState(log: number[], k: number): number[] {
  const tags = new Array<number>(BLOCKS).fill(INITIAL);
  for (let i = 0; i < k; i++) tags[log[i]!] = i;
  return tags;
}

function events(type: string): Array<Record<string, unknown>> {
  return run.array.eventsSince(0).filter((e) => e.type === type) as unknown as Array<Record<string, unknown>>;
}

async function rejects(p: Promise<unknown>, status: number, code: string, text?: RegExp): Promise<ClientError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, `expected ${status} ${code}`).toBeInstanceOf(ClientError);
  const ce = e as ClientError;
  expect({ status: ce.status, code: ce.code }, ce.message).toEqual({ status, code });
  if (text) expect(ce.message).toMatch(text);
  return ce;
}

describe('clones of a single-process array', () => {
  it('a clone of a live LUN is the LUN at clone create (a prefix of a writer\'s writes), completes, and then depends on nothing', async () => {
    const rnd = seededRandom(424242);
    const disk0 = hostDevice(run, 'disk0');
    for (let b = 0; b < BLOCKS; b++) await disk0.write(b * BLOCK, block(INITIAL));
    const w = writer(disk0, rnd);
    await new Promise((r) => setTimeout(r, 150));
    const made = (await api.createClone<CloneView>({ name: 'c1', source: 'disk0', rate: '8M' })).clone;
    expect(made).toMatchObject({ name: 'c1', state: 'copying', totalBytes: SIZE, source: { lunName: 'disk0', snapshot: 'clone-c1', internal: true, export: 'disk0@clone-c1' } });
    const c1 = hostDevice(run, 'c1');
    // Usable at once: the clone's own writes while it copies (a whole block, and 4 KiB of another).
    await c1.write(7 * BLOCK, block(0xc0ffee));
    await c1.write(200 * BLOCK + 8 * KiB, Buffer.alloc(4 * KiB, 0xab));
    await new Promise((r) => setTimeout(r, 400));
    const mid = (await api.getClone<CloneView>('c1')).clone;
    expect(mid.state).toBe('copying');
    expect(mid.copiedBytes).toBeGreaterThan(0);
    expect(mid.copiedBytes).toBeLessThan(SIZE);
    expect(mid.etaSec).toBeGreaterThan(0);
    const done = await waitClone(api, 'c1', 'completed');
    await w.stop();
    expect(w.log.length).toBeGreaterThan(100);
    expect(done).toMatchObject({ copiedBytes: SIZE, percent: 100 });
    expect(done.copyMs).toBeGreaterThan(1000);

    const got = await c1.read(0, SIZE);
    let k = 0;
    for (let b = 0; b < BLOCKS; b++) if (b !== 7 && b !== 200 && tagOf(got, b * BLOCK) !== INITIAL) k = Math.max(k, tagOf(got, b * BLOCK) + 1);
    expect(k, 'the clone holds writes of the writer from before the create').toBeGreaterThan(0);
    expect(k, 'the writer went on after the create').toBeLessThan(w.log.length);
    const want = prefixState(w.log, k);
    for (let b = 0; b < BLOCKS; b++) {
      const at = b * BLOCK;
      if (b === 7) expect(got.subarray(at, at + BLOCK).equals(block(0xc0ffee))).toBe(true);
      else if (b === 200) {
        const exp = block(want[b]!);
        exp.fill(0xab, 8 * KiB, 12 * KiB);
        expect(got.subarray(at, at + BLOCK).equals(exp), 'a partial clone write: the rest of its region is the source at clone time').toBe(true);
      } else expect(got.subarray(at, at + BLOCK).equals(block(want[b]!)), `block ${b}: tag ${tagOf(got, at)}, want ${want[b]} (prefix ${k})`).toBe(true);
    }

    // Independent: no internal snapshot, no copied map, and the source can go.
    expect(run.snapshots!.list().map((s) => s.name)).not.toContain('clone-c1');
    expect(existsSync(join(root.path, 'clone'))).toBe(true);
    expect(readdirSync(join(root.path, 'clone'))).toEqual([]);
    await run.array.deleteLun('disk0');
    expect((await c1.read(0, SIZE)).equals(got)).toBe(true);
    expect(events('clone.created')).toHaveLength(1);
    expect(events('clone.progress').length).toBeGreaterThan(0);
    expect(events('clone.completed')[0]).toMatchObject({ clone: 'c1', source: 'disk0@clone-c1', bytes: SIZE });
  });

  it('a clone of LUN@SNAP keeps the snapshot and both LUNs from changing under it, with reasons; after the copy they are free', async () => {
    const disk0 = hostDevice(run, 'disk0');
    await disk0.write(0, Buffer.alloc(SIZE, 0x11));
    await api.createSnapshot('disk0', { name: 's1' });
    await disk0.write(0, Buffer.alloc(SIZE, 0x22));
    await api.createClone<CloneView>({ name: 'c2', source: 'disk0@s1', rate: '1M' });

    await rejects(api.deleteSnapshot('disk0', 's1', true), 409, 'busy', /cannot be deleted: clone c2 copies from it/);
    await rejects(api.deleteLun('disk0', true), 409, 'busy', /source of clone c2/);
    await rejects(api.growLun('disk0', 2 * SIZE), 409, 'busy', /source of clone c2/);
    await rejects(api.deleteLun('c2', true), 409, 'busy', /it is clone c2, still copying/);
    await rejects(api.growLun('c2', 2 * SIZE), 409, 'busy', /it is clone c2/);
    await rejects(api.createSnapshot('c2', { name: 'x' }), 409, 'busy', /snapshot it once the copy has completed/);
    await rejects(api.createClone({ name: 'c3', source: 'c2' }), 409, 'busy', /itself clone c2, still copying/);
    await rejects(api.deleteClone('c2', { keepLun: true }), 409, 'busy', /no usable LUN/);
    await rejects(api.resumeClone('c2'), 409, 'busy', /copying already/);

    const fast = (await api.setCloneRate<CloneView>('c2', '512M')).clone;
    expect(fast.rateBytesPerSec).toBe(512 * MiB);
    await waitClone(api, 'c2', 'completed');
    expect((await hostDevice(run, 'c2').read(0, SIZE)).equals(Buffer.alloc(SIZE, 0x11))).toBe(true);
    // A user's snapshot stays after the copy; now it, and the LUNs, may go.
    expect((await api.listSnapshots<SnapshotView>('disk0')).snapshots.map((s) => s.name)).toEqual(['s1']);
    await rejects(api.setCloneRate('c2', '1M'), 409, 'busy', /has completed/);
    await api.createSnapshot('c2', { name: 'later' });
    await api.deleteSnapshot('c2', 'later');
    await api.deleteSnapshot('disk0', 's1');
    await api.deleteLun('disk0');
    // delete --keep-lun of a completed clone forgets it, the LUN stays.
    const kept = (await api.deleteClone<CloneView>('c2', { keepLun: true })).deleted;
    expect(kept.state).toBe('completed');
    expect((await api.listClones()).clones).toEqual([]);
    expect(run.array.getLunByName('c2')).toBeDefined();
    expect(events('clone.rate-changed')[0]).toMatchObject({ clone: 'c2', rateBytesPerSec: 512 * MiB, previousBytesPerSec: MiB });
    expect(events('clone.deleted')[0]).toMatchObject({ clone: 'c2', keptLun: true });
  });

  it('delete of a clone under way stops the copy and removes its LUN, its source snapshot and its map', async () => {
    await hostDevice(run, 'disk0').write(0, Buffer.alloc(SIZE, 0x33));
    await api.createClone({ name: 'c4', source: 'disk0', rate: '1M' });
    const lunId = run.array.getLunByName('c4')!.id;
    expect(existsSync(join(root.path, 'clone', `lun${lunId}.copied`))).toBe(true);
    expect(run.snapshots!.list().map((s) => `${s.export}:${s.kind}`)).toEqual(['disk0@clone-c4:clone-source']);
    const gone = (await api.deleteClone<CloneView>('c4')).deleted;
    expect(gone.state).toBe('copying');
    expect(run.array.getLunByName('c4')).toBeUndefined();
    expect(run.snapshots!.list()).toEqual([]);
    expect(existsSync(join(root.path, 'clone', `lun${lunId}.copied`))).toBe(false);
    await rejects(api.getClone('c4'), 404, 'not-found');
    await api.deleteLun('disk0');
    expect(events('clone.deleted')[0]).toMatchObject({ clone: 'c4', state: 'copying', keptLun: false });
  });

  it('a restart of the array in the middle of a copy resumes it where it was; the clone\'s writes survive', async () => {
    const disk0 = hostDevice(run, 'disk0');
    const data = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4) data.writeUInt32LE(i, i);
    await disk0.write(0, data);
    await api.createClone({ name: 'c5', source: 'disk0', rate: '4M' });
    await hostDevice(run, 'c5').write(SIZE - 3 * KiB, Buffer.alloc(2 * KiB, 0xee));
    data.fill(0xee, SIZE - 3 * KiB, SIZE - KiB);
    await disk0.write(0, Buffer.alloc(MiB, 0x99)); // after the clone's point in time
    await new Promise((r) => setTimeout(r, 800));
    const before = (await api.getClone<CloneView>('c5')).clone.copiedBytes;
    expect(before).toBeGreaterThan(0);
    await run.close(200);
    ({ run, api } = await startCloneArray(root.path, []));
    const resumed = events('clone.resumed')[0];
    expect(resumed).toMatchObject({ clone: 'c5', after: 'a restart' });
    // An orderly stop commits the copied map: nothing copied is copied again.
    expect(resumed!.copiedBytes as number).toBeGreaterThanOrEqual(before);
    expect(resumed!.copiedBytes as number).toBeLessThan(SIZE);
    expect((await hostDevice(run, 'c5').read(0, SIZE)).equals(data)).toBe(true);
    await api.setCloneRate('c5', '1G');
    await waitClone(api, 'c5', 'completed');
    expect((await hostDevice(run, 'c5').read(0, SIZE)).equals(data)).toBe(true);
    expect(run.snapshots!.list()).toEqual([]);
  });
});
