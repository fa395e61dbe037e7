import * as net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, KIND, LINK_VERSION, newNonce, RemoteLinkError, type Frame, type RemoteLinkClient } from '../../../src/link/protocol/index.js';
import { client, startServer, until, type Harness } from './helpers.js';
import { fixCrcs, FrameProxy, HEADER, type Rewrite, type WireFrame } from './mitm.js';

/**
 * Issue 19, item 3: the remote link leaked and trusted too much. The server proved itself first
 * (any TCP client got material to guess the secret offline), and after the handshake frames
 * carried only CRC32C (anything on the path could alter, replay or drop replicated writes).
 * These tests use real sockets and an attacker on the path (a TCP proxy that parses frames and
 * rewrites them, fixing the CRCs as anyone could). They use only what version 1 exported too,
 * so they run, and fail, against the old protocol.
 */

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const IMAGE = 1 << 20;

interface Secondary extends Harness {
  /** the secondary image the writes land in */
  image: Buffer;
  closed: Array<RemoteLinkError | null>;
}

/** A receiving array whose write handler writes into an in-memory secondary image. */
async function secondary(over: Parameters<typeof startServer>[0] = {}): Promise<Secondary> {
  const image = Buffer.alloc(IMAGE);
  const closed: Array<RemoteLinkError | null> = [];
  let h!: Harness;
  const handlers = {
    write: (args: { mirrorId: string; imageId: string; offset: number }, data: Buffer) => {
      h.calls.push({ op: 'write', args, len: data.length });
      data.copy(image, args.offset);
      return { result: { mirrorId: args.mirrorId, imageId: args.imageId, offset: args.offset, length: data.length } };
    },
  };
  h = await startServer(over, handlers);
  h.server.on('session-closed', (_s, e: RemoteLinkError | null) => closed.push(e));
  cleanups.push(h.close);
  return Object.assign(h, { image, closed });
}

function mk(...a: Parameters<typeof client>): RemoteLinkClient {
  const c = client(...a);
  cleanups.push(() => c.close());
  return c;
}

async function proxy(target: number): Promise<{ p: FrameProxy; port: number }> {
  const p = new FrameProxy(target);
  cleanups.push(() => p.close());
  return { p, port: await p.listen() };
}

const isWrite = (f: WireFrame) => f.kind === KIND.REQUEST && f.json.op === 'write';

/** Connects the raw TCP client, sends `first`, then `next(frames so far)` once per frame received; resolves when the server closes. */
function rawSession(port: number, first: Buffer, next?: (f: Frame) => Buffer | null, ms = 3000): Promise<{ reply: Buffer; frames: Frame[]; closedByServer: boolean }> {
  return new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const frames: Frame[] = [];
    const dec = new FrameDecoder();
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(t);
      s.destroy();
      resolve({ reply: Buffer.concat(chunks), frames, closedByServer });
    };
    const t = setTimeout(() => finish(false), ms);
    s.on('connect', () => s.write(first));
    s.on('data', (d: Buffer) => {
      chunks.push(d);
      for (const f of dec.pushSafe(d).frames) {
        frames.push(f);
        const more = next?.(f);
        if (more) s.write(more);
      }
    });
    s.on('end', () => finish(true));
    s.on('close', () => finish(true));
    s.on('error', () => finish(true));
  });
}

function hello(nonce = newNonce()): Buffer {
  return encodeFrame({
    kind: KIND.HANDSHAKE,
    id: 0,
    json: { step: 'hello', version: LINK_VERSION, array: 'alpha', expectPeer: 'bravo', nonce, mirrors: [{ mirrorId: 'm1', primarySize: IMAGE }], limits: { maxJson: 1 << 20, maxBinary: 16 << 20 } },
  });
}

/** Every 32-byte hex string in a value (a proof is one; so is a nonce). */
function hex64(v: unknown): string[] {
  if (typeof v === 'string') return /^[0-9a-f]{64}$/.test(v) ? [v] : [];
  if (typeof v === 'object' && v !== null) return Object.values(v).flatMap(hex64);
  return [];
}

/** The bytes the server sent contain nothing derived from the secret: a challenge with only its own nonce, then refusals. */
function expectNoProof(frames: Frame[], reply: Buffer): void {
  const challenge = frames.find((f) => f.kind === KIND.HANDSHAKE && f.json.step === 'challenge');
  const allowed = challenge ? [challenge.json.nonce] : [];
  if (challenge) expect(Object.keys(challenge.json).sort()).toEqual(['array', 'nonce', 'step', 'version']);
  for (const f of frames) {
    expect(f.json).not.toHaveProperty('proof');
    expect(f.bin.length).toBe(0);
    for (const h of hex64(f.json)) expect(allowed).toContain(h);
  }
  // and every byte the server sent is accounted for by those frames
  expect(reply.length).toBe(frames.reduce((n, f) => n + HEADER + Buffer.byteLength(JSON.stringify(f.json)) + f.bin.length, 0));
}

