/** The senders of a group's primary side: one per secondary array (see GroupSender). */
import type { Writelog } from '../../native/index.js';
import { APPLY_FLAG_ZERO, nextRecord, recordDataBytes, recordFlags, RemoteLinkClient, RemoteLinkError } from '../../link/protocol/index.js';
import type { GroupRecord } from './types.js';

export interface SenderRoute {
  array: string;
  host: string;
  port: number;
  secret: string;
}

/** A batch read from the writelog: at most this many bytes and records. */
export const BATCH_BYTES = 1024 * 1024;
export const BATCH_COUNT = 512;
/** A throttled sender (a sleep between transmissions) sends transmissions of this size. */
const THROTTLED_BATCH_BYTES = 16 * 1024;
/** below this many waiting records, a sender with a transmission in flight waits for its ack */
const COALESCE_RECORDS = 64;
/** transmissions in flight */
const WINDOW = 4;
/** A transmission not acknowledged within this long drops the connection (the sender resumes from the receiver's next expected record). */
const APPLY_TIMEOUT_MS = 30_000;

/** What a sender uses of its group's primary side (PrimaryGroup): the journal, the stable watermark, the counters. */
export interface SenderGroup {
  readonly record: GroupRecord;
  readonly writelog: Writelog;
  readonly closed: boolean;
  /** every record up to this sequence has its local write completed */
  readonly stableThrough: number;
  readonly senderSleepMs: number;
  sentBytes: number;
  sentDataBytes: number;
  sentEntries: number;
  /** transmissions (apply requests) sent */
  sentBatches: number;
  /** called after an ack: releases what every sender has acknowledged */
  onAck(): void;
  on(event: 'stable', listener: () => void): unknown;
  /** 'sender-state' (sender), 'sender-error' (sender, error), 'gap' (sender, expected, oldest) */
  emit(event: 'sender-state' | 'sender-error' | 'gap', ...args: unknown[]): boolean;
}

/**
 * One sender (primary mirror daemon) of a group towards one secondary array: connects over the
 * authenticated remote link, says hello (member mapping; the receiver answers the next sequence
 * it expects), then streams batches of stable records in order, up to WINDOW batches in flight,
 * each acknowledged once (no per-record round trips). A lost connection is retried with backoff
 * and resumes from the receiver's next expected sequence: no gap, no duplicate.
 */
export class GroupSender {
  client: RemoteLinkClient | null = null;
  state: 'connecting' | 'running' | 'paused' | 'down' | 'refused' | 'stopped' = 'connecting';
  lastError: string | undefined;
  /** the receiver has applied every record up to this sequence */
  ackedThrough = 0;
  private nextToSend = 1;
  private inflight = 0;
  private session = 0;
  /** the journal was replaced (bypass, promote): the next hello sets the receiver's sequence */
  baseOnHello: number | undefined;

  constructor(
    private readonly group: SenderGroup,
    readonly route: SenderRoute,
    private readonly localArray: string,
    private readonly reconnect: { initialMs: number; maxMs: number },
  ) {
    group.on('stable', () => this.poke());
  }

  start(): void {
    const g = this.group;
    const c = new RemoteLinkClient({
      array: this.localArray,
      peer: this.route.array,
      secret: this.route.secret,
      host: this.route.host,
      port: this.route.port,
      mirrors: [],
      reconnect: this.reconnect,
    });
    this.client = c;
    c.on('connected', () => void this.hello(c));
    c.on('disconnected', (e: RemoteLinkError | null) => {
      this.session++;
      this.inflight = 0;
      if (this.state !== 'stopped') this.state = 'down';
      this.lastError = e?.message;
      g.emit('sender-state', this);
    });
    c.on('refused', (e: RemoteLinkError) => {
      this.state = 'refused';
      this.lastError = `${e.code}: ${e.message}`;
      g.emit('sender-state', this);
    });
    c.start();
  }

