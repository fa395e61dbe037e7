import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPT, REP, TF } from '../../src/nbd/index.js';
import { startServer, type Fixture } from './fixture.js';
import { goPayload, metaPayload, RawClient } from './raw-client.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await startServer({ handshakeTimeoutMs: 1500 });
});
afterAll(async () => fx.stop());

const connect = () => RawClient.connect(fx.port);

describe('fixed newstyle handshake', () => {
  it('greets with FIXED_NEWSTYLE and NO_ZEROES', async () => {
    const c = await connect();
    expect((await c.greet()).handshakeFlags).toBe(3);
    c.close();
  });

  it('drops a client that sets unknown client flags', async () => {
    const c = await connect();
    await c.greet(0x7);
    expect(await c.waitClosed()).toBe(true);
  });

  it('answers unknown options with ERR_UNSUP and goes on negotiating', async () => {
    const c = await connect();
    await c.greet();
    for (const opt of [99, 0x7fffffff, 4, 12]) {
      c.sendOption(opt, Buffer.from('junk'));
      const r = await c.readOptionReply();
      expect(r.option).toBe(opt);
      expect(r.type).toBe(REP.ERR_UNSUP);
    }
    c.sendOption(OPT.STARTTLS);
    expect((await c.readOptionReply()).type).toBe(REP.ERR_POLICY);
    c.sendOption(OPT.GO, goPayload('disk'));
    const rs = await c.readOptionReplies();
    expect(rs.at(-1)!.type).toBe(REP.ACK);
    c.close();
  });

  it('lists exports, and refuses LIST with data', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.LIST);
    const rs = await c.readOptionReplies();
    const names = rs.filter((r) => r.type === REP.SERVER).map((r) => r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString());
    expect(names.sort()).toEqual(['disk', 'disk4k', 'ro']);
    expect(rs.at(-1)!.type).toBe(REP.ACK);
    c.sendOption(OPT.LIST, Buffer.from([1]));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.close();
  });

  it('answers INFO with export, name, description and block size, and continues', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.INFO, goPayload('disk4k', [1, 2, 3]));
    const rs = await c.readOptionReplies();
    const infos = new Map(rs.filter((r) => r.type === REP.INFO).map((r) => [r.data.readUInt16BE(0), r.data.subarray(2)]));
    expect(infos.get(0)!.readBigUInt64BE(0)).toBe(1048576n);
    expect(infos.get(1)!.toString()).toBe('disk4k');
    expect(infos.get(2)!.toString()).toBe('test disk4k');
    const bs = infos.get(3)!;
    expect([bs.readUInt32BE(0), bs.readUInt32BE(4), bs.readUInt32BE(8)]).toEqual([4096, 4096, 32 * 1024 * 1024]);
    c.sendOption(OPT.INFO, goPayload('nope'));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_UNKNOWN);
    c.sendOption(OPT.GO, goPayload('ro'));
    const go = await c.readOptionReplies();
    const flags = go.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 0)!.data.readUInt16BE(10);
    expect(flags & TF.READ_ONLY).toBeTruthy();
    expect(flags & TF.SEND_TRIM).toBe(0);
    c.close();
  });

  it('refuses malformed INFO/GO payloads and over-long names, then still works', async () => {
    const c = await connect();
    await c.greet();
    const good = goPayload('disk', [3]);
    for (const bad of [good.subarray(0, 3), good.subarray(0, good.length - 1), Buffer.concat([good, Buffer.from([0])])]) {
      c.sendOption(OPT.GO, bad);
      expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    }
    c.sendOption(OPT.GO, goPayload('x'.repeat(4097)));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.GO, goPayload('di\0sk'));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.GO, goPayload(''));
    expect((await c.readOptionReplies()).at(-1)!.type).toBe(REP.ACK); // '' = default export
    c.close();
  });

  it('ABORT is acknowledged, then the server closes', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.ABORT);
    const r = await c.readOptionReply();
    expect([r.option, r.type]).toEqual([OPT.ABORT, REP.ACK]);
    expect(await c.waitClosed()).toBe(true);
  });

  it('EXPORT_NAME enters transmission, with or without the 124 zero bytes', async () => {
    for (const [flags, len] of [
      [3, 10],
      [1, 134],
    ] as const) {
      const c = await connect();
      await c.greet(flags);
      c.sendOption(OPT.EXPORT_NAME, Buffer.from('disk'));
      const b = await c.read(len);
      expect(b.readBigUInt64BE(0)).toBe(1048576n);
      c.request(3); // FLUSH
      expect((await c.simpleReply()).error).toBe(0);
      if (len === 134) expect(b.subarray(10).every((x) => x === 0)).toBe(true);
      c.close();
    }
  });

  it('EXPORT_NAME of an unknown export ends the connection', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.EXPORT_NAME, Buffer.from('nope'));
    expect(await c.waitClosed()).toBe(true);
  });

  it('meta contexts: SET needs structured replies; LIST and SET find base:allocation', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.SET_META_CONTEXT, metaPayload('disk', ['base:allocation']));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.LIST_META_CONTEXT, metaPayload('disk', []));
    let rs = await c.readOptionReplies();
    expect(rs.filter((r) => r.type === REP.META_CONTEXT).map((r) => r.data.subarray(4).toString())).toEqual(['base:allocation']);
    c.sendOption(OPT.STRUCTURED_REPLY);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    c.sendOption(OPT.STRUCTURED_REPLY, Buffer.from([0]));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.SET_META_CONTEXT, metaPayload('disk', ['qemu:dirty-bitmap:x', 'base:allocation']));
    rs = await c.readOptionReplies();
    const ctx = rs.filter((r) => r.type === REP.META_CONTEXT);
    expect(ctx).toHaveLength(1);
    expect(ctx[0]!.data.readUInt32BE(0)).not.toBe(0);
    c.sendOption(OPT.SET_META_CONTEXT, metaPayload('nope', ['base:allocation']));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_UNKNOWN);
    c.sendOption(OPT.SET_META_CONTEXT, metaPayload('disk', ['base:allocation']).subarray(0, 12));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.close();
  });

  it('extended headers: data or a repeat is refused; structured replies after them are not needed', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.EXTENDED_HEADERS, Buffer.from([1]));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.STRUCTURED_REPLY);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    c.sendOption(OPT.STRUCTURED_REPLY);
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.EXTENDED_HEADERS);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    c.sendOption(OPT.EXTENDED_HEADERS);
    expect((await c.readOptionReply()).type).toBe(REP.ERR_INVALID);
    c.sendOption(OPT.STRUCTURED_REPLY);
    expect((await c.readOptionReply()).type).toBe(REP.ERR_EXT_HEADER_REQD);
    c.close();
  });

  it('ends the connection on a bad option magic', async () => {
    const c = await connect();
    await c.greet();
    c.write(Buffer.alloc(16, 0x41));
    expect(await c.waitClosed()).toBe(true);
  });

  it('discards oversized option data with ERR_TOO_BIG; a huge length ends the connection', async () => {
    const c = await connect();
    await c.greet();
    c.sendOption(OPT.GO, Buffer.alloc(100_000, 1));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_TOO_BIG);
    c.sendOption(OPT.GO, goPayload('disk'));
    expect((await c.readOptionReplies()).at(-1)!.type).toBe(REP.ACK);
    c.close();
    const d = await connect();
    await d.greet();
    d.sendOption(OPT.GO, Buffer.alloc(0), 0xffffffff);
    expect(await d.waitClosed()).toBe(true);
  });

  it('a client without fixed newstyle gets EXPORT_NAME only', async () => {
    const c = await connect();
    await c.greet(0);
    c.sendOption(OPT.LIST);
    expect(await c.waitClosed()).toBe(true);
  });

  it('clients that vanish mid-handshake or never finish leave no session behind', async () => {
    const a = await connect();
    a.write(Buffer.from([0, 0])); // half of the client flags
    a.close();
    const b = await connect();
    await b.greet();
    b.sendOption(OPT.GO, goPayload('disk')); // then disappear before reading replies
    b.close();
    const idle = await connect(); // says nothing: the handshake timeout must reap it
    expect(await idle.waitClosed(4000)).toBe(true);
    const deadline = Date.now() + 3000;
    while (fx.server.sessionCount() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fx.server.sessionCount()).toBe(0);
  });
});
