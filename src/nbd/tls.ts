/**
 * NBD over TLS (STARTTLS during fixed-newstyle option haggling), as nbdkit and qemu-nbd offer it:
 * x509 certificates from a directory in the layout qemu and nbdkit use (ca-cert.pem,
 * server-cert.pem, server-key.pem), or pre-shared keys from a GnuTLS PSK file (`user:hexkey`
 * lines, what `psktool` writes and libnbd and qemu read).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import * as tls from 'node:tls';

/** off: STARTTLS refused (ERR_POLICY); on: optional; require: nothing but STARTTLS and ABORT before TLS. */
export type TlsMode = 'off' | 'on' | 'require';
export const TLS_MODES: readonly TlsMode[] = ['off', 'on', 'require'];

/** What an array's configuration says (file names; read when the server starts). */
export interface NbdTlsConfig {
  mode: TlsMode;
  /** Directory with server-cert.pem and server-key.pem (ca-cert.pem there is for clients; no client certificates are asked for). */
  certificates?: string;
  /** GnuTLS PSK file: `username:hexkey` per line. */
  psk?: string;
}

/** Loaded credentials: what the server needs to upgrade a connection. */
export interface NbdTls {
  mode: 'on' | 'require';
  kind: 'x509' | 'psk';
  /** Options for `new tls.TLSSocket(socket, { isServer: true, ...options })`. */
  options: tls.TLSSocketOptions;
}

/** A TLS configuration that cannot work: a usage error at start, before anything changes. */
export class TlsConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlsConfigError';
  }
}

/**
 * TLS 1.2 cipher suites with pre-shared keys that both OpenSSL (Node) and GnuTLS (libnbd, qemu)
 * offer; the ephemeral (EC)DHE ones first for forward secrecy. TLS 1.3 suites are kept apart
 * (`ciphersuites`), so PSK connections negotiate TLS 1.3 where the client can.
 */
const PSK_CIPHERS = [
  'ECDHE-PSK-CHACHA20-POLY1305',
  'DHE-PSK-AES256-GCM-SHA384',
  'DHE-PSK-AES128-GCM-SHA256',
  'DHE-PSK-CHACHA20-POLY1305',
  'ECDHE-PSK-AES256-CBC-SHA384',
  'ECDHE-PSK-AES128-CBC-SHA256',
  'PSK-AES256-GCM-SHA384',
  'PSK-AES128-GCM-SHA256',
  'PSK-CHACHA20-POLY1305',
].join(':');

/** Parses a GnuTLS PSK file: `username:hexkey` per line, blank lines ignored. */
export function parsePskFile(text: string, file = 'PSK file'): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const at = `${file} line ${i + 1}`;
    const colon = line.indexOf(':');
    if (colon < 0) throw new TlsConfigError(`${at}: expected USERNAME:HEXKEY (as psktool writes), found no ':'`);
    const user = line.slice(0, colon);
    const hex = line.slice(colon + 1).trim();
    if (user === '' || /\s/.test(user)) throw new TlsConfigError(`${at}: the username is empty or contains white space`);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0) throw new TlsConfigError(`${at}: the key of ${user} is not an even number of hex digits`);
    if (hex.length < 32) throw new TlsConfigError(`${at}: the key of ${user} is ${hex.length / 2} bytes; at least 16 are needed`);
    if (keys.has(user)) throw new TlsConfigError(`${at}: user ${user} appears twice`);
    keys.set(user, Buffer.from(hex, 'hex'));
  }
  if (keys.size === 0) throw new TlsConfigError(`${file} holds no key (expected USERNAME:HEXKEY lines, e.g. from psktool -u alice -p ${file})`);
  return keys;
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new TlsConfigError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The configuration's own consistency, without touching files. Null when it is fine. */
export function tlsConfigProblem(cfg: NbdTlsConfig): string | null {
  if (!TLS_MODES.includes(cfg.mode)) return `TLS mode must be off, on or require, not ${JSON.stringify(cfg.mode)}`;
  if (cfg.certificates !== undefined && cfg.psk !== undefined) return 'give TLS certificates or a PSK file, not both';
  if (cfg.mode !== 'off' && cfg.certificates === undefined && cfg.psk === undefined) {
    return `TLS ${cfg.mode} needs credentials: a certificates directory (server-cert.pem, server-key.pem) or a PSK file`;
  }
  return null;
}

/**
 * Reads and checks the credentials (synchronously: this runs once, at start). Undefined when
 * TLS is off. Throws TlsConfigError with a message fit for the user.
 */
export function loadNbdTls(cfg: NbdTlsConfig | undefined): NbdTls | undefined {
  if (!cfg) return undefined;
  const problem = tlsConfigProblem(cfg);
  if (problem) throw new TlsConfigError(problem);
  if (cfg.mode === 'off') return undefined;
  if (cfg.psk !== undefined) {
    const keys = parsePskFile(readText(cfg.psk, 'the PSK file'), cfg.psk);
    return {
      mode: cfg.mode,
      kind: 'psk',
      options: {
        ciphers: PSK_CIPHERS,
        minVersion: 'TLSv1.2',
        // An unknown identity (null) ends the handshake with an unknown_psk_identity alert.
        pskCallback: (_socket: tls.TLSSocket, identity: string) => keys.get(identity) ?? null,
      } as tls.TLSSocketOptions,
    };
  }
  const dir = cfg.certificates!;
  try {
    if (!statSync(dir).isDirectory()) throw new TlsConfigError(`TLS certificates: ${dir} is not a directory`);
  } catch (e) {
    if (e instanceof TlsConfigError) throw e;
    throw new TlsConfigError(`TLS certificates: cannot read the directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const cert = readText(join(dir, 'server-cert.pem'), 'the server certificate');
  const key = readText(join(dir, 'server-key.pem'), 'the server key');
  let secureContext: tls.SecureContext;
  try {
    secureContext = tls.createSecureContext({ cert, key, minVersion: 'TLSv1.2' });
  } catch (e) {
    throw new TlsConfigError(`TLS certificates in ${dir}: ${(e as Error).message} (server-cert.pem and server-key.pem must be a PEM certificate and its key)`);
  }
  return { mode: cfg.mode, kind: 'x509', options: { secureContext, minVersion: 'TLSv1.2' } };
}

/** Wraps a connection whose STARTTLS was just acknowledged; the TLS handshake follows. */
export function upgradeSocket(socket: Socket, t: NbdTls): tls.TLSSocket {
  return new tls.TLSSocket(socket, { ...t.options, isServer: true, requestCert: false, rejectUnauthorized: false });
}