describe('remote link: the client proves first', () => {
  it('a client that sends a valid hello but never proves anything gets no proof from the server', async () => {
    const h = await secondary();
    const { frames, reply, closedByServer } = await rawSession(h.server.port, hello());
    expect(closedByServer).toBe(true); // the handshake timeout ended it
    expect(frames.map((f) => f.json.step ?? f.json.code)).toEqual(['challenge', 'timeout']);
    expectNoProof(frames, reply);
  });

  it('a client that answers the challenge with a bogus proof gets auth-failed and no proof', async () => {
    const h = await secondary();
    const { frames, reply } = await rawSession(h.server.port, hello(), (f) =>
      f.json.step === 'challenge' ? encodeFrame({ kind: KIND.HANDSHAKE, id: 0, json: { step: 'auth', proof: '00'.repeat(32) } }) : null,
    );
    expect(frames.map((f) => f.json.step ?? f.json.code)).toEqual(['challenge', 'auth-failed']);
    expectNoProof(frames, reply);
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('auth-failed');
  });

  it('garbage gets a refusal and nothing else', async () => {
    const h = await secondary();
    const { frames, reply } = await rawSession(h.server.port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(3)));
    expect(frames.map((f) => f.kind)).toEqual([KIND.ERROR]);
    expectNoProof(frames, reply);
  });

  it('wrong secret: refused with auth-failed on both sides, and the server never sent a proof', async () => {
    const h = await secondary();
    const { p, port } = await proxy(h.server.port);
    const fromServer: WireFrame[] = [];
    p.rewrite = (f, dir) => {
      if (dir === 's2c') fromServer.push(f);
      return [f.bytes];
    };
    const c = mk(port, { secret: 'not the secret' });
    const e = await c.connect().then(
      () => null,
      (err: unknown) => err as RemoteLinkError,
    );
    expect(e).toBeInstanceOf(RemoteLinkError);
    expect(e!.code).toBe('auth-failed');
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('auth-failed');
    expect(fromServer.map((f) => f.json.step ?? f.json.code)).toEqual(['challenge', 'auth-failed']);
    for (const f of fromServer) expect(f.json).not.toHaveProperty('proof');
    expect(h.calls).toEqual([]);
  });
});

