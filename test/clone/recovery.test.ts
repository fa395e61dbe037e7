// What a clone does after things went wrong: a create or a delete interrupted by a crash is
// finished at the next open, a lost copied map refuses I/O rather than guess, a copy stopped by
// a disk error resumes on `clone resume`, and a source snapshot dropped by its full store fails
// the clone, which can still be deleted with everything it left.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageArray } from '../../src/array/index.js';
import { CLONE_FORMAT, type CloneMetadata, type CloneView } from '../../src/clone/index.js';
import type { ApiClient } from '../../src/control/index.js';
import type { RunningArray } from '../../src/control/service.js';
import { MetadataStore } from '../../src/metadata/index.js';
import { hostDevice, KiB, MiB, startCloneArray, tempRoot, waitClone } from './helpers.js';

const SIZE = 4 * MiB;

let root: ReturnType<typeof tempRoot>;
let run: RunningArray;
let api: ApiClient;

beforeEach(async () => {
  root = tempRoot('sanbox-clone-rec-');
  ({ run, api } = await startCloneArray(root.path, [{ name: 'disk0', size: SIZE }]));
  await hostDevice(run, 'disk0').write(0, Buffer.alloc(SIZE, 0x44));
});
afterEach(async () => {
  await run?.close(200);
  root.cleanup();
});

const events = (type: string) => run.array.eventsSince(0).filter((e) => e.type === type) as unknown as Array<Record<string, unknown>>;

async function restart(): Promise<void> {
  await run.close(200);
  ({ run, api } = await startCloneArray(root.path, []));
}

async function writeRecords(meta: CloneMetadata): Promise<void> {
  const store = new MetadataStore<CloneMetadata>(root.path, { basename: 'clones', noSync: true });
  await store.load();
  await store.save(meta);
}

describe('clone recovery', () => {
  it('a create interrupted after its source snapshot is finished at the next open; one interrupted before is forgotten', async () => {
    await run.snapshots!.create([0], 'clone-cx', { kind: 'clone-source' });
    await run.close(200);
    const rec = (name: string) => ({ name, source: { lun: 0, lunName: 'disk0', snapshot: `clone-${name}`, internal: true }, size: SIZE, blockSize: 512, regionSize: 256 * KiB, rateBytesPerSec: 1 << 30, state: 'creating' as const, created: new Date().toISOString() });
    await writeRecords({ format: CLONE_FORMAT, clones: [rec('cx'), rec('cy')] });
    ({ run, api } = await startCloneArray(root.path, []));
    expect(events('clone.resumed')[0]).toMatchObject({ clone: 'cx', after: 'an interrupted create' });
    expect(events('clone.deleted')[0]).toMatchObject({ clone: 'cy', reason: expect.stringMatching(/had not taken its source snapshot/) });
    await waitClone(api, 'cx', 'completed');
    expect((await hostDevice(run, 'cx').read(0, SIZE)).equals(Buffer.alloc(SIZE, 0x44))).toBe(true);
    expect(run.snapshots!.list()).toEqual([]);
    expect((await api.listClones<CloneView>()).clones.map((c) => c.name)).toEqual(['cx']);
  });

  it('a clone whose LUN is gone at open (an interrupted delete) is forgotten with its source snapshot', async () => {
    await api.createClone({ name: 'c6', source: 'disk0', rate: '64K' });
    await run.close(200);
    // The delete got as far as the LUN (no clone guard here: the array alone).
    const arr = await StorageArray.open({ name: 'alpha', dir: root.path, noSync: true });
    await arr.deleteLun('c6');
    await arr.close();
    ({ run, api } = await startCloneArray(root.path, []));
    expect(events('clone.deleted')[0]).toMatchObject({ clone: 'c6', reason: expect.stringMatching(/its LUN is gone/) });
    expect((await api.listClones()).clones).toEqual([]);
    expect(run.snapshots!.list()).toEqual([]);
  });

  it('a lost copied map fails the clone and refuses its I/O (never a guess); delete still works', async () => {
    await api.createClone({ name: 'c7', source: 'disk0', rate: '64K' });
    const lunId = run.array.getLunByName('c7')!.id;
    await run.close(200);
    writeFileSync(join(root.path, 'clone', `lun${lunId}.copied`), 'garbage');
    ({ run, api } = await startCloneArray(root.path, []));
    const v = (await api.getClone<CloneView>('c7')).clone;
    expect(v.state).toBe('failed');
    expect(v.error).toMatch(/copied map is lost/);
    expect(events('clone.failed')[0]).toMatchObject({ clone: 'c7' });
    await expect(hostDevice(run, 'c7').read(0, 4096)).rejects.toMatchObject({ errno: 'EIO' });
    await expect(api.resumeClone('c7')).rejects.toMatchObject({ status: 409, message: expect.stringMatching(/copied map is lost/) });
    await api.deleteClone('c7');
    expect(run.array.getLunByName('c7')).toBeUndefined();
    expect(run.snapshots!.list()).toEqual([]);
  });

  it('a copy stopped by a disk error says so, I/O goes on, and clone resume finishes it', async () => {
    await api.request('PUT', '/v1/luns/disk0/disk-fault', { errors: 'read', range: `${MiB}:${MiB}` });
    await api.createClone({ name: 'c8', source: 'disk0', rate: '1G' });
    const failed = await waitClone(api, 'c8', 'failed');
    expect(failed.error).toMatch(/EIO/);
    expect(failed.copiedBytes).toBeGreaterThanOrEqual(MiB);
    // The record shows the error first; the event follows once the record is saved.
    for (const deadline = Date.now() + 5000; events('clone.failed').length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    expect(events('clone.failed')[0]).toMatchObject({ clone: 'c8', error: expect.stringMatching(/EIO/) });
    // What was copied reads; a write still works (it copies from the part of the source that reads).
    expect((await hostDevice(run, 'c8').read(0, MiB)).equals(Buffer.alloc(MiB, 0x44))).toBe(true);
    await hostDevice(run, 'c8').write(3 * MiB, Buffer.alloc(4 * KiB, 0x55));
    await api.request('DELETE', '/v1/luns/disk0/disk-fault');
    expect((await api.resumeClone<CloneView>('c8')).clone.state).toBe('copying');
    await waitClone(api, 'c8', 'completed');
    const want = Buffer.alloc(SIZE, 0x44).fill(0x55, 3 * MiB, 3 * MiB + 4 * KiB);
    expect((await hostDevice(run, 'c8').read(0, SIZE)).equals(want)).toBe(true);
  });

  it('a source snapshot dropped by its full store fails the clone; delete removes the clone and the dropped snapshot', async () => {
    await api.configureSnapshotStore('disk0', { storeSize: 256 * KiB, policy: 'invalidate-oldest' });
    await api.createClone({ name: 'c9', source: 'disk0', rate: '1M' });
    // Overwrite more of the source than its snapshot store holds.
    await hostDevice(run, 'disk0').write(0, Buffer.alloc(MiB, 0x66));
    const failed = await waitClone(api, 'c9', 'failed', 10_000);
    expect(failed.error).toMatch(/no longer exists/);
    expect(run.snapshots!.list().map((s) => `${s.name}:${s.state}`)).toEqual(['clone-c9:invalid']);
    await api.deleteClone('c9');
    expect(run.snapshots!.list()).toEqual([]);
    await api.deleteLun('disk0');
  });
});
