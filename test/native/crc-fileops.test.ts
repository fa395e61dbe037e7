import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { mkdtempSync, openSync, closeSync, writeSync, ftruncateSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c, crc32cTs, fileOps, nativeInfo } from '../../src/native/index.js';
import { addon } from '../../src/native/addon.js';

const forced = process.env.SANBOX_FORCE_TS === '1';

describe('crc32c', () => {
  const vectors: [Uint8Array, number][] = [
    [Buffer.from('123456789'), 0xe3069283],
    [new Uint8Array(32), 0x8a9136aa],
    [new Uint8Array(32).fill(0xff), 0x62a8ab43],
    [Uint8Array.from({ length: 32 }, (_, i) => i), 0x46dd794e],
    [Uint8Array.from({ length: 32 }, (_, i) => 31 - i), 0x113fdb5c],
    [new Uint8Array(0), 0],
  ];
  it('matches published vectors (TS, native, dispatcher)', () => {
    for (const [d, want] of vectors) {
      expect(crc32cTs(d)).toBe(want);
      expect(crc32c(d)).toBe(want);
      if (addon) expect(addon.crc32c(d)).toBe(want);
    }
  });
  it('continues with a seed', () => {
    const a = crc32cTs(Buffer.from('12345'));
    expect(crc32cTs(Buffer.from('6789'), a)).toBe(0xe3069283);
    if (addon) expect(addon.crc32c(Buffer.from('6789'), a)).toBe(0xe3069283);
  });
  it('native equals TS on random data and seeds', () => {
    if (!addon) return;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.integer({ min: 0, max: 0xffffffff }), fc.nat(7), (d, seed, off) => {
        const v = d.subarray(Math.min(off, d.length));
        expect(addon!.crc32c(v, seed)).toBe(crc32cTs(v, seed));
      }),
      { numRuns: 300 },
    );
  });
  it('rejects a bad seed', () => {
    expect(() => crc32cTs(new Uint8Array(1), -1)).toThrow();
    if (addon) expect(() => addon!.crc32c(new Uint8Array(1), 2 ** 32)).toThrow();
  });
});

describe('nativeInfo', () => {
  it('reports the implementation', () => {
    const i = nativeInfo();
    if (forced) {
      expect(i).toMatchObject({ loaded: false, forcedTwin: true, crcImpl: 'ts' });
      expect(fileOps).toBeNull();
    } else {
      expect(i.loaded).toBe(true);
      expect(i.path).toMatch(/sanbox\..*\.node$/);
      expect(['sse4.2', 'table']).toContain(i.crcImpl);
    }
  });
});

describe('fileOps', () => {
  it('punches holes and finds data/holes', () => {
    if (!fileOps) return;
    const dir = mkdtempSync(join(tmpdir(), 'sanbox-fo-'));
    const p = join(dir, 'img');
    const fd = openSync(p, 'w+');
    try {
      ftruncateSync(fd, 4 << 20);
      writeSync(fd, Buffer.alloc(1 << 20, 0xab), 0, 1 << 20, 1 << 20);
      expect(fileOps.seekData(fd, 0)).toBe(1 << 20);
      expect(fileOps.seekHole(fd, 1 << 20)).toBe(2 << 20);
      expect(fileOps.seekData(fd, 2 << 20)).toBe(-1);
      fileOps.punchHole(fd, 1 << 20, 1 << 20);
      expect(fileOps.seekData(fd, 0)).toBe(-1);
      expect(readFileSync(p).length).toBe(4 << 20); // KEEP_SIZE
      let err: NodeJS.ErrnoException | undefined;
      try {
        fileOps.punchHole(123456, 0, 4096);
      } catch (e) {
        err = e as NodeJS.ErrnoException;
      }
      expect(err?.code).toBe('EBADF');
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
