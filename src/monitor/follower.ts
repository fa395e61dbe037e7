/**
 * Follows the event streams of the arrays the monitor watches (GET /v1/events, server-sent
 * events) and reports each `mirror.*` and `group.*` event, so a resource is re-checked at once
 * instead of at its next poll. Polling stays the safety net: a stream that drops is reopened
 * with backoff (the instance is resolved again, an array may have restarted on another port).
 */
import { readSse } from '../events/index.js';
import type { InstanceResolver } from './access.js';

const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

export interface FollowerHooks {
  resolve: InstanceResolver;
  /** a replication event arrived from `instance` */
  onEvent(instance: string, type: string): void;
  /** the stream of `instance` opened or failed (for the log; not an error of the resource) */
  onStream(instance: string, state: 'open' | 'closed', why?: string): void;
}

export class EventFollower {
  private readonly streams = new Map<string, AbortController>();

  constructor(private readonly hooks: FollowerHooks) {}

  /** Follows exactly these instances from now on. */
  follow(instances: Iterable<string>): void {
    const want = new Set(instances);
    for (const [i, ctl] of this.streams) {
      if (!want.has(i)) {
        ctl.abort();
        this.streams.delete(i);
      }
    }
    for (const i of want) {
      if (this.streams.has(i)) continue;
      const ctl = new AbortController();
      this.streams.set(i, ctl);
      void this.loop(i, ctl.signal);
    }
  }

  stop(): void {
    this.follow([]);
  }

  private async loop(instance: string, signal: AbortSignal): Promise<void> {
    let retryMs = RETRY_MIN_MS;
    while (!signal.aborted) {
      try {
        await this.once(instance, signal, () => (retryMs = RETRY_MIN_MS));
        this.hooks.onStream(instance, 'closed', 'the array ended the stream');
      } catch (e) {
        if (signal.aborted) return;
        this.hooks.onStream(instance, 'closed', (e as Error).message);
      }
      await new Promise((r) => setTimeout(r, retryMs).unref());
      retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
    }
  }

  private async once(instance: string, signal: AbortSignal, opened: () => void): Promise<void> {
    const access = await this.hooks.resolve(instance);
    const headers: Record<string, string> = { Accept: 'text/event-stream' };
    if (access.token) headers.Authorization = `Bearer ${access.token}`;
    const res = await fetch(`${access.url}/v1/events`, { headers, signal });
    if (!res.ok || !res.body) throw new Error(`GET /v1/events answered ${res.status}`);
    opened();
    this.hooks.onStream(instance, 'open');
    for await (const m of readSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
      if (m.event && /^(mirror|group)\./.test(m.event)) this.hooks.onEvent(instance, m.event);
    }
  }
}
