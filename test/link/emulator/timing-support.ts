// Helpers of the link emulator's timing tests: an echo server, an emulator in front of it, and a
// client that sends numbered messages and times their echoes (everything in this process, so the
// client, the server and the emulator read the same clock).
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { LinkEmulator, POLL_MS, type LinkEmulatorOptions } from '../../../src/link/index.js';

export type Cleanup = () => Promise<void> | void;

/** An echo server on 127.0.0.1; `onData` sees every chunk it reads, with the time. */
export async function echoServer(cleanups: Cleanup[], onData?: (d: Buffer, atMs: number) => void): Promise<{ port: number; server: Server }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.setNoDelay(true);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d) => {
      onData?.(d, performance.now());
      s.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))));
  return { port: (server.address() as AddressInfo).port, server };
}

export async function startEmulator(cleanups: Cleanup[], targetPort: number, opts: Partial<LinkEmulatorOptions> = {}): Promise<{ emu: LinkEmulator; port: number }> {
  const emu = new LinkEmulator({
    name: 'timing',
    routes: [{ name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: targetPort }, forward: 'a-to-b' }],
    pollMs: POLL_MS, // the precise mode: what the accuracy goal is about (a lab's `precise: true`)
    ...opts,
  });
  await emu.start();
  cleanups.push(() => emu.stop());
  return { emu, port: emu.status().routes[0]!.listen.port };
}

export function dial(cleanups: Cleanup[], port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.setNoDelay(true);
    s.once('error', reject);
    cleanups.push(() => void s.destroy());
  });
}

export interface RoundTrips {
  /** Round trips, ms, sorted. */
  rtts: number[];
  /** Messages that came back out of order (TCP never reorders: always 0). */
  reordered: number;
}

/**
 * Sends `count` messages of `size` bytes (a sequence number first), `qd` in flight at a time,
 * each completion sending the next; resolves with the round trips once all came back.
 */
export function pingPong(sock: Socket, opts: { count: number; qd: number; size: number; timeoutMs?: number }): Promise<RoundTrips> {
  const { count, qd, size } = opts;
  return new Promise((resolve, reject) => {
    const sentAt: number[] = [];
    const rtts: number[] = [];
    let next = 0;
    let expect = 0;
    let reordered = 0;
    let rest = Buffer.alloc(0);
    const timer = setTimeout(() => done(new Error(`timeout: ${rtts.length}/${count} round trips`)), opts.timeoutMs ?? 20_000);
    const send = () => {
      const b = Buffer.alloc(size, 0x5a);
      b.writeUInt32BE(next);
      sentAt[next++] = performance.now();
      sock.write(b);
    };
    const onData = (d: Buffer) => {
      const now = performance.now();
      const buf = rest.length ? Buffer.concat([rest, d]) : d;
      let off = 0;
      for (; buf.length - off >= size; off += size) {
        const seq = buf.readUInt32BE(off);
        if (seq !== expect) reordered++;
        expect = seq + 1;
        rtts.push(now - sentAt[seq]!);
        if (next < count) send();
      }
      rest = buf.subarray(off);
      if (rtts.length === count) done();
    };
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.off('data', onData);
      if (err) reject(err);
      else resolve({ rtts: rtts.sort((a, b) => a - b), reordered });
    };
    sock.on('data', onData);
    for (let i = 0; i < qd && next < count; i++) send();
  });
}

export const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

/** "p50 2.104 ms (min 2.011, p99 2.870, n 150)" */
export function describeRtts(sorted: number[]): string {
  const f = (x: number) => x.toFixed(3);
  return `p50 ${f(quantile(sorted, 0.5))} ms (min ${f(sorted[0]!)}, p99 ${f(quantile(sorted, 0.99))}, n ${sorted.length})`;
}
