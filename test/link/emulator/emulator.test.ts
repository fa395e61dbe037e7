// The link emulator with real sockets on 127.0.0.1: latency, bandwidth, stall, cut/restore,
// reset, byte-exact delivery under random chunking, back-pressure bound. Timing asserts are loose.
import { describe, it, expect, afterEach } from 'vitest';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import fc from 'fast-check';
import { LinkEmulator, LinkApiServer, type LinkEvent } from '../../../src/link/index.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An echo server (or a sink that counts bytes) on 127.0.0.1. */
async function echoServer(mode: 'echo' | 'sink' = 'echo'): Promise<{ port: number; server: Server; received: () => number; sockets: Socket[] }> {
  let received = 0;
  const sockets: Socket[] = [];
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.push(s);
    s.on('error', () => undefined);
    s.on('data', (d) => {
      received += d.length;
      if (mode === 'echo') s.write(d);
    });
    s.on('end', () => s.end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  );
  return { port: (server.address() as AddressInfo).port, server, received: () => received, sockets };
}

async function emulator(targetPort: number, opts: Partial<ConstructorParameters<typeof LinkEmulator>[0]> = {}): Promise<{ emu: LinkEmulator; port: number }> {
  const emu = new LinkEmulator({
    name: 'l1',
    a: 'alpha',
    b: 'bravo',
    routes: [{ name: 'to-b', listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: targetPort }, forward: 'a-to-b' }],
    ...opts,
  });
  await emu.start();
  cleanups.push(() => emu.stop());
  return { emu, port: emu.status().routes[0]!.listen.port };
}

function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true }, () => resolve(s));
    s.once('error', reject);
    cleanups.push(() => void s.destroy());
  });
}

/** Reads from s until n bytes arrived (or the deadline). */
function readN(s: Socket, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const bufs: Buffer[] = [];
    let got = 0;
    const timer = setTimeout(() => {
      s.off('data', on);
      reject(new Error(`timeout: ${got}/${n} bytes`));
    }, timeoutMs);
    const on = (d: Buffer) => {
      bufs.push(d);
      got += d.length;
      if (got >= n) {
        clearTimeout(timer);
        s.off('data', on);
        resolve(Buffer.concat(bufs));
      }
    };
    s.on('data', on);
  });
}

async function roundTrip(s: Socket, payload = Buffer.from('ping')): Promise<number> {
  const t0 = performance.now();
  const p = readN(s, payload.length);
  s.write(payload);
  await p;
  return performance.now() - t0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether s receives nothing for ms (true) or gets data/closes (false). */
function silentFor(s: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (v: boolean) => {
      clearTimeout(t);
      s.off('data', onData);
      s.off('close', onClose);
      resolve(v);
    };
    const onData = () => done(false);
    const onClose = () => done(false);
    const t = setTimeout(() => done(true), ms);
    s.on('data', onData);
    s.on('close', onClose);
  });
}

function waitClose(s: Socket, timeoutMs = 5000): Promise<{ error?: string }> {
  return new Promise((resolve, reject) => {
    if (s.destroyed) return resolve({});
    let error: string | undefined;
    s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    const t = setTimeout(() => reject(new Error('socket did not close')), timeoutMs);
    s.once('close', () => {
      clearTimeout(t);
      resolve(error ? { error } : {});
    });
  });
}

