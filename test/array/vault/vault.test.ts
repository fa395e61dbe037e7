import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  Vault,
  VaultError,
  VaultFormatError,
  decodeVaultImage,
  encodeVaultImage,
  HEADER_SIZE,
  SECTION_HEADER_SIZE,
  TRAILER_SIZE,
  type VaultImage,
} from '../../../src/array/vault/index.js';
import { pattern, tempDir } from '../helpers.js';
import { mulberry32, seededRandom } from '../../support/random.js';
import { ManualClock } from '../../support/clock.js';

const tmp = tempDir('sanbox-vault-');
afterAll(() => tmp.cleanup());
let n = 0;
const newVault = (sp = 'A') => new Vault(join(tmp.dir, `v${n++}`), sp);

function sampleImage(seed = 1, pages = 3): Omit<VaultImage, 'generation' | 'timestamp' | 'sp'> {
  return {
    caches: [
      { lun: 0, role: 'own', pageSize: 4096, pages: Array.from({ length: pages }, (_, i) => ({ index: i * 3, generation: 10 + i, data: pattern(4096, seed * 100 + i) })) },
      { lun: 5, role: 'peer', pageSize: 4096, pages: [{ index: 7, generation: 2, data: pattern(4096, seed * 100 + 50) }] },
      { lun: 9, role: 'own', pageSize: 4096, pages: [] },
    ],
    logs: [
      { name: 'wil:lun0', data: pattern(100, seed) },
      { name: 'writelog-tail', data: Buffer.alloc(0) },
    ],
  };
}

function expectSame(img: VaultImage, input: ReturnType<typeof sampleImage>): void {
  expect(img.caches.length).toBe(input.caches.length);
  input.caches.forEach((c, i) => {
    const got = img.caches[i]!;
    expect([got.lun, got.role, got.pageSize]).toEqual([c.lun, c.role, c.pageSize]);
    expect(got.pages.map((p) => [p.index, p.generation])).toEqual(c.pages.map((p) => [p.index, p.generation]));
    got.pages.forEach((p, j) => expect(p.data.equals(c.pages[j]!.data)).toBe(true));
  });
  expect(img.logs.map((l) => [l.name, l.data.toString('hex')])).toEqual(input.logs.map((l) => [l.name, l.data.toString('hex')]));
}

const bigDeadline = { deadlineMs: 60_000 };

describe('vault format', () => {
  const img: VaultImage = { sp: 'B', generation: 42, timestamp: 1234567, ...sampleImage() };
  const buf = encodeVaultImage(img);

  it('round-trips', () => {
    const back = decodeVaultImage(buf);
    expect([back.sp, back.generation, back.timestamp]).toEqual(['B', 42, 1234567]);
    expectSame(back, sampleImage());
  });

  it('every strict prefix is detected as torn, with where it tore', () => {
    const firstSectionEnd = HEADER_SIZE + SECTION_HEADER_SIZE + 3 * (16 + 4096);
    const where = new Map<string, number>();
    for (let len = 0; len < buf.length; len++) {
      let err: unknown;
      try {
        decodeVaultImage(buf.subarray(0, len));
      } catch (e) {
        err = e;
      }
      expect(err, `prefix of ${len} bytes`).toBeInstanceOf(VaultFormatError);
      expect((err as VaultFormatError).kind, `prefix of ${len}: ${(err as Error).message}`).toBe('torn');
      const m = /(empty|in the header|in section \d+ header|in section \d+ payload|in the trailer)/.exec((err as Error).message);
      expect(m, (err as Error).message).not.toBeNull();
      where.set(m![1]!, (where.get(m![1]!) ?? 0) + 1);
    }
    // Every class of boundary was exercised.
    for (const k of ['empty', 'in the header', 'in section 0 header', 'in section 0 payload', 'in section 4 payload', 'in the trailer']) expect(where.has(k), k).toBe(true);
    expect(firstSectionEnd).toBeLessThan(buf.length - TRAILER_SIZE);
  });

  it('any single bit flip is detected as corrupt (or torn when it hits a length)', () => {
    const r = seededRandom(7, mulberry32);
    const positions = new Set<number>();
    for (let i = 0; i < HEADER_SIZE; i++) positions.add(i);
    for (let i = buf.length - TRAILER_SIZE; i < buf.length; i++) positions.add(i);
    for (let i = 0; i < 400; i++) positions.add(Math.floor(r() * buf.length));
    for (const pos of positions) {
      const bad = Buffer.from(buf);
      bad[pos]! ^= 1 << Math.floor(r() * 8);
      let err: unknown;
      try {
        decodeVaultImage(bad);
      } catch (e) {
        err = e;
      }
      expect(err, `bit flip at ${pos}`).toBeInstanceOf(VaultFormatError);
    }
  });

  it('rejects trailing garbage and unknown versions', () => {
    expect(() => decodeVaultImage(Buffer.concat([buf, Buffer.alloc(1)]))).toThrow(/after the trailer/);
    expect(() => decodeVaultImage(Buffer.alloc(100, 0x41))).toThrow(/magic/);
  });
});

