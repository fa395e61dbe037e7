/**
 * The monitor's event stream: every state change and action, numbered, kept in a ring for
 * replay, written as a log line, and pushed to subscribers (the socket's EVENTS and the HTTP
 * server's SSE stream).
 */
export interface MonitorEvent {
  seq: number;
  time: string;
  /** `monitor.*` for the daemon, `resource.*` for one resource */
  type: string;
  appName?: string;
  deviceGroup?: string;
  [k: string]: unknown;
}

/** Events kept for replay. */
const KEEP = 1000;

export class MonitorEvents {
  private seq = 0;
  private readonly kept: MonitorEvent[] = [];
  private readonly subscribers = new Set<(e: MonitorEvent) => void>();

  /** `log`: where each event goes as one line (the daemon's log); undefined: nowhere. */
  constructor(private readonly log?: (line: string) => void) {}

  emit(type: string, details: Record<string, unknown> = {}): MonitorEvent {
    const e: MonitorEvent = { seq: ++this.seq, time: new Date().toISOString(), type, ...details };
    this.kept.push(e);
    if (this.kept.length > KEEP) this.kept.shift();
    this.log?.(formatEvent(e));
    for (const s of this.subscribers) s(e);
    return e;
  }

  get lastSeq(): number {
    return this.seq;
  }

  since(after: number): MonitorEvent[] {
    return this.kept.filter((e) => e.seq > after);
  }

  subscribe(fn: (e: MonitorEvent) => void): () => void {
    this.subscribers.add(fn);
    return () => this.subscribers.delete(fn);
  }
}

/** One log line: time, type, the resource, then the other fields as key=value. */
export function formatEvent(e: MonitorEvent): string {
  const { seq, time, type, appName, deviceGroup, ...rest } = e;
  const who = appName !== undefined ? ` ${appName}/${deviceGroup}` : '';
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : JSON.stringify(v)}`)
    .join(' ');
  return `${time} #${seq} ${type}${who}${fields ? ' ' + fields : ''}`;
}
