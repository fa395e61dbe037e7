/**
 * The monitoring algorithm's clock ([0030]-[0031]): every resource is polled at its own
 * interval, and each check runs on its own (the seed's monitor threads), so a slow or
 * unreachable array never delays another resource. One check per resource at a time: a trigger
 * that arrives while a check runs (an array event, a change) runs one more check right after.
 */
import { keyOf, type ResourceEntry } from './types.js';

interface Slot {
  appName: string;
  deviceGroup: string;
  timer: NodeJS.Timeout | undefined;
  running: Promise<void> | undefined;
  again: boolean;
  /** when the next poll is due (ms since epoch) */
  dueAt: number;
}

export interface SchedulerHooks {
  check(key: { appName: string; deviceGroup: string }): Promise<void>;
  /** the entry as stored now (interval, backoff); undefined once removed */
  entry(appName: string, deviceGroup: string): ResourceEntry | undefined;
  /** a check ended: its start time and the next due time are stored by the caller */
  started(appName: string, deviceGroup: string, at: Date): void;
  failed(appName: string, deviceGroup: string, error: Error): void;
}

export class Scheduler {
  private readonly slots = new Map<string, Slot>();
  private stopped = false;

  constructor(private readonly hooks: SchedulerHooks) {}

  /** Starts watching a resource (or re-plans it after a change): checks it now. */
  watch(appName: string, deviceGroup: string): void {
    const key = keyOf(appName, deviceGroup);
    let slot = this.slots.get(key);
    if (!slot) {
      slot = { appName, deviceGroup, timer: undefined, running: undefined, again: false, dueAt: Date.now() };
      this.slots.set(key, slot);
    }
    this.trigger(appName, deviceGroup);
  }

  unwatch(appName: string, deviceGroup: string): void {
    const key = keyOf(appName, deviceGroup);
    const slot = this.slots.get(key);
    if (slot?.timer) clearTimeout(slot.timer);
    this.slots.delete(key);
  }

  /** Checks now (or right after the running check). */
  trigger(appName: string, deviceGroup: string): void {
    const slot = this.slots.get(keyOf(appName, deviceGroup));
    if (!slot || this.stopped) return;
    if (slot.running) {
      slot.again = true;
      return;
    }
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    this.run(slot);
  }

  /** Seconds until the next poll of a resource (the seed's iTimeRemain_); 0 while a check runs. */
  timeRemaining(appName: string, deviceGroup: string): number {
    const slot = this.slots.get(keyOf(appName, deviceGroup));
    if (!slot || slot.running) return 0;
    return Math.max(0, Math.ceil((slot.dueAt - Date.now()) / 1000));
  }

  /** Every watched resource whose instance is `instance`. */
  keysOf(instance: string): Array<{ appName: string; deviceGroup: string }> {
    return [...this.slots.values()].filter((s) => this.hooks.entry(s.appName, s.deviceGroup)?.instance === instance).map((s) => ({ appName: s.appName, deviceGroup: s.deviceGroup }));
  }

  /** Stops every timer and waits for the running checks. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const s of this.slots.values()) if (s.timer) clearTimeout(s.timer);
    await Promise.all([...this.slots.values()].map((s) => s.running));
  }

  private run(slot: Slot): void {
    this.hooks.started(slot.appName, slot.deviceGroup, new Date());
    slot.running = this.hooks
      .check({ appName: slot.appName, deviceGroup: slot.deviceGroup })
      .catch((e: unknown) => this.hooks.failed(slot.appName, slot.deviceGroup, e as Error))
      .finally(() => {
        slot.running = undefined;
        if (this.stopped || this.slots.get(keyOf(slot.appName, slot.deviceGroup)) !== slot) return;
        if (slot.again) {
          slot.again = false;
          this.run(slot);
        } else this.plan(slot);
      });
  }

  private plan(slot: Slot): void {
    const e = this.hooks.entry(slot.appName, slot.deviceGroup);
    if (!e) return;
    let waitMs = e.intervalSeconds * 1000;
    if (e.phase === 'backoff' && e.retryAt) waitMs = Math.min(waitMs, Math.max(0, Date.parse(e.retryAt) - Date.now()));
    slot.dueAt = Date.now() + waitMs;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      this.run(slot);
    }, waitMs);
  }
}