describe('Vault copies', () => {
  it('dumps alternately and loads the newest valid copy', async () => {
    const v = newVault();
    const r1 = await v.dump(sampleImage(1), bigDeadline);
    const r2 = await v.dump(sampleImage(2), bigDeadline);
    expect([r1.complete, r1.slot, r1.generation]).toEqual([true, 'A', 1]);
    expect([r2.complete, r2.slot, r2.generation]).toEqual([true, 'B', 2]);
    const l = await v.load();
    expect(l.slot).toBe('B');
    expect(l.image!.generation).toBe(2);
    expect(l.image!.sp).toBe('A');
    expectSame(l.image!, sampleImage(2));
    expect(l.copies.map((c) => c.status)).toEqual(['valid', 'valid']);
    expect(l.newerCopyLost).toBe(false);
    const r3 = await v.dump(sampleImage(3), bigDeadline);
    expect([r3.slot, r3.generation]).toEqual(['A', 3]); // overwrote the older copy
  });

  it('a dump cut by the deadline leaves a torn copy and keeps the previous good one', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    const clock = new ManualClock(0, 1); // every check costs 1 ms
    const r = await v.dump(sampleImage(2, 40), { deadlineMs: 3, clock: () => clock.now(), chunkBytes: 4096 });
    expect(r.complete).toBe(false);
    expect(r.slot).toBe('B');
    expect(r.bytesWritten).toBeGreaterThan(0);
    expect(r.bytesWritten).toBeLessThan(r.totalBytes);
    const l = await v.load();
    expect(l.slot).toBe('A');
    expect(l.image!.generation).toBe(1);
    const b = l.copies.find((c) => c.slot === 'B')!;
    expect(b.status).toBe('torn');
    expect(b.generation).toBe(2);
    expect(l.newerCopyLost).toBe(true);
    expect(l.summary).toMatch(/using copy A gen 1; .*B: torn gen 2/);
    // The next dump overwrites the torn copy, not the good one, and gets a newer generation.
    const r3 = await v.dump(sampleImage(3), bigDeadline);
    expect([r3.slot, r3.generation]).toEqual(['B', 3]);
  });

  it('a deadline of zero leaves an empty (torn) copy', async () => {
    const v = newVault();
    const clock = new ManualClock(5, 5); // every check costs 5 ms
    const r = await v.dump(sampleImage(1), { deadlineMs: 0, clock: () => clock.now() });
    expect(r.complete).toBe(false);
    expect(r.bytesWritten).toBe(0);
    const l = await v.load();
    expect(l.image).toBeNull();
    expect(l.copies[0]!.status).toBe('torn');
    await expect(v.loadOrThrow()).rejects.toThrow(VaultError);
  });

  it('a corrupt newer copy falls back to the older copy', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    await v.dump(sampleImage(2), bigDeadline);
    const pb = v.pathOf('B');
    const bad = readFileSync(pb);
    bad[HEADER_SIZE + SECTION_HEADER_SIZE + 20]! ^= 0x10;
    writeFileSync(pb, bad);
    const l = await v.load();
    expect(l.slot).toBe('A');
    expect(l.copies[1]!.status).toBe('corrupt');
    expect(l.copies[1]!.reason).toMatch(/section 0 .*checksum/);
    expect(l.newerCopyLost).toBe(true);
  });

  it('both copies bad: a clear error naming both', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    await v.dump(sampleImage(2), bigDeadline);
    const a = readFileSync(v.pathOf('A'));
    writeFileSync(v.pathOf('A'), a.subarray(0, a.length - 5));
    const b = readFileSync(v.pathOf('B'));
    b[10]! ^= 1;
    writeFileSync(v.pathOf('B'), b);
    const err = (await v.loadOrThrow().catch((e: unknown) => e)) as VaultError;
    expect(err).toBeInstanceOf(VaultError);
    expect(err.message).toMatch(/no usable copy/);
    expect(err.message).toMatch(/A: torn gen 1 \(torn in the trailer/);
    expect(err.message).toMatch(/B: corrupt .*header checksum/);
    expect(err.copies.map((c) => c.status)).toEqual(['torn', 'corrupt']);
  });

  it('an empty vault has nothing to replay (not an error)', async () => {
    const v = newVault();
    expect(await v.loadOrThrow()).toBeNull();
    const l = await v.load();
    expect(l.copies.map((c) => c.status)).toEqual(['missing', 'missing']);
  });

  it('consumed copies are stale and never replayed again', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    await v.dump(sampleImage(2), bigDeadline);
    await v.markConsumed(2);
    expect(existsSync(v.consumedPath)).toBe(true);
    const l = await v.load();
    expect(l.image).toBeNull();
    expect(l.copies.map((c) => c.status)).toEqual(['stale', 'stale']);
    expect(await v.loadOrThrow()).toBeNull();
    await v.markConsumed(1); // never lowers
    expect(await v.consumedGeneration()).toBe(2);
    // A new dump is numbered above the consumed generation and is valid.
    const r = await v.dump(sampleImage(3), bigDeadline);
    expect(r.generation).toBe(3);
    expect((await v.load()).image!.generation).toBe(3);
  });

  it('an old copy swapped in (replayed file, or copied from elsewhere) is stale or rejected', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    const old = join(tmp.dir, `old-${n}.vault`);
    copyFileSync(v.pathOf('A'), old);
    await v.dump(sampleImage(2), bigDeadline);
    await v.markConsumed(2);
    copyFileSync(old, v.pathOf('B')); // put the gen-1 image back as copy B
    const l = await v.load();
    expect(l.image).toBeNull();
    expect(l.copies.find((c) => c.slot === 'B')!.status).toBe('stale');
    // A copy of another SP's vault is rejected.
    const other = newVault('B');
    await other.dump(sampleImage(4), bigDeadline);
    copyFileSync(other.pathOf('A'), v.pathOf('A'));
    const l2 = await v.load();
    expect(l2.copies.find((c) => c.slot === 'A')!.status).toBe('corrupt');
    expect(l2.copies.find((c) => c.slot === 'A')!.reason).toMatch(/belongs to SP B/);
  });

  it('a corrupt consumed record is an error, never a guess', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    await v.markConsumed(1);
    const c = readFileSync(v.consumedPath);
    c[9]! ^= 1;
    writeFileSync(v.consumedPath, c);
    await expect(v.load()).rejects.toThrow(/consumed record .* corrupt/);
  });

  it('swapped copies: the newer generation wins wherever it is', async () => {
    const v = newVault();
    await v.dump(sampleImage(1), bigDeadline);
    await v.dump(sampleImage(2), bigDeadline);
    const a = readFileSync(v.pathOf('A'));
    const b = readFileSync(v.pathOf('B'));
    writeFileSync(v.pathOf('A'), b);
    writeFileSync(v.pathOf('B'), a);
    const l = await v.load();
    expect(l.slot).toBe('A');
    expect(l.image!.generation).toBe(2);
  });
});

