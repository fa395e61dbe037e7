import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileOps } from '../../src/native/index.js';
import { CHUNK, CMD, CMD_FLAG, ERR, TF } from '../../src/nbd/index.js';
import { startServer, type Fixture } from './fixture.js';
import { RawClient } from './raw-client.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startServer({ maxInflight: 64, maxInflightBytes: 8 << 20, maxQueuedReplyBytes: 4 << 20 });
});
afterAll(async () => fx.stop());

async function open(opts: Parameters<RawClient['handshake']>[0] = {}) {
  const c = await RawClient.connect(fx.port);
  const info = await c.handshake(opts);
  return { c, ...info };
}

describe('transmission, simple replies', () => {
  it('advertises truthful flags', async () => {
    const { c, flags, size } = await open();
    expect(size).toBe(1048576n);
    for (const f of [TF.HAS_FLAGS, TF.SEND_FLUSH, TF.SEND_FUA, TF.SEND_TRIM, TF.SEND_WRITE_ZEROES, TF.SEND_CACHE, TF.CAN_MULTI_CONN, TF.SEND_FAST_ZERO]) {
      expect(flags & f).toBe(f);
    }
    expect(flags & TF.READ_ONLY).toBe(0);
    expect(flags & TF.SEND_DF).toBe(0); // no structured replies on this connection
    c.close();
  });

  it('writes and reads back, echoing cookies of pipelined requests', async () => {
    const { c } = await open();
    const data = Buffer.alloc(8192);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    c.request(CMD.WRITE, { cookie: 0xdeadbeefcafef00dn, offset: 4096, payload: data, flags: CMD_FLAG.FUA });
    const w = await c.simpleReply();
    expect([w.error, w.cookie]).toEqual([0, 0xdeadbeefcafef00dn]);
    for (let i = 0n; i < 32n; i++) c.request(CMD.READ, { cookie: 1000n + i, offset: 4096, length: 8192 });
    const seen = new Set<bigint>();
    for (let i = 0; i < 32; i++) {
      const r = await c.simpleReply(8192);
      expect(r.error).toBe(0);
      expect(r.data.equals(data)).toBe(true);
      seen.add(r.cookie);
    }
    expect(seen.size).toBe(32);
    c.request(CMD.FLUSH, { cookie: 5n });
    expect(await c.simpleReply()).toMatchObject({ error: 0, cookie: 5n });
    c.close();
  });

  it('rejects bad requests with the right errno and keeps the connection', async () => {
    const { c } = await open();
    const cases: [string, Parameters<RawClient['request']>, number][] = [
      ['read past the end', [CMD.READ, { offset: 1048576 - 512, length: 1024 }], ERR.EINVAL],
      ['read at a huge offset', [CMD.READ, { offset: 0xffffffffffffff00n, length: 512 }], ERR.EINVAL],
      ['offset + length overflowing u64', [CMD.READ, { offset: 0xfffffffffffffe00n, length: 1024 }], ERR.EINVAL],
      ['write past the end', [CMD.WRITE, { offset: 1048576, payload: Buffer.alloc(512) }], ERR.ENOSPC],
      ['unknown command', [99, {}], ERR.EINVAL],
      ['RESIZE (not advertised)', [CMD.RESIZE, {}], ERR.EINVAL],
      ['unknown flag on READ', [CMD.READ, { flags: 1 << 9, length: 512 }], ERR.EINVAL],
      ['FUA on READ', [CMD.READ, { flags: CMD_FLAG.FUA, length: 512 }], ERR.EINVAL],
      ['DF without structured replies', [CMD.READ, { flags: CMD_FLAG.DF, length: 512 }], ERR.EINVAL],
      ['NO_HOLE on TRIM', [CMD.TRIM, { flags: CMD_FLAG.NO_HOLE, length: 512 }], ERR.EINVAL],
      ['BLOCK_STATUS without a meta context', [CMD.BLOCK_STATUS, { length: 512 }], ERR.EINVAL],
      ['FLUSH with a length', [CMD.FLUSH, { length: 512 }], ERR.EINVAL],
      ['read larger than the maximum', [CMD.READ, { length: 64 << 20 }], ERR.EINVAL],
    ];
    for (const [what, args, errno] of cases) {
      c.request(...args);
      const r = await c.simpleReply();
      expect(r.error, what).toBe(errno);
    }
    c.request(CMD.READ, { length: 512 });
    expect((await c.simpleReply(512)).error).toBe(0);
    c.close();
  });

  it('accepts zero-length requests', async () => {
    const { c } = await open();
    for (const t of [CMD.READ, CMD.WRITE, CMD.TRIM, CMD.WRITE_ZEROES, CMD.CACHE]) {
      c.request(t, { offset: 512, length: 0 });
      expect((await c.simpleReply()).error, `type ${t}`).toBe(0);
    }
    c.request(CMD.READ, { offset: 1048576, length: 0 });
    expect((await c.simpleReply()).error).toBe(0);
    c.close();
  });

  it('refuses writes to a read-only export with EPERM', async () => {
    const { c } = await open({ name: 'ro' });
    c.request(CMD.WRITE, { payload: Buffer.alloc(512, 1) });
    expect((await c.simpleReply()).error).toBe(ERR.EPERM);
    c.request(CMD.TRIM, { length: 512 });
    expect((await c.simpleReply()).error).toBe(ERR.EPERM);
    c.request(CMD.WRITE_ZEROES, { length: 512 });
    expect((await c.simpleReply()).error).toBe(ERR.EPERM);
    c.request(CMD.READ, { length: 512 });
    expect((await c.simpleReply(512)).error).toBe(0);
    c.close();
  });

  it('enforces the minimum block size once the client asked for it', async () => {
    const strict = await open({ name: 'disk4k', blockSize: true });
    strict.c.request(CMD.READ, { offset: 512, length: 4096 });
    expect((await strict.c.simpleReply()).error).toBe(ERR.EINVAL);
    strict.c.request(CMD.WRITE, { offset: 4096, payload: Buffer.alloc(1000) });
    expect((await strict.c.simpleReply()).error).toBe(ERR.EINVAL);
    strict.c.request(CMD.READ, { offset: 4096, length: 4096 });
    expect((await strict.c.simpleReply(4096)).error).toBe(0);
    strict.c.close();
    const lax = await open({ name: 'disk4k' });
    lax.c.request(CMD.READ, { offset: 1, length: 3 });
    expect((await lax.c.simpleReply(3)).error).toBe(0);
    lax.c.close();
  });

  it('reads and discards an oversized write payload, then answers EINVAL', async () => {
    const { c } = await open();
    const len = 33 * 1024 * 1024;
    c.request(CMD.WRITE, { cookie: 77n, length: len });
    c.write(Buffer.alloc(len, 0x5a));
    c.request(CMD.READ, { cookie: 78n, length: 512 });
    const r = await c.simpleReply();
    expect([r.error, r.cookie]).toEqual([ERR.EINVAL, 77n]);
    const ok = await c.simpleReply(512);
    expect([ok.error, ok.cookie]).toEqual([0, 78n]);
    expect(ok.data.includes(0x5a)).toBe(false);
    c.close();
  });

  it('ends the connection on a huge write length or a bad request magic', async () => {
    const a = await open();
    a.c.request(CMD.WRITE, { length: 0xffffff00 });
    expect(await a.c.waitClosed()).toBe(true);
    const b = await open();
    b.c.request(CMD.READ, { magic: 0x12345678, length: 512 });
    expect(await b.c.waitClosed()).toBe(true);
  });

  it('write-zeroes and trim leave zeroes; FAST_ZERO and NO_HOLE are honoured', async () => {
    const { c } = await open();
    c.request(CMD.WRITE, { offset: 65536, payload: Buffer.alloc(65536, 0xee) });
    expect((await c.simpleReply()).error).toBe(0);
    c.request(CMD.WRITE_ZEROES, { offset: 65536, length: 8192, flags: CMD_FLAG.FUA });
    expect((await c.simpleReply()).error).toBe(0);
    c.request(CMD.WRITE_ZEROES, { offset: 65536 + 8192, length: 8192, flags: CMD_FLAG.NO_HOLE });
    expect((await c.simpleReply()).error).toBe(0);
    c.request(CMD.WRITE_ZEROES, { offset: 65536 + 16384, length: 8192, flags: CMD_FLAG.FAST_ZERO });
    // Fast zeroing is possible only by punching holes (native addon); otherwise ENOTSUP, fast.
    expect((await c.simpleReply()).error).toBe(fileOps ? 0 : ERR.ENOTSUP);
    c.request(CMD.READ, { offset: 65536, length: 16384 });
    const r = await c.simpleReply(16384);
    expect(r.data.every((b) => b === 0)).toBe(true);
    c.request(CMD.READ, { offset: 65536 + 32768, length: 512 });
    expect((await c.simpleReply(512)).data.every((b) => b === 0xee)).toBe(true);
    c.close();
  });

  it('DISC answers what is in flight, then closes', async () => {
    const { c } = await open();
    c.request(CMD.WRITE, { cookie: 9n, payload: Buffer.alloc(4096, 3) });
    c.request(CMD.DISC);
    expect((await c.simpleReply()).cookie).toBe(9n);
    expect(await c.waitClosed()).toBe(true);
  });
});

