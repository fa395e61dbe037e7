/** Addresses the API deals in: loopback and wildcard hosts, `host:port`, NBD URIs. */
import { isIP } from 'node:net';

export interface NbdEndpoint {
  host: string;
  port: number;
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

export function nbdUri(host: string, port: number, exportName: string): string {
  return `nbd://${hostPort(host, port)}/${encodeURIComponent(exportName)}`;
}
