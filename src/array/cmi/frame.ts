import { crc32c } from '../../native/index.js';
import { ByteQueue, jsonObjectAt } from '../../wire/index.js';

/**
 * CMI wire format (all integers little-endian). One frame:
 *
 *   header (24 bytes)
 *     0  magic "SCMI"      4  version u8 (CMI_VERSION)   5  kind u8   6  reserved u16 (0)
 *     8  id u32 (request id; a reply echoes it)          12 JSON length u32
 *     16 binary length u32                                20 CRC32C of bytes 0..19 u32
 *   JSON (UTF-8 object: the operation and its arguments, or the result / error)
 *   binary payload (page data, read data, write data)
 *
 * Kinds: 1 request, 2 reply (ok), 3 reply (error). A frame of another version, a bad magic,
 * a bad header CRC, or lengths over the limits is a protocol error: the connection ends.
 */
export const CMI_MAGIC = 0x494d4353; // "SCMI" little-endian
export const CMI_VERSION = 1;
export const CMI_HEADER_SIZE = 24;
export const CMI_MAX_JSON = 1024 * 1024;
export const CMI_MAX_BINARY = 64 * 1024 * 1024;

export const KIND = { REQUEST: 1, REPLY: 2, ERROR: 3 } as const;
export type FrameKind = (typeof KIND)[keyof typeof KIND];

export interface Frame {
  kind: FrameKind;
  id: number;
  json: Record<string, unknown>;
  bin: Buffer;
}

export class CmiProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CmiProtocolError';
  }
}

/**
 * One frame in one buffer. The payload may come in pieces (`bin` as a list: pages of a mirror
 * call), copied straight into the frame: the only copy of the data on the sending side.
 */
export function encodeFrame(f: { kind: FrameKind; id: number; json: Record<string, unknown>; bin?: Buffer | readonly Buffer[] }, version = CMI_VERSION): Buffer {
  const jsonText = JSON.stringify(f.json);
  const jsonLen = Buffer.byteLength(jsonText, 'utf8');
  const pieces = f.bin === undefined ? [] : Buffer.isBuffer(f.bin) ? [f.bin] : f.bin;
  let binLen = 0;
  for (const b of pieces) binLen += b.length;
  if (jsonLen > CMI_MAX_JSON) throw new CmiProtocolError(`CMI frame JSON of ${jsonLen} bytes exceeds ${CMI_MAX_JSON}`);
  if (binLen > CMI_MAX_BINARY) throw new CmiProtocolError(`CMI frame payload of ${binLen} bytes exceeds ${CMI_MAX_BINARY}`);
  if (!Number.isInteger(f.id) || f.id < 0 || f.id > 0xffffffff) throw new CmiProtocolError(`bad CMI frame id ${f.id}`);
  const frame = Buffer.allocUnsafe(CMI_HEADER_SIZE + jsonLen + binLen);
  frame.writeUInt32LE(CMI_MAGIC, 0);
  frame.writeUInt8(version, 4);
  frame.writeUInt8(f.kind, 5);
  frame.writeUInt16LE(0, 6);
  frame.writeUInt32LE(f.id, 8);
  frame.writeUInt32LE(jsonLen, 12);
  frame.writeUInt32LE(binLen, 16);
  frame.writeUInt32LE(crc32c(frame.subarray(0, 20)), 20);
  let at = CMI_HEADER_SIZE + frame.write(jsonText, CMI_HEADER_SIZE, 'utf8');
  for (const b of pieces) at += b.copy(frame, at);
  if (at !== frame.length) throw new Error(`CMI frame ${f.id}: encoded ${at} of ${frame.length} bytes`);
  return frame;
}

/**
 * Incremental decoder: push socket chunks, get whole frames (each cut out with at most one copy).
 * Throws CmiProtocolError on anything malformed (the caller ends the connection).
 */
export class FrameDecoder {
  private readonly input = new ByteQueue();
  private header: { kind: FrameKind; id: number; jsonLen: number; binLen: number } | null = null;

  push(chunk: Buffer): Frame[] {
    this.input.push(chunk);
    const out: Frame[] = [];
    for (;;) {
      if (!this.header) {
        if (this.input.length < CMI_HEADER_SIZE) break;
        this.header = parseHeader(this.input.take(CMI_HEADER_SIZE));
      }
      const need = this.header.jsonLen + this.header.binLen;
      if (this.input.length < need) break;
      const body = this.input.take(need);
      const { kind, id, jsonLen } = this.header;
      this.header = null;
      let json: Record<string, unknown>;
      try {
        json = jsonObjectAt(body, jsonLen);
      } catch (e) {
        throw new CmiProtocolError(`CMI frame ${id}: ${(e as Error).message}`);
      }
      out.push({ kind, id, json, bin: body.subarray(jsonLen) });
    }
    return out;
  }

  get bufferedBytes(): number {
    return this.input.length;
  }
}

function parseHeader(h: Buffer): { kind: FrameKind; id: number; jsonLen: number; binLen: number } {
  if (h.readUInt32LE(0) !== CMI_MAGIC) throw new CmiProtocolError(`bad CMI magic 0x${h.readUInt32LE(0).toString(16)}`);
  if (crc32c(h.subarray(0, 20)) !== h.readUInt32LE(20)) throw new CmiProtocolError('CMI header checksum mismatch');
  const version = h.readUInt8(4);
  if (version !== CMI_VERSION) throw new CmiProtocolError(`CMI version ${version} not supported (this SP speaks ${CMI_VERSION})`);
  const kind = h.readUInt8(5);
  if (kind !== KIND.REQUEST && kind !== KIND.REPLY && kind !== KIND.ERROR) throw new CmiProtocolError(`unknown CMI frame kind ${kind}`);
  const jsonLen = h.readUInt32LE(12);
  const binLen = h.readUInt32LE(16);
  if (jsonLen > CMI_MAX_JSON) throw new CmiProtocolError(`CMI frame JSON length ${jsonLen} exceeds ${CMI_MAX_JSON}`);
  if (binLen > CMI_MAX_BINARY) throw new CmiProtocolError(`CMI frame payload length ${binLen} exceeds ${CMI_MAX_BINARY}`);
  return { kind: kind as FrameKind, id: h.readUInt32LE(8), jsonLen, binLen };
}
