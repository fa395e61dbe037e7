import { applyOp, assertMirrorChangeInvariants, assertMirrorRecordInvariants, MirrorOpError, parseMirrorDb, type MirrorDbRecord, type MirrorDbEvent, type MirrorOp } from '../state/index.js';
import type { Entry } from './entry.js';
import { MirrorError } from './types.js';

/**
 * The mirror records of this array and how they change: every change goes through `applyOp`
 * (pure, src/replication/state), has its invariants asserted, is saved (two copies), published
 * and pushed to the other members, one at a time per mirror (`exclusive`).
 */
export interface RecordsHost {
  readonly array: string;
  /** Publishes `mirror.<type>`. */
  event(type: string, details: Record<string, unknown>): void;
  /** The record's runtime consequences on the primary side (resyncs to start, rates). */
  afterChange(e: Entry): void;
  /** Pushes the record to every reachable member (the others get it on reconnect). */
  propagate(e: Entry): void;
}

/** applyOp with its refusal as a MirrorError (nothing changed) and the result's invariants asserted. */
export function applyChecked(db: MirrorDbRecord | null, op: MirrorOp): { db: MirrorDbRecord | null; events: MirrorDbEvent[] } {
  let r;
  try {
    r = applyOp(db, op);
  } catch (err) {
    if (err instanceof MirrorOpError) throw new MirrorError(err.code, err.message);
    throw err;
  }
  if (r.db) {
    if (db) assertMirrorChangeInvariants(db, r.db);
    else assertMirrorRecordInvariants(r.db);
  }
  return r;
}

/** A record read from disk or received from a member: validated, invariants asserted. */
export function loadRecord(raw: unknown): MirrorDbRecord {
  const db = parseMirrorDb(raw);
  assertMirrorRecordInvariants(db);
  return db;
}

export class MirrorRecords {
  readonly entries = new Map<string, Entry>();

  constructor(private readonly host: RecordsHost) {}

  event(type: string, details: Record<string, unknown>): void {
    this.host.event(type, details);
  }

  /** This LUN's mirror entry, if the LUN is an image of a mirror. */
  entryOfLun(lunId: number): Entry | undefined {
    for (const e of this.entries.values()) if (e.lun.id === lunId) return e;
    return undefined;
  }

  /** By mirror id or name. */
  lookup(ref: string): Entry | undefined {
    return this.entries.get(ref) ?? [...this.entries.values()].find((x) => x.db.name === ref);
  }

  find(ref: string): Entry {
    const e = this.lookup(ref);
    if (!e) throw new MirrorError('not-found', `array ${this.host.array} has no mirror ${JSON.stringify(ref)}`);
    return e;
  }

  /** Serialized per mirror: `fn` runs after every earlier change of `e` finished. */
  exclusive<T>(e: Entry, fn: () => Promise<T>): Promise<T> {
    return e.serial.run(fn);
  }

  async save(e: Entry, db: MirrorDbRecord): Promise<void> {
    await e.store.save(db);
    e.db = db;
  }

  /** Applies `op` (throws MirrorError, nothing changes), saves, publishes, propagates. */
  async change(e: Entry, op: MirrorOp, propagate = true): Promise<MirrorDbRecord> {
    const r = applyChecked(e.db, op);
    if (!r.db) throw new Error(`applyOp ${op.op} returned no record`);
    await e.store.save(r.db);
    // The new record, its resyncs (afterChange) and its push start in one synchronous step: no
    // host write sees the record without the resync it asks for (its phase would let it through).
    e.db = r.db;
    for (const ev of r.events) {
      const { type, ...rest } = ev;
      this.event(type, rest);
    }
    this.host.afterChange(e);
    if (propagate) this.host.propagate(e);
    return r.db;
  }

  /** Best-effort: a change on an operational path must not throw into the data path. */
  changeQuietly(e: Entry, op: MirrorOp): void {
    void this.exclusive(e, () => this.change(e, op)).catch(this.reportFailure(e, op.op));
  }

  /**
   * The handler of a background change or resync step that failed: a `change-failed` event. A
   * refusal for the record's state is not reported: the record moved on meanwhile (a racing
   * change made the step moot).
   */
  reportFailure(e: Entry, op: string): (err: unknown) => void {
    return (err) => {
      if (!(err instanceof MirrorError && err.code === 'state')) this.event('change-failed', { mirrorId: e.id, op, error: (err as Error)?.message });
    };
  }
}
