import * as net from 'node:net';
import { RemoteLinkClient, RemoteLinkServer, type LinkHandlers, type RemoteLinkClientOptions, type RemoteLinkServerOptions } from '../../../src/link/protocol/index.js';

export const SECRET = 'correct horse battery staple';

export interface Harness {
  server: RemoteLinkServer;
  calls: Array<{ op: string; args: unknown; len: number }>;
  refused: Array<{ code: string; message: string }>;
  close: () => Promise<void>;
}

export async function startServer(over: Partial<RemoteLinkServerOptions> = {}, handlers?: LinkHandlers, port = 0): Promise<Harness> {
  const calls: Harness['calls'] = [];
  const refused: Harness['refused'] = [];
  const server = new RemoteLinkServer({
    array: 'bravo',
    peers: [{ array: 'alpha', secret: SECRET }],
    mirrorFor: (id) => (id === 'm1' ? { secondarySize: 1 << 20 } : id === 'm2' ? { secondarySize: 4096 } : undefined),
    handlers: handlers ?? {
      write: (args, data) => {
        calls.push({ op: 'write', args, len: data.length });
        return { result: { mirrorId: args.mirrorId, imageId: args.imageId, offset: args.offset, length: data.length } };
      },
      'read-regions': (args) => {
        calls.push({ op: 'read-regions', args, len: 0 });
        return { result: { regionSize: args.regionSize, checksums: args.regions.flatMap(([f, n]) => Array.from({ length: n }, (_, i) => ({ region: f + i, crc: f + i }))) } };
      },
      'mirror-db': (args) => {
        calls.push({ op: 'mirror-db', args, len: 0 });
        return { result: { applied: true, generation: 7 } };
      },
    },
    timers: { handshakeTimeoutMs: 1000 },
    ...over,
  });
  server.on('refused', ({ error }: { error: { code: string; message: string } }) => refused.push({ code: error.code, message: error.message }));
  await server.listen(port, '127.0.0.1');
  return { server, calls, refused, close: () => server.close() };
}

export function client(port: number, over: Partial<RemoteLinkClientOptions> = {}): RemoteLinkClient {
  return new RemoteLinkClient({ array: 'alpha', peer: 'bravo', secret: SECRET, host: '127.0.0.1', port, mirrors: [{ mirrorId: 'm1', primarySize: 1 << 20 }], ...over });
}

export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A TCP proxy in front of `target` that records client->server bytes and can freeze (stop forwarding, keep sockets). */
export class Proxy {
  readonly server: net.Server;
  captured: Buffer[] = [];
  frozen = false;
  private readonly sockets = new Set<net.Socket>();
  constructor(target: number) {
    this.server = net.createServer((c) => {
      const u = net.createConnection({ host: '127.0.0.1', port: target });
      this.sockets.add(c).add(u);
      c.on('data', (d: Buffer) => {
        this.captured.push(d);
        if (!this.frozen) u.write(d);
      });
      u.on('data', (d: Buffer) => {
        if (!this.frozen) c.write(d);
      });
      const end = () => {
        c.destroy();
        u.destroy();
      };
      c.on('close', end).on('error', end);
      u.on('close', end).on('error', end);
    });
  }
  async listen(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    return (this.server.address() as net.AddressInfo).port;
  }
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Sends raw bytes to port; resolves with what came back once the server closes (or after ms). */
export function rawExchange(port: number, bytes: Buffer, ms = 1500): Promise<{ reply: Buffer; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), closedByServer });
    };
    const t = setTimeout(() => finish(false), ms);
    s.on('connect', () => s.write(bytes));
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}
