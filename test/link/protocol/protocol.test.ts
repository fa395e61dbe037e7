import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, KIND, RemoteLinkError, LINK_VERSION, type RemoteLinkClient } from '../../../src/link/protocol/index.js';
import { client, Proxy, rawExchange, startServer, until, type Harness } from './helpers.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
async function server(...a: Parameters<typeof startServer>): Promise<Harness> {
  const h = await startServer(...a);
  cleanups.push(h.close);
  return h;
}
function mk(...a: Parameters<typeof client>): RemoteLinkClient {
  const c = client(...a);
  cleanups.push(() => c.close());
  return c;
}
async function refusedWith(c: RemoteLinkClient): Promise<RemoteLinkError> {
  const e = await c.connect().then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(RemoteLinkError);
  return e as RemoteLinkError;
}

describe('remote link handshake', () => {
  it('authenticates both ways and carries write/ack, read-regions, mirror-db and ping', async () => {
    const h = await server();
    const sessions: unknown[] = [];
    h.server.on('session', (s) => sessions.push(s));
    const c = mk(h.server.port);
    const s = await c.connect();
    expect(s).toMatchObject({ localArray: 'alpha', peerArray: 'bravo', role: 'client', version: LINK_VERSION, mirrors: [{ mirrorId: 'm1', secondarySize: 1 << 20 }] });
    await until(() => sessions.length === 1);
    expect(sessions[0]).toMatchObject({ localArray: 'bravo', peerArray: 'alpha', role: 'server' });
    const ack = await c.write({ mirrorId: 'm1', imageId: 'alpha:0', offset: 8192, flags: { fua: true } }, Buffer.alloc(4096, 1));
    expect(ack).toEqual({ mirrorId: 'm1', imageId: 'alpha:0', offset: 8192, length: 4096 });
    expect(await c.readRegions({ mirrorId: 'm1', imageId: 'alpha:0', regionSize: 65536, regions: [[3, 2]] })).toEqual({
      regionSize: 65536,
      checksums: [
        { region: 3, crc: 3 },
        { region: 4, crc: 4 },
      ],
    });
    expect(await c.pushMirrorDb({ mirrorId: 'm1', record: { v: 1 } })).toEqual({ applied: true, generation: 7 });
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
    expect(h.calls.map((x) => x.op)).toEqual(['write', 'read-regions', 'mirror-db']);
  });

  it('never sends the secret', async () => {
    const h = await server();
    const p = new Proxy(h.server.port);
    cleanups.push(() => p.close());
    const c = mk(await p.listen());
    await c.connect();
    expect(Buffer.concat(p.captured).includes(Buffer.from('correct horse'))).toBe(false);
  });

  it('wrong secret: both sides get auth-failed, no handler runs', async () => {
    const h = await server();
    const c = mk(h.server.port, { secret: 'wrong' });
    const refusedEvents: RemoteLinkError[] = [];
    c.on('refused', (e) => refusedEvents.push(e));
    const e = await refusedWith(c);
    expect(e.code).toBe('auth-failed');
    expect(e.message).toMatch(/shared secret/);
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('auth-failed');
    expect(refusedEvents).toHaveLength(1);
    expect(h.calls).toEqual([]);
    expect(h.server.sessions).toEqual([]);
  });

  it('wrong secret on the server side too (the server cannot prove itself)', async () => {
    const h = await server({ peers: [{ array: 'alpha', secret: 'other' }] });
    const e = await refusedWith(mk(h.server.port));
    expect(e.code).toBe('auth-failed');
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('auth-failed');
  });

  it('wrong peer name: the client expects another array', async () => {
    const h = await server();
    const e = await refusedWith(mk(h.server.port, { peer: 'charlie' }));
    expect(e.code).toBe('wrong-peer');
    expect(e.message).toMatch(/charlie/);
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('wrong-peer');
  });

  it('wrong peer name: the server does not know the client array', async () => {
    const h = await server();
    const e = await refusedWith(mk(h.server.port, { array: 'delta' }));
    expect(e.code).toBe('wrong-peer');
    expect(e.message).toMatch(/delta/);
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('wrong-peer');
  });

  it('wrong mirror id', async () => {
    const h = await server();
    const e = await refusedWith(mk(h.server.port, { mirrors: [{ mirrorId: 'nope', primarySize: 1 }] }));
    expect(e.code).toBe('wrong-mirror');
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('wrong-mirror');
    expect(h.calls).toEqual([]);
  });

  it('a smaller secondary is refused; equal or larger is fine', async () => {
    const h = await server();
    const e = await refusedWith(mk(h.server.port, { mirrors: [{ mirrorId: 'm2', primarySize: 8192 }] }));
    expect(e.code).toBe('size-mismatch');
    expect(e.message).toMatch(/smaller/);
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('size-mismatch');
    await mk(h.server.port, { mirrors: [{ mirrorId: 'm2', primarySize: 4096 }] }).connect();
    await mk(h.server.port, { mirrors: [{ mirrorId: 'm1', primarySize: 4096 }] }).connect();
  });

  it('version mismatch: both sides get version-mismatch', async () => {
    const h = await server();
    const e = await refusedWith(mk(h.server.port, { version: LINK_VERSION + 1 }));
    expect(e.code).toBe('version-mismatch');
    expect(e.message).toMatch(/version/);
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('version-mismatch');
    // and a newer server refusing an older client
    const h2 = await server({ version: LINK_VERSION + 1 });
    const e2 = await refusedWith(mk(h2.server.port));
    expect(e2.code).toBe('version-mismatch');
    await until(() => h2.refused.length === 1);
    expect(h2.refused[0]!.code).toBe('version-mismatch');
  });

  it('a MITM replaying a captured handshake (and writes) is refused: fresh nonces', async () => {
    const h = await server();
    const p = new Proxy(h.server.port);
    cleanups.push(() => p.close());
    const c = mk(await p.listen());
    await c.connect();
    await c.write({ mirrorId: 'm1', imageId: 'alpha:0', offset: 0 }, Buffer.alloc(512, 9));
    c.close();
    expect(h.calls).toHaveLength(1);
    const { reply } = await rawExchange(h.server.port, Buffer.concat(p.captured));
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('auth-failed');
    expect(h.calls).toHaveLength(1); // the replayed write did not run
    // the attacker was told auth-failed in an ERROR frame
    const frames = new FrameDecoder().push(reply);
    expect(frames.at(-1)).toMatchObject({ kind: KIND.ERROR, json: { code: 'auth-failed' } });
  });

  it('a client does not reconnect after a refusal', async () => {
    const h = await server();
    const c = mk(h.server.port, { secret: 'bad', reconnect: { initialMs: 10 } });
    let reconnecting = 0;
    c.on('reconnecting', () => reconnecting++);
    await refusedWith(c);
    await new Promise((r) => setTimeout(r, 100));
    expect(reconnecting).toBe(0);
  });
});

