import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyOp, MirrorOpError, parseMirrorDb, requirements, type MirrorDbRecord, type MirrorOp } from '../../../src/replication/state/index.js';

const ARRAYS = ['bravo', 'charlie', 'delta'];
const IDS = ['alpha:0', ...ARRAYS.map((a) => `${a}:0`), 'zulu:0'];
const id = fc.oneof({ weight: 1, arbitrary: fc.constantFrom(...IDS) }, { weight: 4, arbitrary: fc.constantFrom(...ARRAYS.map((a) => `${a}:0`)) });

const opArb: fc.Arbitrary<MirrorOp> = fc.oneof(
  fc.record({ op: fc.constant('add-secondary' as const), a: fc.constantFrom(...ARRAYS), small: fc.boolean(), s: fc.constantFrom('SYNCHRONIZED' as const, 'UNSYNCHRONIZED' as const), rp: fc.constantFrom('auto' as const, 'manual' as const) }).map(
    ({ a, small, s, rp }) => ({ op: 'add-secondary', image: { imageId: `${a}:0`, array: a, lun: 0, size: small ? 512 : 4096 }, initialState: s, recoveryPolicy: rp }),
  ),
  fc.record({ op: fc.constant('remove-secondary' as const), imageId: id, mode: fc.constantFrom('graceful' as const, 'forced' as const) }),
  fc.record({ op: fc.constant('promote' as const), imageId: id, force: fc.boolean() }),
  fc.record({ op: fc.constant('synchronize' as const), imageId: id, force: fc.boolean() }),
  fc.record({ op: fc.constant('fracture' as const), imageId: id }),
  fc.constant({ op: 'activate' as const }),
  fc.record({ op: fc.constant('deactivate' as const), force: fc.boolean() }),
  fc.constant({ op: 'destroy' as const }),
  fc.record({
    op: fc.constant('change-attributes' as const),
    attributes: fc.record({ minImagesRequired: fc.integer({ min: -1, max: 4 }), maxMissingImages: fc.integer({ min: -1, max: 3 }), activationPolicy: fc.constantFrom('automatic' as const, 'manual' as const) }, { requiredKeys: [] }),
  }),
  fc.record({ op: fc.constantFrom('image-unreachable' as const, 'image-reachable' as const), imageId: fc.constantFrom(...ARRAYS.map((a) => `${a}:0`)) }),
  fc.record({ op: fc.constantFrom('image-unreachable' as const, 'image-reachable' as const), imageId: fc.constantFrom(...ARRAYS.map((a) => `${a}:0`)) }),
  fc.record({ op: fc.constantFrom('image-unreachable' as const, 'image-reachable' as const, 'quiesced' as const, 'sync-done' as const, 'sync-failed' as const, 'updates-lost' as const, 'history-lost' as const), imageId: id }),
  fc.constant({ op: 'primary-write' as const }),
  fc.constant({ op: 'primary-write' as const }),
  fc.record({ op: fc.constantFrom('quiesced' as const, 'sync-done' as const, 'synchronize' as const), imageId: fc.constantFrom(...ARRAYS.map((a) => `${a}:0`)) }),
);

function checkInvariants(d: MirrorDbRecord, prev: MirrorDbRecord): void {
  const primaries = d.images.filter((i) => i.role === 'primary');
  expect(primaries).toHaveLength(1); // at most (exactly) one primary
  const p = primaries[0]!;
  expect(p.epoch).toBe(d.epoch);
  for (const i of d.images) if (i !== p) expect(i.epoch).toBeLessThan(p.epoch); // the promoted image's epoch is the highest
  expect(d.epoch).toBeGreaterThanOrEqual(prev.epoch);
  expect(d.generation).toBe(prev.generation + 1);
  // ATTENTION exactly when the minimum-images rule says so (INACTIVE is the administrator's)
  if (d.state !== 'INACTIVE') expect(d.state === 'ATTENTION').toBe(!requirements(d).met);
  for (const i of d.images) {
    if (i.role === 'primary') expect(i.state).toBeNull();
    else expect(i.state).not.toBeNull();
    if (i.state === 'SYNCHRONIZING') {
      expect(i.reachability).toBe('REACHABLE');
      expect(i.fractured).toBe(false);
    }
    if (i.role === 'secondary') expect(i.size).toBeGreaterThanOrEqual(p.size);
    expect(i.fractured).toBe(i.fractureReason !== null);
  }
  expect(new Set(d.images.map((i) => i.array)).size).toBe(d.images.length);
  expect(parseMirrorDb(JSON.parse(JSON.stringify(d)))).toEqual(d); // JSON-serializable, valid
}

describe('mirror database under random operation sequences', () => {
  it('keeps its invariants; refused operations change nothing', () => {
    const seen = new Set<string>();
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 20, maxLength: 80, size: 'max' }), (ops) => {
        let db: MirrorDbRecord | null = applyOp(null, { op: 'create', mirrorId: 'm', name: 'm', primary: { imageId: 'alpha:0', array: 'alpha', lun: 0, size: 4096 } }).db;
        const epochs = new Map<number, string>(); // epoch -> the only image ever primary with it
        for (const op of ops) {
          if (!db) break;
          const before = JSON.stringify(db);
          let r;
          try {
            r = applyOp(db, op);
          } catch (e) {
            expect(e).toBeInstanceOf(MirrorOpError);
            expect(JSON.stringify(db)).toBe(before);
            continue;
          }
          if (!r.db) {
            expect(op.op).toBe('destroy');
            break;
          }
          checkInvariants(r.db, db);
          const p = r.db.images.find((i) => i.role === 'primary')!;
          seen.add(op.op);
          if (r.db.state === 'ATTENTION') seen.add('ATTENTION');
          if (p.epoch > 1) seen.add('epoch>1');
          const owner = epochs.get(p.epoch);
          if (owner === undefined) epochs.set(p.epoch, p.imageId);
          else expect(owner).toBe(p.imageId); // one epoch never names two primaries
          db = r.db;
        }
      }),
      { numRuns: 400 },
    );
    // the sequences did reach the interesting places
    for (const k of ['promote', 'activate', 'deactivate', 'image-reachable', 'sync-done', 'quiesced', 'ATTENTION', 'epoch>1', 'remove-secondary', 'synchronize']) expect(seen).toContain(k);
  });
});