describe('link emulator', () => {
  it('passes bytes through unchanged with no settings, and counts them', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port);
    const s = await dial(port);
    const ms = await roundTrip(s, Buffer.from('hello'));
    expect(ms).toBeLessThan(1000);
    const st = emu.status();
    expect(st.state).toBe('up');
    expect(st.connections).toHaveLength(1);
    expect(st.bytes).toEqual({ 'a-to-b': 5, 'b-to-a': 5 });
  });

  it('latency: 25 ms each way gives a round trip of at least 45 ms; changing it applies to new bytes', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port, { settings: { 'a-to-b': { latencyMs: 25 }, 'b-to-a': { latencyMs: 25 } } });
    const s = await dial(port);
    for (let i = 0; i < 3; i++) expect(await roundTrip(s)).toBeGreaterThanOrEqual(45);
    emu.set({ latencyMs: 0 }, 'both');
    expect(await roundTrip(s)).toBeLessThan(45);
    emu.set({ latencyMs: 60 }, 'a-to-b');
    expect(await roundTrip(s)).toBeGreaterThanOrEqual(55);
    const ev = emu.eventsSince(0).filter((e) => e.type === 'link.settings');
    expect(ev).toHaveLength(2);
    expect(ev[1]).toMatchObject({ direction: 'a-to-b', changed: { latencyMs: 60 } });
  });

  it('jitter keeps the byte order', async () => {
    const echo = await echoServer();
    const { port } = await emulator(echo.port, { settings: { 'a-to-b': { latencyMs: 2, jitterMs: 20 } } });
    const s = await dial(port);
    const expected: Buffer[] = [];
    const p = readN(s, 200 * 4);
    for (let i = 0; i < 200; i++) {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(i);
      expected.push(b);
      s.write(b);
      if (i % 20 === 0) await sleep(1);
    }
    expect((await p).equals(Buffer.concat(expected))).toBe(true);
  });

  it('bandwidth cap: 256 KiB at 512 KiB/s takes about 0.5 s (loose bounds)', async () => {
    const sink = await echoServer('sink');
    const { emu, port } = await emulator(sink.port, { settings: { 'a-to-b': { bandwidth: 512 * 1024 } } });
    const s = await dial(port);
    const total = 256 * 1024;
    const t0 = performance.now();
    s.write(Buffer.alloc(total, 7));
    const deadline = Date.now() + 10_000;
    while (sink.received() < total && Date.now() < deadline) await sleep(5);
    const ms = performance.now() - t0;
    expect(sink.received()).toBe(total);
    // The bucket's burst (50 ms worth, at least 16 KiB) passes at once: >= (256K - 26K) / 512K/s = 450 ms.
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(ms).toBeLessThan(3000);
    expect(emu.status().totals.bytes['a-to-b']).toBe(total);
  });

  it('stall holds the traffic for N ms, then delivers it', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port);
    const s = await dial(port);
    await roundTrip(s);
    emu.stall(150);
    expect(emu.status().state).toBe('stalled');
    expect(await roundTrip(s)).toBeGreaterThanOrEqual(140);
    // The stall's own timer and the pipes' wake-up at its end are two timers: either may fire first.
    const types = () => emu.eventsSince(0).map((e) => e.type);
    for (const deadline = Date.now() + 1000; !types().includes('link.stall-ended') && Date.now() < deadline; ) await sleep(5);
    expect(types()).toContain('link.stall-ended');
  });

  it('cut both ways: silence (nothing lost), new connections held; restore delivers everything', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port);
    const s = await dial(port);
    await roundTrip(s);
    emu.cutLink('both');
    expect(emu.status().state).toBe('cut');
    s.write('during-cut');
    expect(await silentFor(s, 200)).toBe(true);
    expect(echo.received()).toBe(4); // only the first ping crossed
    const s2 = await dial(port); // accepted, but held: not connected onward
    s2.write('x');
    expect(await silentFor(s2, 100)).toBe(true);
    expect(echo.sockets).toHaveLength(1);
    expect(emu.status().connections.map((c) => c.state).sort()).toEqual(['held', 'open']);
    const p = readN(s, 10);
    const p2 = readN(s2, 1);
    emu.restore();
    expect((await p).toString()).toBe('during-cut');
    expect((await p2).toString()).toBe('x');
    expect(emu.status().state).toBe('up');
    const types = emu.eventsSince(0).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['link.cut', 'connection.held', 'link.restored']));
  });

  it('cut one way: a-to-b silent while b-to-a still flows', async () => {
    // A server that talks first (b-to-a) and counts what it gets (a-to-b).
    let got = 0;
    const talkers: Socket[] = [];
    const server = createServer((c) => {
      talkers.push(c);
      c.on('data', (d) => (got += d.length));
      c.on('error', () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => (talkers.forEach((t) => t.destroy()), server.close(() => r()))));
    const { emu, port } = await emulator((server.address() as AddressInfo).port);
    const s = await dial(port);
    for (let i = 0; i < 100 && talkers.length === 0; i++) await sleep(10);
    emu.cutLink('a-to-b');
    expect(emu.status()).toMatchObject({ state: 'partially-cut', cut: { 'a-to-b': true, 'b-to-a': false } });
    s.write('up');
    const down = readN(s, 4);
    talkers[0]!.write('down');
    expect((await down).toString()).toBe('down');
    await sleep(100);
    expect(got).toBe(0);
    emu.restore();
    for (let i = 0; i < 100 && got < 2; i++) await sleep(10);
    expect(got).toBe(2);
  });

  it('cut with reset, and a long cut times out the connections (ECONNRESET)', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port, { cutResetMs: 200 });
    const s = await dial(port);
    await roundTrip(s);
    const closed = waitClose(s);
    emu.cutLink('both');
    expect((await closed).error).toBe('ECONNRESET');
    expect(emu.eventsSince(0).map((e) => e.type)).toContain('link.cut-timeout');
    emu.restore();
    const s2 = await dial(port);
    await roundTrip(s2);
    const closed2 = waitClose(s2);
    emu.cutLink('b-to-a', { reset: true });
    expect((await closed2).error).toBe('ECONNRESET');
  });

  it('reset destroys the current connections on both sides; new ones work', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port);
    const s = await dial(port);
    await roundTrip(s);
    const closed = waitClose(s);
    const ev = emu.reset();
    expect(ev.connections).toEqual([1]);
    expect((await closed).error).toBe('ECONNRESET');
    for (let i = 0; i < 100 && !echo.sockets[0]!.destroyed; i++) await sleep(10);
    expect(echo.sockets[0]!.destroyed).toBe(true);
    const s2 = await dial(port);
    await roundTrip(s2);
    expect(emu.status().totals).toMatchObject({ connections: 2, resets: 1 });
  });

  it('delivers bytes exactly under random chunking, latency and bandwidth (fast-check)', async () => {
    const echo = await echoServer();
    const { emu, port } = await emulator(echo.port, { queueBytes: 8192 });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 3000 }), { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 0, max: 3 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(0, 200_000, 2_000_000),
        async (chunks, latencyMs, jitterMs, bandwidth) => {
          emu.set({ latencyMs, jitterMs, bandwidth });
          const s = await dial(port);
          const all = Buffer.concat(chunks.map((c) => Buffer.from(c)));
          const p = readN(s, all.length);
          for (const c of chunks) s.write(c);
          const got = await p;
          s.destroy();
          return got.equals(all);
        },
      ),
      { numRuns: 25, interruptAfterTimeLimit: 30_000 },
    );
  });

  it('back-pressure: a cut direction never queues much more than the bound', async () => {
    const sink = await echoServer('sink');
    const bound = 64 * 1024;
    const { emu, port } = await emulator(sink.port, { queueBytes: bound });
    const s = await dial(port);
    emu.cutLink('a-to-b');
    const big = Buffer.alloc(1 << 20, 1);
    let written = 0;
    let maxQueued = 0;
    // Write 8 MiB as fast as the socket takes it; it must stop taking it.
    for (let i = 0; i < 8 && !s.destroyed; i++) {
      s.write(big);
      written += big.length;
      await sleep(20);
      maxQueued = Math.max(maxQueued, emu.status().queued['a-to-b']);
    }
    await sleep(100);
    maxQueued = Math.max(maxQueued, emu.status().queued['a-to-b']);
    expect(maxQueued).toBeGreaterThan(0);
    expect(maxQueued).toBeLessThanOrEqual(bound + 256 * 1024); // the bound plus one socket read
    expect(s.writableLength).toBeGreaterThan(0); // the sender is held back
    const p = new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (sink.received() >= written) {
          clearInterval(t);
          resolve();
        }
      }, 10);
      cleanups.push(() => clearInterval(t));
    });
    emu.restore();
    await Promise.race([p, sleep(15_000)]);
    expect(sink.received()).toBe(written);
  });

  it('refuses bad settings and changes nothing', async () => {
    const echo = await echoServer();
    const { emu } = await emulator(echo.port);
    const before = emu.status();
    expect(() => emu.set({ latencyMs: -1 })).toThrow(/latency/);
    expect(() => emu.set({ bandwidth: 1.5 })).toThrow(/bandwidth/);
    expect(() => emu.set({ latencyMs: 5 }, 'up' as never)).toThrow(/direction/);
    expect(() => emu.stall(-5)).toThrow(/stall/);
    expect(emu.status().settings).toEqual(before.settings);
    expect(emu.status().lastEventSeq).toBe(before.lastEventSeq);
  });

  it('control API: status, set, cut, restore, SSE events, errors change nothing', async () => {
    const echo = await echoServer();
    const { emu } = await emulator(echo.port);
    const api = new LinkApiServer({ emulator: emu });
    const { url } = await api.listen();
    cleanups.push(() => api.close());
    const post = (p: string, body: unknown) =>
      fetch(url + p, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const events: LinkEvent[] = [];
    const ctrl = new AbortController();
    cleanups.push(() => ctrl.abort());
    const sse = await fetch(url + '/v1/events?since=0', { signal: ctrl.signal });
    const reader = sse.body!.getReader();
    void (async () => {
      let buf = '';
      for (;;) {
        const r = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (r.done) break;
        buf += Buffer.from(r.value!).toString();
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = frame.split('\n').find((l) => l.startsWith('data: '));
          if (data) events.push(JSON.parse(data.slice(6)));
        }
      }
    })();
    let r = await post('/v1/set', { latencyMs: 10, bandwidth: 1000000, direction: 'a-to-b' });
    expect(r.status).toBe(200);
    r = await post('/v1/set', { latencyMs: -3 });
    expect(r.status).toBe(400);
    expect((await r.json()).error.code).toBe('invalid-argument');
    r = await post('/v1/set', { latency: 3 });
    expect(r.status).toBe(400);
    r = await post('/v1/cut', { direction: 'b-to-a' });
    expect((await r.json()).status.cut).toEqual({ 'a-to-b': false, 'b-to-a': true });
    r = await post('/v1/restore', {});
    expect(r.status).toBe(200);
    const st = await (await fetch(url + '/v1/status')).json();
    expect(st.settings['a-to-b']).toEqual({ latencyMs: 10, jitterMs: 0, bandwidth: 1000000, lossPercent: 0, rtoMs: 200 });
    expect(st.settings['b-to-a']).toEqual({ latencyMs: 0, jitterMs: 0, bandwidth: 0, lossPercent: 0, rtoMs: 200 });
    for (let i = 0; i < 100 && events.length < 4; i++) await sleep(10);
    expect(events.map((e) => e.type)).toEqual(['link.started', 'link.settings', 'link.cut', 'link.restored']);
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });
});
