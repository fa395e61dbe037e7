/**
 * Where `sanbox events` reads: every event stream of a lab (each array's API, each link
 * emulator's API, the supervisor's control API, the monitor's HTTP side) or one array given by
 * --api. A source answers what it keeps (`snapshot`) and then follows: server-sent events from
 * the last sequence number seen (no gap, no duplicate; reopened with backoff when it drops),
 * or polling where a server has no stream (the supervisor).
 */
import { readSse } from '../../events/index.js';
import type { LabState } from '../lab.js';

/** One event as printed: the source's own fields plus the source's name and kind. */
export interface SourcedEvent {
  source: string;
  kind: SourceKind;
  seq: number;
  time: string;
  type: string;
  [field: string]: unknown;
}

export type SourceKind = 'array' | 'link' | 'supervisor' | 'monitor';

export interface EventSource {
  name: string;
  kind: SourceKind;
  url: string;
  token?: string;
  /** Server-sent events at /v1/events; false: poll the JSON document (the supervisor). */
  sse: boolean;
}

const REQUEST_TIMEOUT_MS = 10_000;
const POLL_MS = 500;
const RETRY_MIN_MS = 250;
const RETRY_MAX_MS = 5_000;

/** The sources of a lab, narrowed to --array / --link names when any is given (none: all). */
export function labSources(lab: LabState, pick: { arrays: string[]; links: string[] }): EventSource[] {
  const all = pick.arrays.length === 0 && pick.links.length === 0;
  const out: EventSource[] = [];
  for (const a of lab.arrays) if (all || pick.arrays.includes(a.name)) out.push({ name: a.name, kind: 'array', url: a.api.url, ...(a.api.token ? { token: a.api.token } : {}), sse: true });
  for (const l of lab.links ?? []) if (all || pick.links.includes(l.name)) out.push({ name: l.name, kind: 'link', url: l.api.url, ...(l.api.token ? { token: l.api.token } : {}), sse: true });
  if (all && lab.control) out.push({ name: 'lab', kind: 'supervisor', url: lab.control.url, token: lab.control.token, sse: false });
  if (all && lab.monitor?.http) out.push({ name: 'monitor', kind: 'monitor', url: lab.monitor.http, sse: true });
  return out;
}

function headers(s: EventSource, accept: string): Record<string, string> {
  return { Accept: accept, ...(s.token ? { Authorization: `Bearer ${s.token}` } : {}) };
}

function sourced(s: EventSource, e: Record<string, unknown>): SourcedEvent {
  if (typeof e.seq !== 'number' || typeof e.type !== 'string' || typeof e.time !== 'string') {
    throw new Error(`${s.kind} ${s.name} sent an event without seq, time and type: ${JSON.stringify(e).slice(0, 200)}`);
  }
  return { ...e, source: s.name, kind: s.kind } as SourcedEvent;
}

/** The events the source keeps after `sinceSeq`. Throws when it cannot be read. */
export async function snapshot(s: EventSource, sinceSeq: number): Promise<SourcedEvent[]> {
  let res: Response;
  try {
    res = await fetch(`${s.url}/v1/events?since=${sinceSeq}`, { headers: headers(s, 'application/json'), signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new SourceUnreachable(`cannot reach the ${s.kind} ${s.name} at ${s.url}: ${cause}`);
  }
  const body = (await res.json().catch(() => undefined)) as { events?: Record<string, unknown>[]; error?: { message?: string } } | undefined;
  if (!res.ok || !Array.isArray(body?.events)) throw new Error(`the ${s.kind} ${s.name} answered ${res.status}: ${body?.error?.message ?? 'no events'}`);
  return body.events.map((e) => sourced(s, e));
}

export class SourceUnreachable extends Error {}

/**
 * Follows the source from `afterSeq` until `signal` aborts: each new event to `on`. A dropped
 * stream (or a failed poll) is reported to `onTrouble` and tried again with backoff.
 */
export async function follow(s: EventSource, afterSeq: number, on: (e: SourcedEvent) => void, onTrouble: (why: string) => void, signal: AbortSignal): Promise<void> {
  let last = afterSeq;
  let retryMs = RETRY_MIN_MS;
  const seen = (e: SourcedEvent) => {
    if (e.seq <= last) return; // a replay of what was printed already
    last = e.seq;
    retryMs = RETRY_MIN_MS;
    on(e);
  };
  while (!signal.aborted) {
    try {
      if (s.sse) {
        const res = await fetch(`${s.url}/v1/events?since=${last}`, { headers: headers(s, 'text/event-stream'), signal });
        if (!res.ok || !res.body) throw new Error(`GET /v1/events answered ${res.status}`);
        for await (const m of readSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
          if (m.data) seen(sourced(s, JSON.parse(m.data) as Record<string, unknown>));
        }
        if (!signal.aborted) onTrouble(`the ${s.kind} ${s.name} ended its event stream; reconnecting`);
      } else {
        for (const e of await snapshot(s, last)) seen(e);
        await sleep(POLL_MS, signal);
        continue;
      }
    } catch (e) {
      if (signal.aborted) return;
      onTrouble(`events of the ${s.kind} ${s.name}: ${(e as Error).message}; retrying`);
    }
    await sleep(retryMs, signal);
    retryMs = Math.min(RETRY_MAX_MS, retryMs * 2);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
