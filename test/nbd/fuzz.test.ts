import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CMD } from '../../src/nbd/index.js';
import { startServer, type Fixture } from './fixture.js';
import { goPayload, metaPayload, RawClient } from './raw-client.js';
import { fcSeed } from '../support/random.js';

let fx: Fixture;
let witness: RawClient;
beforeAll(async () => {
  fx = await startServer({ handshakeTimeoutMs: 2000 });
  witness = await RawClient.connect(fx.port);
  await witness.handshake({ structured: true, meta: true });
});
afterAll(async () => {
  witness.close();
  // Every connection is gone: the memory budget holds nothing, its books balanced throughout.
  let used = -1;
  for (let i = 0; i < 50 && used !== 0; i++) {
    used = fx.server.memoryStats().used;
    if (used !== 0) await new Promise((r) => setTimeout(r, 50));
  }
  await fx.stop();
  expect(used).toBe(0);
});

/** The witness connection still works: nothing another client did disturbed it. */
async function witnessWorks(cookie: bigint): Promise<void> {
  witness.request(CMD.READ, { cookie, offset: 0, length: 512 });
  const r = await witness.structuredReply();
  expect(r.cookie).toBe(cookie);
  expect(r.error).toBe(0);
  expect(() => fx.server.memoryStats()).not.toThrow(); // the budget's books balance
}

/** Sends `bytes`, gives the server a moment, then hangs up; returns whether it hung up first. */
async function throwAt(bytes: Buffer, afterHandshake: boolean): Promise<void> {
  const c = await RawClient.connect(fx.port);
  try {
    if (afterHandshake) await c.handshake({ structured: true, meta: true });
    else await c.read(18);
    c.write(bytes);
    await c.waitClosed(60);
  } finally {
    c.close();
  }
}

function request(type: number, flags: number, offset: bigint, length: number, withPayload: boolean): Buffer {
  const h = Buffer.alloc(28);
  h.writeUInt32BE(0x25609513, 0);
  h.writeUInt16BE(flags, 4);
  h.writeUInt16BE(type, 6);
  h.writeBigUInt64BE(0x1122334455667788n, 8);
  h.writeBigUInt64BE(offset, 16);
  h.writeUInt32BE(length, 24);
  return withPayload && type === CMD.WRITE ? Buffer.concat([h, Buffer.alloc(Math.min(length, 70_000), 0xa5)]) : h;
}

const arbRequest = fc
  .record({
    type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 0, max: 0xffff })),
    flags: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0x3f }), fc.integer({ min: 0, max: 0xffff })),
    offset: fc.constantFrom(0n, 512n, 1n, 1048064n, 1048576n, 0xffffffffffffffffn, 0x7fffffffffffffffn, 4096n),
    length: fc.constantFrom(0, 1, 512, 4096, 65536, 1048576, 0x7fffffff, 0xffffffff),
    withPayload: fc.boolean(),
  })
  .map((r) => request(r.type, r.flags, r.offset, r.length, r.withPayload));

/** Valid-looking traffic with a few bytes flipped, truncated or spliced. */
const arbMutated = fc
  .tuple(fc.array(arbRequest, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.nat())
  .map(([reqs, flips, cut]) => {
    const b = Buffer.concat(reqs);
    for (const [at, v] of flips) b[at % b.length] = v;
    return b.subarray(0, b.length - (cut % 8));
  });

describe('fuzzing the server with random and mutated streams', () => {
  it('random bytes during the handshake: no crash, no hang, witness unaffected', async () => {
    let n = 0n;
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 0, maxLength: 300 }), async (bytes) => {
        await throwAt(Buffer.from(bytes), false);
        await witnessWorks(++n);
      }),
      { numRuns: 60, ...fcSeed(20261121) },
    );
  });

  it('mutated option sequences: no crash, witness unaffected', async () => {
    const options = fc.array(
      fc.record({
        option: fc.integer({ min: 0, max: 12 }),
        data: fc.oneof(
          fc.constant(goPayload('disk', [0, 1, 2, 3])),
          fc.constant(metaPayload('disk', ['base:allocation'])),
          fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
        ),
        lie: fc.integer({ min: -3, max: 3 }),
      }),
      { maxLength: 5 },
    );
    let n = 1000n;
    await fc.assert(
      fc.asyncProperty(options, async (opts) => {
        const parts = [Buffer.from([0, 0, 0, 3])];
        for (const o of opts) {
          const h = Buffer.alloc(16);
          h.write('IHAVEOPT', 0);
          h.writeUInt32BE(o.option, 8);
          h.writeUInt32BE(Math.max(0, o.data.length + o.lie), 12);
          parts.push(h, o.data);
        }
        await throwAt(Buffer.concat(parts), false);
        await witnessWorks(++n);
      }),
      { numRuns: 60, ...fcSeed(42) },
    );
  });

  it('mutated transmission traffic: no crash, no hang, witness unaffected', async () => {
    let n = 5000n;
    await fc.assert(
      fc.asyncProperty(arbMutated, async (bytes) => {
        await throwAt(bytes, true);
        await witnessWorks(++n);
      }),
      { numRuns: 80, ...fcSeed(7) },
    );
    // Every fuzz connection is gone; only the witness remains.
    const deadline = Date.now() + 3000;
    while (fx.server.sessionCount() > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fx.server.sessionCount()).toBe(1);
  });
});
