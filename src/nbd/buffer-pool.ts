/**
 * Reusable buffers for request payloads and read replies, by power-of-two size class (4 KiB
 * and up). A buffer of more than 4 KiB from Buffer.allocUnsafe is a fresh ArrayBuffer whose
 * memory V8 counts as external: at tens of thousands of requests a second that count alone
 * forced a full mark-compact several times a second (measured: every ~370 ms at 8.5k 4 KiB
 * writes/s, a third of the process's GC time), and a fresh large buffer also costs page faults
 * and cold cache lines. A reused one is already mapped and warm, and costs the GC nothing.
 */
export const SMALLEST_CLASS = 4096;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private retained = 0;

  constructor(
    /** Bytes kept for reuse at most; buffers returned beyond it are left to the GC. */
    private readonly maxRetained: number,
  ) {}

  /** A buffer of exactly `size` bytes (a view of a pooled one of its size class). */
  get(size: number): Buffer {
    const cls = sizeClass(size);
    const b = this.free.get(cls)?.pop();
    if (b) {
      this.retained -= cls;
      return b.subarray(0, size);
    }
    return Buffer.allocUnsafeSlow(cls).subarray(0, size);
  }

  /** Gives back a buffer from `get`; the caller must hold no reference to it afterwards. */
  put(buf: Buffer): void {
    const cls = sizeClass(buf.length);
    if (buf.byteOffset !== 0 || buf.buffer.byteLength !== cls) throw new Error(`BufferPool.put of a buffer it did not hand out (${buf.length} bytes)`);
    if (this.retained + cls > this.maxRetained) return;
    let list = this.free.get(cls);
    if (!list) this.free.set(cls, (list = []));
    list.push(Buffer.from(buf.buffer, 0, cls));
    this.retained += cls;
  }

  /** Bytes held for reuse. */
  get retainedBytes(): number {
    return this.retained;
  }
}

function sizeClass(size: number): number {
  return size <= SMALLEST_CLASS ? SMALLEST_CLASS : 2 ** Math.ceil(Math.log2(size));
}
