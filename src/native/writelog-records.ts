/**
 * The writelog's public vocabulary: options, the record shapes callers pass in and get back,
 * usage and recovery reports, the errors, and RecordBatch (a read batch parsed lazily). Separate
 * from ./writelog.ts so the journal class, its on-disk format and its segment chain can all name
 * these without importing each other.
 */
import { REC_HEADER, readU32, readU64 } from './ring.js';

export type Durability = 'none' | 'group' | 'fdatasync';

export interface WritelogOptions {
  /** Directory of the writelog files; omitted = in-memory journal. */
  dir?: string;
  /** File name stem (default 'writelog'). */
  name?: string;
  /** Data capacity of the main segment in bytes (multiple of 8, >= 4096). Used when creating. */
  capacity: number;
  /** Data capacity of each extension (default: capacity). */
  extensionCapacity?: number;
  /** Size of the extension pool (0..128, default 0). */
  maxExtensions?: number;
  /** Chain in an extension when usage reaches this percent (default 90). */
  extendAtPercent?: number;
  /** Return to the main segment when usage falls below this percent (default 50). */
  releaseBelowPercent?: number;
  durability?: Durability;
  /** Group commit interval (default 2 ms). */
  groupCommitMs?: number;
  /** Metadata hint every m appends (default 1024) ... */
  metaEveryAppends?: number;
  /** ... or t milliseconds (default 1000). */
  metaEveryMs?: number;
  /** Verify CRCs on read (default: true for files, false in memory). */
  verifyReads?: boolean;
  /** 'native' | 'ts'; default: native when the addon is loaded. */
  impl?: 'native' | 'ts';
  /** Clock for record timestamps (ms); default Date.now. */
  now?: () => number;
}

export interface AppendRecord {
  lunId: number;
  offset: number;
  data: Uint8Array;
  /** FLAG_ACK_REQUESTED etc. (15 bits). */
  flags?: number;
  /** Defaults to the journal clock. */
  timestamp?: number;
}

export interface JournalRecord {
  seq: number;
  localSeq: number;
  timestamp: number;
  lunId: number;
  offset: number;
  flags: number;
  data: Buffer;
}

export interface WritelogUsage {
  entries: number;
  /** Payload bytes of unacknowledged records. */
  dataBytes: number;
  /** Journal bytes they occupy (headers, padding, acked-but-not-yet-reclaimed space). */
  usedBytes: number;
  /** Capacity of the segments in the chain. */
  capacity: number;
  percent: number;
  /** Age of the oldest unacknowledged record in ms (0 when empty). */
  oldestAgeMs: number;
  firstSeq: number;
  lastSeq: number;
  nextSeq: number;
  extensionsInUse: number;
  extensionsFree: number;
}

export interface RecoveryReport {
  /** Records found (unacknowledged as far as the metadata knows). */
  records: number;
  firstSeq: number;
  lastSeq: number;
  /** A torn or corrupt record ended a segment's scan. */
  torn: boolean;
  /** Records that the metadata hint says existed were lost (corruption, not just a torn tail). */
  damaged: boolean;
  /** Records dropped because an earlier sequence number was missing. */
  droppedAfterGap: number;
  metadataGeneration: number;
}

export class WritelogOverflowError extends Error {
  readonly code = 'ESANBOX_WL_OVERFLOW';
}
export class WritelogCorruptError extends Error {
  readonly code = 'ESANBOX_CORRUPT';
}

/** A batch of records as read from the journal: one buffer, records parsed lazily. */
export class RecordBatch implements Iterable<JournalRecord> {
  /** Byte offsets of the records in `buffer`. */
  readonly offsets: number[];
  constructor(readonly buffer: Buffer, offsets: number[]) {
    this.offsets = offsets;
  }
  get count(): number {
    return this.offsets.length;
  }
  get bytes(): number {
    return this.buffer.length;
  }
  get firstSeq(): number {
    return this.count ? readU64(this.buffer, this.offsets[0]! + 8) : -1;
  }
  get lastSeq(): number {
    return this.count ? readU64(this.buffer, this.offsets[this.count - 1]! + 8) : -1;
  }
  record(i: number): JournalRecord {
    const b = this.buffer, o = this.offsets[i]!;
    if (o === undefined) throw new RangeError('record index out of range');
    const len = readU32(b, o + 36);
    return {
      seq: readU64(b, o + 8),
      localSeq: readU64(b, o + 16),
      timestamp: readU64(b, o + 24),
      lunId: readU32(b, o + 32),
      offset: readU64(b, o + 40),
      flags: b[o + 6]! | (b[o + 7]! << 8),
      data: b.subarray(o + REC_HEADER, o + REC_HEADER + len),
    };
  }
  *[Symbol.iterator](): Iterator<JournalRecord> {
    for (let i = 0; i < this.count; i++) yield this.record(i);
  }
}
