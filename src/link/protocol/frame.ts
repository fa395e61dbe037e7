import { createHmac } from 'node:crypto';
import { crc32c, hmacSha256, type HmacSha256 } from '../../native/index.js';
import { ByteQueue, jsonObjectAt } from '../../wire/index.js';

/**
 * Remote-link wire format (all integers little-endian). One frame:
 *
 *   header (28 bytes)
 *     0  magic "SRLK" u32   4  version u8 (LINK_VERSION)   5  kind u8   6  flags u16
 *     8  id u32 (request id; a reply echoes it; 0 for frames outside a request)
 *     12 JSON length u32    16 binary length u32
 *     20 CRC32C of the body (JSON + binary) u32, or 0 in a frame with a MAC
 *     24 CRC32C of header bytes 0..23 u32
 *   JSON (UTF-8 object)   binary payload (write data, read data)
 *   MAC (16 bytes, only with flags & FLAG_MAC): HMAC-SHA256(key, seq u64 || header || JSON ||
 *     binary) truncated to 16 bytes; key and seq are per direction (./handshake.ts)
 *
 * Every frame after the handshake carries a MAC (version 2; version 1 had only the CRCs).
 * With a MAC the body CRC is left out (0, not checked): the MAC detects any change the CRC would,
 * and a CRC over a 16 MiB payload is work for nothing. The header CRC stays in every frame: the
 * MAC can only be checked once the whole frame is in, and a length field damaged in transit would
 * otherwise leave the decoder waiting for a body that never comes.
 *
 * The layout of the first 8 bytes (magic, version, kind) is frozen across versions so that a
 * peer speaking another version can always read an ERROR frame saying so (flags are 0 in
 * handshake frames, as version 1 requires of its reserved field).
 *
 * The decoder checks magic, header CRC, flags, kind and the length limits as soon as the header
 * is in (before buffering the body: an oversized frame never makes us allocate), then the MAC
 * (once a receive key is set) or the body CRC, and only then the JSON. It does NOT check the
 * version: the connection does (during the handshake a different version is answered with
 * `version-mismatch`; afterwards it is a protocol error).
 */
export const LINK_MAGIC = 0x4b4c5253; // "SRLK" little-endian
/** 3: an `apply` carries the writelog's records as the journal holds them (./apply-batch.ts) */
export const LINK_VERSION = 3;
export const LINK_HEADER_SIZE = 28;
/** flags bit: a MAC trailer follows the body */
export const FLAG_MAC = 1;
/** bytes of the MAC trailer (HMAC-SHA256 truncated) */
export const LINK_MAC_BYTES = 16;
/** Defaults for an authenticated connection. */
export const LINK_MAX_JSON = 1024 * 1024;
export const LINK_MAX_BINARY = 16 * 1024 * 1024;
/** Limits while the peer is not authenticated yet (handshake frames carry no payload). */
export const HANDSHAKE_MAX_JSON = 64 * 1024;
export const HANDSHAKE_MAX_BINARY = 0;

export const KIND = {
  /** handshake steps: hello, challenge, auth, ok */
  HANDSHAKE: 1,
  REQUEST: 2,
  REPLY: 3,
  /** a refused request (id = its id) or a connection-level error (id = 0) before the close */
  ERROR: 4,
  PING: 5,
  PONG: 6,
  /** clean close: the sender will send nothing more */
  GOODBYE: 7,
} as const;
export type FrameKind = (typeof KIND)[keyof typeof KIND];
const KINDS = new Set<number>(Object.values(KIND));

export interface Frame {
  version: number;
  kind: FrameKind;
  id: number;
  json: Record<string, unknown>;
  bin: Buffer;
  /** the frame carried a MAC and it verified (with the decoder's receive key and sequence number) */
  authenticated: boolean;
}

/**
 * One direction's MAC state: its key, the sequence number of the next frame, and the keyed MAC
 * made from the key (on first use when not given: once per direction, not once per frame).
 */
export interface MacState {
  key: Buffer;
  seq: number;
  hmac?: HmacSha256;
}

function keyedMac(st: MacState): HmacSha256 {
  st.hmac ??= hmacSha256(st.key, LINK_MAC_BYTES);
  if (st.hmac.tagBytes !== LINK_MAC_BYTES) throw new Error(`link MAC state with a ${st.hmac.tagBytes}-byte tag (the wire carries ${LINK_MAC_BYTES})`);
  return st.hmac;
}

const SEQ_BYTES = 8;

