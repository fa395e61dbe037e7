// The resync chunk bookkeeping of a secondary (src/replication/mirror/primary.ts): what a copy
// leaves marked in the fracture log when host writes touched its chunk or were under way.
import { describe, it, expect, afterEach } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BitmapFile } from '../../../src/replication/mirror/bitmap-file.js';
import { newCopyChunk, SecondaryPeer } from '../../../src/replication/mirror/primary.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const RS = 64 * KiB;
let dir = '';
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = '';
});

async function peer(): Promise<SecondaryPeer> {
  dir = await mkdtemp(join(tmpdir(), 'sanbox-primary-'));
  const { file } = await BitmapFile.open(join(dir, 'fracture'), 16 * MiB, RS);
  return new SecondaryPeer('bravo:0', 'bravo', 0, file);
}

/** The marked regions as [offset, length] runs. */
function marked(p: SecondaryPeer): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let from = 0; ; ) {
    const r = p.fracture.bitmap.nextDirtyRun(from);
    if (!r) return out;
    out.push([r.offset, r.length]);
    from = r.offset + r.length;
  }
}

describe('a resync chunk of a secondary', () => {
  it('an untouched copy clears its whole range', async () => {
    const p = await peer();
    p.fracture.mark(0, 2 * MiB);
    const c = newCopyChunk(0, MiB);
    p.copying.add(c);
    p.copyDone(c);
    expect(marked(p)).toEqual([[MiB, MiB]]);
  });

  it('a host write during the copy keeps only its own regions marked, not the chunk', async () => {
    const p = await peer();
    p.fracture.mark(0, MiB);
    const c = newCopyChunk(0, MiB);
    p.copying.add(c);
    p.touch(300 * KiB, 4 * KiB); // region 4
    p.touch(2 * MiB, 4 * KiB); // outside the chunk: not its business
    p.copyDone(c);
    expect(marked(p)).toEqual([[4 * RS, RS]]);
  });

  it('a marking host write still under way when the chunk is taken stays marked after the copy', async () => {
    const p = await peer();
    p.fracture.mark(0, MiB);
    const w: [number, number] = [520 * KiB, 8 * KiB]; // region 8
    p.markedInFlight.add(w);
    p.markedInFlight.add([3 * MiB, 4 * KiB]); // another chunk's
    const c = newCopyChunk(0, MiB);
    p.touchByMarked(c);
    p.copying.add(c);
    p.markedInFlight.delete(w); // the write ends during the copy: its data may have been read before it landed
    p.copyDone(c);
    expect(marked(p)).toEqual([[8 * RS, RS]]);
  });
});
