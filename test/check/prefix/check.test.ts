/**
 * The prefix check on hand-made states and images (no server): a prefix of the acknowledged order
 * passes with the missing writes and the lag measured; writes in flight may or may not be there;
 * an out-of-order copy, and foreign, torn and misplaced blocks, are violations, each listed; the
 * state file is validated on load.
 */
import { describe, expect, it } from 'vitest';
import { checkPrefixImages, parsePrefixState, PREFIX_BLOCK, prefixBlock, toPrefixFile, type PrefixState } from '../../../src/check/prefix/index.js';

const BLOCKS = 8;
/**
 * Two LUNs. Writes (k: lun/block, dependsOn, ackedAt): 0: 0/0 dep 0 @1000, 1: 1/0 dep 0 @1100,
 * 2: 0/1 dep 2 @1500, 3: 1/1 dep 2 (never acknowledged), 4: 0/2 dep 3 @2000. Ack order 0 1 2 4.
 */
function state(): PrefixState {
  const w = (k: number, lun: number, block: number, dependsOn: number, ackedAt: number | null) => ({ k, lun, block, dependsOn, ackedAt });
  return {
    run: 77,
    blocks: BLOCKS,
    luns: [
      { uri: 'nbd://127.0.0.1/a', name: 'a' },
      { uri: 'nbd://127.0.0.1/b', name: 'b' },
    ],
    seed: 1,
    startedAt: 900,
    savedAt: 2100,
    complete: true,
    writes: [w(0, 0, 0, 0, 1000), w(1, 1, 0, 0, 1100), w(2, 0, 1, 2, 1500), w(3, 1, 1, 2, null), w(4, 0, 2, 3, 2000)],
    ackOrder: [0, 1, 2, 4],
  };
}

function images(st: PrefixState, ks: number[]): Buffer[] {
  const imgs = st.luns.map(() => Buffer.alloc(BLOCKS * PREFIX_BLOCK));
  for (const k of ks) {
    const w = st.writes[k]!;
    prefixBlock(st.run, k, w.lun).copy(imgs[w.lun]!, w.block * PREFIX_BLOCK);
  }
  return imgs;
}

describe('prefix check', () => {
  it('everything present: ok, nothing missing, lag 0', () => {
    const st = state();
    const r = checkPrefixImages(st, images(st, [0, 1, 2, 3, 4]));
    expect(r).toMatchObject({ ok: true, present: 5, presentUnacked: 1, missingAcked: 0, prefixLength: 4, lagSeconds: 0, violations: 0 });
  });

  it('a prefix passes and measures what is missing and the lag (RPO)', () => {
    const st = state();
    const r = checkPrefixImages(st, images(st, [0, 1]));
    expect(r).toMatchObject({ ok: true, present: 2, missingAcked: 2, prefixLength: 2, lagSeconds: 0.9 }); // 2000 - 1100 ms
    expect(r.recoveryPointAt).toBe(new Date(1100).toISOString());
    // the unacknowledged write 3 may be there too
    expect(checkPrefixImages(st, images(st, [0, 1, 3])).ok).toBe(true);
    // nothing at all: a prefix of length 0, the lag from the start of the run
    expect(checkPrefixImages(st, images(st, []))).toMatchObject({ ok: true, missingAcked: 4, prefixLength: 0, lagSeconds: 1.1 });
  });

  it('out of order: a write present without one it depended on', () => {
    const st = state();
    const r = checkPrefixImages(st, images(st, [0, 2, 4])); // write 1 (acked before 2 and 4 were issued) skipped
    expect(r.ok).toBe(false);
    expect(r.prefixLength).toBe(1);
    expect(r.violationsByKind).toEqual({ order: 2 });
    expect(r.details.map((d) => [d.write, d.missing])).toEqual([
      [2, 1],
      [4, 1],
    ]);
    expect(r.details[0]!.detail).toBe('write 2 (a) is present, but write 1 (b), acknowledged before 2 was issued, is not: not a prefix');
    // write 3 (never acked) present without write 2, which it depended on: also out of order
    expect(checkPrefixImages(st, images(st, [0, 1, 3])).ok).toBe(true);
    expect(checkPrefixImages(st, images(st, [0, 3])).violationsByKind).toEqual({ order: 1 });
  });

  it('foreign, torn and misplaced blocks', () => {
    const st = state();
    const imgs = images(st, [0, 1, 2, 4]);
    prefixBlock(st.run + 1, 0, 0).copy(imgs[0]!, 5 * PREFIX_BLOCK); // another run
    imgs[1]![0 * PREFIX_BLOCK + 3000] ^= 1; // write 1 torn
    prefixBlock(st.run, 2, 0).copy(imgs[1]!, 6 * PREFIX_BLOCK); // write 2 also on the wrong LUN
    const r = checkPrefixImages(st, imgs);
    expect(r.ok).toBe(false);
    expect(r.violationsByKind).toEqual({ foreign: 1, torn: 1, misplaced: 1, order: 2 }); // write 1 torn: 2 and 4 lack it
    expect(r.details.slice(0, 3).map((d) => [d.kind, d.lun, d.block])).toEqual([
      ['foreign', 0, 5],
      ['torn', 1, 0],
      ['misplaced', 1, 6],
    ]);
  });

  it('the state file round-trips and every malformed field is rejected with its path', () => {
    const good = () => JSON.parse(JSON.stringify(toPrefixFile(state())));
    expect(parsePrefixState(good())).toEqual({ ...state() });
    const cases: [(j: any) => void, RegExp][] = [
      [(j) => (j.format = 'sanbox-prefix/2'), /not a prefix state file/],
      [(j) => (j.blockSize = 512), /blockSize/],
      [(j) => (j.luns = []), /luns/],
      [(j) => (j.luns[1] = { uri: 3 }), /luns\[1\]/],
      [(j) => (j.writes[2] = [0, 1, 2]), /writes\[2\]/],
      [(j) => (j.writes[2][0] = 2), /writes\[2\]\[0\]/],
      [(j) => (j.writes[2][1] = BLOCKS), /writes\[2\]\[1\]/],
      [(j) => (j.writes[4][1] = 0), /writes\[4\] writes block 0 of lun 0 a second time/],
      [(j) => (j.writes[2][2] = 9), /dependsOn 9/],
      [(j) => j.ackOrder.push(3), /ackOrder\[4\] names write 3, which has no ackedAt/],
      [(j) => (j.ackOrder[1] = 0), /ackOrder\[1\] repeats write 0/],
      [(j) => j.ackOrder.pop(), /writes\[4\]\[3\] is acknowledged but missing from ackOrder/],
      [(j) => (j.complete = 'yes'), /complete/],
    ];
    for (const [spoil, msg] of cases) {
      const j = good();
      spoil(j);
      expect(() => parsePrefixState(j)).toThrow(msg);
    }
  });
});
