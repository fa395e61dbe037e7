import { EventEmitter } from 'node:events';
import { cpuUsage } from 'node:process';
import type { BlockDevice } from '../../block/index.js';
import { APPLY_FLAG_TRIM, APPLY_FLAG_ZERO } from '../../link/protocol/index.js';
import { Writelog, WritelogOverflowError } from '../../native/index.js';
import { JournalStage } from './journal-stage.js';
import { BATCH_BYTES, BATCH_COUNT, GroupSender, type SenderRoute } from './sender.js';
import type { GroupMetrics, GroupRecord } from './types.js';

/** A member LUN on the primary: its index in the records, its device below the host layer. */
export interface PrimaryMember {
  mirrorId: string;
  index: number;
  size: number;
  device: BlockDevice;
}


/** Where a consumer of a group's metrics took its last sample. */
export interface MetricsWindow {
  at: number;
  bytes: number;
  dataBytes: number;
  entries: number;
  cpu: NodeJS.CpuUsage;
  delayed: number;
  delayedMs: number;
}
export function newWindow(): MetricsWindow {
  return { at: performance.now(), bytes: 0, dataBytes: 0, entries: 0, cpu: cpuUsage(), delayed: 0, delayedMs: 0 };
}

/** The writelog is full: the driver switches the group to bypass. Nothing was journaled. */
export class GroupOverflow extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GroupOverflow';
  }
}

/** largest record payload (larger host writes are split) */
const RECORD_MAX = 1024 * 1024;

/**
 * The primary side of a consistency group in the asynchronous modes: the group's writelog (one
 * journal for every member, one global sequence) and one sender per secondary array (the source
 * document's primary mirror daemon).
 *
 * A host write is journaled (appended with the other host writes of its event-loop turn, in the
 * order writes arrive), then written locally; it is acknowledged when both are done. A record is
 * *stable* once its local write completed; senders ship only stable records (in order), so a
 * record that reached a secondary is always on the primary's own LUN too. After a crash, the
 * records still in the writelog are replayed onto the local LUNs (`replayLocal`) before anything
 * else, so the primary again holds everything it may have shipped.
 */
export class PrimaryGroup extends EventEmitter {
  readonly senders = new Map<string, GroupSender>();
  private readonly localPending = new Set<number>();
  private admissionWaiters: Array<() => void> = [];
  closed = false;
  /** throttle-controlled */
  senderSleepMs = 0;
  ackDelayMs = 0;
  // cumulative counters; each consumer of metrics keeps its own MetricsWindow
  writesDelayed = 0;
  delayedMs = 0;
  sentBytes = 0;
  sentDataBytes = 0;
  sentEntries = 0;
  sentBatches = 0;
  /** host writes of this turn, appended together at its end */
  private readonly stage: JournalStage;

  private constructor(
    public record: GroupRecord,
    readonly writelog: Writelog,
    private readonly members: PrimaryMember[],
    private readonly sync: boolean,
  ) {
    super();
    this.setMaxListeners(0);
    this.stage = new JournalStage(writelog, {
      // pending from the append on: no sender ships it before its local write completed
      appended: (seq) => this.localPending.add(seq),
      refused: (count, appended) =>
        appended > 0 ? new GroupOverflow(`writelog full: ${count - appended} of ${count} records of a host write do not fit`) : new GroupOverflow(`writelog full: a host write's ${count} record(s) do not fit`),
    });
  }

  static open(dir: string, record: GroupRecord, members: PrimaryMember[], opts: { sync?: boolean } = {}): PrimaryGroup {
    const w = record.writelog;
    const writelog = Writelog.open({
      dir,
      name: 'writelog',
      capacity: w.capacity,
      extensionCapacity: w.extensionCapacity,
      maxExtensions: w.extensions,
      extendAtPercent: w.extendAtPercent,
      // Like the local write it accompanies: in the file (page cache) before the ack, durable at
      // the host's FUA or FLUSH (`stable()` below), so the asynchronous path costs what an
      // unmirrored write costs.
      durability: 'none',
    });
    return new PrimaryGroup(record, writelog, members, opts.sync !== false);
  }

  member(index: number): PrimaryMember {
    const m = this.members[index];
    if (!m) throw new Error(`group ${this.record.name}: no member ${index}`);
    return m;
  }

  /**
   * After an unclean stop: the records still in the writelog may have reached a secondary while
   * their local write did not finish. Writing them again, in order, makes the primary hold them.
   */
  async replayLocal(): Promise<number> {
    this.stage.flush();
    let n = 0;
    for (let from = 0; ; ) {
      const batch = this.writelog.readBatch(from, { maxBytes: BATCH_BYTES, maxCount: BATCH_COUNT });
      if (batch.count === 0) break;
      for (const r of batch) {
        await this.applyLocal(r.lunId, r.offset, r.flags, r.data);
        n++;
      }
      from = batch.lastSeq + 1;
    }
    for (const m of this.members) await m.device.flush();
    return n;
  }

