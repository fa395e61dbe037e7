/**
 * The prefix check of a consistency group's copy (the secondary after a promote, or the receiver's
 * images): every non-zero block is a complete write of this run at its own place, and whenever a
 * write is present, every write acknowledged before it was issued is present too. So the copy is
 * the state of the group at one point of the acknowledged order (plus, perhaps, writes that were
 * still unacknowledged then): a prefix. Also measured: how many acknowledged writes are missing,
 * and the lag (the RPO): from the recovery point (the newest acknowledgement up to which every
 * acknowledged write is present) to the last acknowledgement of the run.
 */
import { ignoreOnClose } from '../../errors/index.js';
import { NbdClient } from '../nbd-client/index.js';
import { prefixBlock } from './workload.js';
import { PREFIX_BLOCK, type PrefixState } from './state.js';

export type PrefixViolationKind = 'foreign' | 'misplaced' | 'torn' | 'order';
export interface PrefixViolation {
  kind: PrefixViolationKind;
  lun: number;
  block: number;
  /** the write found there, when it could be told */
  write: number | null;
  /** order: the acknowledged write that is missing although `write` depended on it */
  missing?: number;
  detail: string;
}

export interface PrefixReport {
  ok: boolean;
  run: number;
  luns: string[];
  blocksChecked: number;
  issued: number;
  acked: number;
  present: number;
  /** acknowledged writes not in the copy (the data lost by a failover to it) */
  missingAcked: number;
  /** present writes that were never acknowledged (in flight at the fault: allowed) */
  presentUnacked: number;
  /** the first `prefixLength` writes of the acknowledgement order are all present */
  prefixLength: number;
  /** epoch ms of the recovery point (the acknowledgement of write ackOrder[prefixLength-1], or the start) */
  recoveryPointAt: string | null;
  lastAckedAt: string | null;
  /** lastAckedAt - recoveryPointAt in seconds (0 when nothing acknowledged is missing): the RPO */
  lagSeconds: number;
  violations: number;
  violationsByKind: Partial<Record<PrefixViolationKind, number>>;
  details: PrefixViolation[];
}

/** Feed it every block of every LUN (`block`), then `finish()` for the report. */
export class PrefixChecker {
  private readonly present = new Set<number>();
  private readonly violations: PrefixViolation[] = [];
  private checked = 0;

  constructor(
    private readonly state: PrefixState,
    private readonly maxDetails = 50,
  ) {}

  private name(lun: number): string {
    return this.state.luns[lun]?.name ?? `lun ${lun}`;
  }

  /** Checks one block read back from LUN `lun`. */
  block(lun: number, b: number, blk: Buffer): void {
    this.checked++;
    if (isZero(blk)) return;
    const s = this.state;
    const k = blk.readUInt32LE(8);
    const at = `block ${b} of ${this.name(lun)}`;
    if (blk.toString('latin1', 0, 4) !== 'PFX1' || blk.readUInt32LE(4) !== s.run) {
      this.violations.push({ kind: 'foreign', lun, block: b, write: null, detail: `${at} is not a write of run ${s.run}` });
      return;
    }
    const w = s.writes[k];
    if (!w || w.lun !== lun || w.block !== b) {
      const where = w ? `written to ${this.name(w.lun)} block ${w.block}` : 'never issued';
      this.violations.push({ kind: 'misplaced', lun, block: b, write: k, detail: `write ${k} found at ${at}, ${where}` });
      return;
    }
    if (!blk.equals(prefixBlock(s.run, k, lun))) {
      this.violations.push({ kind: 'torn', lun, block: b, write: k, detail: `${at} holds a torn write ${k}` });
      return;
    }
    this.present.add(k);
  }

  /** The writes found complete at their place so far. */
  presentWrites(): Set<number> {
    return new Set(this.present);
  }

