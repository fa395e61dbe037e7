/** The array's event log: every change as a numbered event, the recent ones kept for replay. */
import type { EventEmitter } from 'node:events';

/** How many recent events are kept for replay. */
export const EVENT_HISTORY = 1000;

export interface ArrayEvent {
  seq: number;
  time: string;
  array: string;
  type: string;
  [key: string]: unknown;
}

export class ArrayEventLog {
  private seq = 0;
  private readonly history: ArrayEvent[] = [];

  constructor(
    private readonly array: string,
    /** Emits every event as 'event' (the StorageArray). */
    private readonly emitter: EventEmitter,
  ) {}

  record(type: string, details: Record<string, unknown> = {}): ArrayEvent {
    const ev: ArrayEvent = { seq: ++this.seq, time: new Date().toISOString(), array: this.array, type, ...details };
    this.history.push(ev);
    if (this.history.length > EVENT_HISTORY) this.history.shift();
    this.emitter.emit('event', ev);
    return ev;
  }

  /** Recent events with seq > `afterSeq` (all kept ones when afterSeq is beyond the last). */
  since(afterSeq: number): ArrayEvent[] {
    if (!Number.isFinite(afterSeq) || afterSeq > this.seq) return [...this.history];
    return this.history.filter((e) => e.seq > afterSeq);
  }

  get lastSeq(): number {
    return this.seq;
  }
}
