/**
 * `sanbox snapshot ...`: thin clients of an array's snapshot routes. Which array: --api URL,
 * $SANBOX_API, or --array NAME of the running lab (default: its first array).
 */
import type { Command } from 'commander';
import { formatSize, parseSize } from '../array/index.js';
import type { ApiClient } from '../control/index.js';
import type { SnapshotView } from '../snapshot/index.js';
import { targetOptions, type Run } from './command-kit.js';
import { EXIT, printJson, sleep, table, usage, nameArg } from './common.js';
import { startProgress, type ProgressFlags, type ProgressMeter } from './progress/index.js';
import { clientError, resolveTarget, type TargetFlags } from './target.js';

/** A rollback may run long; the client waits this long for the answer. */
const ROLLBACK_TIMEOUT_MS = 6 * 60 * 60 * 1000;
/** How often the rollback's progress is read from the LUN's snapshot store. */
const PROGRESS_POLL_MS = 500;

interface RollbackProgress {
  doneBytes: number;
  totalBytes: number;
}

async function withClient<T>(f: TargetFlags, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  try {
    return await fn(await resolveTarget(f));
  } catch (e) {
    throw clientError(e);
  }
}

function age(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function rows(list: SnapshotView[]): string {
  if (!list.length) return 'no snapshots';
  return table(
    ['EXPORT', 'SEQ', 'KIND', 'STATE', 'AGE', 'USED', 'GROUP'],
    list.map((s) => [s.export, String(s.seq), s.kind, s.state === 'valid' ? 'valid' : `invalid: ${s.invalidReason ?? ''}`, age(s.created), formatSize(s.usedBytes), s.group ? `${s.group}${s.groupSeq !== undefined ? ` @${s.groupSeq}` : ''}` : '-']),
  );
}

export async function snapshotListCommand(lun: string | undefined, f: TargetFlags): Promise<number> {
  if (lun !== undefined) nameArg(lun, 'LUN');
  const r = await withClient(f, (c) => c.listSnapshots<SnapshotView>(lun));
  if (f.json) printJson(r);
  else {
    const lines = [rows(r.snapshots)];
    const st = r.store as { storeBytes: number; usedBytes: number; policy: string; regionSize: number } | undefined;
    if (st) lines.push(`store: ${formatSize(st.usedBytes)} used of ${formatSize(st.storeBytes)}, regions of ${formatSize(st.regionSize)}, when full: ${st.policy}`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return EXIT.OK;
}

export async function snapshotCreateCommand(lun: string, name: string, f: TargetFlags & { note?: string }): Promise<number> {
  nameArg(lun, 'LUN');
  nameArg(name, 'snapshot name');
  const r = await withClient(f, (c) => c.createSnapshot<SnapshotView>(lun, { name, ...(f.note ? { note: f.note } : {}) }));
  if (f.json) printJson(r);
  else process.stdout.write(`created snapshot ${r.snapshot.export} (seq ${r.snapshot.seq}); writes paused ${r.pauseMs.toFixed(2)} ms\n`);
  return EXIT.OK;
}

export async function snapshotGroupCommand(group: string | undefined, f: TargetFlags & { name?: string; luns?: string }): Promise<number> {
  if (!f.name) throw usage('--name NAME is required: the name every LUN\'s snapshot gets');
  if ((group === undefined) === (f.luns === undefined)) throw usage('give a consistency group (sanbox snapshot group G --name S) or --luns a,b (not both)');
  const luns = f.luns?.split(',').map((s) => s.trim());
  if (luns && (luns.length === 0 || luns.some((l) => !l))) throw usage(`--luns must be a comma-separated list of LUN names or ids, not ${JSON.stringify(f.luns)}`);
  for (const l of luns ?? []) nameArg(l, 'LUN');
  if (group !== undefined) nameArg(group, 'group');
  nameArg(f.name, 'snapshot name');
  const name = f.name;
  const r = await withClient(f, (c) =>
    luns
      ? c.createSnapshotGroup<SnapshotView>({ luns, name })
      : c.request<{ snapshots: SnapshotView[]; pauseMs: number; groupSeq?: number }>('POST', `/v1/groups/${encodeURIComponent(group!)}/snapshot`, { name }),
  );
  if (f.json) printJson(r);
  else {
    const seq = (r as { groupSeq?: number | null }).groupSeq; // null on a primary: no journal record is applied there
    process.stdout.write(`created ${r.snapshots.length} snapshots at one write boundary${seq !== undefined && seq !== null ? ` (group sequence ${seq})` : ''}; writes paused ${r.pauseMs.toFixed(2)} ms\n${rows(r.snapshots)}\n`);
  }
  return EXIT.OK;
}

export async function snapshotShowCommand(lun: string, name: string, f: TargetFlags): Promise<number> {
  nameArg(lun, 'LUN');
  nameArg(name, 'snapshot');
  const r = await withClient(f, (c) => c.getSnapshot<SnapshotView>(lun, name));
  if (f.json) printJson(r);
  else process.stdout.write(rows([r.snapshot]) + (r.snapshot.note ? `\nnote: ${r.snapshot.note}` : '') + '\n');
  return EXIT.OK;
}

export async function snapshotDeleteCommand(lun: string, name: string, f: TargetFlags & { force?: boolean }): Promise<number> {
  nameArg(lun, 'LUN');
  nameArg(name, 'snapshot');
  const r = await withClient(f, (c) => c.deleteSnapshot<SnapshotView>(lun, name, f.force === true));
  if (f.json) printJson(r);
  else process.stdout.write(`deleted snapshot ${r.deleted.export}\n`);
  return EXIT.OK;
}

export async function snapshotRollbackCommand(lun: string, name: string, f: TargetFlags & ProgressFlags): Promise<number> {
  nameArg(lun, 'LUN');
  nameArg(name, 'snapshot');
  const r = await withClient(f, async (c) => {
    const done = c.rollbackSnapshot<SnapshotView>(lun, name, { timeoutMs: ROLLBACK_TIMEOUT_MS });
    const progress = startProgress(f, { label: `rolling back ${lun} to ${name}` });
    if (progress.mode === 'off') return done;
    await followRollback(c, lun, done, progress);
    return done;
  });
  if (f.json) printJson(r);
  else process.stdout.write(`rolled LUN ${lun} back to ${r.rolledBack.export} (taken ${r.rolledBack.created})\n`);
  return EXIT.OK;
}

/**
 * Progress on stderr while the array writes the saved regions back (its store's `rollback`).
 * The answer (or its error) is what counts: a failed progress poll only ends the progress, with
 * the reason on stderr.
 */
async function followRollback(c: ApiClient, lun: string, answer: Promise<unknown>, progress: ProgressMeter): Promise<void> {
  let outcome: 'done' | 'failed' | undefined;
  const settled = answer.then(
    () => (outcome = 'done'),
    () => (outcome = 'failed'),
  );
  let last: RollbackProgress | undefined;
  while (!outcome) {
    await Promise.race([settled, sleep(PROGRESS_POLL_MS)]);
    if (outcome) break;
    try {
      last = ((await c.listSnapshots(lun)).store?.rollback as RollbackProgress | undefined) ?? last;
    } catch (e) {
      progress.finish('stopped');
      process.stderr.write(`(no more progress: ${(e as Error).message}; waiting for the rollback's answer)\n`);
      return;
    }
    if (last) progress.update(last.doneBytes, { total: last.totalBytes });
  }
  // Done: every saved region is back (the store no longer reports the rollback).
  progress.finish(outcome, outcome === 'done' && last ? last.totalBytes : undefined);
}

export async function snapshotStoreCommand(lun: string, f: TargetFlags & { size?: string; policy?: string }): Promise<number> {
  nameArg(lun, 'LUN');
  const change: { storeSize?: number; policy?: string } = {};
  if (f.size !== undefined) {
    const n = parseSize(f.size);
    if (n === undefined || n <= 0) throw usage(`--size must be a size like 256M or 1G, not ${JSON.stringify(f.size)}`);
    change.storeSize = n;
  }
  if (f.policy !== undefined) {
    if (f.policy !== 'invalidate-oldest' && f.policy !== 'refuse-writes') throw usage(`--policy must be invalidate-oldest or refuse-writes, not ${JSON.stringify(f.policy)}`);
    change.policy = f.policy;
  }
  const r = await withClient(f, async (c) => (Object.keys(change).length ? c.configureSnapshotStore(lun, change) : { store: (await c.listSnapshots(lun)).store ?? {} }));
  if (f.json) printJson(r);
  else {
    const s = r.store as { storeBytes: number; usedBytes: number; policy: string; regionSize: number };
    process.stdout.write(`LUN ${lun} snapshot store: ${formatSize(s.usedBytes)} used of ${formatSize(s.storeBytes)}, regions of ${formatSize(s.regionSize)}, when full: ${s.policy}\n`);
  }
  return EXIT.OK;
}

export function addSnapshotCommands(program: Command, run: Run): void {
  const snap = program
    .command('snapshot')
    .description('point-in-time copies of LUNs: create, list, delete, rollback; exported read-only as LUN@SNAP')
    .addHelpText('after', '\nA snapshot is copy-on-write: it costs nothing until its LUN is overwritten. Its export is nbd://HOST:PORT/LUN@SNAP.');
  targetOptions(snap.command('create').description('snapshot a LUN').argument('<lun>', 'LUN name or id').argument('<name>', 'snapshot name').option('--note <text>', 'free text kept with the snapshot')).action(
    run((lun: string, name: string, o: TargetFlags & { note?: string }) => snapshotCreateCommand(lun, name, o)),
  );
  targetOptions(snap.command('list').description("every snapshot of the array, or one LUN's with its store").argument('[lun]', 'LUN name or id')).action(run((lun: string | undefined, o: TargetFlags) => snapshotListCommand(lun, o)));
  targetOptions(snap.command('show').description('one snapshot').argument('<lun>').argument('<name>')).action(run((lun: string, name: string, o: TargetFlags) => snapshotShowCommand(lun, name, o)));
  targetOptions(snap.command('delete').description('delete a snapshot (any order)').argument('<lun>').argument('<name>').option('--force', 'disconnect NBD sessions of its export')).action(
    run((lun: string, name: string, o: TargetFlags & { force?: boolean }) => snapshotDeleteCommand(lun, name, o)),
  );
  targetOptions(
    snap
      .command('rollback')
      .description('write the LUN back to a snapshot (its NBD sessions are disconnected and it is offline until done; newer snapshots are kept)')
      .argument('<lun>')
      .argument('<name>')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(run((lun: string, name: string, o: TargetFlags & ProgressFlags) => snapshotRollbackCommand(lun, name, o)));
  targetOptions(
    snap
      .command('group')
      .description('snapshot several LUNs at one write boundary: a consistency group\'s members on this array, or --luns')
      .argument('[group]', 'consistency group name')
      .option('--name <name>', 'snapshot name (required)')
      .option('--luns <a,b>', 'LUN names or ids instead of a group'),
  ).action(run((group: string | undefined, o: TargetFlags & { name?: string; luns?: string }) => snapshotGroupCommand(group, o)));
  targetOptions(
    snap
      .command('store')
      .description("show or set a LUN's snapshot store: size and what happens when it is full")
      .argument('<lun>')
      .option('--size <size>', 'bytes of saved regions the store may hold, e.g. 1G')
      .option('--policy <policy>', 'invalidate-oldest (default: drop the oldest snapshot, writes go on) or refuse-writes (ENOSPC)'),
  ).action(run((lun: string, o: TargetFlags & { size?: string; policy?: string }) => snapshotStoreCommand(lun, o)));
}
