/**
 * The checks at the end of a run, each a pass, a fail or (where this machine cannot run it, e.g.
 * no FUSE for the file-system check) a skip that says why. The data checkers are the product's
 * own (src/check), reading the LUNs through NBD as a host would.
 */
import { checkFileSystem, FsCheckUnavailable, ledger, NbdClient, prefix } from '../../check/index.js';
import type { CheckSpec } from '../spec/types.js';
import type { CheckRecord, EventRecord, StepRecord, WorkloadRecord } from '../report/types.js';
import type { LabApis } from './apis.js';
import { primaryOfMirror } from './actions.js';
import { evaluate, type ConditionContext } from './conditions.js';

export interface CheckContext extends ConditionContext {
  steps: StepRecord[];
  /** every event seen during the run so far */
  events(): readonly EventRecord[];
  workload(name: string): { record: WorkloadRecord; stateFile: string | null; array: string; luns: string[]; sps: string[] | null };
}

export type Outcome = Omit<CheckRecord, 'index' | 'kind' | 'label'>;

const pass = (summary: string, extra: Partial<Outcome> = {}): Outcome => ({ ok: true, skipped: false, summary, ...extra });
const fail = (summary: string, extra: Partial<Outcome> = {}): Outcome => ({ ok: false, skipped: false, summary, ...extra });

export function checkLabel(c: CheckSpec): string {
  switch (c.kind) {
    case 'ledger':
      return `ledger of ${c.workload}${c.array ? ` on ${c.array}` : ''}`;
    case 'prefix':
      return `prefix of ${c.workload} on ${c.array}${c.maxLagSeconds !== null ? ` (RPO <= ${c.maxLagSeconds} s)` : ''}`;
    case 'mirror-verify':
      return `mirror ${c.mirror} verifies identical`;
    case 'images-equal':
      return `${c.a} equals ${c.b}`;
    case 'rto':
      return `RTO ${c.from} -> ${c.to} <= ${c.maxSeconds} s`;
    case 'no-split-brain':
      return 'no unresolved split brain';
    case 'fs':
      return `file system on ${c.array}:${c.lun} clean`;
    case 'host-errors':
      return `${c.workload} saw ${c.errno} ${c.min}..${c.max ?? 'any'} times`;
    case 'event':
      return `event ${c.type}${c.source ? ` from ${c.source}` : ''} seen ${c.min}..${c.max ?? 'any'} times`;
    case 'event-sum':
      return `sum of ${c.field} of ${c.type}${c.source ? ` from ${c.source}` : ''}${c.after ? ` from step ${c.after} on` : ''} in ${c.min}..${c.max ?? 'any'}`;
    case 'condition':
      return `${c.condition.kind} holds at the end`;
    case 'workload-exit':
      return `${c.workload} exits ${c.exitCode}`;
  }
}

export async function runCheck(c: CheckSpec, index: number, ctx: CheckContext): Promise<CheckRecord> {
  const head = { index, kind: c.kind, label: checkLabel(c) };
  try {
    return { ...head, ...(await outcome(c, ctx)) };
  } catch (e) {
    if (e instanceof FsCheckUnavailable) return { ...head, ok: true, skipped: true, summary: `skipped: ${e.message}` };
    return { ...head, ...fail(`could not run: ${(e as Error).message}`) };
  }
}

