import { crc32c } from '../../native/index.js';
import { ByteQueue, jsonObjectAt } from '../../wire/index.js';

/**
 * Remote-link wire format (all integers little-endian). One frame:
 *
 *   header (28 bytes)
 *     0  magic "SRLK" u32   4  version u8 (LINK_VERSION)   5  kind u8   6  reserved u16 (0)
 *     8  id u32 (request id; a reply echoes it; 0 for frames outside a request)
 *     12 JSON length u32    16 binary length u32
 *     20 CRC32C of the body (JSON + binary) u32
 *     24 CRC32C of header bytes 0..23 u32
 *   JSON (UTF-8 object)   binary payload (write data, read data)
 *
 * The layout of the first 8 bytes (magic, version, kind) is frozen across versions so that a
 * peer speaking another version can always read an ERROR frame saying so.
 *
 * The decoder checks magic, header CRC, kind and the length limits as soon as the header is in
 * (before buffering the body: an oversized frame never makes us allocate), then the body CRC
 * and the JSON. It does NOT check the version: the connection does (during the handshake a
 * different version is answered with `version-mismatch`; afterwards it is a protocol error).
 */
export const LINK_MAGIC = 0x4b4c5253; // "SRLK" little-endian
export const LINK_VERSION = 1;
export const LINK_HEADER_SIZE = 28;
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
}

export interface FrameLimits {
  maxJson: number;
  maxBinary: number;
}

/** A malformed frame; `code` is 'frame-too-large' for a frame over the limits, else 'protocol'. */
export class LinkFrameError extends Error {
  constructor(
    readonly code: 'protocol' | 'frame-too-large',
    message: string,
  ) {
    super(message);
    this.name = 'LinkFrameError';
  }
}

export function encodeFrame(
  f: { kind: FrameKind; id: number; json: Record<string, unknown>; bin?: Buffer },
  limits: FrameLimits = { maxJson: LINK_MAX_JSON, maxBinary: LINK_MAX_BINARY },
  version = LINK_VERSION,
): Buffer {
  const json = Buffer.from(JSON.stringify(f.json), 'utf8');
  const bin = f.bin ?? Buffer.alloc(0);
  if (json.length > limits.maxJson) throw new LinkFrameError('frame-too-large', `link frame JSON of ${json.length} bytes exceeds ${limits.maxJson}`);
  if (bin.length > limits.maxBinary) throw new LinkFrameError('frame-too-large', `link frame payload of ${bin.length} bytes exceeds ${limits.maxBinary}`);
  if (!Number.isInteger(f.id) || f.id < 0 || f.id > 0xffffffff) throw new LinkFrameError('protocol', `bad link frame id ${f.id}`);
  const h = Buffer.alloc(LINK_HEADER_SIZE);
  h.writeUInt32LE(LINK_MAGIC, 0);
  h.writeUInt8(version, 4);
  h.writeUInt8(f.kind, 5);
  h.writeUInt16LE(0, 6);
  h.writeUInt32LE(f.id, 8);
  h.writeUInt32LE(json.length, 12);
  h.writeUInt32LE(bin.length, 16);
  h.writeUInt32LE(crc32c(bin, crc32c(json)), 20);
  h.writeUInt32LE(crc32c(h.subarray(0, 24)), 24);
  return Buffer.concat([h, json, bin]);
}

interface Header {
  version: number;
  kind: FrameKind;
  id: number;
  jsonLen: number;
  binLen: number;
  bodyCrc: number;
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

  constructor(private limits: FrameLimits = { maxJson: LINK_MAX_JSON, maxBinary: LINK_MAX_BINARY }) {}

  setLimits(limits: FrameLimits): void {
    this.limits = limits;
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
        const need = this.header.jsonLen + this.header.binLen;
        if (this.input.length < need) break;
        const body = this.input.take(need);
        const { version, kind, id, jsonLen, bodyCrc } = this.header;
        this.header = null;
        if (crc32c(body) !== bodyCrc) throw new LinkFrameError('protocol', `link frame ${id}: body checksum mismatch`);
        let json: Record<string, unknown>;
        try {
          json = jsonObjectAt(body, jsonLen);
        } catch (e) {
          throw new LinkFrameError('protocol', `link frame ${id}: ${(e as Error).message}`);
        }
        out.push({ version, kind, id, json, bin: body.subarray(jsonLen) });
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
  const kind = h.readUInt8(5);
  if (!KINDS.has(kind)) throw new LinkFrameError('protocol', `unknown link frame kind ${kind}`);
  const jsonLen = h.readUInt32LE(12);
  const binLen = h.readUInt32LE(16);
  if (jsonLen > limits.maxJson) throw new LinkFrameError('frame-too-large', `link frame JSON length ${jsonLen} exceeds the limit of ${limits.maxJson}`);
  if (binLen > limits.maxBinary) throw new LinkFrameError('frame-too-large', `link frame payload length ${binLen} exceeds the limit of ${limits.maxBinary}`);
  return { version: h.readUInt8(4), kind: kind as FrameKind, id: h.readUInt32LE(8), jsonLen, binLen, bodyCrc: h.readUInt32LE(20) };
}
