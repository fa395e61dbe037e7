import * as net from 'node:net';
import { crc32c } from '../../../src/native/index.js';

/** A man in the middle of the remote link, for tests: it parses frames and can rewrite, drop, duplicate or reorder them. */

export const HEADER = 28;
const FLAG_MAC = 1;
const MAC_BYTES = 16;

/** One frame as it crossed the wire, with its header fields. */
export interface WireFrame {
  bytes: Buffer;
  kind: number;
  flags: number;
  jsonLen: number;
  binLen: number;
  json: Record<string, unknown>;
}
export type Rewrite = (f: WireFrame, dir: 'c2s' | 's2c') => Buffer[];

/**
 * A man in the middle: forwards each direction frame by frame (cut by the header's lengths, plus
 * the MAC trailer when the header says there is one) through `rewrite`, which returns what to
 * forward instead (nothing: drop; twice: duplicate).
 */
export class FrameProxy {
  readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  rewrite: Rewrite = (f) => [f.bytes];
  constructor(target: number) {
    this.server = net.createServer((c) => {
      const u = net.createConnection({ host: '127.0.0.1', port: target });
      this.sockets.add(c).add(u);
      this.pipe(c, u, 'c2s');
      this.pipe(u, c, 's2c');
      const end = () => {
        c.destroy();
        u.destroy();
      };
      c.on('close', end).on('error', end);
      u.on('close', end).on('error', end);
    });
  }
  private pipe(from: net.Socket, to: net.Socket, dir: 'c2s' | 's2c'): void {
    let buf = Buffer.alloc(0);
    from.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const out: Buffer[] = [];
      while (buf.length >= HEADER) {
        const flags = buf.readUInt16LE(6);
        const jsonLen = buf.readUInt32LE(12);
        const binLen = buf.readUInt32LE(16);
        const len = HEADER + jsonLen + binLen + (flags & FLAG_MAC ? MAC_BYTES : 0);
        if (buf.length < len) break;
        const bytes = Buffer.from(buf.subarray(0, len));
        buf = buf.subarray(len);
        let json: Record<string, unknown> = {};
        try {
          json = JSON.parse(bytes.subarray(HEADER, HEADER + jsonLen).toString('utf8')) as Record<string, unknown>;
        } catch {
          /* not ours to judge */
        }
        out.push(...this.rewrite({ bytes, kind: bytes.readUInt8(5), flags, jsonLen, binLen, json }, dir));
      }
      if (out.length && !to.destroyed) to.write(Buffer.concat(out));
    });
  }
  async listen(port = 0): Promise<number> {
    await new Promise<void>((r) => this.server.listen(port, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** What an attacker does after changing a frame's body: the CRCs are no secret, so it fixes them. */
export function fixCrcs(b: Buffer): Buffer {
  const jsonLen = b.readUInt32LE(12);
  const binLen = b.readUInt32LE(16);
  if (b.readUInt32LE(20) !== 0) b.writeUInt32LE(crc32c(b.subarray(HEADER, HEADER + jsonLen + binLen)), 20);
  b.writeUInt32LE(crc32c(b.subarray(0, 24)), 24);
  return b;
}