describe('transmission, structured replies', () => {
  it('READ gives OFFSET_DATA; errors are ERROR chunks, never simple replies', async () => {
    const { c, flags } = await open({ structured: true, meta: true });
    expect(flags & TF.SEND_DF).toBe(TF.SEND_DF);
    c.request(CMD.WRITE, { offset: 0, payload: Buffer.alloc(4096, 0x42) });
    expect((await c.anyReply()).kind).toBe('simple');
    c.request(CMD.READ, { cookie: 3n, offset: 0, length: 4096, flags: CMD_FLAG.DF });
    const r = await c.structuredReply();
    expect(r.cookie).toBe(3n);
    expect(r.chunks).toHaveLength(1);
    expect(r.chunks[0]!.type).toBe(CHUNK.OFFSET_DATA);
    expect(r.chunks[0]!.payload.readBigUInt64BE(0)).toBe(0n);
    expect(r.chunks[0]!.payload.subarray(8).every((b) => b === 0x42)).toBe(true);
    c.request(CMD.READ, { cookie: 4n, offset: 1 << 20, length: 512 });
    const e = await c.anyReply();
    expect(e.kind).toBe('chunk');
    if (e.kind === 'chunk') {
      expect(e.type).toBe(CHUNK.ERROR);
      expect(e.payload.readUInt32BE(0)).toBe(ERR.EINVAL);
      expect(e.flags & 1).toBe(1);
    }
    c.request(CMD.READ, { cookie: 5n, offset: 0, length: 0 });
    const z = await c.structuredReply();
    expect([z.cookie, z.error]).toEqual([5n, 0]);
    c.close();
  });

  it('block status reports holes and data truthfully; REQ_ONE gives one extent', async () => {
    const { c } = await open({ name: 'disk4k', structured: true, meta: true });
    c.request(CMD.TRIM, { offset: 0, length: 1 << 20 });
    await c.anyReply();
    c.request(CMD.WRITE, { offset: 256 * 1024, payload: Buffer.alloc(64 * 1024, 1) });
    await c.anyReply();
    c.request(CMD.BLOCK_STATUS, { offset: 0, length: 1 << 20 });
    const r = await c.structuredReply();
    expect(r.error).toBe(0);
    const p = r.chunks[0]!.payload;
    expect(r.chunks[0]!.type).toBe(CHUNK.BLOCK_STATUS);
    const extents: [number, number][] = [];
    for (let i = 4; i < p.length; i += 8) extents.push([p.readUInt32BE(i), p.readUInt32BE(i + 4)]);
    expect(extents.reduce((s, [l]) => s + l, 0)).toBe(1 << 20);
    if (fileOps) {
      expect(extents).toEqual([
        [256 * 1024, 3],
        [64 * 1024, 0],
        [(1 << 20) - 320 * 1024, 3],
      ]);
    } else {
      expect(extents).toEqual([[1 << 20, 0]]);
    }
    c.request(CMD.BLOCK_STATUS, { offset: 0, length: 1 << 20, flags: CMD_FLAG.REQ_ONE });
    const one = await c.structuredReply();
    expect(one.chunks[0]!.payload.length).toBe(12);
    // A large read of a sparse range comes back as hole and data chunks that tile the range.
    c.request(CMD.READ, { offset: 0, length: 512 * 1024 });
    const rd = await c.structuredReply();
    let covered = 0;
    for (const ch of rd.chunks) {
      if (ch.type === CHUNK.OFFSET_HOLE) covered += ch.payload.readUInt32BE(8);
      else if (ch.type === CHUNK.OFFSET_DATA) covered += ch.payload.length - 8;
    }
    expect(covered).toBe(512 * 1024);
    if (fileOps) expect(rd.chunks.map((ch) => ch.type)).toEqual([CHUNK.OFFSET_HOLE, CHUNK.OFFSET_DATA, CHUNK.OFFSET_HOLE]);
    c.close();
  });
});

