// BitmapFile: the on-disk write-intent / fracture log (two slots, CRC, group commit).
import { describe, it, expect } from 'vitest';
import { mkdtemp, readFile, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BitmapFile } from '../../../src/replication/index.js';

const MiB = 1024 * 1024;

async function dir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'sanbox-bmf-'));
}

describe('BitmapFile', () => {
  it('persists marks and reads back the newest generation', async () => {
    const d = await dir();
    const p = join(d, 'wil.bitmap');
    const { file, created, lost } = await BitmapFile.open(p, 64 * MiB, 65536);
    expect(created).toBe(true);
    expect(lost).toBeNull();
    file.mark(3 * 65536, 10);
    await file.persist();
    file.mark(40 * 65536, 65536 * 2);
    await file.persist();
    await file.close();
    const again = await BitmapFile.open(p, 64 * MiB, 65536);
    expect(again.created).toBe(false);
    expect([...again.file.bitmap.runs()]).toEqual([
      { offset: 3 * 65536, length: 65536 },
      { offset: 40 * 65536, length: 2 * 65536 },
    ]);
    await again.file.close();
    await rm(d, { recursive: true });
  });

  it('a torn newest slot falls back to the previous generation; both torn is "lost"', async () => {
    const d = await dir();
    const p = join(d, 'f.bitmap');
    const { file } = await BitmapFile.open(p, 16 * MiB, 65536);
    file.mark(0, 65536);
    await file.persist(); // generation 3 (open wrote 1 and 2)
    file.mark(65536, 65536);
    await file.persist(); // generation 4
    await file.close();
    const img = await readFile(p);
    const slot = img.length / 2;
    // generation 4 lives in slot 0 (4 % 2): tear its payload (after the 64-byte header)
    img[70] ^= 0xff;
    await writeFile(p, img);
    const older = await BitmapFile.open(p, 16 * MiB, 65536);
    expect(older.lost).toBeNull();
    expect(older.file.bitmap.countRegions()).toBe(1);
    await older.file.close();
    const both = await readFile(p);
    both[slot + 70] ^= 0xff; // slot 0 is still torn: now neither is valid
    await writeFile(p, both);
    const gone = await BitmapFile.open(p, 16 * MiB, 65536);
    expect(gone.lost).toMatch(/no valid copy/);
    await gone.file.close();
    await rm(d, { recursive: true });
  });

  it('another geometry is not taken for this LUN', async () => {
    const d = await dir();
    const p = join(d, 'g.bitmap');
    (await BitmapFile.open(p, 16 * MiB, 65536)).file.close();
    await new Promise((r) => setTimeout(r, 10));
    const other = await BitmapFile.open(p, 32 * MiB, 65536);
    expect(other.lost).toMatch(/no valid copy/);
    await other.file.close();
    await rm(d, { recursive: true });
  });

  it('group commit: concurrent persists share disk writes, and each resolves after its mark is written', async () => {
    const d = await dir();
    const p = join(d, 'gc.bitmap');
    const { file } = await BitmapFile.open(p, 64 * MiB, 65536);
    const waits: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      file.mark(i * 65536, 1);
      waits.push(file.persist());
    }
    await Promise.all(waits);
    await file.close();
    const back = await BitmapFile.open(p, 64 * MiB, 65536);
    expect(back.file.bitmap.countRegions()).toBe(200);
    // 2 writes at creation + at most a few group commits, far fewer than 200
    const raw = await readFile(p);
    const gen = Math.max(raw.readUInt32LE(32), raw.readUInt32LE(32 + raw.length / 2)); // generation field of each slot
    expect(gen).toBeLessThan(20);
    await back.file.close();
    await rm(d, { recursive: true });
  });
});
