// NBD over TLS at the protocol level: STARTTLS, FORCEDTLS (`require`), optional TLS (`on`), the
// spec's errors for downgrade attempts and repeated STARTTLS, PSK and x509 handshakes, and the
// credential checks. Real sockets, Node's TLS client; the real clients are in test/interop/tls.test.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnectionOptions } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNbdTls, OPT, parsePskFile, REP, TlsConfigError, type NbdTls } from '../../src/nbd/index.js';
import { startServer, type Fixture } from './fixture.js';
import { goPayload, RawClient } from './raw-client.js';

const dir = mkdtempSync(join(tmpdir(), 'sanbox-nbd-tls-'));
const key = randomBytes(32);
const pskFile = join(dir, 'keys.psk');
writeFileSync(pskFile, `alice:${key.toString('hex')}\n\nbob:${randomBytes(16).toString('hex')}\n`);
const certDir = join(dir, 'pki');
let haveOpenssl = true;
try {
  execFileSync('mkdir', ['-p', certDir]);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(certDir, 'server-key.pem'), '-out', join(certDir, 'server-cert.pem')], { stdio: 'ignore' });
} catch {
  haveOpenssl = false;
}

const psk = (identity = 'alice', k = key): ConnectionOptions => ({
  pskCallback: () => ({ psk: k, identity }),
  ciphers: 'ECDHE-PSK-CHACHA20-POLY1305:PSK-AES256-GCM-SHA384',
  checkServerIdentity: () => undefined,
});