describe('transmission, extended headers', () => {
  it('serves 32-byte requests with extended replies only', async () => {
    const { c, flags } = await open({ extended: true, meta: true });
    expect(flags & TF.SEND_DF).toBe(TF.SEND_DF);
    c.requestExt(CMD.WRITE, { cookie: 0x0102030405060708n, offset: 8192, payload: Buffer.alloc(4096, 0x33) });
    let r = await c.extReply();
    expect(r).toHaveLength(1);
    expect(r[0]).toMatchObject({ type: CHUNK.NONE, flags: 1, cookie: 0x0102030405060708n, offset: 8192n });
    c.requestExt(CMD.READ, { cookie: 2n, offset: 8192, length: 4096 });
    r = await c.extReply();
    expect(r[0]!.type).toBe(CHUNK.OFFSET_DATA);
    expect(r[0]!.payload.readBigUInt64BE(0)).toBe(8192n);
    expect(r[0]!.payload.subarray(8).every((b) => b === 0x33)).toBe(true);
    // Errors are chunks too, and a 64-bit length is refused, not truncated to 32 bits.
    c.requestExt(CMD.READ, { cookie: 3n, offset: 0, length: (1n << 32n) + 512n });
    r = await c.extReply();
    expect([r[0]!.type, r[0]!.payload.readUInt32BE(0)]).toEqual([CHUNK.ERROR, ERR.EINVAL]);
    c.requestExt(CMD.BLOCK_STATUS, { cookie: 4n, offset: 0, length: 1 << 20 });
    r = await c.extReply();
    expect(r[0]!.type).toBe(CHUNK.BLOCK_STATUS_EXT);
    const p = r[0]!.payload;
    const count = p.readUInt32BE(4);
    expect(p.length).toBe(8 + 16 * count);
    let total = 0n;
    for (let i = 0; i < count; i++) total += p.readBigUInt64BE(8 + 16 * i);
    expect(total).toBe(1n << 20n);
    // A payload on a command that takes none is read, thrown away and refused.
    c.requestExt(CMD.TRIM, { cookie: 5n, flags: CMD_FLAG.PAYLOAD_LEN, length: 1000, payload: Buffer.alloc(1000, 7) });
    r = await c.extReply();
    expect([r[0]!.cookie, r[0]!.type]).toEqual([5n, CHUNK.ERROR]);
    c.requestExt(CMD.FLUSH, { cookie: 6n });
    r = await c.extReply();
    expect([r[0]!.cookie, r[0]!.type]).toEqual([6n, CHUNK.NONE]);
    // An old-style 28-byte request on an extended connection is a protocol violation.
    c.request(CMD.READ, { length: 512 });
    c.write(Buffer.alloc(4));
    expect(await c.waitClosed()).toBe(true);
  });
});

