/**
 * Every event of every array, link emulator, heartbeat agent (source `hb:HOST`), site automation
 * controller (source `automation:SITE`) and the lab supervisor during a run, in one list (the
 * report's `events`): arrays through their server-sent-event streams (reconnected after a crash; a
 * restarted array's events are read from its first), links, agents, controllers and the supervisor
 * by polling their `?since=` documents (a restarted one's from its first too: SeqCursor).
 */
import type { ApiClient } from '../../control/index.js';
import type { LabApis } from './apis.js';
import type { EventRecord } from '../report/types.js';

const POLL_MS = 500;
const RECONNECT_MS = 300;

export interface RawEvent {
  seq: number;
  time?: string;
  type: string;
  [k: string]: unknown;
}

export class EventCollector {
  readonly events: EventRecord[] = [];
  private stopped = false;
  /** One signal for every stream: a stream opened while stop() runs is aborted as well. */
  private readonly stopping = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly listeners = new Set<(e: EventRecord) => void>();

  constructor(
    private readonly apis: LabApis,
    private readonly startedAtMs: number,
  ) {}

  start(): void {
    for (const a of this.apis.arrayNames()) this.loops.push(this.arrayLoop(a));
    for (const l of this.apis.linkNames()) this.loops.push(this.pollLoop(l, () => this.apis.link(l)));
    for (const h of this.apis.heartbeatHostNames()) this.loops.push(this.pollLoop(`hb:${h}`, () => this.apis.heartbeat(h)));
    for (const s of this.apis.automationSites()) this.loops.push(this.pollLoop(`automation:${s}`, () => this.apis.automation(s)));
    this.loops.push(this.pollLoop('lab', () => this.apis.control()));
  }

  onEvent(f: (e: EventRecord) => void): void {
    this.listeners.add(f);
  }

  count(type: string, source: string | null): number {
    return this.events.filter((e) => e.type === type && (source === null || e.source === source)).length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await Promise.all(this.loops);
  }

  private add(source: string, e: RawEvent): void {
    const at = e.time ? Date.parse(e.time) : NaN;
    const rec: EventRecord = { tMs: (Number.isFinite(at) ? at : Date.now()) - this.startedAtMs, source, type: e.type, data: e };
    this.events.push(rec);
    for (const f of this.listeners) f(rec);
  }

  private async sleep(ms: number): Promise<void> {
    if (!this.stopped) await new Promise((r) => setTimeout(r, ms));
  }

  /** Polls a `GET /v1/events?since=SEQ` document (the supervisor's, a link emulator's, an agent's, a controller's). */
  private async pollLoop(source: string, client: () => ApiClient): Promise<void> {
    const cursor = new SeqCursor();
    const get = async (since: number) => (await client().request<{ events: RawEvent[] }>('GET', `/v1/events?since=${since}`)).events;
    while (!this.stopped) {
      try {
        const fresh = cursor.take(await get(cursor.since())) ?? cursor.takeAll(await get(0));
        for (const e of fresh) this.add(source, e);
      } catch {
        // The lab is stopping or busy; the next poll tries again (events are kept there).
      }
      await this.sleep(POLL_MS);
    }
  }

  /** An array's SSE stream; after a drop, resumes after the last seq of the same process. */
  private async arrayLoop(name: string): Promise<void> {
    let pid: number | null = null;
    let since = 0;
    while (!this.stopped) {
      try {
        if (!this.apis.arrayRunning(name)) throw new Error('down');
        const st = await this.apis.array(name, 5000).request<{ pid?: number }>('GET', '/v1/status');
        if (st.pid !== pid) since = 0; // a new process: its events from the first
        pid = st.pid ?? null;
        await this.readStream(name, since, (e) => (since = e.seq));
      } catch {
        // down, restarting, or the stream ended: try again shortly
      }
      await this.sleep(RECONNECT_MS);
      if (!this.stopped) this.apis.refresh();
    }
  }

  private async readStream(name: string, since: number, seen: (e: RawEvent) => void): Promise<void> {
    const c = this.apis.array(name);
    const headers: Record<string, string> = { Accept: 'text/event-stream', 'Last-Event-ID': String(since) };
    const token = this.apis.current.arrays.find((a) => a.name === name)?.api.token;
    if (token) headers.Authorization = `Bearer ${token}`;
    const res = await fetch(`${c.url}/v1/events`, { headers, signal: this.stopping.signal });
    if (!res.ok || !res.body) throw new Error(`events of ${name}: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = frame.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        if (!data) continue;
        const e = JSON.parse(data) as RawEvent;
        if (e.seq <= since) continue;
        since = e.seq;
        this.add(name, e);
        seen(e);
      }
    }
  }
}

/**
 * Where a polled source's events were taken up to. The source is asked `?since=` one before the
 * last event taken, so that its answer shows that event again, the same (seq, time and type), as
 * long as the same process answers. A restarted source (a controller after its site's restore)
 * numbers its events from 1 again: its answer then lacks that event (nothing newer either), or has
 * another at its seq; it is asked for every event it keeps, which are all new.
 */
export class SeqCursor {
  private last: { seq: number; id: string } | null = null;

  /** what to ask for: `?since=` */
  since(): number {
    return this.last ? this.last.seq - 1 : 0;
  }

  /** The new events of the answer to `?since=${since()}`; null: the source restarted, ask it for `?since=0` and give that to takeAll. */
  take(events: RawEvent[]): RawEvent[] | null {
    const last = this.last;
    if (!last) return this.keep(events);
    const echo = events.find((e) => e.seq === last.seq);
    // Without the last event but with newer ones: it fell out of the source's buffer (a burst of more than it keeps).
    if (echo ? identity(echo) !== last.id : !events.some((e) => e.seq > last.seq)) return null;
    return this.keep(events.filter((e) => e.seq > last.seq));
  }

  /** The new events of the answer to `?since=0` after take said restarted (all of them, unless the last one taken is there after all). */
  takeAll(events: RawEvent[]): RawEvent[] {
    const last = this.last;
    const same = last !== null && events.some((e) => e.seq === last.seq && identity(e) === last.id);
    if (!same) this.last = null;
    return this.keep(same ? events.filter((e) => e.seq > last.seq) : events);
  }

  private keep(events: RawEvent[]): RawEvent[] {
    const sorted = [...events].sort((a, b) => a.seq - b.seq);
    const newest = sorted.at(-1);
    if (newest) this.last = { seq: newest.seq, id: identity(newest) };
    return sorted;
  }
}

const identity = (e: RawEvent) => `${e.seq} ${e.time ?? ''} ${e.type}`;
