/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78) in TypeScript: slicing-by-8 tables.
 * The twin of native/src/crc32c.rs; `crc32c(data, seed)` continues a CRC when `seed` is the
 * previous result, and always returns an unsigned 32-bit number.
 */
const T = new Int32Array(8 * 256);
(() => {
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    T[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) {
      const p = T[(s - 1) * 256 + i]!;
      T[s * 256 + i] = (p >>> 8) ^ T[p & 0xff]!;
    }
  }
})();

export function crc32cTs(data: Uint8Array, seed = 0): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError('crc32c seed must be a 32-bit unsigned integer');
  let crc = ~seed;
  const n = data.length;
  let i = 0;
  const end8 = n - (n & 7);
  const t = T;
  for (; i < end8; i += 8) {
    const lo = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ crc;
    const hi = data[i + 4]! | (data[i + 5]! << 8) | (data[i + 6]! << 16) | (data[i + 7]! << 24);
    crc =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^
      t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^
      t[hi >>> 24]!;
  }
  for (; i < n; i++) crc = (crc >>> 8) ^ t[(crc ^ data[i]!) & 0xff]!;
  return ~crc >>> 0;
}