  finish(): PrefixReport {
    const s = this.state;
    let prefixLength = 0;
    while (prefixLength < s.ackOrder.length && this.present.has(s.ackOrder[prefixLength]!)) prefixLength++;
    // A present write that depended on more acknowledged writes than the prefix holds is out of order.
    const order: PrefixViolation[] = [];
    for (const k of [...this.present].sort((a, b) => a - b)) {
      const w = s.writes[k]!;
      if (w.dependsOn <= prefixLength) continue;
      // ackOrder[prefixLength] is the first acknowledged write missing, and k depended on it.
      const dep = s.ackOrder[prefixLength]!;
      order.push({
        kind: 'order',
        lun: w.lun,
        block: w.block,
        write: k,
        missing: dep,
        detail: `write ${k} (${this.name(w.lun)}) is present, but write ${dep} (${this.name(s.writes[dep]!.lun)}), acknowledged before ${k} was issued, is not: not a prefix`,
      });
    }
    const all = [...this.violations, ...order];
    const byKind: Partial<Record<PrefixViolationKind, number>> = {};
    for (const v of all) byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
    let presentUnacked = 0;
    for (const k of this.present) if (s.writes[k]!.ackedAt === null) presentUnacked++;
    const presentAcked = this.present.size - presentUnacked;
    const lastAcked = s.ackOrder.length ? s.writes[s.ackOrder[s.ackOrder.length - 1]!]!.ackedAt! : null;
    const missingAcked = s.ackOrder.length - presentAcked;
    const recoveryPoint = prefixLength > 0 ? s.writes[s.ackOrder[prefixLength - 1]!]!.ackedAt! : s.startedAt;
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      ok: all.length === 0,
      run: s.run,
      luns: s.luns.map((l) => l.uri),
      blocksChecked: this.checked,
      issued: s.writes.length,
      acked: s.ackOrder.length,
      present: this.present.size,
      missingAcked,
      presentUnacked,
      prefixLength,
      recoveryPointAt: iso(lastAcked === null ? null : recoveryPoint),
      lastAckedAt: iso(lastAcked),
      lagSeconds: missingAcked === 0 || lastAcked === null ? 0 : Math.max(0, lastAcked - recoveryPoint) / 1000,
      violations: all.length,
      violationsByKind: byKind,
      details: all.slice(0, this.maxDetails),
    };
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

/** The check over images in memory (one Buffer per LUN, each at least blocks * 4096 bytes). */
export function checkPrefixImages(state: PrefixState, images: Buffer[], maxDetails?: number): PrefixReport {
  if (images.length !== state.luns.length) throw new Error(`${images.length} images for ${state.luns.length} LUNs`);
  const c = new PrefixChecker(state, maxDetails);
  images.forEach((img, lun) => {
    for (let b = 0; b < state.blocks; b++) c.block(lun, b, img.subarray(b * PREFIX_BLOCK, (b + 1) * PREFIX_BLOCK));
  });
  return c.finish();
}

const CHUNK_BYTES = 1 << 20;

/**
 * The check through NBD: reads the first `blocks` blocks of every LUN (`uris`, in the state's LUN
 * order; default the state's own URIs) in 1 MiB reads. A connection that cannot be made rejects
 * with ConnectionLost; a read error with NbdReplyError.
 */
export async function verifyPrefix(state: PrefixState, opts: { uris?: string[]; connectTimeoutMs?: number; maxDetails?: number } = {}): Promise<PrefixReport> {
  const uris = opts.uris ?? state.luns.map((l) => l.uri);
  if (uris.length !== state.luns.length) throw new Error(`${uris.length} URIs for the ${state.luns.length} LUNs of the state file`);
  const clients: NbdClient[] = [];
  try {
    for (const u of uris) clients.push(await NbdClient.connect(u, { timeoutMs: opts.connectTimeoutMs ?? 5000 }));
    const c = new PrefixChecker(state, opts.maxDetails);
    const region = state.blocks * PREFIX_BLOCK;
    for (let lun = 0; lun < clients.length; lun++) {
      const client = clients[lun]!;
      if (client.size < region) throw new Error(`${uris[lun]} is ${client.size} bytes, smaller than the ${region} bytes the workload wrote`);
      for (let off = 0; off < region; off += CHUNK_BYTES) {
        const buf = await client.read(off, Math.min(CHUNK_BYTES, region - off));
        for (let o = 0; o < buf.length; o += PREFIX_BLOCK) c.block(lun, (off + o) / PREFIX_BLOCK, buf.subarray(o, o + PREFIX_BLOCK));
      }
    }
    const r = c.finish();
    return { ...r, luns: uris };
  } finally {
    for (const c of clients) await ignoreOnClose(c.close(1000), 'closing a prefix verify connection');
  }
}

/** The verdict and the first ten violations, for logs and the text output. */
export function formatPrefixReport(r: PrefixReport, maxLines = 10): string {
  const lines = [
    `prefix verify run ${r.run}: ${r.ok ? 'OK' : 'FAILED'} - ${r.luns.length} LUNs, ${r.blocksChecked} blocks checked; ${r.issued} writes issued, ${r.acked} acknowledged, ${r.present} present (${r.presentUnacked} unacknowledged); ${r.missingAcked} acknowledged writes missing, lag ${r.lagSeconds.toFixed(3)} s (RPO); ${r.violations} violations${r.violations ? ` ${JSON.stringify(r.violationsByKind)}` : ''}`,
  ];
  for (const d of r.details.slice(0, maxLines)) lines.push(`  ${d.kind}: ${d.detail}`);
  if (r.details.length > maxLines) lines.push(`  ... ${r.violations - maxLines} more (--json lists up to ${r.details.length})`);
  return lines.join('\n');
}