describe('remote link robustness', () => {
  it('garbage, truncated and malformed input: no crash, clean error, other connections unaffected (fuzz)', async () => {
    const h = await server({ timers: { handshakeTimeoutMs: 200 } });
    const good = mk(h.server.port);
    await good.connect();
    const validHello = encodeFrame({ kind: KIND.HANDSHAKE, id: 0, json: { step: 'hello' } });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
          fc.nat({ max: validHello.length }).map((n) => validHello.subarray(0, n)), // truncated
          fc.record({ kind: fc.constantFrom(1, 2, 3, 4, 5, 6, 7), j: fc.jsonValue() }).map(({ kind, j }) => {
            const json = typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Record<string, unknown>) : { v: j };
            return encodeFrame({ kind: kind as 1, id: 1, json });
          }),
          fc.uint8Array({ minLength: 1, maxLength: 100 }).map((b) => Buffer.concat([validHello.subarray(0, 28), Buffer.from(b)])),
        ),
        async (bytes) => {
          const { closedByServer } = await rawExchange(h.server.port, bytes, 1500);
          expect(closedByServer).toBe(true); // an error or the handshake timeout ended it
        },
      ),
      { numRuns: 25 },
    );
    expect(h.calls).toEqual([]);
    expect(h.refused.length).toBeGreaterThan(0);
    for (const r of h.refused) expect(['protocol', 'frame-too-large', 'timeout', 'version-mismatch', 'wrong-peer']).toContain(r.code);
    // the established session still works
    expect((await good.write({ mirrorId: 'm1', imageId: 'i', offset: 0 }, Buffer.alloc(10))).length).toBe(10);
  });

  it('an oversized frame ends the connection with frame-too-large', async () => {
    const h = await server();
    const hdr = encodeFrame({ kind: KIND.HANDSHAKE, id: 0, json: {}, bin: Buffer.alloc(0) });
    const big = Buffer.from(hdr.subarray(0, 28));
    big.writeUInt32LE(10 * 1024 * 1024, 12); // JSON length 10 MiB
    const { crc32c } = await import('../../../src/native/index.js');
    big.writeUInt32LE(crc32c(big.subarray(0, 24)), 24);
    const { reply, closedByServer } = await rawExchange(h.server.port, big);
    expect(closedByServer).toBe(true);
    expect(new FrameDecoder().push(reply)[0]).toMatchObject({ kind: KIND.ERROR, json: { code: 'frame-too-large' } });
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('frame-too-large');
  });

  it('a write larger than the peer accepts is refused locally; the link stays up', async () => {
    const h = await server({ limits: { maxBinary: 64 * 1024 } });
    const c = mk(h.server.port);
    await c.connect();
    await expect(c.write({ mirrorId: 'm1', imageId: 'i', offset: 0 }, Buffer.alloc(65 * 1024))).rejects.toMatchObject({ code: 'frame-too-large' });
    expect((await c.write({ mirrorId: 'm1', imageId: 'i', offset: 0 }, Buffer.alloc(64 * 1024))).length).toBe(64 * 1024);
  });

  it('bad requests and unnegotiated mirrors get clean per-request errors', async () => {
    const h = await server();
    const c = mk(h.server.port);
    await c.connect();
    await expect(c.write({ mirrorId: 'm2', imageId: 'i', offset: 0 }, Buffer.alloc(1))).rejects.toMatchObject({ code: 'wrong-mirror' });
    await expect(c.write({ mirrorId: 'm1', imageId: 'i', offset: -1 }, Buffer.alloc(1))).rejects.toMatchObject({ code: 'bad-request' });
    await expect(c.request('nope' as 'ping', { t: 1 })).rejects.toMatchObject({ code: 'no-handler' });
    expect(h.calls).toEqual([]);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
  });

  it('handler errors cross the wire with their code', async () => {
    const h = await server({}, {
      write: () => {
        throw Object.assign(new Error('image is a secondary of an older epoch'), { code: 'stale-epoch' });
      },
    });
    const c = mk(h.server.port);
    await c.connect();
    await expect(c.write({ mirrorId: 'm1', imageId: 'i', offset: 0, epoch: 3 }, Buffer.alloc(1))).rejects.toMatchObject({ code: 'stale-epoch', message: /older epoch/ });
  });

  it('request timeout; the connection stays usable', async () => {
    const h = await server({}, { write: () => new Promise(() => undefined) });
    const c = mk(h.server.port);
    await c.connect();
    const t0 = Date.now();
    await expect(c.write({ mirrorId: 'm1', imageId: 'i', offset: 0 }, Buffer.alloc(1), { timeoutMs: 150 })).rejects.toMatchObject({ code: 'timeout' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
    expect(c.connected).toBe(true);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
  });

  for (const side of ['client', 'server'] as const)
    it(`detects a dead peer (keepalive timeout) on the ${side} side and fails pending requests`, async () => {
      // Generous against a loaded 2-core machine: a stall under deadAfterMs must not kill it.
      const fast = { keepaliveMs: 100, deadAfterMs: 1500 };
      const slow = { keepaliveMs: 100, deadAfterMs: 30_000 };
      const h = await server({ timers: side === 'server' ? fast : slow }, { write: () => new Promise(() => undefined) });
      const closed: Array<{ code: string } | null> = [];
      h.server.on('session-closed', (_s, e) => closed.push(e));
      const p = new Proxy(h.server.port);
      cleanups.push(() => p.close());
      const c = mk(await p.listen(), { timers: side === 'client' ? fast : slow });
      await c.connect();
      const disc: Array<RemoteLinkError | null> = [];
      c.on('disconnected', (e) => disc.push(e));
      const pending = c.write({ mirrorId: 'm1', imageId: 'i', offset: 0 }, Buffer.alloc(1), { timeoutMs: 10_000 });
      pending.catch(() => undefined);
      await new Promise((r) => setTimeout(r, 2000)); // keepalives flow: still alive past deadAfterMs
      expect(c.connected).toBe(true);
      p.frozen = true;
      if (side === 'client') {
        await expect(pending).rejects.toMatchObject({ code: 'peer-dead' });
        expect(disc[0]).toMatchObject({ code: 'peer-dead' });
      } else {
        await until(() => closed.length === 1, 10_000);
        expect(closed[0]).toMatchObject({ code: 'peer-dead' });
        await expect(pending).rejects.toMatchObject({ code: 'closed' }); // the server's close reaches the client
      }
    });

  it('delivers many pipelined writes in order', async () => {
    const h = await server();
    const c = mk(h.server.port);
    await c.connect();
    const n = 3000;
    const acks = await Promise.all(Array.from({ length: n }, (_, i) => c.write({ mirrorId: 'm1', imageId: 'i', offset: i * 512 }, Buffer.alloc(512, i & 0xff))));
    expect(acks.map((a) => a.offset)).toEqual(Array.from({ length: n }, (_, i) => i * 512));
    expect(h.calls.map((x) => (x.args as { offset: number }).offset)).toEqual(Array.from({ length: n }, (_, i) => i * 512));
  });

  it('clean close: the server sees a clean end, pending requests fail with closed', async () => {
    const h = await server({}, { write: () => new Promise(() => undefined) });
    const closed: Array<unknown> = [];
    h.server.on('session-closed', (_s, e) => closed.push(e));
    const c = mk(h.server.port);
    await c.connect();
    const pending = c.write({ mirrorId: 'm1', imageId: 'i', offset: 0 }, Buffer.alloc(1));
    c.close();
    await expect(pending).rejects.toMatchObject({ code: 'closed' });
    await until(() => closed.length === 1);
    expect(closed[0]).toBeNull();
    await expect(c.ping()).rejects.toMatchObject({ code: 'not-connected' });
  });

  it('reconnects with backoff after a lost connection', async () => {
    const h = await server();
    const c = mk(h.server.port, { reconnect: { initialMs: 20, maxMs: 200 } });
    const delays: number[] = [];
    c.on('reconnecting', ({ delayMs }) => delays.push(delayMs));
    let connects = 0;
    c.on('connected', () => connects++);
    await c.connect();
    c.dropConnection();
    await expect(c.ping()).rejects.toMatchObject({ code: 'not-connected' });
    await until(() => connects === 2);
    expect(delays).toEqual([20]);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
    // server gone: attempts back off exponentially up to the cap
    await h.server.close();
    c.dropConnection();
    await until(() => delays.length >= 5, 5000);
    expect(delays.slice(0, 5)).toEqual([20, 20, 40, 80, 160]);
  });

  it('start() keeps trying until the peer listens', async () => {
    const h0 = await server();
    const port = h0.server.port;
    await h0.server.close();
    const c = mk(port, { reconnect: { initialMs: 20, maxMs: 50 } });
    let connected = 0;
    c.on('connected', () => connected++);
    c.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(connected).toBe(0);
    const again = await startServer({}, undefined, port);
    cleanups.push(again.close);
    await until(() => connected === 1, 3000);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
  });
});
