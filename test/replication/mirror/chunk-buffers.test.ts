// The resync's chunk buffers (src/replication/mirror/chunk-buffers.ts): reused, bounded, and
// refusing what would let two chunks share memory.
import { describe, it, expect } from 'vitest';
import { ChunkBuffers } from '../../../src/replication/mirror/chunk-buffers.js';

describe('chunk buffers', () => {
  it('a buffer given back is the next one taken; at most `keep` are kept', () => {
    const pool = new ChunkBuffers(4096, 1);
    const a = pool.take(4096);
    const b = pool.take(100); // a chunk shorter than the largest still gets a whole buffer
    expect(a.length).toBe(4096);
    expect(b.length).toBe(4096);
    expect(b).not.toBe(a);
    pool.give(a);
    pool.give(b); // over `keep`: dropped
    expect(pool.freeCount).toBe(1);
    expect(pool.take(4096)).toBe(a);
    expect(pool.take(4096)).not.toBe(b);
  });

  it('refuses a chunk larger than its buffers, a foreign buffer, a buffer given back twice, and bad sizes', () => {
    const pool = new ChunkBuffers(4096, 4);
    expect(() => pool.take(4097)).toThrow(/4097 bytes in buffers of 4096/);
    expect(() => pool.give(Buffer.alloc(100))).toThrow(/100-byte buffer/);
    const a = pool.take(4096);
    pool.give(a);
    expect(() => pool.give(a)).toThrow(/twice/);
    expect(() => new ChunkBuffers(0, 1)).toThrow(RangeError);
  });
});