describe('vault with the write cache (power failure, good battery)', () => {
  it('dump own dirty pages and the peer mirror, restore, replay, consume', async () => {
    const { CacheBudget, WriteCache, PeerMirrorStore, LocalCacheMirror } = await import('../../../src/array/cache/index.js');
    const { newImage } = await import('../helpers.js');
    const PS = 4096;
    const storeA = await newImage(tmp.dir, 8 * PS); // LUN 0, owned by SP A
    const storeB = await newImage(tmp.dir, 8 * PS); // LUN 1, owned by SP B
    const peerOnA = new PeerMirrorStore(); // what A holds for B
    const peerOnB = new PeerMirrorStore(); // what B holds for A
    const cacheA = new WriteCache({ lun: 0, lower: storeA, budget: new CacheBudget(8 * PS), mode: 'write-back', autoDestage: false });
    const cacheB = new WriteCache({ lun: 1, lower: storeB, budget: new CacheBudget(8 * PS), mode: 'write-back', autoDestage: false });
    await cacheA.attachMirror(new LocalCacheMirror(peerOnB));
    await cacheB.attachMirror(new LocalCacheMirror(peerOnA));
    const expectA = Buffer.alloc(8 * PS);
    const expectB = Buffer.alloc(8 * PS);
    for (let i = 0; i < 10; i++) {
      const a = pattern(1000 + i * 300, i);
      const b = pattern(500 + i * 200, 50 + i);
      await cacheA.write((i * 2777) % (5 * PS), a);
      a.copy(expectA, (i * 2777) % (5 * PS));
      await cacheB.write((i * 1999) % (5 * PS), b);
      b.copy(expectB, (i * 1999) % (5 * PS));
    }
    // Power fails: each SP dumps its own dirty pages and its mirror of the peer's.
    const vaultA = newVault('A');
    const dumped = await vaultA.dump(
      {
        caches: [
          { lun: 0, role: 'own', pageSize: PS, pages: cacheA.dirtyPages() },
          ...peerOnA.lunIds().map((lun) => ({ lun, role: 'peer' as const, pageSize: PS, pages: peerOnA.pages(lun) })),
        ],
        logs: [{ name: 'wil', data: Buffer.alloc(0) }],
      },
      bigDeadline,
    );
    expect(dumped.complete).toBe(true);
    await cacheA.halt();
    await cacheB.halt();
    // Power restore: SP A restores its vault. SP B's own vault is lost here on purpose, so
    // LUN 1 comes back from A's mirror copy.
    const img = (await vaultA.loadOrThrow())!;
    for (const section of img.caches) {
      const store = section.lun === 0 ? storeA : storeB;
      const c = new WriteCache({ lun: section.lun, lower: store, budget: new CacheBudget(8 * PS), autoDestage: false });
      await c.loadDirty(section.pages);
      await c.destageAll();
      await c.close();
    }
    await vaultA.markConsumed(img.generation);
    expect(readFileSync(storeA.path).equals(expectA)).toBe(true);
    expect(readFileSync(storeB.path).equals(expectB)).toBe(true);
    expect(await vaultA.loadOrThrow()).toBeNull(); // never replayed twice
  });
});
