// Bad clone requests get a clear error and change nothing: no LUN, no snapshot, no clone, no
// copied map appears (unknown source, existing names, invalid names and rates, malformed bodies,
// a read-only array, an array without clones as a two-SP array is).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageArray } from '../../src/array/index.js';
import type { CloneView } from '../../src/clone/index.js';
import { ApiClient, ClientError, ControlServer } from '../../src/control/index.js';
import type { RunningArray } from '../../src/control/service.js';
import { MiB, startCloneArray, tempRoot, waitClone } from './helpers.js';

let root: ReturnType<typeof tempRoot>;
let run: RunningArray;
let api: ApiClient;

beforeEach(async () => {
  root = tempRoot('sanbox-clone-bad-');
  ({ run, api } = await startCloneArray(join(root.path, 'alpha'), [
    { name: 'disk0', size: 4 * MiB },
    { name: 'disk1', size: 4 * MiB },
  ]));
});
afterEach(async () => {
  await run?.close(200);
  root.cleanup();
});

/** Everything a create could have changed. */
async function state(): Promise<unknown> {
  const dir = join(root.path, 'alpha');
  return {
    luns: run.array.listLuns().map((l) => `${l.id}:${l.name}`),
    snapshots: run.snapshots!.list().map((s) => s.export),
    clones: (await api.listClones<CloneView>()).clones.map((c) => c.name),
    maps: existsSync(join(dir, 'clone')) ? readdirSync(join(dir, 'clone')) : [],
    images: readdirSync(dir).filter((f) => f.endsWith('.img')),
  };
}

async function refused(body: unknown, status: number, code: string, text: RegExp): Promise<void> {
  const before = await state();
  const e = await api.request('POST', '/v1/clones', body).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, JSON.stringify(body)).toBeInstanceOf(ClientError);
  expect({ status: (e as ClientError).status, code: (e as ClientError).code }, (e as ClientError).message).toEqual({ status, code });
  expect((e as ClientError).message).toMatch(text);
  expect(await state(), `${JSON.stringify(body)} changed something`).toEqual(before);
}

describe('bad clone requests change nothing', () => {
  it('unknown sources, existing and invalid names, bad rates, malformed bodies', async () => {
    await api.createSnapshot('disk0', { name: 's1' });
    await api.createClone({ name: 'c0', source: 'disk1', rate: '1G' });
    await waitClone(api, 'c0', 'completed');
    await refused({ name: 'c1', source: 'nope' }, 404, 'not-found', /no LUN "nope"/);
    await refused({ name: 'c1', source: 99 }, 404, 'not-found', /no LUN 99/);
    await refused({ name: 'c1', source: 'disk0@nope' }, 404, 'not-found', /LUN disk0 has no snapshot "nope"/);
    await refused({ name: 'c1', source: 'nope@s1' }, 404, 'not-found', /no LUN "nope"/);
    await refused({ name: 'disk1', source: 'disk0' }, 409, 'exists', /a LUN named disk1 already exists/);
    await refused({ name: 'c0', source: 'disk0' }, 409, 'exists', /clone c0 already exists/);
    await refused({ name: 'a/b', source: 'disk0' }, 400, 'invalid-argument', /clone name "a\/b" is invalid/);
    await refused({ name: 'x'.repeat(59), source: 'disk0' }, 400, 'invalid-argument', /1 to 58 characters/);
    await refused({ name: '.', source: 'disk0' }, 400, 'invalid-argument', /clone name "\." is invalid: .*\(not \. or \.\.;/);
    await refused({ name: '..', source: 'disk0' }, 400, 'invalid-argument', /clone name "\.\." is invalid: .*\(not \. or \.\.;/);
    await refused({ name: '', source: 'disk0' }, 400, 'invalid-argument', /name must be a non-empty string/);
    await refused({ name: 'c1', source: 'disk0', rate: 0 }, 400, 'invalid-argument', /rate must be a positive rate/);
    await refused({ name: 'c1', source: 'disk0', rate: 'fast' }, 400, 'invalid-argument', /rate must be a positive rate/);
    await refused({ name: 'c1' }, 400, 'invalid-argument', /missing field source/);
    await refused({ name: 'c1', source: 'disk0', size: 5 }, 400, 'invalid-argument', /unknown field size/);
    await refused({ name: 'c1', source: { lun: 0 } }, 400, 'invalid-argument', /source must be a LUN name or id/);
    // A clone's source snapshot name is taken already: the create is undone.
    await api.createSnapshot('disk0', { name: 'clone-c9' });
    await refused({ name: 'c9', source: 'disk0' }, 409, 'exists', /cannot take the source snapshot of clone c9: LUN disk0 already has a snapshot "clone-c9"/);
  });

  it('status, rate, resume and delete of an unknown clone are 404; bad rates and queries 400', async () => {
    for (const call of [() => api.getClone('nope'), () => api.setCloneRate('nope', '1M'), () => api.resumeClone('nope'), () => api.deleteClone('nope')]) {
      await expect(call()).rejects.toMatchObject({ status: 404, code: 'not-found' });
    }
    await api.createClone({ name: 'c1', source: 'disk0', rate: '1M' });
    await expect(api.setCloneRate('c1', 0)).rejects.toMatchObject({ status: 400, code: 'invalid-argument' });
    await expect(api.request('PATCH', '/v1/clones/c1', { rate: '1M', name: 'x' })).rejects.toMatchObject({ status: 400, code: 'invalid-argument' });
    await expect(api.request('DELETE', '/v1/clones/c1?keep=true')).rejects.toMatchObject({ status: 400, code: 'invalid-argument' });
    expect((await api.getClone<CloneView>('c1')).clone.rateBytesPerSec).toBe(MiB);
  });

  it('a read-only array refuses to create clones', async () => {
    await run.close(200);
    ({ run, api } = await startCloneArray(join(root.path, 'alpha'), [], { readOnly: true }));
    await refused({ name: 'c1', source: 'disk0' }, 409, 'read-only', /read-only: cannot create clones/);
  });

  it('an API server started without the array\'s clones answers 501 unsupported on every clone route', async () => {
    const arr = await StorageArray.open({ name: 'bravo', dir: join(root.path, 'bravo'), noSync: true });
    const srv = new ControlServer({ array: arr });
    const { url } = await srv.listen();
    try {
      const c = new ApiClient({ url });
      for (const call of [() => c.listClones(), () => c.createClone({ name: 'c1', source: 'disk0' }), () => c.getClone('c1'), () => c.setCloneRate('c1', '1M'), () => c.deleteClone('c1'), () => c.resumeClone('c1')]) {
        await expect(call()).rejects.toMatchObject({ status: 501, code: 'unsupported', message: expect.stringMatching(/without the array's clones/) });
      }
    } finally {
      await srv.close();
      await arr.close();
    }
  });
});
