import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { createHmac, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { hmacSha256, NativeHmacSha256, TsHmacSha256, nativeInfo, type HmacSha256 } from '../../src/native/index.js';
import { addon, loadInfo } from '../../src/native/addon.js';

const forced = process.env.SANBOX_FORCE_TS === '1';
const hex = (s: string) => Buffer.from(s, 'hex');
const k131 = Buffer.alloc(131, 0xaa);

/** RFC 4231 section 4: key, data, HMAC-SHA256 (test case 5 is truncated to 128 bits). */
const RFC4231: [string, Buffer, Buffer, string][] = [
  ['1', Buffer.alloc(20, 0x0b), Buffer.from('Hi There'), 'b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7'],
  ['2', Buffer.from('Jefe'), Buffer.from('what do ya want for nothing?'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843'],
  ['3', Buffer.alloc(20, 0xaa), Buffer.alloc(50, 0xdd), '773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe'],
  ['4', Buffer.from(Array.from({ length: 25 }, (_, i) => i + 1)), Buffer.alloc(50, 0xcd), '82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b'],
  ['5', Buffer.alloc(20, 0x0c), Buffer.from('Test With Truncation'), 'a3b6167473100ee06e0c796c2955552b'],
  ['6', k131, Buffer.from('Test Using Larger Than Block-Size Key - Hash Key First'), '60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54'],
  [
    '7',
    k131,
    Buffer.from('This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.'),
    '9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2',
  ],
];

/** Every implementation this process has: the twin always, the addon's two paths when loaded. */
const makers: [string, (key: Uint8Array, tagBytes?: number) => HmacSha256][] = [
  ['twin (node:crypto)', (k, t) => new TsHmacSha256(k, t)],
  ['dispatcher', (k, t) => hmacSha256(k, t)],
  ...(addon
    ? ([
        ['addon', (k, t) => new NativeHmacSha256(k, t)],
        ['addon portable', (k, t) => new NativeHmacSha256(k, t, { portable: true })],
      ] as [string, (key: Uint8Array, tagBytes?: number) => HmacSha256][])
    : []),
];

const reference = (key: Uint8Array, data: Uint8Array, tagBytes = 32) => createHmac('sha256', key).update(data).digest().subarray(0, tagBytes);

describe('HMAC-SHA256 implementations', () => {
  it('the addon is in use unless forced off, with SHA extensions where the CPU has them', () => {
    const i = nativeInfo();
    if (forced) {
      expect(addon).toBeNull();
      expect(i.shaImpl).toBe('node');
      expect(hmacSha256(Buffer.alloc(1)).impl).toBe('node');
    } else {
      expect(addon).not.toBeNull();
      expect(['sha-ni', 'portable']).toContain(i.shaImpl);
      expect(hmacSha256(Buffer.alloc(1)).impl).toBe(i.shaImpl);
    }
  });

  for (const [name, make] of makers) {
    describe(name, () => {
      it('gives the RFC 4231 vectors, whole and in pieces', () => {
        for (const [tc, key, data, want] of RFC4231) {
          const h = make(key, want.length / 2);
          expect(h.mac(data).toString('hex'), `test case ${tc}`).toBe(want);
          for (let cut = 0; cut <= data.length; cut++) {
            expect(h.mac(data.subarray(0, cut), data.subarray(cut)).toString('hex'), `test case ${tc} cut ${cut}`).toBe(want);
            expect(h.verify(hex(want), data.subarray(0, cut), data.subarray(cut)), `test case ${tc} cut ${cut}`).toBe(true);
          }
        }
      });

      it('matches node:crypto at every length 0..300 and every two-piece split (random keys)', () => {
        const data = randomBytes(300);
        for (const keyLen of [0, 16, 32, 64, 65, 100]) {
          const key = randomBytes(keyLen);
          const h = make(key, 16);
          for (let n = 0; n <= data.length; n++) {
            const want = reference(key, data.subarray(0, n), 16);
            const step = n > 140 ? 7 : 1; // every split for the first blocks, a sample beyond
            for (let cut = 0; cut <= n; cut += step) expect(h.mac(data.subarray(0, cut), data.subarray(cut, n)).equals(want), `key ${keyLen} n ${n} cut ${cut}`).toBe(true);
          }
        }
      });

      it('matches node:crypto on random keys, tag lengths and up to 5 pieces', () => {
        fc.assert(
          fc.property(
            fc.uint8Array({ maxLength: 150 }),
            fc.array(fc.uint8Array({ maxLength: 700 }), { minLength: 1, maxLength: 5 }),
            fc.integer({ min: 1, max: 32 }),
            (key, pieces, tagBytes) => {
              const want = reference(key, Buffer.concat(pieces), tagBytes);
              const h = make(key, tagBytes);
              expect(h.mac(...pieces).equals(want)).toBe(true);
              expect(h.verify(want, ...pieces)).toBe(true);
            },
          ),
          { numRuns: 300 },
        );
      });

      it('writes into a caller-given buffer at an offset and touches nothing else', () => {
        const key = randomBytes(32);
        const a = randomBytes(36), b = randomBytes(4096);
        const out = Buffer.alloc(64, 0xee);
        make(key, 16).macInto(out, 40, a, b);
        expect(out.subarray(40, 56).equals(reference(key, Buffer.concat([a, b]), 16))).toBe(true);
        expect(out.subarray(0, 40).every((x) => x === 0xee) && out.subarray(56).every((x) => x === 0xee)).toBe(true);
        expect(() => make(key, 16).macInto(out, 49, a)).toThrow(/do not fit/);
      });

      it('refuses any tag that differs in one bit, and a tag of the wrong length', () => {
        const key = randomBytes(32), msg = randomBytes(100);
        const h = make(key, 16);
        const tag = h.mac(msg);
        for (let bit = 0; bit < 128; bit++) {
          const bad = Buffer.from(tag);
          bad[bit >> 3]! ^= 1 << (bit & 7);
          expect(h.verify(bad, msg), `bit ${bit}`).toBe(false);
        }
        expect(h.verify(tag, msg.subarray(1))).toBe(false);
        expect(() => h.verify(tag.subarray(0, 15), msg)).toThrow(RangeError);
      });

      it('refuses a tag length outside 1..32', () => {
        expect(() => make(Buffer.alloc(4), 0)).toThrow(RangeError);
        expect(() => make(Buffer.alloc(4), 33)).toThrow(RangeError);
      });
    });
  }

  it('SANBOX_SHA_PORTABLE=1 switches the whole addon to the plain-Rust SHA-256, same results', () => {
    if (!addon) return;
    const probe = `const a = require(${JSON.stringify(loadInfo.path)}); const o = Buffer.alloc(32);
      a.hmacMac(a.hmacNew(Buffer.from('Jefe'), 32, false), o, 0, Buffer.from('what do ya want for nothing?'));
      console.log(a.shaImpl(), o.toString('hex'));`;
    const r = spawnSync(process.execPath, ['-e', probe], { env: { ...process.env, SANBOX_SHA_PORTABLE: '1' }, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`portable ${RFC4231[1]![3]}`);
  });

  it('the addon refuses more pieces than one call takes', () => {
    if (!addon) return;
    const h = new NativeHmacSha256(Buffer.alloc(8), 16);
    const p = Array.from({ length: 6 }, () => Buffer.alloc(1));
    expect(() => h.mac(...p)).toThrow(RangeError);
    expect(() => h.verify(Buffer.alloc(16), ...p, Buffer.alloc(1))).toThrow(RangeError);
  });

  it('every implementation keeps its own copy of the key (a reused key buffer changes nothing)', () => {
    for (const [name, make] of makers) {
      const key = Buffer.from('k'.repeat(32));
      const h = make(key, 32);
      key.fill(0);
      expect(h.mac(Buffer.from('x')).equals(reference(Buffer.from('k'.repeat(32)), Buffer.from('x'))), name).toBe(true);
    }
  });
});