describe('remote link: every frame after the handshake is authenticated', () => {
  async function connected(rewrite: Rewrite): Promise<{ h: Secondary; c: RemoteLinkClient; disc: Array<RemoteLinkError | null> }> {
    const h = await secondary();
    const { p, port } = await proxy(h.server.port);
    const c = mk(port);
    await c.connect();
    p.rewrite = rewrite; // the handshake crossed untouched: the attacker acts on the session
    const disc: Array<RemoteLinkError | null> = [];
    c.on('disconnected', (e: RemoteLinkError | null) => disc.push(e));
    return { h, c, disc };
  }
  const W = { mirrorId: 'm1', imageId: 'alpha:0' };
  const settle = <T>(p: Promise<T>) =>
    p.then(
      (v) => ({ ok: true as const, v }),
      (e: unknown) => ({ ok: false as const, e: e as RemoteLinkError }),
    );

  it('a MITM flipping one bit of a replicated write: the secondary refuses the frame, closes, and the data never lands', async () => {
    let flipped = 0;
    const { h, c, disc } = await connected((f, dir) => {
      if (dir !== 'c2s' || !isWrite(f) || flipped++) return [f.bytes];
      const b = Buffer.from(f.bytes);
      b[HEADER + f.jsonLen + 100]! ^= 0x04; // one bit of the payload
      return [fixCrcs(b)];
    });
    const r = await settle(c.write({ ...W, offset: 8192 }, Buffer.alloc(4096, 0x5a)));
    expect(flipped).toBe(1);
    expect(r.ok).toBe(false);
    await until(() => h.closed.length === 1);
    expect(h.closed[0]).toMatchObject({ code: 'bad-mac', message: expect.stringMatching(/MAC/) });
    await until(() => h.refused.length === 1);
    expect(h.refused[0]!.code).toBe('bad-mac'); // the server's event (mirror.link-refused on an array)
    expect(h.calls).toEqual([]);
    expect(h.image.subarray(8192, 8192 + 4096).equals(Buffer.alloc(4096))).toBe(true);
    await until(() => disc.length === 1);
    expect(disc[0]).toMatchObject({ code: 'bad-mac' });
  });

  it('a MITM redirecting a write (its offset rewritten in the JSON) is refused', async () => {
    const { h, c } = await connected((f, dir) => {
      if (dir !== 'c2s' || !isWrite(f)) return [f.bytes];
      const s = f.bytes.toString('latin1').replace('"offset":8192', '"offset":4096');
      return [fixCrcs(Buffer.from(s, 'latin1'))];
    });
    const r = await settle(c.write({ ...W, offset: 8192 }, Buffer.alloc(4096, 0x5a)));
    expect(r.ok).toBe(false);
    await until(() => h.closed.length === 1);
    expect(h.closed[0]?.code).toBe('bad-mac');
    expect(h.calls).toEqual([]);
    expect(h.image.equals(Buffer.alloc(IMAGE))).toBe(true);
  });

  it("a MITM altering the secondary's acknowledgement: the primary refuses it", async () => {
    const { c, disc } = await connected((f, dir) => {
      if (dir !== 's2c' || f.kind !== KIND.REPLY) return [f.bytes];
      const s = f.bytes.toString('latin1').replace('"length":4096', '"length":5096');
      return [fixCrcs(Buffer.from(s, 'latin1'))];
    });
    const r = await settle(c.write({ ...W, offset: 0 }, Buffer.alloc(4096, 1)));
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.e.code).toBe('bad-mac');
    await until(() => disc.length === 1);
    expect(disc[0]).toMatchObject({ code: 'bad-mac' });
  });

  it('a duplicated (replayed) write frame is refused: the write is applied once, the link closes', async () => {
    let dup = 0;
    const { h, c } = await connected((f, dir) => (dir === 'c2s' && isWrite(f) && !dup++ ? [f.bytes, f.bytes] : [f.bytes]));
    await settle(c.write({ ...W, offset: 0 }, Buffer.alloc(512, 7)));
    expect(dup).toBe(1);
    await until(() => h.closed.length === 1);
    expect(h.closed[0]?.code).toBe('bad-mac');
    expect(h.calls).toHaveLength(1);
  });

  it('a dropped frame is detected: the next frame is refused', async () => {
    let dropped = 0;
    const { h, c } = await connected((f, dir) => (dir === 'c2s' && isWrite(f) && !dropped++ ? [] : [f.bytes]));
    const first = settle(c.write({ ...W, offset: 0 }, Buffer.alloc(512, 1), { timeoutMs: 3000 }));
    const second = await settle(c.write({ ...W, offset: 512 }, Buffer.alloc(512, 2)));
    expect(second.ok).toBe(false);
    expect((await first).ok).toBe(false);
    await until(() => h.closed.length === 1);
    expect(h.closed[0]?.code).toBe('bad-mac');
    expect(h.calls).toEqual([]);
  });

  it('reordered frames are refused', async () => {
    let held: Buffer | null = null;
    let swapped = false;
    const { h, c } = await connected((f, dir) => {
      if (dir !== 'c2s' || !isWrite(f) || swapped) return [f.bytes];
      if (!held) {
        held = f.bytes;
        return [];
      }
      swapped = true;
      return [f.bytes, held];
    });
    const rs = await Promise.all([settle(c.write({ ...W, offset: 0 }, Buffer.alloc(512, 1))), settle(c.write({ ...W, offset: 512 }, Buffer.alloc(512, 2)))]);
    expect(swapped).toBe(true);
    expect(rs.map((r) => r.ok)).toEqual([false, false]);
    await until(() => h.closed.length === 1);
    expect(h.closed[0]?.code).toBe('bad-mac');
    expect(h.calls).toEqual([]);
  });

  it('a write injected by the MITM (a well-formed frame without a valid MAC) is refused', async () => {
    let injected = 0;
    const forged = encodeFrame({ kind: KIND.REQUEST, id: 4242, json: { op: 'write', args: { ...W, offset: 65536 } }, bin: Buffer.alloc(4096, 0xee) });
    const { h, c } = await connected((f, dir) => (dir === 'c2s' && f.kind === KIND.PING && !injected++ ? [forged, f.bytes] : [f.bytes]));
    await until(() => injected === 1 && h.closed.length === 1, 5000);
    expect(h.closed[0]?.code).toBe('bad-mac');
    expect(h.calls).toEqual([]);
    expect(h.image.subarray(65536, 65536 + 4096).equals(Buffer.alloc(4096))).toBe(true);
    await until(() => !c.connected);
  });

  it('an untouched session still works (the proxy alone changes nothing)', async () => {
    const { h, c } = await connected((f) => [f.bytes]);
    await c.write({ ...W, offset: 4096 }, Buffer.alloc(4096, 0x33));
    expect(h.image.subarray(4096, 8192).equals(Buffer.alloc(4096, 0x33))).toBe(true);
    expect(await c.ping()).toBeGreaterThanOrEqual(0);
    expect(h.closed).toEqual([]);
  });
});
