/**
 * The journal stage of a group's primary side: the records of the host writes that arrive in one
 * turn of the event loop are appended to the writelog together, with one `appendMany` (one write
 * of the ring file for all of them) at the end of the turn (a microtask), instead of one append
 * per host write. Each host write waits for the append of its turn: it is acknowledged only after
 * its record is in the writelog file, as before.
 *
 * Sequence numbers are handed out in the order the writes were staged. Whatever reads or changes
 * the journal outside the stage (a refresh record, bypass's discard, replay, close) calls
 * `flush()` first, so the stage never reorders records against them.
 */
import type { AppendRecord, Writelog } from '../../native/index.js';

/** A staged host write: its records and the promise of its first sequence number. */
interface Staged {
  count: number;
  resolve: (firstSeq: number) => void;
  reject: (e: Error) => void;
}

/**
 * The append of a turn: `appended(firstSeq)` runs for every write whose records all went in, in
 * sequence order, before any of their promises resolves (the caller counts them as pending
 * local writes in the same tick); `refused(count)` makes the error of a write whose records did
 * not all fit (the journal is full).
 */
export interface StageHooks {
  appended(firstSeq: number): void;
  refused(records: number, appendedOfWrite: number): Error;
}

export class JournalStage {
  private records: AppendRecord[] = [];
  private writes: Staged[] = [];
  private scheduled = false;
  private readonly flushNow = () => {
    this.scheduled = false;
    this.flush();
  };

  constructor(
    private readonly writelog: Writelog,
    private readonly hooks: StageHooks,
  ) {}

  /** Stages the records of one host write; resolves with the sequence number of its first record. */
  add(records: AppendRecord[]): Promise<number> {
    if (records.length === 0) throw new RangeError('a staged write has at least one record');
    return new Promise<number>((resolve, reject) => {
      for (const r of records) this.records.push(r);
      this.writes.push({ count: records.length, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        queueMicrotask(this.flushNow);
      }
    });
  }

  /** Records staged and not yet appended. */
  get size(): number {
    return this.records.length;
  }

  /**
   * Appends every staged record now (one `appendMany`) and settles the staged writes: those whose
   * records all went in resolve, the others reject (the journal's error, or the hooks' overflow
   * error). The records of a write that fit only in part stay in the journal.
   */
  flush(): void {
    if (this.writes.length === 0) return;
    const records = this.records;
    const writes = this.writes;
    this.records = [];
    this.writes = [];
    let r: { firstSeq: number; appended: number; overflow: boolean };
    try {
      r = this.writelog.appendMany(records);
    } catch (e) {
      for (const w of writes) w.reject(e as Error);
      return;
    }
    // Fewer records than given only when the journal is full (`overflow`): anything else is a bug.
    if (r.appended > records.length || (r.appended < records.length && !r.overflow)) {
      const bug = new Error(`writelog appended ${r.appended} of ${records.length} records (overflow ${r.overflow})`);
      for (const w of writes) w.reject(bug);
      throw bug;
    }
    let at = 0;
    let settled = 0;
    // First every fully appended write becomes pending, then the promises settle.
    for (; settled < writes.length; settled++) {
      const w = writes[settled]!;
      if (at + w.count > r.appended) break;
      this.hooks.appended(r.firstSeq + at);
      at += w.count;
    }
    at = 0;
    for (let i = 0; i < writes.length; i++) {
      const w = writes[i]!;
      if (i < settled) w.resolve(r.firstSeq + at);
      else w.reject(this.hooks.refused(w.count, Math.max(0, Math.min(w.count, r.appended - at))));
      at += w.count;
    }
  }
}
