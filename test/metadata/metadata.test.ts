import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { mkdtemp, rm, readFile, writeFile, truncate, stat, copyFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MetadataStore, MetadataError, encodeCopy, decodeCopy } from '../../src/metadata/index.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-meta-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fresh<T>(): Promise<MetadataStore<T>> {
  const s = new MetadataStore<T>(dir);
  await s.load();
  return s;
}

describe('metadata store', () => {
  it('starts empty, then alternates copies with increasing generations', async () => {
    const s = new MetadataStore<{ n: number }>(dir);
    const r0 = await s.load();
    expect(r0.data).toBeUndefined();
    expect(r0.generation).toBe(0);
    expect(r0.problems).toEqual([]);
    expect(await s.save({ n: 1 })).toBe(1);
    expect(await s.save({ n: 2 })).toBe(2);
    expect(await s.save({ n: 3 })).toBe(3);
    expect(decodeCopy(await readFile(s.pathOf('A'))).generation).toBe(3);
    expect(decodeCopy(await readFile(s.pathOf('B'))).generation).toBe(2);
    const r = await new MetadataStore<{ n: number }>(dir).load();
    expect(r.data).toEqual({ n: 3 });
    expect(r.generation).toBe(3);
    expect(r.source).toBe('A');
    expect(r.problems).toEqual([]);
    // No temp files left behind.
    expect((await readdir(dir)).sort()).toEqual(['meta.A', 'meta.B']);
  });

  it('serializes concurrent saves', async () => {
    const s = await fresh<{ n: number }>();
    const gens = await Promise.all([1, 2, 3, 4, 5].map((n) => s.save({ n })));
    expect(gens).toEqual([1, 2, 3, 4, 5]);
    expect((await new MetadataStore<{ n: number }>(dir).load()).data).toEqual({ n: 5 });
  });

  it('uses the older copy when the newest is truncated (torn write), and reports it', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 }); // A gen1
    await s.save({ n: 2 }); // B gen2
    const size = (await stat(s.pathOf('B'))).size;
    await truncate(s.pathOf('B'), size - 5);
    const s2 = new MetadataStore<{ n: number }>(dir);
    const r = await s2.load();
    expect(r.data).toEqual({ n: 1 });
    expect(r.source).toBe('A');
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toMatch(/copy B .*torn write/);
    // The next save goes to the bad copy (B), never over the only good one, and keeps the bad one aside.
    expect(await s2.save({ n: 3 })).toBe(2);
    expect(decodeCopy(await readFile(s2.pathOf('A'))).data).toEqual({ n: 1 });
    expect(decodeCopy(await readFile(s2.pathOf('B'))).data).toEqual({ n: 3 });
    expect((await readFile(s2.pathOf('B') + '.corrupt')).length).toBe(size - 5);
  });

  it('detects a flipped bit in the payload by CRC', async () => {
    const s = await fresh<{ name: string }>();
    await s.save({ name: 'one' });
    await s.save({ name: 'two' });
    const buf = await readFile(s.pathOf('B'));
    const i = buf.indexOf('two');
    buf[i] = buf[i]! ^ 0x01;
    await writeFile(s.pathOf('B'), buf);
    const r = await new MetadataStore<{ name: string }>(dir).load();
    expect(r.data).toEqual({ name: 'one' });
    expect(r.problems[0]).toMatch(/crc32 mismatch/);
  });

  it('detects a tampered generation in the header (covered by the CRC)', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 });
    await s.save({ n: 2 });
    const buf = (await readFile(s.pathOf('A'))).toString('utf8').replace('gen=1 ', 'gen=9 ');
    await writeFile(s.pathOf('A'), buf);
    const r = await new MetadataStore<{ n: number }>(dir).load();
    expect(r.data).toEqual({ n: 2 });
    expect(r.problems[0]).toMatch(/copy A .*crc32 mismatch/);
  });

  it('picks by generation, not by copy name, when copies are swapped', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 }); // A gen1
    await s.save({ n: 2 }); // B gen2
    await s.save({ n: 3 }); // A gen3
    const a = await readFile(s.pathOf('A'));
    const b = await readFile(s.pathOf('B'));
    await writeFile(s.pathOf('A'), b);
    await writeFile(s.pathOf('B'), a);
    const s2 = new MetadataStore<{ n: number }>(dir);
    const r = await s2.load();
    expect(r.data).toEqual({ n: 3 });
    expect(r.source).toBe('B');
    expect(r.problems).toEqual([]);
    expect(await s2.save({ n: 4 })).toBe(4);
    expect(decodeCopy(await readFile(s2.pathOf('A'))).data).toEqual({ n: 4 });
    expect(decodeCopy(await readFile(s2.pathOf('B'))).data).toEqual({ n: 3 });
  });

  it('works with only one copy present', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 });
    await s.save({ n: 2 });
    await rm(s.pathOf('B'));
    const r = await new MetadataStore<{ n: number }>(dir).load();
    expect(r.data).toEqual({ n: 1 });
    expect(r.problems).toEqual([]);
    expect(r.copies.find((c) => c.copy === 'B')!.state).toBe('missing');
  });

  it('refuses to load when both copies are bad, never resetting silently', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 });
    await s.save({ n: 2 });
    await truncate(s.pathOf('A'), 10);
    await writeFile(s.pathOf('B'), 'garbage\n');
    const s2 = new MetadataStore<{ n: number }>(dir);
    const err = await s2.load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetadataError);
    expect((err as MetadataError).code).toBe('metadata-corrupt');
    expect((err as MetadataError).message).toMatch(/no valid metadata copy/);
    // And a store that failed to load refuses to save.
    await expect(s2.save({ n: 0 })).rejects.toThrow(/load\(\)/);
    // The files are untouched.
    expect((await readFile(s.pathOf('B'))).toString()).toBe('garbage\n');
  });

  it('refuses when one copy is corrupt and the other missing', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 });
    await writeFile(s.pathOf('A'), '');
    await expect(new MetadataStore(dir).load()).rejects.toThrow(/copy A .*empty file/);
  });

  it('rejects a valid-CRC copy whose payload is not JSON', async () => {
    const payload = Buffer.from('{not json');
    const covered = `sanbox-meta v1 gen=5 len=${payload.length}`;
    const { crc32 } = await import('node:zlib');
    const crc = crc32(payload, crc32(covered + '\n')).toString(16).padStart(8, '0');
    expect(() => decodeCopy(Buffer.concat([Buffer.from(`${covered} crc32=${crc}\n`), payload]))).toThrow(/not JSON/);
  });

  it('round-trips encode/decode and rejects appended garbage', async () => {
    const buf = encodeCopy(7, { a: [1, 2, { b: 'c' }] });
    expect(decodeCopy(buf)).toEqual({ generation: 7, data: { a: [1, 2, { b: 'c' }] } });
    expect(() => decodeCopy(Buffer.concat([buf, Buffer.from('x')]))).toThrow(/header says/);
    expect(() => encodeCopy(0, {})).toThrow(RangeError);
  });

  it('leaves the previous generation intact when a write fails', async () => {
    const s = await fresh<{ n: number }>();
    await s.save({ n: 1 });
    await copyFile(s.pathOf('A'), join(dir, 'saved'));
    // A directory where the temp file should go makes the write fail.
    const { mkdir } = await import('node:fs/promises');
    await mkdir(s.pathOf('B') + '.tmp');
    await expect(s.save({ n: 2 })).rejects.toThrow(/cannot write metadata copy/);
    expect((await new MetadataStore<{ n: number }>(dir).load()).data).toEqual({ n: 1 });
    // The store still works after the failure once the obstacle is gone.
    await rm(s.pathOf('B') + '.tmp', { recursive: true });
    expect(await s.save({ n: 3 })).toBe(2);
  });
});