  private async hello(c: RemoteLinkClient): Promise<void> {
    const g = this.group;
    const session = ++this.session;
    try {
      // The receiver learns (or updates) the group first: a secondary array that joins has none yet.
      await c.request('group-db', { groupId: g.record.groupId, record: g.record as unknown as Record<string, unknown> });
      if (session !== this.session) return;
      const base = this.baseOnHello;
      const { result } = await c.request('group-hello', { groupId: g.record.groupId, members: g.record.members, ...(base !== undefined ? { base } : {}) });
      if (session !== this.session) return;
      if (base !== undefined && result.nextExpected === base) this.baseOnHello = undefined;
      const u = g.writelog.usage();
      const oldest = u.entries ? u.firstSeq : g.writelog.next;
      if (result.nextExpected < oldest) {
        // The receiver needs records the journal no longer has: only a resync can bring it back.
        this.state = 'down';
        this.lastError = `the receiver expects record ${result.nextExpected}, the writelog starts at ${oldest}`;
        g.emit('gap', this, result.nextExpected, oldest);
        return;
      }
      this.ackedThrough = Math.min(result.nextExpected - 1, g.writelog.next - 1);
      this.nextToSend = result.nextExpected;
      this.state = g.record.paused ? 'paused' : 'running';
      this.lastError = undefined;
      g.emit('sender-state', this);
      g.onAck();
      this.poke();
    } catch (e) {
      this.lastError = (e as Error).message;
      g.emit('sender-error', this, e);
      c.dropConnection();
    }
  }

  setPaused(paused: boolean): void {
    if (this.state === 'running' && paused) this.state = 'paused';
    else if (this.state === 'paused' && !paused) this.state = 'running';
    this.poke();
  }

  poke(): void {
    void this.pump();
  }

  private pumping = false;

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state === 'running' && this.inflight < WINDOW && !this.group.closed) {
        const c = this.client;
        if (!c?.connected) return;
        const stable = this.group.stableThrough;
        if (this.nextToSend > stable) return;
        // A throttled sender (sleep between transmissions) sends smaller transmissions, so the
        // sleep controls the rate the way the source's throttles expect.
        const maxBytes = this.group.senderSleepMs > 0 ? THROTTLED_BATCH_BYTES : BATCH_BYTES;
        // While a transmission is on the wire, wait for its ack rather than send a tiny one:
        // every transmission costs a flush and a sequence write on the receiver.
        if (this.inflight > 0 && stable - this.nextToSend + 1 < COALESCE_RECORDS) return;
        // Only stable records; the batch goes out as the writelog holds it (./apply-batch.ts).
        const batch = this.group.writelog.readBatch(this.nextToSend, { maxBytes, maxCount: Math.min(BATCH_COUNT, stable - this.nextToSend + 1) });
        if (batch.count === 0) return;
        if (batch.firstSeq !== this.nextToSend) {
          // The records before it left the journal (bypass dropped them): the next hello decides.
          this.lastError = `the writelog starts at record ${batch.firstSeq}, ${this.nextToSend} is next to send`;
          this.group.emit('sender-error', this, new Error(this.lastError));
          c.dropConnection();
          return;
        }
        const bin = batch.buffer;
        if (batch.lastSeq > stable) throw new Error(`group ${this.group.record.name}: read records ${batch.firstSeq}..${batch.lastSeq}, only ${stable} is stable`);
        this.nextToSend = batch.lastSeq + 1;
        let bytes = 0;
        for (let o = 0; o < bin.length; o = nextRecord(bin, o)) if ((recordFlags(bin, o) & APPLY_FLAG_ZERO) === 0) bytes += recordDataBytes(bin, o);
        const count = batch.count;
        const session = this.session;
        this.inflight++;
        this.group.sentBytes += bin.length + 64;
        this.group.sentDataBytes += bytes;
        this.group.sentEntries += count;
        this.group.sentBatches++;
        c.request('apply', { groupId: this.group.record.groupId, count }, bin, { timeoutMs: APPLY_TIMEOUT_MS }).then(
          ({ result }) => {
            if (session !== this.session) return;
            this.inflight--;
            if (result.appliedThrough > this.ackedThrough) this.ackedThrough = result.appliedThrough;
            this.group.onAck();
            this.poke();
          },
          (e: RemoteLinkError) => {
            if (session !== this.session) return;
            this.inflight--;
            this.lastError = `${e.code}: ${e.message}`;
            this.group.emit('sender-error', this, e);
            // resume from the receiver's next expected record
            c.dropConnection();
          },
        );
        if (this.group.senderSleepMs > 0) await new Promise((r) => setTimeout(r, this.group.senderSleepMs));
      }
    } finally {
      this.pumping = false;
    }
  }

  stop(): void {
    this.state = 'stopped';
    this.session++;
    this.client?.close();
    this.client = null;
  }
}