function writeSeq(b: Buffer, seq: number): void {
  b.writeUInt32LE(seq >>> 0, 0);
  b.writeUInt32LE(Math.floor(seq / 0x100000000), 4);
}

/**
 * The MAC of one frame: HMAC-SHA256(key, seq u64 LE || header || JSON || binary), truncated;
 * `head` is seq || header (36 bytes), `rest` the other pieces. A one-off on node:crypto (the key
 * is set up on every call) for MACing a frame by hand; the frame path keys a MacState's `hmac`
 * once per direction and MACs the pieces as they lie in memory (the encoder seq || header ||
 * JSON and the payload, the decoder seq || header and the body), the payload never copied.
 */
export function frameMac(key: Buffer, head: Buffer, ...rest: Buffer[]): Buffer {
  const h = createHmac('sha256', key).update(head);
  for (const r of rest) h.update(r);
  return h.digest().subarray(0, LINK_MAC_BYTES);
}

export interface FrameLimits {
  maxJson: number;
  maxBinary: number;
}

/**
 * A malformed frame; `code` is 'frame-too-large' for a frame over the limits, 'bad-mac' for a
 * frame whose MAC does not verify (altered, replayed, reordered or dropped frames), else 'protocol'.
 */
export class LinkFrameError extends Error {
  constructor(
    readonly code: 'protocol' | 'frame-too-large' | 'bad-mac',
    message: string,
  ) {
    super(message);
    this.name = 'LinkFrameError';
  }
}

/** Writes the 28-byte header at h[at ..]. */
function writeHeader(h: Buffer, at: number, version: number, kind: FrameKind, flags: number, id: number, jsonLen: number, binLen: number, bodyCrc: number): void {
  h.writeUInt32LE(LINK_MAGIC, at);
  h[at + 4] = version;
  h[at + 5] = kind;
  h.writeUInt16LE(flags, at + 6);
  h.writeUInt32LE(id, at + 8);
  h.writeUInt32LE(jsonLen, at + 12);
  h.writeUInt32LE(binLen, at + 16);
  h.writeUInt32LE(bodyCrc >>> 0, at + 20);
  h.writeUInt32LE(crc32c(h.subarray(at, at + 24)), at + 24);
}

function checkFrame(f: { id: number }, jsonLen: number, binLen: number, limits: FrameLimits): void {
  if (jsonLen > limits.maxJson) throw new LinkFrameError('frame-too-large', `link frame JSON of ${jsonLen} bytes exceeds ${limits.maxJson}`);
  if (binLen > limits.maxBinary) throw new LinkFrameError('frame-too-large', `link frame payload of ${binLen} bytes exceeds ${limits.maxBinary}`);
  if (!Number.isInteger(f.id) || f.id < 0 || f.id > 0xffffffff) throw new LinkFrameError('protocol', `bad link frame id ${f.id}`);
}

const NO_BIN = Buffer.alloc(0);

export function encodeFrame(
  f: { kind: FrameKind; id: number; json: Record<string, unknown>; bin?: Buffer },
  limits: FrameLimits = { maxJson: LINK_MAX_JSON, maxBinary: LINK_MAX_BINARY },
  version = LINK_VERSION,
  /** this direction's MAC state: the frame gets a MAC with mac.seq, and mac.seq advances */
  mac?: MacState,
): Buffer {
  const w = new FrameWriter(0);
  w.encode(f, limits, version, mac);
  const out = w.take();
  return out.length === 1 ? out[0]! : Buffer.concat(out);
}

/** Slabs frames are encoded into (a frame copies its payload into one below FRAME_COPY_MAX). */
const SLAB_BYTES = 256 * 1024;
/** A frame up to this size is copied whole into the slab; a larger one's payload is sent as it lies. */
const FRAME_COPY_MAX = 64 * 1024;

/**
 * Encodes frames back to back into shared slabs, so that the frames of one batch (one tick of a
 * connection) lie in one contiguous range: `take()` hands them out as one buffer (one socket
 * write), with no per-frame allocation (a 4 KiB write's frame outside node's 4 KiB buffer pool
 * would cost an ArrayBuffer each). A payload over FRAME_COPY_MAX is not copied: it goes out as
 * its own piece, by reference (its MAC is computed now: a payload changed before it is written
 * fails the peer's MAC check, never lands silently). Ranges handed out are never written again.
 */
export class FrameWriter {
  private slab: Buffer;
  /** start of the range not yet handed out, and the end of what is encoded in the slab */
  private start = 0;
  private end = 0;
  private pieces: Buffer[] = [];
  private readonly seqBuf = Buffer.alloc(SEQ_BYTES);

