/**
 * Keyed HMAC-SHA256, truncated to `tagBytes` (RFC 2104 section 5), for the remote link's frame
 * MAC (src/link/protocol/frame.ts). Made once per key, then used for every message under it:
 *
 * - `NativeHmacSha256` (native/src/hmac.rs) keeps the SHA-256 states after the padded-key
 *   blocks, so a MAC hashes only the message plus one outer block, with the x86 SHA extensions
 *   when the CPU has them (`shaImpl`). One crossing into the addon per MAC.
 * - `TsHmacSha256` is node:crypto's `createHmac` per message (node cannot copy a keyed HMAC
 *   state, so every MAC redoes the key blocks and pays node's per-object cost).
 *
 * Both give the same bytes for the same key and pieces. A message is passed as several pieces
 * (e.g. sequence number + header, JSON, payload) that are MAC'd as if concatenated, never
 * copied into one buffer. `hmacSha256()` picks the addon when it loaded (SANBOX_FORCE_TS=1
 * forces the twin).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { addon, type NativeHandle } from './addon.js';

export const HMAC_SHA256_BYTES = 32;
/** the addon takes the handle, out, offset and at most this many pieces in one call */
export const HMAC_MAX_PIECES = 5;

export interface HmacSha256 {
  /** 'sha-ni' or 'portable' (addon), 'node' (node:crypto twin) */
  readonly impl: 'sha-ni' | 'portable' | 'node';
  readonly tagBytes: number;
  /** Writes the MAC of the pieces into out[offset .. offset + tagBytes]. */
  macInto(out: Uint8Array, offset: number, ...pieces: Uint8Array[]): void;
  /** The MAC of the pieces, as a new buffer. */
  mac(...pieces: Uint8Array[]): Buffer;
  /** Whether `tag` (exactly tagBytes long) is the MAC of the pieces; constant-time compare. */
  verify(tag: Uint8Array, ...pieces: Uint8Array[]): boolean;
}

function checkTagBytes(tagBytes: number): void {
  if (!Number.isInteger(tagBytes) || tagBytes < 1 || tagBytes > HMAC_SHA256_BYTES) throw new RangeError(`HMAC tag length must be 1..${HMAC_SHA256_BYTES} bytes, got ${tagBytes}`);
}

function checkTag(tag: Uint8Array, tagBytes: number): void {
  if (tag.length !== tagBytes) throw new RangeError(`HMAC tag of ${tag.length} bytes, expected ${tagBytes}`);
}

/** node:crypto's HMAC per message: the reference the addon is tested against. */
export class TsHmacSha256 implements HmacSha256 {
  readonly impl = 'node';

  private readonly key: Buffer;

  constructor(
    key: Uint8Array,
    readonly tagBytes = HMAC_SHA256_BYTES,
  ) {
    checkTagBytes(tagBytes);
    // a copy, as the addon's precomputed states are: a caller reusing its buffer changes nothing
    this.key = Buffer.from(key);
  }

  private digest(pieces: Uint8Array[]): Buffer {
    const h = createHmac('sha256', this.key);
    for (const p of pieces) h.update(p);
    return h.digest();
  }

  macInto(out: Uint8Array, offset: number, ...pieces: Uint8Array[]): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + this.tagBytes > out.length) throw new RangeError(`HMAC: ${this.tagBytes} bytes at offset ${offset} do not fit in ${out.length}`);
    out.set(this.digest(pieces).subarray(0, this.tagBytes), offset);
  }

  mac(...pieces: Uint8Array[]): Buffer {
    return this.digest(pieces).subarray(0, this.tagBytes);
  }

  verify(tag: Uint8Array, ...pieces: Uint8Array[]): boolean {
    checkTag(tag, this.tagBytes);
    return timingSafeEqual(this.digest(pieces).subarray(0, this.tagBytes), tag);
  }
}

/** The addon's keyed HMAC (requires the addon). `portable` forces its plain-Rust SHA-256. */
export class NativeHmacSha256 implements HmacSha256 {
  readonly impl: 'sha-ni' | 'portable';
  private readonly h: NativeHandle;

  constructor(
    key: Uint8Array,
    readonly tagBytes = HMAC_SHA256_BYTES,
    opts: { portable?: boolean } = {},
  ) {
    if (!addon) throw new Error('native addon not loaded');
    checkTagBytes(tagBytes);
    this.h = addon.hmacNew(key, tagBytes, opts.portable === true);
    this.impl = opts.portable ? 'portable' : addon.shaImpl();
  }

  macInto(out: Uint8Array, offset: number, ...pieces: Uint8Array[]): void {
    if (pieces.length > HMAC_MAX_PIECES) throw new RangeError(`HMAC: at most ${HMAC_MAX_PIECES} pieces per message, got ${pieces.length}`);
    addon!.hmacMac(this.h, out, offset, ...pieces);
  }

  mac(...pieces: Uint8Array[]): Buffer {
    const out = Buffer.allocUnsafe(this.tagBytes);
    this.macInto(out, 0, ...pieces);
    return out;
  }

  verify(tag: Uint8Array, ...pieces: Uint8Array[]): boolean {
    if (pieces.length > HMAC_MAX_PIECES + 1) throw new RangeError(`HMAC: at most ${HMAC_MAX_PIECES + 1} pieces per message to verify, got ${pieces.length}`);
    checkTag(tag, this.tagBytes);
    return addon!.hmacVerify(this.h, tag, ...pieces);
  }
}

/** A keyed HMAC-SHA256 on the addon when it loaded, else on node:crypto. */
export function hmacSha256(key: Uint8Array, tagBytes = HMAC_SHA256_BYTES): HmacSha256 {
  return addon ? new NativeHmacSha256(key, tagBytes) : new TsHmacSha256(key, tagBytes);
}