async function outcome(c: CheckSpec, ctx: CheckContext): Promise<Outcome> {
  switch (c.kind) {
    case 'ledger':
      return ledgerCheck(c, ctx);
    case 'prefix':
      return prefixCheck(c, ctx);
    case 'mirror-verify': {
      const r = await (await primaryOfMirror(ctx.apis, c.mirror, c.array)).verifyMirror(c.mirror);
      const s = `${r.regionsCompared} regions compared, ${r.mismatched.length} differ, ${r.skipped} skipped${r.incompleteReason ? `; incomplete: ${r.incompleteReason}` : ''}`;
      return r.identical ? pass(s, { details: r }) : fail(s, { details: r });
    }
    case 'images-equal':
      return imagesEqual(c.a, c.b, ctx.apis);
    case 'rto':
      return rtoCheck(c, ctx.steps);
    case 'no-split-brain':
      return splitBrainCheck(ctx.apis);
    case 'fs': {
      const r = await checkFileSystem(ctx.apis.uris(c.array, c.lun)[0]);
      const s = `e2fsck -fn exit ${r.e2fsckExitCode}`;
      return r.ok ? pass(s, { details: r }) : fail(s, { details: r });
    }
    case 'host-errors': {
      const report = ctx.workload(c.workload).record.report as { failedByErrno?: Record<string, number> } | null;
      const n = report?.failedByErrno?.[c.errno] ?? 0;
      return within(n, c.min, c.max) ? pass(`${n} writes failed with ${c.errno}`) : fail(`${n} writes failed with ${c.errno}`, { details: report?.failedByErrno ?? null });
    }
    case 'event': {
      const n = ctx.eventsSeen(c.type, c.source);
      return within(n, c.min, c.max) ? pass(`${n} seen`) : fail(`${n} seen`);
    }
    case 'event-sum':
      return eventSum(c, ctx.events(), ctx.steps);
    case 'condition': {
      const e = await evaluate(c.condition, ctx);
      return e.holds ? pass(e.seen) : fail(e.seen);
    }
    case 'workload-exit': {
      const r = ctx.workload(c.workload).record;
      const s = `exit ${r.exitCode ?? r.signal ?? 'still running'}`;
      return r.exitCode === c.exitCode ? pass(s) : fail(`${s}${r.stderrTail.length ? `: ${r.stderrTail.slice(-3).join(' | ')}` : ''}`);
    }
  }
}

const within = (n: number, min: number, max: number | null) => n >= min && (max === null || n <= max);

/**
 * The numeric `field` of the events of the type (and source) summed: those from the start of step
 * `after` on when given (the step must have run). An event without the field as a number is not
 * summed, and said.
 */
export function eventSum(c: Extract<CheckSpec, { kind: 'event-sum' }>, events: readonly EventRecord[], steps: readonly StepRecord[]): Outcome {
  const step = c.after === null ? undefined : steps.find((s) => s.source === 'step' && s.name === c.after);
  if (c.after !== null && !step) return fail(`step ${c.after} did not run`);
  const fromMs = step?.startMs ?? -Infinity;
  const matching = events.filter((e) => e.type === c.type && (c.source === null || e.source === c.source) && e.tMs >= fromMs);
  const values = matching.map((e) => e.data[c.field]).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const sum = values.reduce((a, b) => a + b, 0);
  const without = matching.length - values.length;
  const unit = /bytes/i.test(c.field) ? 'bytes' : c.field;
  const s = `${sum} ${unit} in ${values.length} event${values.length === 1 ? '' : 's'}${without ? ` (${without} more without a numeric ${c.field})` : ''}`;
  const details = { sum, events: values.length, ...(without ? { withoutField: without } : {}) };
  if (sum < c.min) return fail(`${s}: under min ${c.min}`, { details });
  if (c.max !== null && sum > c.max) return fail(`${s}: over max ${c.max}`, { details });
  return pass(s, { details });
}

async function ledgerCheck(c: Extract<CheckSpec, { kind: 'ledger' }>, ctx: CheckContext): Promise<Outcome> {
  const w = ctx.workload(c.workload);
  if (!w.stateFile) throw new Error(`workload ${c.workload} has no state file`);
  const l = ledger.Ledger.load(w.stateFile);
  const endpoints = ctx.apis.uris(c.array ?? w.array, w.luns[0], c.sps ?? (c.array === null ? w.sps : null));
  const v = await ledger.verifyLedger(l, { endpoints, allowReadErrors: c.allowReadErrors, maxDetails: 20 });
  const s = `${v.blocksChecked} blocks checked (${v.ackedBlocks} acknowledged), ${v.violations} violations${v.unreadable ? `, ${v.unreadable} unreadable` : ''}`;
  const details = { violationsByKind: v.violationsByKind, unreadableByErrno: v.unreadableByErrno, details: v.details };
  // Read on another array (a promoted copy): every acknowledged write there is an RPO of 0.
  const rpo = c.array !== null && c.array !== w.array && v.ok ? { rpoSeconds: 0 } : {};
  return v.ok ? pass(s, { details, ...rpo }) : fail(s, { details });
}