  constructor(private readonly slabBytes = SLAB_BYTES) {
    this.slab = Buffer.allocUnsafe(slabBytes);
  }

  /** Whether frames are waiting for take(). */
  get pending(): boolean {
    return this.pieces.length > 0 || this.end > this.start;
  }

  /** Room for `n` more bytes in the slab (the encoded range so far goes to the pieces first). */
  private reserve(n: number): void {
    if (this.slab.length - this.end >= n) return;
    this.cut();
    this.slab = Buffer.allocUnsafe(Math.max(this.slabBytes, n));
    this.start = this.end = 0;
  }

  private cut(): void {
    if (this.end > this.start) this.pieces.push(this.slab.subarray(this.start, this.end));
    this.start = this.end;
  }

  /** Appends one frame (throws LinkFrameError, having appended nothing, when it breaks a limit). */
  encode(
    f: { kind: FrameKind; id: number; json: Record<string, unknown>; bin?: Buffer },
    limits: FrameLimits = { maxJson: LINK_MAX_JSON, maxBinary: LINK_MAX_BINARY },
    version = LINK_VERSION,
    mac?: MacState,
  ): void {
    const text = JSON.stringify(f.json);
    const jsonLen = Buffer.byteLength(text, 'utf8');
    const bin = f.bin ?? NO_BIN;
    checkFrame(f, jsonLen, bin.length, limits);
    const macLen = mac ? LINK_MAC_BYTES : 0;
    const total = LINK_HEADER_SIZE + jsonLen + bin.length + macLen;
    const copy = total <= FRAME_COPY_MAX;
    this.reserve(copy ? total : LINK_HEADER_SIZE + jsonLen + macLen);
    const slab = this.slab;
    const at = this.end;
    const jsonAt = at + LINK_HEADER_SIZE;
    slab.write(text, jsonAt, jsonLen, 'utf8');
    const json = slab.subarray(jsonAt, jsonAt + jsonLen);
    writeHeader(slab, at, version, f.kind, mac ? FLAG_MAC : 0, f.id, jsonLen, bin.length, mac ? 0 : crc32c(bin, crc32c(json)));
    let end = jsonAt + jsonLen;
    if (copy) {
      bin.copy(slab, end);
      end += bin.length;
    }
    if (mac) {
      writeSeq(this.seqBuf, mac.seq);
      // seq || header || JSON || payload, the payload where it lies (in the slab or not)
      const headJson = slab.subarray(at, jsonAt + jsonLen);
      if (copy) keyedMac(mac).macInto(slab, end, this.seqBuf, headJson, bin);
      else {
        this.end = end;
        this.cut();
        this.pieces.push(bin);
        keyedMac(mac).macInto(slab, end, this.seqBuf, headJson, bin);
      }
      end += LINK_MAC_BYTES;
      mac.seq++;
    } else if (!copy) {
      this.end = end;
      this.cut();
      this.pieces.push(bin);
    }
    this.end = end;
  }

  /** The frames appended since the last take, in order: usually one buffer. */
  take(): Buffer[] {
    this.cut();
    const out = this.pieces;
    this.pieces = [];
    return out;
  }
}

interface Header {
  version: number;
  kind: FrameKind;
  id: number;
  jsonLen: number;
  binLen: number;
  bodyCrc: number;
  mac: boolean;
  raw: Buffer;
}

/**
 * Incremental decoder: push socket chunks, get whole frames (each cut out with at most one
 * copy). Throws LinkFrameError on anything malformed; after a throw the decoder is unusable
 * (the caller ends the connection). Limits can be raised after the handshake (`setLimits`).
 */
export class FrameDecoder {
  private readonly input = new ByteQueue();
  private header: Header | null = null;
  private broken = false;
  private recvMac: MacState | null = null;
  /** seq || header of the frame being verified (the check is synchronous: one buffer serves all) */
  private readonly macHead = Buffer.alloc(SEQ_BYTES + LINK_HEADER_SIZE);

  constructor(private limits: FrameLimits = { maxJson: LINK_MAX_JSON, maxBinary: LINK_MAX_BINARY }) {}

  setLimits(limits: FrameLimits): void {
    this.limits = limits;
  }

  /**
   * From the next frame on, a frame with a MAC is verified with this key and sequence number
   * (starting at 0) and a mismatch is a 'bad-mac' error; a frame with a MAC before a key is set
   * is a protocol error. Frames without a MAC still decode (authenticated: false): whether one
   * is acceptable is the connection's decision (only a refusal during the handshake is).
   */
  setReceiveKey(key: Buffer): void {
    this.recvMac = { key, seq: 0, hmac: hmacSha256(key, LINK_MAC_BYTES) };
  }

