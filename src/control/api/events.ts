/**
 * The server-sent-event stream of an array's state changes (GET /v1/events): every event as it
 * happens, a replay from Last-Event-ID or ?since=SEQ, and a comment line every HEARTBEAT_MS so
 * proxies and clients see a live connection. With `Accept: application/json` the kept events
 * after ?since (default 0) as one document instead (what `sanbox events` reads first).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ArrayEvent, StorageArray } from '../../array/index.js';
import { ApiError } from './http.js';

/** How often an idle stream gets a `: ping` comment. */
export const HEARTBEAT_MS = 15_000;
/** How long a client waits before reconnecting a dropped stream (the `retry:` field). */
const CLIENT_RETRY_MS = 2000;

function writeEvent(res: ServerResponse, e: ArrayEvent): void {
  res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
}

/** The open event streams of one API server. */
export class EventStreams {
  private readonly streams = new Set<ServerResponse>();
  private heartbeat: NodeJS.Timeout | undefined;
  private listener: ((e: ArrayEvent) => void) | undefined;

  constructor(private readonly array: StorageArray) {}

  /** Starts forwarding the array's events and the heartbeat (once the server listens). */
  start(): void {
    this.listener = (e: ArrayEvent) => {
      for (const res of this.streams) writeEvent(res, e);
    };
    this.array.on('event', this.listener);
    this.heartbeat = setInterval(() => {
      for (const res of this.streams) res.write(': ping\n\n');
    }, HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  /** GET /v1/events: answers with the stream; it stays open until the client or close() ends it. */
  open(req: IncomingMessage, res: ServerResponse, url: URL): void {
    if ((req.headers.accept ?? '').includes('application/json') && !(req.headers.accept ?? '').includes('text/event-stream')) return this.snapshot(res, url);
    const lastId = req.headers['last-event-id'];
    const since = url.searchParams.get('since');
    let after: number | undefined;
    const raw = typeof lastId === 'string' ? lastId : since;
    if (raw !== null && raw !== undefined) {
      if (!/^\d{1,15}$/.test(raw.trim())) throw new ApiError(400, 'invalid-argument', `bad event id ${JSON.stringify(raw)}`);
      after = Number(raw.trim());
    }
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    res.write(`retry: ${CLIENT_RETRY_MS}\n\n`);
    if (after !== undefined) for (const e of this.array.eventsSince(after)) writeEvent(res, e);
    this.streams.add(res);
    req.socket.setTimeout(0);
    const done = () => this.streams.delete(res);
    res.on('close', done);
    req.on('close', done);
  }

  /** The kept events after ?since (default 0) as `{events: [...]}`. */
  private snapshot(res: ServerResponse, url: URL): void {
    const raw = url.searchParams.get('since') ?? '0';
    if (!/^\d{1,15}$/.test(raw.trim())) throw new ApiError(400, 'invalid-argument', `bad event id ${JSON.stringify(raw)}`);
    const body = JSON.stringify({ events: this.array.eventsSince(Number(raw.trim())) }) + '\n';
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** Stops forwarding and ends every stream. */
  close(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (this.listener) this.array.off('event', this.listener);
    for (const res of this.streams) {
      res.end();
      res.socket?.destroySoon();
    }
    this.streams.clear();
  }
}
