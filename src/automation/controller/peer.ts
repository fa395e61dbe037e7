/**
 * The channel between the two sites' controllers: HTTP with the lab's shared secret as a bearer
 * token (the controllers refuse anything without it). A peer that does not answer within the
 * deadline is a fact (`unreachable`), not an exception.
 */
import type { Lease } from '../rg/lease.js';

const PEER_DEADLINE_MS = 1500;
/** A lease hand-over stops the group's host resources at the peer first. */
const TRANSFER_DEADLINE_MS = 120_000;

export type PeerAnswer<T> = { ok: true; body: T } | { ok: false; status: number; code: string; message: string };

export class PeerClient {
  constructor(
    readonly site: string,
    readonly url: string,
    private readonly secret: string,
  ) {}

  private async call<T>(method: 'GET' | 'POST', path: string, body: unknown, timeoutMs: number): Promise<PeerAnswer<T>> {
    try {
      const res = await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.secret}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(timeoutMs),
      });
      const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
      if (res.ok) return { ok: true, body: json as T };
      return { ok: false, status: res.status, code: json.error?.code ?? `http-${res.status}`, message: json.error?.message ?? res.statusText };
    } catch (e) {
      return { ok: false, status: 0, code: 'unreachable', message: `controller of site ${this.site} at ${this.url}: ${(e as Error).message}` };
    }
  }

  leases(): Promise<PeerAnswer<{ site: string; leases: Lease[] }>> {
    return this.call('GET', '/v1/peer/leases', undefined, PEER_DEADLINE_MS);
  }

  /** Ask the peer to hand the group's lease over at `epoch` (it stops the group's host resources first). */
  transfer(rg: string, to: string, epoch: number): Promise<PeerAnswer<{ lease: Lease }>> {
    return this.call('POST', '/v1/peer/lease', { rg, to, epoch }, TRANSFER_DEADLINE_MS);
  }

  /** Ask the peer to run an operation (a failback: move the group to the peer's site). */
  request(kind: 'move', rg: string): Promise<PeerAnswer<{ operation: { id: string } }>> {
    return this.call('POST', `/v1/rg/${kind}`, { rg, site: this.site }, PEER_DEADLINE_MS);
  }
}
