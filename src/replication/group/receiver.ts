import { join } from 'node:path';
import type { BlockDevice } from '../../block/index.js';
import {
  APPLY_FLAG_TRIM,
  APPLY_FLAG_ZERO,
  APPLY_RECORD_HEADER,
  nextRecord,
  recordDataBytes,
  recordFlags,
  recordIndex,
  recordLength,
  recordOffset,
  recordSeq,
  RemoteLinkError,
  type ApplyArgs,
  type GroupHelloArgs,
} from '../../link/protocol/index.js';
import { SeqFile } from './seq-file.js';
import { SerialQueue } from '../../serial/index.js';
import type { GroupRecord } from './types.js';

/** A member LUN as the receiver writes it: the secondary image's device (below the host layer). */
export interface ReceiverMember {
  mirrorId: string;
  device: BlockDevice;
  size: number;
  /** the array that is this member's primary now (only it may send) */
  primaryArray: string;
}

/**
 * Asynchronous mode: batches applied within this long of the last commit wait for one commit
 * together (their ack waits with them; the host's writes on the primary never do).
 */
const COMMIT_EVERY_MS = 10;

/** The receiver's observations a promote reports (./promotion.ts); times are epoch ms, null if unknown. */
export interface ReceiverObservations {
  appliedThrough: number;
  lastAppliedAt: number | null;
  lastContactAt: number | null;
}

/**
 * The remote mirror daemon of one consistency group on a secondary array: applies writelog
 * records in global sequence order, exactly once. `nextExpected` is durable (SeqFile) and only
 * advances after the records before it are applied and flushed, so:
 * - a duplicate (seq < nextExpected) is dropped, a gap (seq > nextExpected) is refused, and a
 *   sender that reconnects resumes from `nextExpected` (its `group-hello` answer);
 * - a crash in the middle of a batch leaves a prefix of the batch applied (records are applied one
 *   after the other, and after each the file notes the next one, without fdatasync) and the sender
 *   resends from the first unapplied record: never a later write present with an earlier one
 *   missing. The batch's writes and the number are made durable together before the ack; when
 *   the next batch already waits, one flush serves both (group commit, `commit`).
 */
export class GroupReceiver {
  private readonly chain = new SerialQueue();
  private stopped = false;
  /** apply calls queued on the chain and not started */
  private appliesQueued = 0;
  /** batches applied and not yet durable: acknowledged by the next commit */
  private unflushed: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private lastCommitAt = 0;
  private commitTimer: NodeJS.Timeout | null = null;
  /** members written since the last commit */
  private readonly touched = new Set<BlockDevice>();
  applied = 0;
  batches = 0;
  /**
   * This array's own clock (epoch ms), for what a promote reports (./promotion.ts): when a record
   * was last applied, and when the sender last asked anything (hello or batch, accepted or
   * not). Null until it happens in this process: not persisted, so a restart forgets them and the
   * report says "unknown" rather than guess.
   */
  lastAppliedAt: number | null = null;
  lastContactAt: number | null = null;

  private constructor(
    public record: GroupRecord,
    private readonly seq: SeqFile,
    private readonly members: (mirrorId: string) => ReceiverMember | undefined,
  ) {}

  static async open(dir: string, record: GroupRecord, members: (mirrorId: string) => ReceiverMember | undefined, opts: { sync?: boolean } = {}): Promise<GroupReceiver> {
    const seq = await SeqFile.open(join(dir, 'receiver.seq'), 1, opts);
    return new GroupReceiver(record, seq, members);
  }

  get nextExpected(): number {
    return this.seq.get();
  }

  private member(index: number, peer: string): ReceiverMember {
    const id = this.record.members[index];
    const m = id === undefined ? undefined : this.members(id);
    if (!m) throw new RemoteLinkError('wrong-mirror', `group ${this.record.name} has no member ${index} on this array`);
    if (m.primaryArray !== peer) throw new RemoteLinkError('stale-epoch', `${peer} is not the primary of ${id} (${m.primaryArray} is)`);
    return m;
  }

  hello(args: GroupHelloArgs, peer: string): Promise<{ result: { nextExpected: number } }> {
    return this.serial(async () => {
      if (this.stopped) throw new RemoteLinkError('stopped', `the receiver of group ${this.record.name} is stopped (promoted)`);
      this.lastContactAt = Date.now();
      if (args.members.length !== this.record.members.length || args.members.some((m, i) => m !== this.record.members[i]))
        throw new RemoteLinkError('wrong-mirror', `group ${this.record.name}: member mapping differs (sender ${args.members.join(',')}, receiver ${this.record.members.join(',')})`);
      for (let i = 0; i < args.members.length; i++) this.member(i, peer);
      if (args.base !== undefined && args.base !== this.seq.get()) await this.seq.set(args.base);
      return { result: { nextExpected: this.seq.get() } };
    });
  }

