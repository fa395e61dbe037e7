/**
 * How the monitor reaches an instance: an array API client, plus the URL and token its event
 * stream needs. An instance is an API URL (a token as its password: http://:TOKEN@host:port),
 * resolved here, or a name the daemon's resolver knows (the CLI resolves lab array names from
 * the running labs' state files, so an array restarted on a new port is found again).
 */
import { ApiClient } from '../control/index.js';

export interface ArrayAccess {
  client: ApiClient;
  url: string;
  token?: string;
}

export type InstanceResolver = (instance: string) => Promise<ArrayAccess>;

export function accessOfUrl(instance: string): ArrayAccess {
  const u = new URL(instance);
  const token = u.password ? decodeURIComponent(u.password) : undefined;
  const url = `${u.protocol}//${u.host}`;
  return { client: new ApiClient({ url, token, timeoutMs: 10_000 }), url, token };
}

export const isUrlInstance = (instance: string): boolean => /^https?:\/\//i.test(instance);

/** A URL without its token, for logs and replies. */
export function redactInstance(instance: string): string {
  if (!isUrlInstance(instance)) return instance;
  const u = new URL(instance);
  if (u.password) u.password = '***';
  return u.toString().replace(/\/$/, '');
}
