/**
 * A control-plane service's event stream (the monitor, the heartbeat agent): every state change
 * and action, numbered, kept in a ring for replay, written as a log line, and pushed to
 * subscribers (a socket's EVENTS, the HTTP server's SSE stream).
 */
export interface ServiceEvent {
  seq: number;
  time: string;
  /** `<service>.*`, e.g. `monitor.*` / `resource.*` for the monitor, `hb.*` for the heartbeat agent */
  type: string;
  appName?: string;
  deviceGroup?: string;
  [k: string]: unknown;
}

/** Events kept for replay. */
const KEEP = 1000;

export class ServiceEvents {
  private seq = 0;
  private readonly kept: ServiceEvent[] = [];
  private readonly subscribers = new Set<(e: ServiceEvent) => void>();

  /** `log`: where each event goes as one line (the daemon's log); undefined: nowhere. */
  constructor(private readonly log?: (line: string) => void) {}

  emit(type: string, details: Record<string, unknown> = {}): ServiceEvent {
    if ('seq' in details || 'time' in details || 'type' in details) throw new Error(`event ${type}: seq, time and type are the journal's own fields, not details`);
    const e: ServiceEvent = { seq: ++this.seq, time: new Date().toISOString(), type, ...details };
    this.kept.push(e);
    if (this.kept.length > KEEP) this.kept.shift();
    this.log?.(formatEvent(e));
    for (const s of this.subscribers) s(e);
    return e;
  }

  get lastSeq(): number {
    return this.seq;
  }

  since(after: number): ServiceEvent[] {
    return this.kept.filter((e) => e.seq > after);
  }

  subscribe(fn: (e: ServiceEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

/** One log line: time, type, the resource, then the other fields as key=value. */
export function formatEvent(e: ServiceEvent): string {
  const { seq, time, type, appName, deviceGroup, ...rest } = e;
  const who = appName !== undefined ? ` ${appName}/${deviceGroup}` : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`)
    .join(' ');
  return `${time} #${seq} ${type}${who}${fields ? ' ' + fields : ''}`;
}