  private applyLocal(index: number, offset: number, flags: number, data: Buffer): Promise<void> {
    const m = this.member(index);
    if (flags & APPLY_FLAG_ZERO) {
      const length = Number(data.readBigUInt64LE(0));
      return flags & APPLY_FLAG_TRIM && m.device.capabilities.trim ? m.device.trim(offset, length) : m.device.writeZeroes(offset, length);
    }
    return m.device.write(offset, data);
  }

  get backlog(): { entries: number; bytes: number } {
    const u = this.writelog.usage();
    return { entries: u.entries, bytes: u.dataBytes };
  }

  private overBound(low: boolean): boolean {
    const n = this.record.nearSync;
    const b = this.backlog;
    if (low) return (n.maxEntries > 0 && b.entries >= n.lowEntries) || (n.maxBytes > 0 && b.bytes >= n.lowBytes);
    return (n.maxEntries > 0 && b.entries >= n.maxEntries) || (n.maxBytes > 0 && b.bytes >= n.maxBytes);
  }

  /** Near-synchronous: wait while the backlog is at the bound, until it drains below the low mark. */
  private async admit(): Promise<void> {
    if (this.record.mode !== 'near-synchronous' || !this.overBound(false)) return;
    const t = performance.now();
    this.writesDelayed++;
    while (!this.closed && this.record.mode === 'near-synchronous' && this.overBound(true)) await new Promise<void>((r) => this.admissionWaiters.push(r));
    const ms = performance.now() - t;
    this.delayedMs += ms;
    this.emit('write-delayed', ms);
  }

  private wakeAdmission(): void {
    if (!this.admissionWaiters.length) return;
    if (this.record.mode === 'near-synchronous' && this.overBound(true) && !this.closed) return;
    for (const w of this.admissionWaiters.splice(0)) w();
  }

  /**
   * One host write (data) or zeroing (data null) of member `index`: journaled (with the other
   * writes of this turn, ./journal-stage.ts), then written locally. Throws GroupOverflow (nothing
   * written locally; records of the write that fit stay journaled) when the writelog is full.
   */
  async write(index: number, offset: number, length: number, data: Buffer | null, flags: number, local: () => Promise<void>, fua = false): Promise<void> {
    if (this.closed) throw new Error(`group ${this.record.name}: primary side closed`);
    // (the common case, not near-synchronous or below the bound, costs no await)
    if (this.record.mode === 'near-synchronous' && this.overBound(false)) await this.admit();
    if (this.ackDelayMs > 0) await new Promise((r) => setTimeout(r, this.ackDelayMs));
    this.emit('host-write', index, offset, length);
    // Records of at most RECORD_MAX bytes (a large host write becomes several consecutive ones),
    // so any record fits an extension and a link frame.
    const records: Array<{ lunId: number; offset: number; data: Uint8Array; flags: number }> = [];
    if (!data) {
      const payload = Buffer.alloc(8);
      payload.writeBigUInt64LE(BigInt(length));
      records.push({ lunId: index, offset, data: payload, flags: flags | APPLY_FLAG_ZERO });
    } else for (let o = 0; o < data.length; o += RECORD_MAX) records.push({ lunId: index, offset: offset + o, data: data.subarray(o, Math.min(data.length, o + RECORD_MAX)), flags });
    // Appended with the other host writes of this turn; the record is in the writelog file (and
    // counted in localPending) when this resolves, before the local write starts.
    const seq = await this.stage.add(records);
    try {
      if (fua) {
        const results = await Promise.allSettled([local(), this.flushJournal()]);
        const bad = results.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
        if (bad) throw bad.reason;
      } else await local();
    } finally {
      this.localPending.delete(seq);
      this.emit('stable');
    }
  }

  /**
   * A refresh record: data read from the local LUN (already stable), or a hole (data null).
   * Throws GroupOverflow when it does not fit.
   */
  appendCopy(index: number, offset: number, length: number, data: Buffer | null): number {
    let payload = data;
    let flags = 0;
    if (!payload) {
      payload = Buffer.alloc(8);
      payload.writeBigUInt64LE(BigInt(length));
      flags = APPLY_FLAG_ZERO | APPLY_FLAG_TRIM;
    }
    this.stage.flush();
    try {
      const seq = this.writelog.append(index, offset, payload, flags);
      this.emit('stable');
      return seq;
    } catch (e) {
      if (e instanceof WritelogOverflowError) throw new GroupOverflow(e.message);
      throw e;
    }
  }

