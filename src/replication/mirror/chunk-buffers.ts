/**
 * The buffers a resync run reads its chunks into, reused from chunk to chunk. A fresh 1 MiB
 * buffer per chunk is a V8 external allocation each time: at 100 MB/s they started a
 * mark-compact every ~80 ms on the primary. A buffer comes back only once every request that
 * carried a piece of it was answered (the caller's rule): one a failed or timed-out request may
 * still hold in a socket's queue is never handed out again.
 */
export class ChunkBuffers {
  private readonly free: Buffer[] = [];

  constructor(
    /** the size of every buffer: the run's largest chunk */
    readonly bytes: number,
    /** free buffers kept at most (more in flight are dropped when they come back) */
    private readonly keep: number,
  ) {
    if (!(bytes > 0) || !(keep >= 0)) throw new RangeError(`chunk buffers of ${bytes} bytes, ${keep} kept`);
  }

  /** A buffer of `bytes`; its first `length` bytes are what the caller uses. */
  take(length: number): Buffer {
    if (length > this.bytes) throw new RangeError(`a chunk of ${length} bytes in buffers of ${this.bytes}`);
    return this.free.pop() ?? Buffer.allocUnsafe(this.bytes);
  }

  /** A buffer from `take`, no longer referenced by any request. */
  give(b: Buffer): void {
    if (b.length !== this.bytes) throw new RangeError(`a ${b.length}-byte buffer given back to buffers of ${this.bytes}`);
    if (this.free.includes(b)) throw new Error('a chunk buffer given back twice');
    if (this.free.length < this.keep) this.free.push(b);
  }

  get freeCount(): number {
    return this.free.length;
  }
}