describe('metadata store under random damage (fast-check)', () => {
  it('any byte change or truncation of the newest copy is detected, and the older copy is used', async () => {
    const fc = await import('fast-check');
    const s = await fresh<{ luns: Array<{ id: number; name: string }> }>();
    const older = { luns: [{ id: 0, name: 'disk0' }] };
    const newer = { luns: [{ id: 0, name: 'disk0' }, { id: 1, name: 'disk1' }] };
    await s.save(older); // A gen1
    await s.save(newer); // B gen2
    const good = await readFile(s.pathOf('B'));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ kind: fc.constant('flip' as const), at: fc.nat(good.length - 1), xor: fc.integer({ min: 1, max: 255 }) }),
          fc.record({ kind: fc.constant('truncate' as const), at: fc.nat(good.length - 1), xor: fc.constant(0) }),
          fc.record({ kind: fc.constant('append' as const), at: fc.nat(16), xor: fc.integer({ min: 0, max: 255 }) }),
        ),
        async ({ kind, at, xor }) => {
          let bad: Buffer;
          if (kind === 'flip') {
            bad = Buffer.from(good);
            bad[at] = bad[at]! ^ xor;
          } else if (kind === 'truncate') bad = good.subarray(0, at);
          else bad = Buffer.concat([good, Buffer.alloc(at + 1, xor)]);
          await writeFile(s.pathOf('B'), bad);
          const r = await new MetadataStore<typeof newer>(dir).load();
          expect(r.data).toEqual(older);
          expect(r.generation).toBe(1);
          expect(r.problems).toHaveLength(1);
        },
      ),
      { numRuns: 300 },
    );
  });
});
