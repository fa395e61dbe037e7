// Types of ./ledger.mjs (plain JavaScript so its CLI runs under node without a build step).
import type { EventEmitter } from 'node:events';
export { NbdClient, ConnectionLost, NbdReplyError } from './nbd-client.mjs';
export const SECTOR: 512;

export function rng(seed: number): () => number;
export function encodeBlock(runId: number, writer: number, block: number, seq: number, blockSize: number): Buffer;

export interface BlockVersion {
  run: number;
  writer: number;
  block: number;
  seq: number;
}
export type Decoded =
  | { kind: 'zero' }
  | ({ kind: 'stamp' } & BlockVersion)
  | { kind: 'mixed'; versions: (BlockVersion & { sectors: string })[]; detail: string }
  | { kind: 'garbage'; detail: string; versions?: (BlockVersion & { sectors: string })[] };
export function decodeBlock(buf: Buffer): Decoded;

export type UncertainState = 'pending' | 'inflight' | 'failed';
export interface LedgerEntry {
  acked: { seq: number; writer: number } | null;
  uncertain: { seq: number; writer: number; state: UncertainState }[];
  writes: number;
  frozen: boolean;
}
export class Ledger {
  constructor(o: { runId: number; blockSize?: number; baseOffset?: number; blocks: number; initial?: 'zero' | 'any' });
  readonly runId: number;
  readonly blockSize: number;
  readonly baseOffset: number;
  readonly blocks: number;
  readonly initial: 'zero' | 'any';
  readonly entries: Map<number, LedgerEntry>;
  offsetOf(block: number): number;
  issued(block: number, seq: number, writer: number): void;
  settle(block: number, seq: number, state: 'acked' | 'inflight' | 'failed'): void;
  toJSON(): unknown;
  static fromJSON(j: any): Ledger;
  save(path: string): void;
  static load(path: string): Ledger;
}

export type ViolationKind = 'lost' | 'stale' | 'mixed' | 'garbage' | 'misplaced' | 'foreign' | 'phantom';
export interface Violation {
  block: number;
  offset: number;
  kind: ViolationKind;
  expected: { acked: number | null; uncertain: string[] };
  found: string;
  detail: string;
}
export function checkBlock(ledger: Ledger, block: number, buf: Buffer): Violation | null;

export interface WriterOptions {
  endpoints: string[];
  connections?: number;
  depth?: number;
  blocks?: number;
  blockSize?: number;
  baseOffset?: number;
  seed?: number;
  runId?: number;
  maxWrites?: number;
  durationMs?: number;
  prefill?: boolean;
  fuaRatio?: number;
  reconnectTimeoutMs?: number;
  connectTimeoutMs?: number;
  opTimeoutMs?: number;
  initial?: 'zero' | 'any';
}
export interface WriterStats {
  issued: number;
  acked: number;
  failed: number;
  inflightAtFault: number;
  pendingAtEnd: number;
  reconnects: number;
  gaveUp: number;
  failedByErrno: Record<string, number>;
  frozenBlocks: number;
  notSent?: number;
}
export interface FaultRecord {
  time: string;
  uri: string;
  reason: string;
  inflight: number;
}
export interface WriteReport extends WriterStats {
  runId: number;
  seed: number;
  endpoints: string[];
  connections: number;
  depth: number;
  blocks: number;
  blockSize: number;
  elapsedMs: number;
  faults: FaultRecord[];
  latencyMs: { p50: number | null; p99: number | null; max: number | null };
}
export class LedgerWriter extends EventEmitter {
  constructor(o: WriterOptions);
  readonly runId: number;
  readonly ledger: Ledger;
  readonly stats: WriterStats;
  readonly faults: FaultRecord[];
  run(): Promise<WriteReport>;
  stop(): void;
  until(pred: (s: WriterStats) => boolean, timeoutMs?: number): Promise<void>;
}

export interface VerifyOptions {
  endpoints: string[];
  depth?: number;
  reconnectTimeoutMs?: number;
  connectTimeoutMs?: number;
  all?: boolean;
  allowReadErrors?: boolean;
  maxDetails?: number;
}
export interface VerifyReport {
  ok: boolean;
  runId: number;
  blocksChecked: number;
  ackedBlocks: number;
  uncertainBlocks: number;
  violations: number;
  violationsByKind: Partial<Record<ViolationKind, number>>;
  unreadable: number;
  unreadableByErrno: Record<string, number>;
  endpoint: string | null;
  reconnects: string[];
  details: Violation[];
  unreadableDetails: { block: number; offset: number; errno: string }[];
}
export function verifyLedger(ledger: Ledger, o: VerifyOptions): Promise<VerifyReport>;
export function verifyImageFile(ledger: Ledger, path: string, o?: { all?: boolean; maxDetails?: number }): VerifyReport;
export function formatWriteReport(w: WriteReport): string;
export function formatVerifyReport(v: VerifyReport): string;
