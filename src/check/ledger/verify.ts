/**
 * The ledger's verifier: reads every block back through NBD (any endpoint, reconnecting on loss)
 * and checks each holds its latest acknowledged value, or a newer one whose write was in flight
 * or failed; never an older one, never a mix, never garbage. `verifyImageFile` runs the same
 * check over an image file directly (offline: after a crash, or of a restored vault).
 */
import * as fs from 'node:fs';
import { ignoreOnClose } from '../../errors/index.js';
import { ConnectionLost, NbdClient, NbdReplyError } from '../nbd-client/index.js';
import { checkBlock, type Ledger, type Violation, type ViolationKind } from './ledger.js';
import type { WriteReport } from './writer.js';

export interface VerifyOptions {
  endpoints: string[];
  depth?: number;
  reconnectTimeoutMs?: number;
  connectTimeoutMs?: number;
  all?: boolean;
  allowReadErrors?: boolean;
  /**
   * The writer was killed (its host died): its state file, saved every second, misses the writes it
   * issued after the last save. A version newer than everything the ledger knows is not a phantom
   * then; lost, stale, torn and older phantoms still are.
   */
  writerKilled?: boolean;
  maxDetails?: number;
}
export interface Unreadable {
  block: number;
  offset: number;
  errno: string;
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
  unreadableDetails: Unreadable[];
}

