// Seeded random runs of host I/O and faults against a synchronously mirrored LUN: batches of
// concurrent writes, trims and zeroes; link cuts, stalls, resets and restores; admin fractures
// and synchronizations. After each run the link is restored and the mirror left to settle: the
// primary must equal a shadow model of every acknowledged write, and the secondary must equal the
// primary byte for byte (and `verify` must agree). Bounded: a few runs of a few dozen steps.
import { describe, it, expect, afterEach } from 'vitest';
import fc from 'fast-check';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { seededBytes, fcSeed } from '../../support/random.js';

const SIZE = 4 * 1024 * 1024;
const RS = 16 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

type Step =
  | { k: 'io'; ops: Array<{ kind: 'write' | 'trim' | 'zero'; block: number; blocks: number; seed: number }> }
  | { k: 'cut' }
  | { k: 'restore' }
  | { k: 'reset' }
  | { k: 'fracture' }
  | { k: 'sync' }
  | { k: 'pause'; ms: number };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ k: fc.constant('io' as const), ops: fc.array(fc.record({ kind: fc.constantFrom('write' as const, 'write' as const, 'write' as const, 'trim' as const, 'zero' as const), block: fc.nat(255), blocks: fc.integer({ min: 1, max: 8 }), seed: fc.nat() }), { minLength: 1, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'cut' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'restore' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'fracture' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'sync' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('pause' as const), ms: fc.integer({ min: 1, max: 60 }) }) },
);


describe('random I/O and link faults on a mirrored LUN', () => {
  it('the secondary always converges to the primary, which holds every acknowledged write', async () => {
    const BLOCK = 16 * 1024;
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 10, maxLength: 40 }), async (steps) => {
        lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: SIZE }], { timers: { remoteWriteTimeoutMs: 300, reconnectMaxMs: 300, quiesceMs: 200 } });
        try {
          const n = lab.node('alpha');
          await n.create({ lun: 'disk0', name: 'm0', regionSize: RS, attributes: { syncRate: 256 * 1024 * 1024 } });
          await n.addSecondary('m0', { array: 'bravo', lun: 'disk0' });
          await until(() => ['CONSISTENT', 'SYNCHRONIZED'].includes(n.get('m0').images[1]!.state as string), 10_000, 'initial sync'); // SYNCHRONIZED once quiesced
          const model = Buffer.alloc(SIZE);
          const dev = lab.hostDevice('alpha');
          const link = lab.links['alpha-bravo']!;
          for (const s of steps) {
            if (s.k === 'io') {
              // concurrent requests never overlap, so the model is exact
              const used = new Set<number>();
              const batch = s.ops.filter((o) => {
                for (let b = o.block; b < Math.min(256, o.block + o.blocks); b++) if (used.has(b)) return false;
                for (let b = o.block; b < Math.min(256, o.block + o.blocks); b++) used.add(b);
                return true;
              });
              await Promise.all(
                batch.map(async (o) => {
                  const off = o.block * BLOCK;
                  const len = Math.min(256 - o.block, o.blocks) * BLOCK;
                  if (o.kind === 'write') {
                    const d = seededBytes(o.seed, len);
                    await dev.write(off, d);
                    d.copy(model, off);
                  } else {
                    await (o.kind === 'trim' ? dev.trim(off, len) : dev.writeZeroes(off, len));
                    model.fill(0, off, off + len);
                  }
                }),
              );
            } else if (s.k === 'cut') link.cutLink('both');
            else if (s.k === 'restore') link.restore();
            else if (s.k === 'reset') link.reset('test');
            else if (s.k === 'fracture') await n.fracture('m0').catch(() => undefined);
            else if (s.k === 'sync') await n.synchronize('m0').catch(() => undefined);
            else await new Promise((r) => setTimeout(r, s.ms));
          }
          link.restore();
          if (process.env.SANBOX_DEBUG) console.log(steps.map((x) => x.k).join(','), JSON.stringify(lab.events('alpha').filter((e) => String(e.type).startsWith('mirror.resync-done')).map((e) => e.bytesDone)));
          expect((await lab.sites.alpha!.running!.array.device('disk0')!.read(0, SIZE)).equals(model)).toBe(true);
          // settle: reconnect, resume an admin fracture, finish the resync
          await until(
            async () => {
              const v = n.get('m0');
              const im = v.images[1]!;
              if (im.link === 'connected' && im.fractured && im.fractureReason === 'admin') await n.synchronize('m0').catch(() => undefined);
              if (im.link === 'connected' && !im.fractured && im.state === 'UNSYNCHRONIZED') await n.synchronize('m0').catch(() => undefined);
              return im.link === 'connected' && !im.fractured && (im.state === 'CONSISTENT' || im.state === 'SYNCHRONIZED') && im.fractureLog!.regions === 0 && !im.resync;
            },
            30_000,
            'the mirror to settle',
          );
          const b = await lab.sites.bravo!.running!.array.device('disk0')!.read(0, SIZE);
          expect(b.equals(model)).toBe(true);
          expect((await n.verify('m0')).identical).toBe(true);
        } finally {
          await lab.close();
          lab = null;
        }
      }),
      { numRuns: 12, ...fcSeed(20261122), endOnFailure: true },
    );
  });
});
