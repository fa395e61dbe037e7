// NBD over TLS with real clients: nbdinfo, nbdcopy (nbds:// URIs, a PSK file, x509 certificates),
// qemu-img and qemu-io (tls-creds-psk / tls-creds-x509 objects), against `sanbox serve --tls ...`
// (or nbdkit with the same options, SANBOX_INTEROP_SERVER=nbdkit). With TLS required a plaintext
// client learns nothing (raw socket: ERR_TLS_REQD, EXPORT_NAME closes), a wrong key fails the
// handshake while the server goes on serving, and STARTTLS twice gets ERR_INVALID.
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPT, REP } from '../../src/nbd/index.js';
import { goPayload, RawClient } from '../nbd/raw-client.js';
import { HOST, MiB, REPO, SERVER_KIND, makeMixedImage, mustRun, rmrf, run, sha256File, startServer, tempDir, type NbdServer } from './harness.js';

const has = (tool: string) => spawnSync('sh', ['-c', `command -v ${tool}`], { env: { PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}` } }).status === 0;
const missing = ['nbdinfo', 'openssl'].filter((t) => !has(t));
const skip = missing.length > 0;
if (skip) console.warn(`[interop/tls] SKIPPED: ${missing.join(', ')} not installed`);
const haveQemu = has('qemu-img') && has('qemu-io');
const haveNbdcopy = has('nbdcopy');

const SIZE = 32 * MiB;
const KEY = randomBytes(32).toString('hex');
let work: string;
let pskFile: string;
let wrongPsk: string;
/** qemu wants a directory holding keys.psk. */
let qemuPskDir: string;
/** Server side: ca-cert.pem, server-cert.pem, server-key.pem. Client side: ca-cert.pem. */
let serverPki: string;
let clientPki: string;
const servers: NbdServer[] = [];

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and a server certificate it signed (IP 127.0.0.1, localhost), the layout qemu and nbdkit use. */
function makePki(): void {
  serverPki = join(work, 'pki-server');
  clientPki = join(work, 'pki-client');
  mkdirSync(serverPki);
  mkdirSync(clientPki);
  const ca = (f: string) => join(serverPki, f);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=sanbox test CA', '-keyout', join(work, 'ca-key.pem'), '-out', ca('ca-cert.pem'),
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', ca('server-key.pem'), '-out', join(work, 'server.csr')]);
  const ext = join(work, 'server.ext');
  writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\nbasicConstraints=CA:FALSE\n');
  openssl(['x509', '-req', '-in', join(work, 'server.csr'), '-CA', ca('ca-cert.pem'), '-CAkey', join(work, 'ca-key.pem'), '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', ca('server-cert.pem')]);
  copyFileSync(ca('ca-cert.pem'), join(clientPki, 'ca-cert.pem'));
}

const pskUri = (srv: NbdServer, name: string, file = pskFile) => `nbds://alice@${HOST}:${srv.port}/${name}?tls-psk-file=${file}`;
const x509Uri = (srv: NbdServer, name: string) => `nbds://${HOST}:${srv.port}/${name}?tls-certificates=${clientPki}`;
const qemuPsk = () => `tls-creds-psk,id=tls0,endpoint=client,dir=${qemuPskDir},username=alice`;
const qemuX509 = () => `tls-creds-x509,id=tls0,endpoint=client,dir=${clientPki}`;
const qemuTarget = (srv: NbdServer, name: string) => `driver=nbd,host=${HOST},port=${srv.port},export=${name},tls-creds=tls0`;

async function start(args: string[]): Promise<NbdServer> {
  const srv = await startServer({ luns: [{ name: 'disk', size: SIZE }, { name: 'disk2', size: SIZE }], args });
  servers.push(srv);
  return srv;
}

interface ListJson { exports: { 'export-name': string; 'export-size': number }[] }

describe.skipIf(skip)('NBD over TLS with real clients', { timeout: 120_000 }, () => {
  let psk: NbdServer;
  let x509: NbdServer;
  let optional: NbdServer;

  beforeAll(async () => {
    work = tempDir('sanbox-interop-tls-');
    pskFile = join(work, 'keys.psk');
    writeFileSync(pskFile, `alice:${KEY}\n`, { mode: 0o600 });
    wrongPsk = join(work, 'wrong.psk');
    writeFileSync(wrongPsk, `alice:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    qemuPskDir = join(work, 'qemu-psk');
    mkdirSync(qemuPskDir);
    copyFileSync(pskFile, join(qemuPskDir, 'keys.psk'));
    makePki();
    [psk, x509, optional] = await Promise.all([
      start(['--tls', 'require', '--tls-psk', pskFile]),
      start(['--tls', 'require', '--tls-certificates', serverPki]),
      start(['--tls', 'on', '--tls-psk', pskFile]),
    ]);
  });
  afterAll(async () => {
    for (const s of servers) {
      await s.stop();
      rmrf(s.dir);
    }
    if (work) rmrf(work);
  });

  it('nbdinfo over PSK lists the exports with their sizes', async () => {
    const r = await mustRun('nbdinfo', ['--json', '--list', pskUri(psk, '')], { server: psk });
    const j = JSON.parse(r.stdout) as ListJson;
    expect(j.exports.map((e) => e['export-name']).sort()).toEqual(['disk', 'disk2']);
    expect(j.exports.every((e) => e['export-size'] === SIZE)).toBe(true);
    const size = await mustRun('nbdinfo', ['--size', pskUri(psk, 'disk')], { server: psk });
    expect(Number(size.stdout.trim())).toBe(SIZE);
  });

  it('nbdinfo over x509 (the server certificate verified against the CA) reads the size and the list', async () => {
    const size = await mustRun('nbdinfo', ['--size', x509Uri(x509, 'disk')], { server: x509 });
    expect(Number(size.stdout.trim())).toBe(SIZE);
    const r = await mustRun('nbdinfo', ['--json', '--list', x509Uri(x509, '')], { server: x509 });
    expect((JSON.parse(r.stdout) as ListJson).exports.map((e) => e['export-name']).sort()).toEqual(['disk', 'disk2']);
    // With another CA the client refuses the server's certificate.
    const other = join(work, 'pki-other');
    mkdirSync(other, { recursive: true });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=another CA', '-keyout', join(other, 'ca-key.pem'), '-out', join(other, 'ca-cert.pem')]);
    const bad = await run('nbdinfo', ['--size', `nbds://${HOST}:${x509.port}/disk?tls-certificates=${other}`]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/certificate verification/);
  });

  it('with TLS required a plaintext nbdinfo fails, and the server told it nothing about the exports', async () => {
    for (const args of [['--list', `nbd://${HOST}:${psk.port}/`], ['--size', `nbd://${HOST}:${psk.port}/disk`]]) {
      const r = await run('nbdinfo', args);
      expect(r.code, r.stdout + r.stderr).not.toBe(0);
      expect(r.stdout + r.stderr).not.toMatch(/disk2|33554432|export-size/);
    }
  });

  it('with TLS required, raw plaintext LIST, INFO, GO get ERR_TLS_REQD and EXPORT_NAME closes with nothing sent', async () => {
    const c = await RawClient.connect(psk.port);
    await c.greet();
    for (const [opt, data] of [[OPT.LIST, Buffer.alloc(0)], [OPT.INFO, goPayload('disk', [3])], [OPT.GO, goPayload('disk')], [OPT.STRUCTURED_REPLY, Buffer.alloc(0)]] as const) {
      c.sendOption(opt, data);
      const r = await c.readOptionReply();
      expect(r.option).toBe(opt);
      expect(r.type).toBe(REP.ERR_TLS_REQD);
      expect(r.data.toString()).not.toMatch(/disk/);
    }
    c.sendOption(OPT.EXPORT_NAME, Buffer.from('disk'));
    expect(await c.waitClosed()).toBe(true);
    await expect(c.read(1, 100)).rejects.toThrow(/closed with 0/);
  });

  it('STARTTLS twice gets ERR_INVALID (over the TLS session), and negotiation goes on', async () => {
    const c = await RawClient.connect(psk.port);
    await c.greet();
    c.sendOption(OPT.STARTTLS);
    expect((await c.readOptionReply()).type).toBe(REP.ACK);
    const s = await c.startTls({
      pskCallback: () => ({ psk: Buffer.from(KEY, 'hex'), identity: 'alice' }),
      ciphers: 'ECDHE-PSK-CHACHA20-POLY1305:DHE-PSK-AES256-GCM-SHA384:PSK-AES256-GCM-SHA384',
      checkServerIdentity: () => undefined,
    });
    s.sendOption(OPT.STARTTLS);
    expect((await s.readOptionReply()).type).toBe(REP.ERR_INVALID);
    s.sendOption(OPT.GO, goPayload('disk'));
    const rs = await s.readOptionReplies();
    expect(rs.at(-1)!.type).toBe(REP.ACK);
    s.close();
  });

  it('a wrong PSK fails the handshake, and the server goes on serving other clients', async () => {
    const bad = await run('nbdinfo', ['--size', pskUri(psk, 'disk', wrongPsk)]);
    expect(bad.code).not.toBe(0);
    expect(bad.stdout).not.toMatch(String(SIZE));
    const unknownUser = await run('nbdinfo', ['--size', pskUri(psk, 'disk').replace('alice@', 'mallory@')]);
    expect(unknownUser.code).not.toBe(0);
    const ok = await mustRun('nbdinfo', ['--size', pskUri(psk, 'disk')], { server: psk });
    expect(Number(ok.stdout.trim())).toBe(SIZE);
  });

  it('TLS on (optional): plaintext clients and TLS clients are both served', async () => {
    const plain = await mustRun('nbdinfo', ['--size', `nbd://${HOST}:${optional.port}/disk`], { server: optional });
    expect(Number(plain.stdout.trim())).toBe(SIZE);
    const secure = await mustRun('nbdinfo', ['--json', '--list', pskUri(optional, '')], { server: optional });
    expect((JSON.parse(secure.stdout) as ListJson).exports).toHaveLength(2);
  });

  it.skipIf(!haveNbdcopy)('nbdcopy copies an image in and out over nbds:// with 4 connections: checksums equal', async () => {
    const src = join(work, 'src.img');
    makeMixedImage(src, SIZE);
    await mustRun('nbdcopy', ['--connections=4', '--flush', src, pskUri(psk, 'disk')], { server: psk, timeoutMs: 90_000 });
    const dst = join(work, 'dst.img');
    await mustRun('nbdcopy', ['--connections=4', pskUri(psk, 'disk'), dst], { server: psk, timeoutMs: 90_000 });
    expect(sha256File(dst)).toBe(sha256File(src));
    // Export to export, both ends over TLS (x509 to PSK).
    await mustRun('nbdcopy', [pskUri(psk, 'disk'), x509Uri(x509, 'disk2')], { server: x509, timeoutMs: 90_000 });
    const dst2 = join(work, 'dst2.img');
    await mustRun('nbdcopy', [x509Uri(x509, 'disk2'), dst2], { server: x509, timeoutMs: 90_000 });
    expect(sha256File(dst2)).toBe(sha256File(src));
  });

  it.skipIf(!haveQemu)('qemu-img and qemu-io with a tls-creds-psk object: write an image, read it back, verify a pattern', async () => {
    const src = join(work, 'qsrc.img');
    writeFileSync(src, randomBytes(4 * MiB));
    await mustRun('qemu-img', ['convert', '-n', '-f', 'raw', '--object', qemuPsk(), src, '--target-image-opts', qemuTarget(psk, 'disk2')], { server: psk });
    const back = join(work, 'qback.img');
    await mustRun('qemu-img', ['convert', '-O', 'raw', '--object', qemuPsk(), '--image-opts', qemuTarget(psk, 'disk2'), back], { server: psk });
    expect(readFileSync(back).subarray(0, 4 * MiB).equals(readFileSync(src))).toBe(true);
    const io = await mustRun('qemu-io', ['--object', qemuPsk(), '--image-opts', qemuTarget(psk, 'disk2'), '-c', 'write -P 0x5a 8M 1M', '-c', 'read -P 0x5a 8M 1M'], { server: psk });
    expect(io.stdout).toMatch(/read 1048576\/1048576 bytes at offset 8388608/);
    expect(io.stdout + io.stderr).not.toMatch(/Pattern verification failed/);
  });

  it.skipIf(!haveQemu)('qemu-io with a tls-creds-x509 object writes and reads back; with a wrong key qemu-io fails', async () => {
    const io = await mustRun('qemu-io', ['--object', qemuX509(), '--image-opts', qemuTarget(x509, 'disk'), '-c', 'write -P 0xc3 1M 64k', '-c', 'read -P 0xc3 1M 64k'], { server: x509 });
    expect(io.stdout).toMatch(/read 65536\/65536 bytes at offset 1048576/);
    expect(io.stdout + io.stderr).not.toMatch(/Pattern verification failed/);
    const wrongDir = join(work, 'qemu-wrong');
    mkdirSync(wrongDir);
    copyFileSync(wrongPsk, join(wrongDir, 'keys.psk'));
    const bad = await run('qemu-io', ['--object', `tls-creds-psk,id=tls0,endpoint=client,dir=${wrongDir},username=alice`, '--image-opts', qemuTarget(psk, 'disk'), '-c', 'read 0 512']);
    expect(bad.code).not.toBe(0);
  });

  it.skipIf(SERVER_KIND !== 'sanbox')('sanbox status prints nbds:// URIs and the TLS mode of the port', async () => {
    const url = await psk.apiUrl();
    const r = await mustRun(process.execPath, [join(REPO, 'bin', 'sanbox.js'), 'status', '--api', url!], { server: psk });
    expect(r.stdout).toContain(`nbds://${HOST}:${psk.port}/disk`);
    expect(r.stdout).toMatch(/NBD\s+\S+ \(TLS required\)/);
    const j = JSON.parse((await mustRun(process.execPath, [join(REPO, 'bin', 'sanbox.js'), 'status', '--json', '--api', url!], { server: psk })).stdout) as {
      nbd: { tls?: string }[];
      luns: { uris: string[] }[];
    };
    expect(j.nbd[0]!.tls).toBe('require');
    expect(j.luns[0]!.uris[0]).toMatch(/^nbds:\/\//);
    // The ready document of --json has them too.
    expect(psk.stdout()).toContain(`"uri": "nbds://${HOST}:${psk.port}/disk"`);
  });

  it.skipIf(SERVER_KIND !== 'sanbox')('sanbox serve refuses bad TLS options with exit 2, creating nothing', async () => {
    const badPsk = join(work, 'bad.psk');
    writeFileSync(badPsk, `alice:${KEY}\nnot a key line\n`);
    const dir = join(work, 'never-created');
    const cases: [string[], RegExp][] = [
      [['--tls', 'require'], /--tls require needs credentials/],
      [['--tls', 'on'], /needs credentials/],
      [['--tls', 'sometimes', '--tls-psk', pskFile], /--tls must be off, on or require/],
      [['--tls-psk', join(work, 'nope.psk')], /cannot read the PSK file .*ENOENT/],
      [['--tls-psk', badPsk], /bad\.psk line 2: expected USERNAME:HEXKEY/],
      [['--tls-psk', pskFile, '--tls-certificates', serverPki], /both given/],
      [['--tls', 'off', '--tls-psk', pskFile], /--tls off with --tls-psk/],
      [['--tls-certificates', clientPki], /server-cert\.pem.*ENOENT/],
    ];
    for (const [args, re] of cases) {
      const r = await run(process.execPath, [join(REPO, 'bin', 'sanbox.js'), 'serve', '--dir', dir, '--port', '0', '--lun', 'd=1M', ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(re);
      expect(spawnSync('test', ['-e', dir]).status).not.toBe(0);
    }
  });
});
