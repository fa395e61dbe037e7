/**
 * The in-memory overlay of a disk with a volatile write cache (lose-unflushed): byte ranges of a
 * LUN whose newest content is here and not (yet) in the image. Pure data, no I/O: the volatile
 * disk (./volatile.ts) decides what goes in and writes it down.
 *
 * Byte granularity, because requests reaching the disk need not be block-aligned (the hops above
 * allow any byte range): the overlay is a sorted list of non-overlapping pieces, and a new piece
 * cuts away whatever older pieces it overlaps, so every byte has exactly its newest content.
 */

export interface Piece {
  offset: number;
  length: number;
  /** The bytes; absent: the range reads as zeroes (a write-zeroes or a trim). */
  data?: Buffer;
  /** A zero piece that must be written down allocated (NBD_CMD_FLAG_NO_HOLE). */
  noHole?: boolean;
  /** Order of arrival: the oldest content is written down first; fragments keep their piece's. */
  seq: number;
  /**
   * true: held, only in memory (lost at a crash). false: a write going down right now (FUA, or
   * the mode is off), kept here only so that reads see it instead of older held content.
   */
  held: boolean;
  /** Set while the piece's content is being written down: resolves once it is below. */
  writing?: Promise<void>;
}

/**
 * Cutting a piece keeps a view of its buffer; a fragment much smaller than that buffer gets its
 * own copy, so the memory held stays within about twice the bytes held, however writes overlap.
 */
function fragment(p: Piece, from: number, to: number): Piece {
  if (!p.data) return { ...p, offset: from, length: to - from };
  const view = p.data.subarray(from - p.offset, to - p.offset);
  const data = view.length * 2 < p.data.buffer.byteLength ? Buffer.from(view) : view;
  return { ...p, offset: from, length: to - from, data };
}

export class Overlay {
  private pieces: Piece[] = [];
  private heldBytes = 0;

  /** Bytes held (only here): what a crash now would lose. */
  get bytes(): number {
    return this.heldBytes;
  }

  get empty(): boolean {
    return this.pieces.length === 0;
  }

  /** Index of the first piece ending after `offset`. */
  private first(offset: number): number {
    let lo = 0;
    let hi = this.pieces.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const p = this.pieces[mid]!;
      if (p.offset + p.length <= offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The pieces overlapping [offset, offset+length), in order of offset. */
  overlapping(offset: number, length: number): Piece[] {
    const end = offset + length;
    const out: Piece[] = [];
    for (let i = this.first(offset); i < this.pieces.length && this.pieces[i]!.offset < end; i++) out.push(this.pieces[i]!);
    return out;
  }

  /** Puts `p` in, cutting away the parts of older pieces it covers. */
  put(p: Piece): void {
    const end = p.offset + p.length;
    const i = this.first(p.offset);
    let j = i;
    while (j < this.pieces.length && this.pieces[j]!.offset < end) j++;
    const replaced = this.pieces.slice(i, j);
    const out: Piece[] = [];
    const left = replaced[0];
    if (left && left.offset < p.offset) out.push(fragment(left, left.offset, p.offset));
    out.push(p);
    const right = replaced[replaced.length - 1];
    if (right && right.offset + right.length > end) out.push(fragment(right, end, right.offset + right.length));
    this.pieces.splice(i, j - i, ...out);
    for (const r of replaced) this.account(r, -1);
    for (const o of out) this.account(o, +1);
  }

  /** Removes what is left of piece `seq` in the range (it is below now, or it went down and superseded nothing). */
  remove(offset: number, length: number, seq: number): void {
    const end = offset + length;
    for (let i = this.first(offset); i < this.pieces.length && this.pieces[i]!.offset < end; ) {
      const p = this.pieces[i]!;
      if (p.seq !== seq) i++;
      else {
        this.pieces.splice(i, 1);
        this.account(p, -1);
      }
    }
  }

  /** Marks what is left of piece `seq` in the range as no longer being written (a write-down failed). */
  unmarkWriting(offset: number, length: number, seq: number): void {
    for (const p of this.overlapping(offset, length)) if (p.seq === seq) p.writing = undefined;
  }

  /** Every held piece, in order of offset. */
  held(): Piece[] {
    return this.pieces.filter((p) => p.held);
  }

  /** Held pieces not being written, oldest first, until they add up to at least `bytes`. */
  oldest(bytes: number): Piece[] {
    const idle = this.pieces.filter((p) => p.held && !p.writing).sort((a, b) => a.seq - b.seq);
    const out: Piece[] = [];
    let sum = 0;
    for (const p of idle) {
      if (sum >= bytes) break;
      out.push(p);
      sum += p.length;
    }
    return out;
  }

  /** Forgets everything (the LUN is gone). */
  drop(): void {
    this.pieces = [];
    this.heldBytes = 0;
  }

  /** Copies the pieces over `buf`, which holds the device's bytes at `offset`. */
  static merge(pieces: Piece[], buf: Buffer, offset: number): void {
    const end = offset + buf.length;
    for (const p of pieces) {
      const from = Math.max(p.offset, offset);
      const to = Math.min(p.offset + p.length, end);
      if (from >= to) continue;
      if (p.data) p.data.copy(buf, from - offset, from - p.offset, to - p.offset);
      else buf.fill(0, from - offset, to - offset);
    }
  }

  private account(p: Piece, sign: 1 | -1): void {
    if (p.held) this.heldBytes += sign * p.length;
  }
}