const fixtures: Fixture[] = [];
async function server(t: NbdTls | undefined): Promise<Fixture> {
  const fx = await startServer({ handshakeTimeoutMs: 3000 }, { tls: t });
  fixtures.push(fx);
  return fx;
}
afterAll(async () => {
  for (const fx of fixtures) await fx.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Greets, sends STARTTLS, expects ACK, and shakes hands. */
async function upgrade(c: RawClient, opts: ConnectionOptions = psk()): Promise<RawClient> {
  await c.greet();
  c.sendOption(OPT.STARTTLS);
  const r = await c.readOptionReply();
  expect(r.type).toBe(REP.ACK);
  return c.startTls(opts);
}

async function listNames(c: RawClient): Promise<string[]> {
  c.sendOption(OPT.LIST);
  const rs = await c.readOptionReplies();
  expect(rs.at(-1)!.type).toBe(REP.ACK);
  return rs.filter((r) => r.type === REP.SERVER).map((r) => r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString()).sort();
}

describe('TLS required (FORCEDTLS)', () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await server(loadNbdTls({ mode: 'require', psk: pskFile }));
  });

  it('answers every option but STARTTLS and ABORT with ERR_TLS_REQD, and says nothing about the exports', async () => {
    const c = await RawClient.connect(fx.port);
    await c.greet();
    const options: [number, Buffer][] = [
      [OPT.LIST, Buffer.alloc(0)],
      [OPT.INFO, goPayload('disk', [1, 2, 3])],
      [OPT.GO, goPayload('disk')],
      [OPT.GO, goPayload('no-such-export')],
      [OPT.STRUCTURED_REPLY, Buffer.alloc(0)],
      [OPT.EXTENDED_HEADERS, Buffer.alloc(0)],
      [OPT.LIST_META_CONTEXT, Buffer.alloc(8)],
      [99, Buffer.from('junk')],
    ];
    for (const [opt, data] of options) {
      c.sendOption(opt, data);
      const r = await c.readOptionReply();
      expect(r.option).toBe(opt);
      expect(r.type).toBe(REP.ERR_TLS_REQD);
      // The message names no export, no size: nothing a plaintext client could learn.
      expect(r.data.toString()).not.toMatch(/disk|ro\b|1048576/);
    }
    // Oversized option data is thrown away and refused the same way.
    c.sendOption(OPT.LIST, Buffer.alloc(100_000));
    expect((await c.readOptionReply()).type).toBe(REP.ERR_TLS_REQD);
    // ... and the connection can still upgrade.
    c.sendOption(OPT.STARTTLS);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    const s = await c.startTls(psk());
    expect(await listNames(s)).toEqual(['disk', 'disk4k', 'ro']);
    s.close();
  });

  it('closes on NBD_OPT_EXPORT_NAME before STARTTLS, sending nothing', async () => {
    const c = await RawClient.connect(fx.port);
    await c.greet();
    c.sendOption(OPT.EXPORT_NAME, Buffer.from('disk'));
    expect(await c.waitClosed()).toBe(true);
    await expect(c.read(1, 100)).rejects.toThrow(/closed with 0/);
  });

  it('drops a client without fixed newstyle (it could only send EXPORT_NAME)', async () => {
    const c = await RawClient.connect(fx.port);
    await c.greet(0);
    c.sendOption(OPT.EXPORT_NAME, Buffer.from('disk'));
    expect(await c.waitClosed()).toBe(true);
  });

  it('acknowledges ABORT before TLS', async () => {
    const c = await RawClient.connect(fx.port);
    await c.greet();
    c.sendOption(OPT.ABORT);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    expect(await c.waitClosed()).toBe(true);
  });

  it('serves the export over TLS after STARTTLS (PSK): GO, then a write and a read', async () => {
    const c = await upgrade(await RawClient.connect(fx.port));
    c.sendOption(OPT.GO, goPayload('disk'));
    const rs = await c.readOptionReplies();
    expect(rs.at(-1)!.type).toBe(REP.ACK);
    const exp = rs.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 0)!;
    expect(exp.data.readBigUInt64BE(2)).toBe(1048576n);
    const data = randomBytes(64 * 1024);
    c.request(1, { cookie: 7n, offset: 4096, payload: data });
    expect(await c.simpleReply()).toMatchObject({ error: 0, cookie: 7n });
    c.request(0, { cookie: 8n, offset: 4096, length: data.length });
    const r = await c.simpleReply(data.length);
    expect(r.error).toBe(0);
    expect(r.data.equals(data)).toBe(true);
    c.close();
  });

  it('answers a second STARTTLS with ERR_INVALID and STARTTLS with data with ERR_INVALID', async () => {
    const raw = await RawClient.connect(fx.port);
    await raw.greet();
    raw.sendOption(OPT.STARTTLS, Buffer.from('x'));
    expect((await raw.readOptionReply()).type).toBe(REP.ERR_INVALID);
    raw.sendOption(OPT.STARTTLS);
    expect((await raw.readOptionReply()).type).toBe(REP.ACK);
    const c = await raw.startTls(psk());
    c.sendOption(OPT.STARTTLS);
    const r = await c.readOptionReply();
    expect(r.type).toBe(REP.ERR_INVALID);
    expect(r.data.toString()).toMatch(/already/);
    // No TLS_REQD once TLS is up; negotiation goes on.
    expect(await listNames(c)).toEqual(['disk', 'disk4k', 'ro']);
    c.close();
  });

  it('drops a client that goes on in plaintext after the STARTTLS ACK (a downgrade attempt), telling it nothing', async () => {
    // Options sent after the ACK instead of a TLS handshake: the TLS layer rejects them.
    const c = await RawClient.connect(fx.port);
    await c.greet();
    c.sendOption(OPT.STARTTLS);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    c.sendOption(OPT.LIST);
    c.sendOption(OPT.GO, goPayload('disk'));
    expect(await c.waitClosed()).toBe(true);
    const noReply = (client: RawClient) => {
      // Whatever else came (at most a TLS alert) holds no option reply and no export name.
      const tail = (client as unknown as { buf: Buffer }).buf;
      expect(tail.includes(Buffer.from([0x00, 0x03, 0xe8, 0x89]))).toBe(false);
      expect(tail.toString('latin1')).not.toMatch(/disk/);
    };
    noReply(c);
    // Pipelined with the STARTTLS itself (not waiting for the ACK): dropped after the ACK.
    const p = await RawClient.connect(fx.port);
    await p.greet();
    const opt = (o: number) => {
      const h = Buffer.alloc(16);
      Buffer.from('IHAVEOPT').copy(h);
      h.writeUInt32BE(o, 8);
      return h;
    };
    p.write(Buffer.concat([opt(OPT.STARTTLS), opt(OPT.LIST)]));
    expect((await p.readOptionReply()).type).toBe(REP.ACK);
    expect(await p.waitClosed()).toBe(true);
    noReply(p);
  });

  it('forgets what was negotiated in plaintext: structured replies must be asked for again over TLS', async () => {
    const fxOn = await server(loadNbdTls({ mode: 'on', psk: pskFile }));
    const raw = await RawClient.connect(fxOn.port);
    await raw.greet();
    raw.sendOption(OPT.STRUCTURED_REPLY);
    expect((await raw.readOptionReply()).type).toBe(REP.ACK);
    raw.sendOption(OPT.STARTTLS);
    expect((await raw.readOptionReply()).type).toBe(REP.ACK);
    const c = await raw.startTls(psk());
    c.sendOption(OPT.GO, goPayload('disk'));
    const rs = await c.readOptionReplies();
    const exp = rs.find((r) => r.type === REP.INFO && r.data.readUInt16BE(0) === 0)!;
    expect(exp.data.readUInt16BE(10) & (1 << 7)).toBe(0); // no SEND_DF: structured replies were dropped
    c.request(0, { cookie: 1n, offset: 0, length: 512 });
    expect((await c.simpleReply(512)).error).toBe(0); // a simple reply, not a chunk
    c.close();
  });

  it('fails the handshake of a wrong key or an unknown identity, and goes on serving others', async () => {
    for (const bad of [psk('alice', randomBytes(32)), psk('mallory')]) {
      const raw = await RawClient.connect(fx.port);
      await raw.greet();
      raw.sendOption(OPT.STARTTLS);
      expect((await raw.readOptionReply()).type).toBe(REP.ACK);
      await expect(raw.startTls(bad)).rejects.toThrow();
      raw.close();
    }
    const ok = await upgrade(await RawClient.connect(fx.port));
    expect(await listNames(ok)).toEqual(['disk', 'disk4k', 'ro']);
    ok.close();
  });
});

