/**
 * NBD over TLS options of an array: `--tls off|on|require`, `--tls-certificates DIR`,
 * `--tls-psk FILE` for `sanbox serve`, `nbd: { tls, tlsCertificates, tlsPsk }` in a lab file.
 */
import { resolve } from 'node:path';
import { loadNbdTls, TLS_MODES, TlsConfigError, type NbdTlsConfig, type TlsMode } from '../nbd/index.js';

export interface TlsArgs {
  mode?: string;
  certificates?: string;
  psk?: string;
}

/**
 * The TLS configuration, its files resolved against `baseDir` and loaded once to check them
 * (readable, a certificate and its key, well-formed PSK lines). Undefined when TLS is off.
 * Credentials without a mode mean `require` (as qemu-nbd's --tls-creds). Throws a message.
 */
export function tlsConfigFrom(a: TlsArgs, baseDir: string, names: { mode: string; certificates: string; psk: string }): NbdTlsConfig | undefined {
  if (a.mode !== undefined && !TLS_MODES.includes(a.mode as TlsMode)) {
    throw new TlsConfigError(`${names.mode} must be off, on or require, not ${JSON.stringify(a.mode)}`);
  }
  const creds = a.certificates !== undefined || a.psk !== undefined;
  const mode = (a.mode ?? (creds ? 'require' : 'off')) as TlsMode;
  if (a.certificates !== undefined && a.psk !== undefined) throw new TlsConfigError(`${names.certificates} and ${names.psk} both given: give one`);
  if (mode === 'off') {
    if (creds) throw new TlsConfigError(`${names.mode} off with ${a.psk !== undefined ? names.psk : names.certificates}: drop one (TLS credentials are only used with ${names.mode} on or require)`);
    return undefined;
  }
  if (!creds) throw new TlsConfigError(`${names.mode} ${mode} needs credentials: ${names.certificates} DIR (server-cert.pem, server-key.pem) or ${names.psk} FILE (USERNAME:HEXKEY lines, e.g. from psktool)`);
  const cfg: NbdTlsConfig = {
    mode,
    ...(a.certificates !== undefined ? { certificates: resolve(baseDir, a.certificates) } : {}),
    ...(a.psk !== undefined ? { psk: resolve(baseDir, a.psk) } : {}),
  };
  loadNbdTls(cfg);
  return cfg;
}
