import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHmac, randomBytes } from 'node:crypto';
import { TsHmacSha256 } from '../../../src/native/index.js';
import { encodeFrame, FrameDecoder, FrameWriter, KIND, LINK_HEADER_SIZE, LINK_MAC_BYTES, LinkFrameError, type FrameKind } from '../../../src/link/protocol/index.js';

const kinds = Object.values(KIND) as FrameKind[];

describe('link frame codec', () => {
  it('round-trips frames split at arbitrary points', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom(...kinds), id: fc.nat(), s: fc.string({ maxLength: 50 }), bin: fc.uint8Array({ maxLength: 300 }) }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat({ max: 2000 }), { maxLength: 10 }),
        (frames, cuts) => {
          const wire = Buffer.concat(frames.map((f) => encodeFrame({ kind: f.kind, id: f.id, json: { s: f.s }, bin: Buffer.from(f.bin) })));
          const points = [...new Set(cuts.map((c) => c % (wire.length + 1)))].sort((a, b) => a - b);
          const dec = new FrameDecoder();
          const out = [];
          let prev = 0;
          for (const p of [...points, wire.length]) {
            out.push(...dec.push(wire.subarray(prev, p)));
            prev = p;
          }
          expect(out.map((f) => ({ kind: f.kind, id: f.id, s: f.json.s, bin: [...f.bin] }))).toEqual(frames.map((f) => ({ kind: f.kind, id: f.id, s: f.s, bin: [...f.bin] })));
          expect(dec.bufferedBytes).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('random bytes only ever raise LinkFrameError (never another exception)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, withValidHeaderPrefix) => {
        const dec = new FrameDecoder();
        let buf = Buffer.from(bytes);
        if (withValidHeaderPrefix) buf = Buffer.concat([encodeFrame({ kind: KIND.REQUEST, id: 1, json: {} }).subarray(0, 8), buf]);
        try {
          dec.push(buf);
        } catch (e) {
          expect(e).toBeInstanceOf(LinkFrameError);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('flipping any bit of a frame is detected (CRC) or yields a clean error', () => {
    const f = encodeFrame({ kind: KIND.REQUEST, id: 9, json: { op: 'write', args: { offset: 4096 } }, bin: Buffer.alloc(64, 7) });
    for (let bit = 0; bit < f.length * 8; bit += 3) {
      const g = Buffer.from(f);
      g[bit >> 3]! ^= 1 << (bit & 7);
      const dec = new FrameDecoder();
      let frames: unknown[] = [];
      try {
        frames = dec.push(g);
      } catch (e) {
        expect(e).toBeInstanceOf(LinkFrameError);
        continue;
      }
      // a flipped length may leave the decoder waiting for more bytes; flipped version bits pass the decoder (the connection checks the version)
      if (frames.length) expect(bit >> 3 === 4 || bit >> 3 === 6 || bit >> 3 === 7).toBe(false);
    }
  });

  it('refuses an oversized frame from its header alone', () => {
    const dec = new FrameDecoder({ maxJson: 100, maxBinary: 1000 });
    const big = encodeFrame({ kind: KIND.REQUEST, id: 1, json: {}, bin: Buffer.alloc(2000) });
    expect(() => dec.push(big.subarray(0, LINK_HEADER_SIZE))).toThrow(/exceeds the limit/);
    expect(() => encodeFrame({ kind: KIND.REQUEST, id: 1, json: {}, bin: Buffer.alloc(2000) }, { maxJson: 100, maxBinary: 1000 })).toThrow(LinkFrameError);
  });
});

describe('link frame MAC', () => {
  const key = randomBytes(32);
  const macced = (n: number, seq0 = 0) => {
    const st = { key, seq: seq0 };
    return Array.from({ length: n }, (_, i) => encodeFrame({ kind: KIND.REQUEST, id: i + 1, json: { op: 'write', args: { offset: i * 512 } }, bin: Buffer.alloc(512, i) }, undefined, undefined, st));
  };
  const receiver = () => {
    const d = new FrameDecoder();
    d.setReceiveKey(key);
    return d;
  };

  it('frames with a MAC decode as authenticated, in sequence; the body CRC is left out', () => {
    const wire = macced(3);
    expect(wire[0]!.length).toBe(LINK_HEADER_SIZE + wire[0]!.readUInt32LE(12) + 512 + LINK_MAC_BYTES);
    expect(wire[0]!.readUInt32LE(20)).toBe(0);
    const out = receiver().push(Buffer.concat(wire));
    expect(out.map((f) => [f.id, f.authenticated, f.bin[0]])).toEqual([
      [1, true, 0],
      [2, true, 1],
      [3, true, 2],
    ]);
  });

  it('any flipped bit of a frame with a MAC is refused (bad-mac, or a header error), never decoded', () => {
    const f = macced(1)[0]!;
    for (let bit = 0; bit < f.length * 8; bit++) {
      const g = Buffer.from(f);
      g[bit >> 3]! ^= 1 << (bit & 7);
      let frames: unknown[] = [];
      try {
        frames = receiver().push(g);
      } catch (e) {
        expect(e).toBeInstanceOf(LinkFrameError);
        continue;
      }
      expect(frames).toEqual([]); // a damaged length can only leave the decoder waiting
    }
  });

  it('a frame out of sequence (replayed, dropped, reordered) is bad-mac', () => {
    const [a, b] = macced(2);
    expect(() => receiver().push(Buffer.concat([a!, a!]))).toThrow(expect.objectContaining({ code: 'bad-mac' }));
    expect(() => receiver().push(b!)).toThrow(expect.objectContaining({ code: 'bad-mac' }));
    expect(() => receiver().push(Buffer.concat([b!, a!]))).toThrow(expect.objectContaining({ code: 'bad-mac' }));
    // another key (another session, or the other direction)
    const other = new FrameDecoder();
    other.setReceiveKey(randomBytes(32));
    expect(() => other.push(a!)).toThrow(expect.objectContaining({ code: 'bad-mac' }));
  });

  it('the MAC on the wire is HMAC-SHA256(key, seq u64 LE || header || JSON || payload) truncated, as node:crypto computes it', () => {
    for (const seq of [0, 1, 0xffffffff, 2 ** 32 + 5, 2 ** 53 - 1]) {
      for (const size of [0, 1, 63, 4096, 100_000]) {
        const bin = randomBytes(size);
        const f = encodeFrame({ kind: KIND.REPLY, id: 7, json: { ok: true, n: size } }, undefined, undefined, { key, seq });
        const seqLe = Buffer.alloc(8);
        seqLe.writeBigUInt64LE(BigInt(seq));
        const withBin = encodeFrame({ kind: KIND.REQUEST, id: 9, json: { op: 'write' }, bin }, undefined, undefined, { key, seq });
        for (const w of [f, withBin]) {
          const body = w.subarray(0, w.length - LINK_MAC_BYTES);
          const want = createHmac('sha256', key).update(seqLe).update(body).digest().subarray(0, LINK_MAC_BYTES);
          expect(w.subarray(w.length - LINK_MAC_BYTES).equals(want), `seq ${seq} size ${size}`).toBe(true);
        }
      }
    }
  });

  it('frames MAC\'d by the node:crypto twin verify on the default implementation (mixed builds interoperate)', () => {
    const st = { key, seq: 0, hmac: new TsHmacSha256(key, LINK_MAC_BYTES) };
    const wire = [0, 1, 4096].map((n, i) => encodeFrame({ kind: KIND.REQUEST, id: i + 1, json: { i }, bin: randomBytes(n) }, undefined, undefined, st));
    expect(receiver().push(Buffer.concat(wire)).map((f) => f.authenticated)).toEqual([true, true, true]);
  });

  it('a frame with a MAC before the keys is a protocol error; one without decodes unauthenticated', () => {
    expect(() => new FrameDecoder().push(macced(1)[0]!)).toThrow(expect.objectContaining({ code: 'protocol' }));
    expect(receiver().push(encodeFrame({ kind: KIND.ERROR, id: 0, json: { code: 'auth-failed' } }))[0]).toMatchObject({ authenticated: false });
  });

  it('FrameWriter: a batch of small frames is one buffer; a large payload goes by reference; the bytes are what encodeFrame gives', () => {
    const key = randomBytes(32);
    const big = randomBytes(200 * 1024);
    // a small slab, so that frames also cross into new slabs
    const w = new FrameWriter(10_000);
    const mac = { key, seq: 0 };
    const ref = { key, seq: 0 };
    const expected: Buffer[] = [];
    const batches: Buffer[][] = [];
    for (let b = 0; b < 6; b++) {
      for (let i = 0; i < 5; i++) {
        const f = { kind: KIND.REQUEST, id: b * 10 + i + 1, json: { op: 'write', b, i }, bin: b === 3 && i === 2 ? big : randomBytes(4096) };
        w.encode(f, undefined, undefined, mac);
        expected.push(encodeFrame(f, undefined, undefined, ref));
      }
      batches.push(w.take());
    }
    expect(w.pending).toBe(false);
    expect(batches[0]!.length).toBe(3); // 5 frames of 4 KiB, two to a 10,000-byte slab: three ranges
    expect(batches[3]!.some((p) => p === big)).toBe(true); // not copied
    const one = new FrameWriter();
    for (let i = 0; i < 16; i++) one.encode({ kind: KIND.REPLY, id: i + 1, json: { result: {} }, bin: Buffer.alloc(4096) }, undefined, undefined, { key, seq: i });
    expect(one.take().length).toBe(1); // a QD16 batch of 4 KiB frames: one socket write
    expect(Buffer.concat(batches.flat()).equals(Buffer.concat(expected))).toBe(true);
    const dec = new FrameDecoder();
    dec.setReceiveKey(key);
    const frames = dec.push(Buffer.concat(batches.flat()));
    expect(frames.map((f) => f.id)).toEqual(expected.map((_, k) => Math.floor(k / 5) * 10 + (k % 5) + 1));
    expect(frames.every((f) => f.authenticated)).toBe(true);
    // a frame over the limits appends nothing and leaves the MAC sequence alone
    expect(() => w.encode({ kind: KIND.REQUEST, id: 1, json: {}, bin: Buffer.alloc(100) }, { maxJson: 100, maxBinary: 10 }, undefined, mac)).toThrow(LinkFrameError);
    expect(w.pending).toBe(false);
    expect(mac.seq).toBe(30);
  });
});