  /**
   * Like push, but never throws: the frames decoded before a malformed one come back together
   * with the error (so a connection can act on them in order before ending).
   */
  pushSafe(chunk: Buffer): { frames: Frame[]; error: LinkFrameError | null } {
    const frames: Frame[] = [];
    try {
      this.pushInto(chunk, frames);
      return { frames, error: null };
    } catch (e) {
      return { frames, error: e instanceof LinkFrameError ? e : new LinkFrameError('protocol', String(e)) };
    }
  }

  push(chunk: Buffer): Frame[] {
    const out: Frame[] = [];
    this.pushInto(chunk, out);
    return out;
  }

  private pushInto(chunk: Buffer, out: Frame[]): void {
    if (this.broken) throw new LinkFrameError('protocol', 'link decoder used after a protocol error');
    this.input.push(chunk);
    try {
      for (;;) {
        if (!this.header) {
          if (this.input.length < LINK_HEADER_SIZE) break;
          this.header = parseHeader(this.input.take(LINK_HEADER_SIZE), this.limits);
        }
        const bodyLen = this.header.jsonLen + this.header.binLen;
        const need = bodyLen + (this.header.mac ? LINK_MAC_BYTES : 0);
        if (this.input.length < need) break;
        const taken = this.input.take(need);
        const { version, kind, id, jsonLen, bodyCrc, mac, raw } = this.header;
        this.header = null;
        const body = mac ? taken.subarray(0, bodyLen) : taken;
        if (mac) {
          const r = this.recvMac;
          if (!r) throw new LinkFrameError('protocol', `link frame ${id}: a frame with a MAC before the session keys were agreed`);
          // checked before anything else looks at the body (not even the JSON is parsed first)
          const head = this.macHead;
          writeSeq(head, r.seq);
          raw.copy(head, SEQ_BYTES);
          // constant-time comparison inside verify (the addon's, or timingSafeEqual in the twin)
          if (!keyedMac(r).verify(taken.subarray(bodyLen), head, body))
            throw new LinkFrameError('bad-mac', `link frame ${r.seq} (kind ${kind}, id ${id}) failed its MAC check: altered, replayed, reordered or dropped on the path`);
          r.seq++;
        } else if (crc32c(body) !== bodyCrc) throw new LinkFrameError('protocol', `link frame ${id}: body checksum mismatch`);
        let json: Record<string, unknown>;
        try {
          json = jsonObjectAt(body, jsonLen);
        } catch (e) {
          throw new LinkFrameError('protocol', `link frame ${id}: ${(e as Error).message}`);
        }
        out.push({ version, kind, id, json, bin: body.subarray(jsonLen), authenticated: mac });
      }
    } catch (e) {
      this.broken = true;
      this.input.clear();
      throw e;
    }
  }

  get bufferedBytes(): number {
    return this.input.length;
  }
}

function parseHeader(h: Buffer, limits: FrameLimits): Header {
  const magic = h.readUInt32LE(0);
  if (magic !== LINK_MAGIC) throw new LinkFrameError('protocol', `bad link frame magic 0x${magic.toString(16)} (not a sanbox remote link?)`);
  if (crc32c(h.subarray(0, 24)) !== h.readUInt32LE(24)) throw new LinkFrameError('protocol', 'link frame header checksum mismatch');
  const flags = h.readUInt16LE(6);
  if ((flags & ~FLAG_MAC) !== 0) throw new LinkFrameError('protocol', `unknown link frame flags 0x${flags.toString(16)}`);
  const kind = h.readUInt8(5);
  if (!KINDS.has(kind)) throw new LinkFrameError('protocol', `unknown link frame kind ${kind}`);
  const jsonLen = h.readUInt32LE(12);
  const binLen = h.readUInt32LE(16);
  if (jsonLen > limits.maxJson) throw new LinkFrameError('frame-too-large', `link frame JSON length ${jsonLen} exceeds the limit of ${limits.maxJson}`);
  if (binLen > limits.maxBinary) throw new LinkFrameError('frame-too-large', `link frame payload length ${binLen} exceeds the limit of ${limits.maxBinary}`);
  return { version: h.readUInt8(4), kind: kind as FrameKind, id: h.readUInt32LE(8), jsonLen, binLen, bodyCrc: h.readUInt32LE(20), mac: (flags & FLAG_MAC) !== 0, raw: h };
}