  /** Makes every journaled record durable (the host's FLUSH, or a FUA write). */
  flushJournal(): Promise<void> {
    this.stage.flush();
    return this.sync ? this.writelog.sync() : Promise.resolve();
  }

  /** Every record up to this sequence has its local write completed. */
  get stableThrough(): number {
    let min = this.writelog.next;
    for (const s of this.localPending) if (s < min) min = s;
    return min - 1;
  }

  /** Called by a sender after an ack: releases what every sender has acknowledged. */
  onAck(): void {
    let min = Infinity;
    for (const s of this.senders.values()) min = Math.min(min, s.ackedThrough);
    if (Number.isFinite(min) && min >= 1 && min < this.writelog.next) {
      const u = this.writelog.usage();
      if (u.entries && min >= u.firstSeq) this.writelog.ack(min);
    }
    this.wakeAdmission();
    if (this.writelog.usage().entries === 0) this.emit('drained');
  }

  /** Resolves when every journaled record is acknowledged by every secondary. */
  drained(): Promise<void> {
    if (this.writelog.usage().entries === 0) return Promise.resolve();
    return new Promise((r) => {
      const on = () => {
        if (this.writelog.usage().entries === 0) {
          this.off('drained', on);
          r();
        }
      };
      this.on('drained', on);
    });
  }

  /** Drops every journaled record (bypass: the fracture logs took them over). */
  discard(): void {
    this.stage.flush();
    const u = this.writelog.usage();
    if (u.entries) this.writelog.ack(u.lastSeq);
    this.wakeAdmission();
  }

  /** Regions of the records not yet acknowledged, per member index. */
  pendingRanges(): Array<{ index: number; offset: number; length: number }> {
    this.stage.flush();
    const out: Array<{ index: number; offset: number; length: number }> = [];
    for (let from = 0; ; ) {
      const batch = this.writelog.readBatch(from, { maxBytes: 16 * BATCH_BYTES, maxCount: 16 * BATCH_COUNT });
      if (batch.count === 0) break;
      for (const r of batch) out.push({ index: r.lunId, offset: r.offset, length: r.flags & APPLY_FLAG_ZERO ? Number(r.data.readBigUInt64LE(0)) : r.data.length });
      from = batch.lastSeq + 1;
    }
    return out;
  }

  startSender(route: SenderRoute, localArray: string, reconnect: { initialMs: number; maxMs: number }): GroupSender {
    const s = new GroupSender(this, route, localArray, reconnect);
    this.senders.set(route.array, s);
    s.start();
    return s;
  }

  /** Measurements over the interval since `win` (updated): each consumer keeps its own window. */
  metrics(win: MetricsWindow = newWindow()): GroupMetrics {
    const now = performance.now();
    const dt = Math.max(1e-3, (now - win.at) / 1000);
    const cpu = cpuUsage(win.cpu);
    const u = this.writelog.usage();
    let acked = Infinity;
    for (const s of this.senders.values()) acked = Math.min(acked, s.ackedThrough);
    const m: GroupMetrics = {
      time: new Date().toISOString(),
      netkbps: (this.sentBytes - win.bytes) / 1024 / dt,
      dataKbps: (this.sentDataBytes - win.dataBytes) / 1024 / dt,
      entriesPerSec: (this.sentEntries - win.entries) / dt,
      entriesWaiting: u.entries,
      writelogBytes: u.dataBytes,
      pctwl: u.percent,
      pctcpu: ((cpu.user + cpu.system) / 1e6 / dt) * 100,
      oldestEntryAgeMs: u.oldestAgeMs,
      nextSeq: u.nextSeq,
      ackedThrough: Number.isFinite(acked) ? acked : u.nextSeq - 1,
      writesDelayed: this.writesDelayed - win.delayed,
      delayedMs: Math.round(this.delayedMs - win.delayedMs),
      senderSleepMs: this.senderSleepMs,
      ackDelayMs: this.ackDelayMs,
    };
    Object.assign(win, { at: now, bytes: this.sentBytes, dataBytes: this.sentDataBytes, entries: this.sentEntries, cpu: cpuUsage(), delayed: this.writesDelayed, delayedMs: this.delayedMs });
    return m;
  }

  async close(opts: { abandon?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.stage.flush();
    this.closed = true;
    for (const w of this.admissionWaiters.splice(0)) w();
    for (const s of this.senders.values()) s.stop();
    if (opts.abandon) this.writelog.abandon();
    else await this.writelog.close();
  }
}
