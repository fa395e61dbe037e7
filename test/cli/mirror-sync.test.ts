// What `mirror wait` (and `mirror sync --wait`) makes of a secondary image reading after reading
// (src/cli/mirror-sync.ts): in sync, syncing with its bytes, pending, or stopped where nothing
// resumes it, believed only after two readings in a row; the bytes of a finished resync stay counted.
import { describe, expect, it } from 'vitest';
import { imageWait, SyncTally } from '../../src/cli/mirror-sync.js';
import type { ImageView } from '../../src/replication/mirror/types.js';
import { view } from '../support/fake-mirrors.js';

const MiB = 2 ** 20;
/** The fake's secondary (bravo:0, SYNCHRONIZING, a resync at 12.5 of 64 MiB) with changes. */
const secondary = (over: Partial<ImageView> = {}): ImageView => ({ ...view('m0').images[1]!, ...over });
const inSync = secondary({ resync: null, state: 'SYNCHRONIZED', syncProgress: null });

describe('imageWait', () => {
  it('in sync, syncing, pending, stopped', () => {
    expect(imageWait(inSync)).toEqual({ kind: 'in-sync' });
    expect(imageWait(secondary({ resync: null, state: 'CONSISTENT' }))).toEqual({ kind: 'in-sync' });
    expect(imageWait(secondary())).toEqual({ kind: 'syncing', done: 12.5 * MiB, total: 64 * MiB });
    expect(imageWait(secondary({ resync: null }))).toEqual({ kind: 'pending' }); // SYNCHRONIZING, its resync about to start
    // recovery auto: an unreachable or fractured image resyncs when its link is back
    expect(imageWait(secondary({ resync: null, state: 'CONSISTENT', reachability: 'UNREACHABLE' }))).toEqual({ kind: 'pending' });
    expect(imageWait(secondary({ resync: null, state: 'CONSISTENT', fractured: true, fractureReason: 'link' }))).toEqual({ kind: 'pending' });
    // recovery manual, or UNSYNCHRONIZED with nothing running: nothing resumes it
    expect(imageWait(secondary({ resync: null, state: 'CONSISTENT', fractured: true, fractureReason: 'admin', recoveryPolicy: 'manual' }))).toEqual({
      kind: 'stopped',
      why: 'fractured (admin), recovery manual: sanbox mirror sync starts it once it is reachable',
    });
    expect(imageWait(secondary({ resync: null, reachability: 'UNREACHABLE', linkError: 'link down', recoveryPolicy: 'manual' }))).toMatchObject({ kind: 'stopped', why: /^unreachable \(link down\)/ });
    expect(imageWait(secondary({ resync: null, state: 'UNSYNCHRONIZED' }))).toMatchObject({ kind: 'stopped', why: /UNSYNCHRONIZED with no synchronization running/ });
  });
});

describe('SyncTally', () => {
  it('no total before a resync was seen; a finished resync stays counted as done', () => {
    const t = new SyncTally();
    expect(t.read([secondary({ resync: null })])).toEqual({ done: 0, total: undefined, pending: ['bravo:0 SYNCHRONIZING'] });
    expect(t.read([secondary()])).toEqual({ done: 12.5 * MiB, total: 64 * MiB, pending: ['bravo:0 SYNCHRONIZING'] });
    expect(t.read([inSync])).toEqual({ done: 64 * MiB, total: 64 * MiB, pending: [] });
  });

  it('a stop is believed after two readings in a row, not after one', () => {
    const stopped = secondary({ resync: null, state: 'UNSYNCHRONIZED' });
    const t = new SyncTally();
    expect(t.read([stopped]).stopped).toBeUndefined();
    expect(t.read([secondary({ resync: null })]).stopped).toBeUndefined(); // its resync was about to start after all
    expect(t.read([stopped]).stopped).toBeUndefined();
    expect(t.read([stopped]).stopped).toMatch(/^bravo:0: UNSYNCHRONIZED with no synchronization running/);
  });
});
