/**
 * The lab's event streams merged for the page: each array's and each link emulator's
 * `GET /v1/events` (server-sent events, reopened from the last sequence number when they drop),
 * the pair resync monitor's (the same, once it runs), and the supervisor's (polled: it serves JSON only). Every event gets a dashboard-wide id so
 * the page's EventSource can resume with Last-Event-ID; the last `keep` are replayed to a page
 * that connects. An API's URL is looked up again at each reconnect: a restarted array may
 * listen on a new port.
 */
import { readSse } from '../events/index.js';
import { arrayOf, linkOf, monitorOf, type DashboardLab, type Upstream } from './lab.js';

export type SourceKind = 'array' | 'link' | 'supervisor' | 'monitor';

export interface DashEvent {
  id: number;
  source: string;
  kind: SourceKind;
  seq: number;
  time: string;
  type: string;
  /** The event's own fields (seq, time, type and the details). */
  event: Record<string, unknown>;
}

const KEEP = 500;
const POLL_MS = 1000;
const RETRY_MS = 1000;

export class EventHub {
  private nextId = 1;
  private readonly kept: DashEvent[] = [];
  private readonly listeners = new Set<(e: DashEvent) => void>();
  private abort: AbortController | undefined;

  constructor(private readonly lab: () => DashboardLab) {}

  /** Starts following every source of the lab (once). */
  start(): void {
    if (this.abort) return;
    const abort = new AbortController();
    this.abort = abort;
    const lab = this.lab();
    for (const a of lab.arrays) void this.followSse('array', a.name, () => arrayOf(this.lab(), a.name)?.api, abort.signal);
    for (const l of lab.links ?? []) void this.followSse('link', l.name, () => linkOf(this.lab(), l.name)?.api, abort.signal);
    // the monitor starts after the dashboard (its URL comes later in the lab state): looked up at each try
    void this.followSse('monitor', 'monitor', () => monitorOf(this.lab()), abort.signal);
    void this.pollSupervisor(abort.signal);
  }

  stop(): void {
    this.abort?.abort();
  }

  /** The kept events after the dashboard id `afterId`. */
  since(afterId: number): DashEvent[] {
    return this.kept.filter((e) => e.id > afterId);
  }

  subscribe(fn: (e: DashEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private relay(source: string, kind: SourceKind, raw: Record<string, unknown>): void {
    if (typeof raw.seq !== 'number' || typeof raw.type !== 'string') return;
    const e: DashEvent = { id: this.nextId++, source, kind, seq: raw.seq, time: String(raw.time ?? new Date().toISOString()), type: raw.type, event: raw };
    this.kept.push(e);
    if (this.kept.length > KEEP) this.kept.shift();
    for (const fn of this.listeners) fn(e);
  }

  private async followSse(kind: SourceKind, name: string, api: () => Upstream | undefined, signal: AbortSignal): Promise<void> {
    let last = 0;
    while (!signal.aborted) {
      const up = api();
      try {
        if (!up?.url) throw new Error('no API yet');
        const headers: Record<string, string> = { Accept: 'text/event-stream' };
        if (up.token) headers.Authorization = `Bearer ${up.token}`;
        const res = await fetch(`${up.url}/v1/events?since=${last}`, { headers, signal });
        if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
        let first = true;
        for await (const m of readSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
          if (!m.data) continue;
          const raw = JSON.parse(m.data) as Record<string, unknown>;
          const seq = Number(raw.seq);
          // The server sends only what follows `last` unless it restarted (its numbers began again).
          if (first && seq <= last) last = 0;
          first = false;
          if (seq <= last) continue;
          last = seq;
          this.relay(name, kind, raw);
        }
      } catch {
        // down (a crashed array, a restart): try again; the topology shows why
      }
      await sleep(RETRY_MS, signal);
    }
  }

  private async pollSupervisor(signal: AbortSignal): Promise<void> {
    let last = 0;
    while (!signal.aborted) {
      const c = this.lab().control;
      if (c) {
        try {
          const res = await fetch(`${c.url}/v1/events?since=${last}`, { headers: { Accept: 'application/json', Authorization: `Bearer ${c.token}` }, signal });
          const body = (await res.json()) as { events?: Record<string, unknown>[] };
          for (const raw of body.events ?? []) {
            last = Math.max(last, Number(raw.seq));
            this.relay('lab', 'supervisor', raw);
          }
        } catch {
          // the supervisor stops: the lab is going away
        }
      }
      await sleep(POLL_MS, signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