async function prefixCheck(c: Extract<CheckSpec, { kind: 'prefix' }>, ctx: CheckContext): Promise<Outcome> {
  const w = ctx.workload(c.workload);
  if (!w.stateFile) throw new Error(`workload ${c.workload} has no state file`);
  const state = prefix.loadPrefixState(w.stateFile);
  const uris = w.luns.map((l) => ctx.apis.uris(c.array, l)[0]);
  const r = await prefix.verifyPrefix(state, { uris, maxDetails: 20 });
  const s = `${r.acked} acknowledged, ${r.present} present, ${r.missingAcked} acknowledged missing, RPO ${r.lagSeconds.toFixed(3)} s, ${r.violations} violations`;
  const extra = { rpoSeconds: r.lagSeconds, details: { ...r, details: r.details } };
  if (!r.ok) return fail(s, extra);
  if (c.maxLagSeconds !== null && r.lagSeconds > c.maxLagSeconds) return fail(`${s}: RPO over ${c.maxLagSeconds} s`, extra);
  if (c.maxMissingAcked !== null && r.missingAcked > c.maxMissingAcked) return fail(`${s}: more than ${c.maxMissingAcked} acknowledged writes missing`, extra);
  return pass(s, extra);
}

function rtoCheck(c: Extract<CheckSpec, { kind: 'rto' }>, steps: StepRecord[]): Outcome {
  const from = steps.find((s) => s.source === 'step' && s.name === c.from);
  const to = steps.find((s) => s.source === 'step' && s.name === c.to);
  if (!from || !to) return fail(`step ${!from ? c.from : c.to} did not run`);
  if (!to.ok) return fail(`step ${c.to} failed: ${to.error?.message}`);
  const rto = (to.endMs - from.startMs) / 1000;
  const s = `RTO ${rto.toFixed(3)} s`;
  return rto <= c.maxSeconds ? pass(s, { rtoSeconds: rto }) : fail(`${s}, over ${c.maxSeconds} s`, { rtoSeconds: rto });
}

async function splitBrainCheck(apis: LabApis): Promise<Outcome> {
  const found: string[] = [];
  const running = apis.arrayNames().filter((a) => apis.arrayRunning(a));
  for (const a of running) {
    const { mirrors } = await apis.array(a).listMirrors();
    for (const m of mirrors) if (m.splitBrain) found.push(`${m.record.name} on ${a}`);
  }
  const s = `${running.length} running arrays asked`;
  return found.length ? fail(`split brain: ${found.join(', ')}`) : pass(s);
}

const COMPARE_CHUNK = 1 << 20;

/** Both LUNs read through NBD, chunk by chunk; the first differing offsets are listed. */
async function imagesEqual(a: string, b: string, apis: LabApis): Promise<Outcome> {
  const open = (ref: string) => {
    const [array, lun] = ref.split(':');
    return NbdClient.connect(apis.uris(array, lun)[0], { timeoutMs: 10_000 });
  };
  const [ca, cb] = [await open(a), await open(b)];
  try {
    const size = Math.min(ca.size, cb.size);
    const differ: number[] = [];
    for (let off = 0; off < size; off += COMPARE_CHUNK) {
      const n = Math.min(COMPARE_CHUNK, size - off);
      const [x, y] = await Promise.all([ca.read(off, n), cb.read(off, n)]);
      if (!x.equals(y)) differ.push(off);
    }
    const sizes = ca.size === cb.size ? '' : ` (sizes differ: ${ca.size} and ${cb.size}; the first ${size} bytes compared)`;
    const s = `${size} bytes compared, ${differ.length} MiB chunks differ${sizes}`;
    return differ.length === 0 ? pass(s) : fail(s, { details: { firstDifferingOffsets: differ.slice(0, 20) } });
  } finally {
    await Promise.all([ca.close(), cb.close()]);
  }
}
