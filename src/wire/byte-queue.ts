/**
 * Bytes received on a socket and not yet parsed, kept as the chunks they arrived in.
 * Requests are cut out without copying when they lie inside one chunk and with exactly one
 * copy otherwise: concatenating on every `data` event makes large writes quadratic.
 */
export class ByteQueue {
  private chunks: Buffer[] = [];
  /** Offset of the first unread byte in chunks[0]. */
  private head = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Byte at position `at` from the read position. */
  byteAt(at: number): number {
    let i = 0;
    let pos = this.head + at;
    while (pos >= this.chunks[i]!.length) {
      pos -= this.chunks[i]!.length;
      i++;
    }
    return this.chunks[i]![pos]!;
  }

  readUInt32BE(at: number): number {
    const c = this.chunks[0]!;
    const p = this.head + at;
    if (p + 4 <= c.length) return c.readUInt32BE(p);
    return ((this.byteAt(at) << 24) | (this.byteAt(at + 1) << 16) | (this.byteAt(at + 2) << 8) | this.byteAt(at + 3)) >>> 0;
  }

  readUInt16BE(at: number): number {
    const c = this.chunks[0]!;
    const p = this.head + at;
    if (p + 2 <= c.length) return c.readUInt16BE(p);
    return (this.byteAt(at) << 8) | this.byteAt(at + 1);
  }

  /** Removes and returns the next `n` bytes (a view into a received chunk when possible). */
  take(n: number): Buffer {
    if (n > this.length) throw new Error(`ByteQueue.take(${n}) with ${this.length} buffered`);
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, n - filled);
      c.copy(out, filled, this.head, this.head + k);
      filled += k;
      this.advance(k);
    }
    return out;
  }

  /** Removes the next `n` bytes, copying them to the start of `target`. */
  copyOut(target: Buffer, n: number): void {
    if (n > this.length || n > target.length) throw new Error(`ByteQueue.copyOut(${n}) with ${this.length} buffered`);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length - this.head, n - filled);
      c.copy(target, filled, this.head, this.head + k);
      filled += k;
      this.advance(k);
    }
  }

  /** Drops up to `n` bytes; returns how many were dropped. */
  skip(n: number): number {
    const k = Math.min(n, this.length);
    let left = k;
    while (left > 0) {
      const c = this.chunks[0]!;
      const step = Math.min(c.length - this.head, left);
      this.advance(step);
      left -= step;
    }
    return k;
  }

  /**
   * Replaces the last chunk pushed by a copy of its unread bytes: for a chunk that was a view of
   * a buffer its owner reuses (a shared socket read buffer), once the requests it completed
   * have been taken out of it.
   */
  ownLast(): void {
    const i = this.chunks.length - 1;
    if (i < 0) return;
    const from = i === 0 ? this.head : 0;
    const c = this.chunks[i]!;
    const copy = Buffer.allocUnsafe(c.length - from);
    c.copy(copy, 0, from);
    this.chunks[i] = copy;
    if (i === 0) this.head = 0;
  }

  clear(): void {
    this.chunks = [];
    this.head = 0;
    this.length = 0;
  }

  private advance(n: number): void {
    this.head += n;
    this.length -= n;
    if (this.head === this.chunks[0]!.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}
