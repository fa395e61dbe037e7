// OwnerLunDevice (the chassis's view of a LUN for the mirror driver) with fake CMI channels:
// retries across an ownership change, and orphaned writes (their SP died) are completed before
// any later overlapping request, never after it.
import { describe, expect, it } from 'vitest';
import { OwnerLunDevice } from '../../../src/array/chassis/index.js';
import { CmiError, type CmiClient } from '../../../src/array/cmi/index.js';

const CAPS = { trim: true, writeZeroes: true, fastZero: true, sparseStatus: true, coherentAcrossHandles: true };

/** A fake SP channel: records `cache-io` calls; `dead` answers peer-gone, `notOwner` not-owner. */
function fakeSp(name: string, log: string[]) {
  const sp = {
    dead: false,
    /** how long a dead SP takes to be noticed (connection reset) */
    deadAfterMs: 0,
    notOwner: false,
    client: {
      closed: false,
      call: async (_op: string, args: Record<string, unknown>, bin?: Buffer) => {
        await new Promise((r) => setTimeout(r, 2));
        if (sp.dead) await new Promise((r) => setTimeout(r, sp.deadAfterMs));
        if (sp.dead) throw new CmiError('peer-gone', `SP ${name} is gone`);
        if (sp.notOwner) throw new CmiError('not-owner', `SP ${name} does not own the LUN`);
        log.push(`${name}:${String(args.op)}@${String(args.offset)}${bin ? `=${bin[0]}` : ''}`);
        return { result: {}, bin: Buffer.alloc(Number(args.length ?? 0)) };
      },
    } as unknown as CmiClient,
  };
  return sp;
}

describe('OwnerLunDevice', () => {
  it('retries on the new owner; a write whose sender died completes before a later overlapping write', async () => {
    const log: string[] = [];
    const A = fakeSp('A', log);
    const B = fakeSp('B', log);
    let owner: 'A' | 'B' = 'A';
    const dev = new OwnerLunDevice(0, 512, CAPS, false, {
      ownerChannel: () => ({ sp: owner, client: (owner === 'A' ? A : B).client }),
      unavailable: () => undefined,
      lunSize: () => 1 << 20,
    });
    // SP A (owner, and the SP that received write Z) dies with Z in flight; its channel to
    // the chassis ends at once, the cache-io call fails only 100 ms later
    A.dead = true;
    A.deadAfterMs = 100;
    const senderA = new AbortController();
    const z = dev.withSignal(senderA.signal).write(4096, Buffer.alloc(4096, 1));
    await new Promise((r) => setTimeout(r, 10));
    senderA.abort(new Error('SP A died'));
    // B takes over; the host rewrites the block through SP B before Z's call has failed
    owner = 'B';
    const senderB = new AbortController();
    const w = dev.withSignal(senderB.signal).write(4096, Buffer.alloc(4096, 2));
    const other = dev.withSignal(senderB.signal).write(65536, Buffer.alloc(4096, 3)); // no overlap: not held back
    await other;
    expect(log).toEqual(['B:write@65536=3']);
    await Promise.all([z, w]);
    expect(log.filter((l) => l.includes('@4096'))).toEqual(['B:write@4096=1', 'B:write@4096=2']);
    // a read whose sender is gone is given up
    const gone = new AbortController();
    gone.abort(new Error('gone'));
    await expect(dev.withSignal(gone.signal).read(0, 512)).rejects.toThrow(/EIO/);
    // not-owner answers are retried until the owner serves
    B.notOwner = true;
    setTimeout(() => (B.notOwner = false), 50);
    await dev.write(0, Buffer.alloc(512, 4));
    expect(log.at(-1)).toBe('B:write@0=4');
  });

  it('fails at once when the array lost power', async () => {
    const dev = new OwnerLunDevice(0, 512, CAPS, false, { ownerChannel: () => null, unavailable: () => 'array alpha lost power', lunSize: () => 1 << 20 });
    await expect(dev.write(0, Buffer.alloc(512))).rejects.toThrow(/EIO: LUN 0: array alpha lost power/);
  });
});
