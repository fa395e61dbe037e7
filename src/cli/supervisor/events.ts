/**
 * The supervisor's event stream: every state change of the lab's arrays and sites
 * (`array.crashed`, `array.restarted`, `site.failed`, ...), one JSON object per line in
 * `<images>/.labs/<lab>.events.jsonl` (truncated at `up`, kept after `down`), on the
 * supervisor's log (stderr, or the detached lab's log file), and from its control API
 * (`GET /v1/events?since=SEQ`). Each event: `{ seq, time, lab, type, ...details }`.
 */
import { appendFileSync, writeFileSync } from 'node:fs';

export interface SupervisorEvent {
  seq: number;
  time: string;
  lab: string;
  type: string;
  [k: string]: unknown;
}

/** Events kept in memory for the control API. */
const MAX_EVENTS = 1000;

export class SupervisorEvents {
  private seq = 0;
  private readonly kept: SupervisorEvent[] = [];

  constructor(
    readonly lab: string,
    readonly path: string,
    private readonly log: (text: string) => void,
  ) {
    writeFileSync(path, '', { mode: 0o600 });
  }

  publish(type: string, details: Record<string, unknown> = {}): SupervisorEvent {
    const ev: SupervisorEvent = { seq: ++this.seq, time: new Date().toISOString(), lab: this.lab, type, ...details };
    this.kept.push(ev);
    if (this.kept.length > MAX_EVENTS) this.kept.shift();
    this.log(`#${ev.seq} ${type} ${JSON.stringify(details)}`);
    try {
      // Synchronous: the file holds the events in order even when the supervisor dies right after.
      appendFileSync(this.path, JSON.stringify(ev) + '\n');
    } catch (e) {
      this.log(`cannot append to ${this.path}: ${(e as Error).message}`);
    }
    return ev;
  }

  since(seq: number): SupervisorEvent[] {
    return this.kept.filter((e) => e.seq > seq);
  }
}