describe('TLS optional (on) and off', () => {
  it('on: a plaintext client is served as before, a TLS client over TLS', async () => {
    const fx = await server(loadNbdTls({ mode: 'on', psk: pskFile }));
    const plain = await RawClient.connect(fx.port);
    await plain.greet();
    expect(await listNames(plain)).toEqual(['disk', 'disk4k', 'ro']);
    const { size } = await (async () => {
      plain.sendOption(OPT.GO, goPayload('disk'));
      const rs = await plain.readOptionReplies();
      expect(rs.at(-1)!.type).toBe(REP.ACK);
      return { size: rs.find((r) => r.type === REP.INFO)!.data.readBigUInt64BE(2) };
    })();
    expect(size).toBe(1048576n);
    plain.close();
    const s = await upgrade(await RawClient.connect(fx.port));
    expect(await listNames(s)).toEqual(['disk', 'disk4k', 'ro']);
    s.close();
  });

  it('off: STARTTLS gets ERR_POLICY and negotiation goes on; TLS_REQD is never sent', async () => {
    const fx = await server(undefined);
    const c = await RawClient.connect(fx.port);
    await c.greet();
    c.sendOption(OPT.STARTTLS);
    expect((await c.readOptionReply()).type).toBe(REP.ERR_POLICY);
    expect(await listNames(c)).toEqual(['disk', 'disk4k', 'ro']);
    c.close();
  });
});

describe.skipIf(!haveOpenssl)('x509 certificates', () => {
  it('serves over TLS with the server certificate, verified by the client against it', async () => {
    const { readFileSync } = await import('node:fs');
    const fx = await server(loadNbdTls({ mode: 'require', certificates: certDir }));
    const c = await upgrade(await RawClient.connect(fx.port), { ca: readFileSync(join(certDir, 'server-cert.pem')), servername: undefined, host: '127.0.0.1' });
    expect(await listNames(c)).toEqual(['disk', 'disk4k', 'ro']);
    c.close();
  });
});

describe('credentials', () => {
  it('parses GnuTLS PSK files and rejects bad lines with the line number', () => {
    const keys = parsePskFile(`alice:${'ab'.repeat(32)}\r\n\nbob:${'CD'.repeat(16)}\n`, 'k.psk');
    expect([...keys.keys()]).toEqual(['alice', 'bob']);
    expect(keys.get('bob')!.length).toBe(16);
    const bad: [string, RegExp][] = [
      ['alice', /line 1: expected USERNAME:HEXKEY/],
      [`:${'ab'.repeat(16)}`, /line 1: the username is empty/],
      [`\nalice:xyz`, /line 2: the key of alice is not an even number of hex digits/],
      [`alice:abc`, /not an even number/],
      [`alice:${'ab'.repeat(8)}`, /8 bytes; at least 16/],
      [`alice:${'ab'.repeat(16)}\nalice:${'cd'.repeat(16)}`, /line 2: user alice appears twice/],
      ['\n\n', /holds no key/],
    ];
    for (const [text, re] of bad) expect(() => parsePskFile(text, 'k.psk')).toThrow(re);
  });

  it('refuses impossible configurations and unreadable or mismatched files at load', () => {
    expect(loadNbdTls({ mode: 'off' })).toBeUndefined();
    expect(loadNbdTls(undefined)).toBeUndefined();
    expect(() => loadNbdTls({ mode: 'require' })).toThrow(TlsConfigError);
    expect(() => loadNbdTls({ mode: 'on' })).toThrow(/needs credentials/);
    expect(() => loadNbdTls({ mode: 'require', psk: pskFile, certificates: certDir })).toThrow(/not both/);
    expect(() => loadNbdTls({ mode: 'require', psk: join(dir, 'missing.psk') })).toThrow(/cannot read the PSK file .*ENOENT/);
    expect(() => loadNbdTls({ mode: 'require', certificates: join(dir, 'nope') })).toThrow(/cannot read the directory .*ENOENT/);
    expect(() => loadNbdTls({ mode: 'require', certificates: pskFile })).toThrow(/not a directory/);
    const empty = join(dir, 'empty-pki');
    execFileSync('mkdir', ['-p', empty]);
    expect(() => loadNbdTls({ mode: 'require', certificates: empty })).toThrow(/server-cert\.pem.*ENOENT/);
    writeFileSync(join(empty, 'server-cert.pem'), 'not a certificate');
    writeFileSync(join(empty, 'server-key.pem'), 'not a key');
    expect(() => loadNbdTls({ mode: 'require', certificates: empty })).toThrow(TlsConfigError);
    expect(loadNbdTls({ mode: 'on', psk: pskFile })).toMatchObject({ mode: 'on', kind: 'psk' });
  });
});
