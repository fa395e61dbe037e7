/** Addresses the API deals in: loopback and wildcard hosts, `host:port`, NBD URIs. */
import { isIP } from 'node:net';

export interface NbdEndpoint {
  host: string;
  port: number;
  /** TLS offered (`on`) or required (`require`) on this port: its URIs are nbds://. */
  tls?: 'on' | 'require';
}

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

export function isWildcard(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '' || host === '[::]';
}

/** `host:port` with IPv6 brackets. */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** nbd://HOST:PORT/EXPORT, or nbds:// (libnbd's and qemu's scheme for NBD over TLS) when `tls`. */
export function nbdUri(host: string, port: number, exportName: string, tls?: string): string {
  return `${tls ? 'nbds' : 'nbd'}://${hostPort(host, port)}/${encodeURIComponent(exportName)}`;
}