/** No endpoint answered within the reconnect timeout (the verify could not even start or go on). */
export class VerifyUnreachable extends ConnectionLost {
  constructor(message: string) {
    super(message);
    this.name = 'VerifyUnreachable';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const blocksOf = (ledger: Ledger, all: boolean): number[] =>
  all ? Array.from({ length: ledger.blocks }, (_, i) => i) : [...ledger.entries.keys()].sort((a, b) => a - b);

/**
 * Reads every block the ledger knows (or every block of the region, `all: true`) through NBD and
 * checks it. Tries the endpoints in order, and on a lost connection reconnects (next endpoint)
 * within `reconnectTimeoutMs` and re-reads what was outstanding. Read errors are collected in
 * `unreadable` (with the errno); they count against `ok` unless `allowReadErrors`.
 */
export async function verifyLedger(ledger: Ledger, opts: VerifyOptions): Promise<VerifyReport> {
  const o = { depth: 16, reconnectTimeoutMs: 15_000, connectTimeoutMs: 3000, all: false, allowReadErrors: false, maxDetails: 50, ...opts };
  const blocks = blocksOf(ledger, o.all);
  const savedThrough = o.writerKilled ? { savedThrough: ledger.highestSeq() } : {};
  const violations: Violation[] = [];
  const unreadable: Unreadable[] = [];
  const byKind: Partial<Record<ViolationKind, number>> = {};
  let endpointIndex = 0;
  let client: NbdClient | null = null;
  let used: string | null = null;
  const reconnects: string[] = [];
  let connecting: Promise<NbdClient> | null = null;
  const connectAny = async (): Promise<NbdClient> => {
    const give = Date.now() + o.reconnectTimeoutMs;
    let lastErr: Error | undefined;
    for (let tries = 0; Date.now() < give; tries++) {
      const uri = o.endpoints[endpointIndex % o.endpoints.length]!;
      try {
        client = await NbdClient.connect(uri, { timeoutMs: o.connectTimeoutMs });
        if (used) reconnects.push(uri);
        used = uri;
        return client;
      } catch (e) {
        lastErr = e as Error;
        endpointIndex++;
        await sleep(Math.min(50 * (tries + 1), 250));
      }
    }
    throw new VerifyUnreachable(`verify: no endpoint reachable within ${o.reconnectTimeoutMs} ms: ${lastErr?.message}`);
  };
  const getClient = (): Promise<NbdClient> => {
    if (client && !client.closed) return Promise.resolve(client);
    connecting ??= connectAny().finally(() => {
      connecting = null;
    });
    return connecting;
  };
  let next = 0;
  const lane = async () => {
    while (next < blocks.length) {
      const b = blocks[next++]!;
      for (let attempt = 0; ; attempt++) {
        const c = await getClient();
        try {
          const buf = await c.read(ledger.offsetOf(b), ledger.blockSize);
          const viol = checkBlock(ledger, b, buf, savedThrough);
          if (viol) {
            byKind[viol.kind] = (byKind[viol.kind] ?? 0) + 1;
            violations.push(viol);
          }
          break;
        } catch (e) {
          if (e instanceof NbdReplyError) {
            unreadable.push({ block: b, offset: ledger.offsetOf(b), errno: e.errno });
            break;
          }
          if (attempt >= 5) throw e;
          endpointIndex++;
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.depth }, lane));
  } finally {
    const c = client as NbdClient | null;
    if (c) await ignoreOnClose(c.close(1000), 'closing the verify connection');
  }
  const unreadableByErrno: Record<string, number> = {};
  for (const u of unreadable) unreadableByErrno[u.errno] = (unreadableByErrno[u.errno] ?? 0) + 1;
  return summarize(ledger, { blocksChecked: blocks.length, violations, byKind, unreadable, unreadableByErrno, endpoint: used, reconnects, allowReadErrors: o.allowReadErrors, maxDetails: o.maxDetails });
}

/** The same check over an image file (offline: after a crash, or of a restored vault). */
export function verifyImageFile(ledger: Ledger, path: string, opts: { all?: boolean; maxDetails?: number } = {}): VerifyReport {
  const fd = fs.openSync(path, 'r');
  const violations: Violation[] = [];
  const byKind: Partial<Record<ViolationKind, number>> = {};
  const blocks = blocksOf(ledger, opts.all ?? false);
  try {
    const buf = Buffer.alloc(ledger.blockSize);
    for (const b of blocks) {
      buf.fill(0);
      fs.readSync(fd, buf, 0, ledger.blockSize, ledger.offsetOf(b));
      const v = checkBlock(ledger, b, buf);
      if (v) {
        byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
        violations.push(v);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return summarize(ledger, { blocksChecked: blocks.length, violations, byKind, unreadable: [], unreadableByErrno: {}, endpoint: path, reconnects: [], allowReadErrors: false, maxDetails: opts.maxDetails ?? 50 });
}

function summarize(
  ledger: Ledger,
  r: {
    blocksChecked: number;
    violations: Violation[];
    byKind: Partial<Record<ViolationKind, number>>;
    unreadable: Unreadable[];
    unreadableByErrno: Record<string, number>;
    endpoint: string | null;
    reconnects: string[];
    allowReadErrors: boolean;
    maxDetails: number;
  },
): VerifyReport {
  let ackedBlocks = 0;
  let uncertainBlocks = 0;
  for (const e of ledger.entries.values()) {
    if (e.acked) ackedBlocks++;
    if (e.uncertain.length) uncertainBlocks++;
  }
  const ok = r.violations.length === 0 && (r.allowReadErrors || r.unreadable.length === 0);
  const byBlock = (a: { block: number }, b: { block: number }) => a.block - b.block;
  return {
    ok,
    runId: ledger.runId,
    blocksChecked: r.blocksChecked,
    ackedBlocks,
    uncertainBlocks,
    violations: r.violations.length,
    violationsByKind: r.byKind,
    unreadable: r.unreadable.length,
    unreadableByErrno: r.unreadableByErrno,
    endpoint: r.endpoint,
    reconnects: r.reconnects,
    details: r.violations.sort(byBlock).slice(0, r.maxDetails),
    unreadableDetails: r.unreadable.sort(byBlock).slice(0, r.maxDetails),
  };
}

/** One line per report, for logs. */
export function formatWriteReport(w: WriteReport): string {
  const errs = Object.entries(w.failedByErrno)
    .map(([k, v]) => `${k}:${v}`)
    .join(',');
  return `ledger run ${w.runId}: issued ${w.issued}, acked ${w.acked}, failed ${w.failed}${errs ? ` (${errs})` : ''}, in flight at fault ${w.inflightAtFault}, pending at end ${w.pendingAtEnd}, frozen blocks ${w.frozenBlocks}, reconnects ${w.reconnects}, faults ${w.faults.length}, ${w.elapsedMs} ms, ack p50 ${w.latencyMs.p50?.toFixed(2)} ms p99 ${w.latencyMs.p99?.toFixed(2)} ms`;
}

/** The verdict line and the first ten violations (the JSON report holds up to maxDetails). */
export function formatVerifyReport(v: VerifyReport, maxLines = 10): string {
  const lines = [
    `ledger verify run ${v.runId}: ${v.ok ? 'OK' : 'FAILED'} - ${v.blocksChecked} blocks checked (${v.ackedBlocks} with an ack, ${v.uncertainBlocks} with uncertain writes), ${v.violations} violations${v.violations ? ` ${JSON.stringify(v.violationsByKind)}` : ''}, ${v.unreadable} unreadable${v.unreadable ? ` ${JSON.stringify(v.unreadableByErrno)}` : ''} via ${v.endpoint}`,
  ];
  for (const d of v.details.slice(0, maxLines)) lines.push(`  block ${d.block} @${d.offset}: ${d.kind}: ${d.detail} (expected acked ${d.expected.acked}, uncertain [${d.expected.uncertain.join(' ')}])`);
  if (v.details.length > maxLines) lines.push(`  ... ${v.violations - maxLines} more (--json lists up to ${v.details.length})`);
  return lines.join('\n');
}