  apply(_args: ApplyArgs, bin: Buffer, peer: string): Promise<{ result: { appliedThrough: number } }> {
    this.appliesQueued++;
    return new Promise((resolve, reject) => {
      void this.serial(async () => {
        this.appliesQueued--;
        try {
          const next = await this.applyBatch(bin, peer);
          this.batches++;
          this.unflushed.push({ resolve: () => resolve({ result: { appliedThrough: next - 1 } }), reject });
        } catch (e) {
          reject(e as Error);
        }
        // Group commit: a batch queued right behind this one flushes for both (it always runs
        // next, and nothing is applied between its records and that flush); otherwise, in the
        // asynchronous mode, at most one commit per COMMIT_EVERY_MS (each costs two
        // fdatasyncs). Near-synchronous host writes at the bound wait for these acks: no delay.
        if (this.appliesQueued > 0 && !this.stopped) return;
        const every = this.record.mode === 'asynchronous' ? COMMIT_EVERY_MS : 0;
        const wait = this.lastCommitAt + every - performance.now();
        if (wait <= 0 || this.stopped) await this.commit();
        else if (!this.commitTimer) this.commitTimer = setTimeout(() => void this.serial(() => this.commit()), wait);
      });
    });
  }

  /** Applies one batch's records in order; returns the next expected sequence after them. */
  private async applyBatch(bin: Buffer, peer: string): Promise<number> {
    if (this.stopped) throw new RemoteLinkError('stopped', `the receiver of group ${this.record.name} is stopped (promoted)`);
    this.lastContactAt = Date.now();
    let next = this.seq.get();
    const appliedBefore = this.applied;
    try {
      // the records in place, as the primary's writelog holds them (../../link/protocol/apply-batch.ts)
      for (let o = 0; o < bin.length; o = nextRecord(bin, o)) {
        const seq = recordSeq(bin, o);
        if (seq < next) continue; // a duplicate after a reconnect
        if (seq > next) throw new RemoteLinkError('gap', `group ${this.record.name}: record ${seq} arrived, ${next} expected`);
        const index = recordIndex(bin, o);
        const offset = recordOffset(bin, o);
        const flags = recordFlags(bin, o);
        const length = recordLength(bin, o);
        const m = this.member(index, peer);
        if (offset + length > m.size) throw new RemoteLinkError('bad-request', `record ${seq}: ${offset}+${length} beyond member ${index} (${m.size} bytes)`);
        // One record after the other: whatever a crash interrupts, what is applied is a prefix.
        if ((flags & APPLY_FLAG_ZERO) === 0) await m.device.write(offset, bin.subarray(o + APPLY_RECORD_HEADER, o + APPLY_RECORD_HEADER + recordDataBytes(bin, o)));
        else if (flags & APPLY_FLAG_TRIM && m.device.capabilities.trim) await m.device.trim(offset, length);
        else await m.device.writeZeroes(offset, length);
        this.touched.add(m.device);
        next = seq + 1;
        // Applied through `seq`: a crash from here on resumes after it, never re-applies it (a
        // replay of applied records could briefly show an older version of a range next to a
        // newer version of another: not a prefix).
        this.seq.note(next);
        this.applied++;
      }
    } finally {
      // Once per batch, not per record: a batch cut short by a gap still applied a prefix, and
      // a resent batch of duplicates (skipped) makes the copy no younger.
      if (this.applied > appliedBefore) this.lastAppliedAt = Date.now();
    }
    return next;
  }

  /**
   * Makes the batches applied since the last commit durable: the members they wrote, then the
   * next expected sequence (so it never runs ahead of the data), and then acknowledges them.
   * Runs on the serial chain, so no record is applied between the flush and the number.
   */
  private async commit(): Promise<void> {
    if (this.commitTimer) clearTimeout(this.commitTimer);
    this.commitTimer = null;
    this.lastCommitAt = performance.now();
    const waiting = this.unflushed.splice(0);
    const devices = [...this.touched];
    this.touched.clear();
    if (waiting.length === 0 && devices.length === 0) return;
    try {
      for (const d of devices) await d.flush();
      await this.seq.set(this.seq.get());
    } catch (e) {
      for (const w of waiting) w.reject(e as Error);
      return;
    }
    for (const w of waiting) w.resolve();
  }

  /**
   * Runs `fn` between two batches (queued on the same serial chain as `apply`): no record is
   * applied while it runs, every record through `appliedThrough` is (its writes completed), none
   * after it. A snapshot cut here is the group as of that record: a point-in-time copy of all
   * members.
   */
  betweenBatches<T>(fn: (appliedThrough: number) => Promise<T>): Promise<{ result: T; appliedThrough: number }> {
    return this.serial(async () => {
      const appliedThrough = this.seq.get() - 1;
      return { result: await fn(appliedThrough), appliedThrough };
    });
  }

  /** What this side knows of its copy: the last record applied (nextExpected - 1) and when. */
  observed(): ReceiverObservations {
    return { appliedThrough: this.seq.get() - 1, lastAppliedAt: this.lastAppliedAt, lastContactAt: this.lastContactAt };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    return this.chain.run(fn);
  }

  /** No more records (the group is promoted here): waits for the batch being applied. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.serial(() => this.commit());
  }

  async close(): Promise<void> {
    this.stopped = true;
    await this.serial(() => this.commit());
    await this.seq.close();
  }
}
