/**
 * Reusable payload buffers for large writes, by power-of-two size class. A fresh large buffer
 * costs page faults and cold cache lines on every request; a reused one is already mapped and
 * warm, which is most of the difference between copying 1 MiB at memory speed and not.
 */
export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private retained = 0;

  constructor(
    /** Smallest request served from the pool; smaller ones are plain allocations. */
    readonly minSize: number,
    /** Bytes kept for reuse at most; buffers returned beyond it are left to the GC. */
    private readonly maxRetained: number,
  ) {}

  /** A buffer of exactly `size` bytes (a view of a pooled one of the next power of two). */
  get(size: number): Buffer {
    if (size < this.minSize) return Buffer.allocUnsafe(size);
    const cls = sizeClass(size);
    const list = this.free.get(cls);
    const b = list?.pop();
    if (b) {
      this.retained -= cls;
      return b.subarray(0, size);
    }
    return Buffer.allocUnsafeSlow(cls).subarray(0, size);
  }

  /** Gives back a buffer from `get`; the caller must hold no reference to it afterwards. */
  put(buf: Buffer): void {
    if (buf.length < this.minSize) return;
    const whole = Buffer.from(buf.buffer, buf.byteOffset, buf.buffer.byteLength - buf.byteOffset);
    const cls = sizeClass(buf.length);
    if (whole.length !== cls || buf.byteOffset !== 0) throw new Error(`BufferPool.put of a buffer it did not hand out (${buf.length} bytes)`);
    if (this.retained + cls > this.maxRetained) return;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(whole);
    this.retained += cls;
  }
}

function sizeClass(size: number): number {
  return 2 ** Math.ceil(Math.log2(size));
}