describe('robustness', () => {
  it('a fast client cannot make the server buffer without bound', async () => {
    const { c } = await open();
    c.socket.pause(); // the client stops reading: replies pile up in TCP, then in the server
    const n = 256; // 256 reads of 1 MiB: far more than the limits of this fixture
    for (let i = 0; i < n; i++) c.request(CMD.READ, { cookie: BigInt(i), offset: 0, length: 1 << 20 });
    c.request(CMD.WRITE, { cookie: 999n, payload: Buffer.alloc(512 << 10) });
    // Let the server take in all it will: until it has stalled (or 2 s on a slow machine).
    const busy = () => fx.server.sessionInfo().filter((x) => x.requests > 0 && x.inflight + x.queuedReplyBytes > 0);
    const deadline = Date.now() + 2000;
    while (busy().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 300));
    const [s] = busy();
    expect(s).toBeDefined();
    // Limits of this fixture: 8 MiB in flight plus 4 MiB of queued replies (in-flight reads land
    // in the queue when they finish), one request of overshoot, and unparsed input below one
    // maximum payload plus a socket read.
    expect(s!.inflightBytes + s!.queuedReplyBytes).toBeLessThanOrEqual((12 << 20) + (1 << 20));
    expect(s!.bufferedInputBytes).toBeLessThanOrEqual((32 << 20) + (64 << 10));
    expect(s!.requests).toBeLessThan(n);
    c.socket.resume();
    const cookies = new Set<bigint>();
    for (let i = 0; i <= n; i++) {
      const r = await c.simpleReply(i === n ? 0 : 1 << 20);
      expect(r.error).toBe(0);
      cookies.add(r.cookie);
    }
    expect(cookies.size).toBe(n + 1);
    c.close();
  });

  it('a client that half-closes after its requests still gets every reply', async () => {
    const { c } = await open();
    // FUA: the replies wait for fdatasync, so they are produced after the client's FIN arrived.
    for (let i = 0; i < 16; i++) c.request(CMD.WRITE, { cookie: BigInt(i), offset: i * 512, payload: Buffer.alloc(512, i), flags: CMD_FLAG.FUA });
    c.socket.end();
    const cookies = new Set<bigint>();
    for (let i = 0; i < 16; i++) cookies.add((await c.simpleReply()).cookie);
    expect(cookies.size).toBe(16);
    expect(await c.waitClosed()).toBe(true);
  });

  it('a client that disconnects mid-request does not disturb another', async () => {
    const good = await open();
    const bad = await open();
    bad.c.request(CMD.WRITE, { length: 65536 });
    bad.c.write(Buffer.alloc(1000));
    bad.c.close();
    for (let i = 0; i < 10; i++) {
      good.c.request(CMD.READ, { cookie: BigInt(i), length: 4096 });
      expect((await good.c.simpleReply(4096)).error).toBe(0);
    }
    good.c.close();
  });

  it('shuts down gracefully: in-flight requests answered, then the connection closes', async () => {
    const own = await startServer();
    const c = await RawClient.connect(own.port);
    await c.handshake();
    for (let i = 0; i < 8; i++) c.request(CMD.WRITE, { cookie: BigInt(i), offset: i * 4096, payload: Buffer.alloc(4096, i) });
    await new Promise((r) => setTimeout(r, 50));
    const stopping = own.stop();
    for (let i = 0; i < 8; i++) expect((await c.simpleReply()).error).toBe(0);
    expect(await c.waitClosed()).toBe(true);
    await stopping;
    await expect(RawClient.connect(own.port)).rejects.toThrow();
  });
});
