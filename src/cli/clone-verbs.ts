/**
 * `sanbox clone ...`: thin clients of an array's clone routes (/v1/clones). Which array: --api
 * URL, $SANBOX_API, or --array NAME of the running lab (default: its first array). Arguments are
 * checked before anything is sent: a bad rate is a usage error (exit 2).
 */
import type { Command } from 'commander';
import type { CloneView } from '../clone/index.js';
import type { ApiClient } from '../control/index.js';
import { targetOptions, type Run } from './command-kit.js';
import { CliError, EXIT, nameArg, printJson, sleep, table, watchStatus, type WatchFlags } from './common.js';
import { ibytes } from './mirror-render.js';
import { rateArg } from './mirror-verbs.js';
import { startProgress, type ProgressFlags } from './progress/index.js';
import { clientError, resolveTarget, type TargetFlags } from './target.js';

/** How often `clone create --wait` looks at the copy. */
const WAIT_POLL_MS = 500;

async function withClient<T>(f: TargetFlags, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  try {
    return await fn(await resolveTarget(f));
  } catch (e) {
    throw clientError(e);
  }
}

function eta(sec: number | undefined): string {
  if (sec === undefined) return '-';
  if (sec < 120) return `${sec}s`;
  if (sec < 7200) return `${Math.round(sec / 60)}m`;
  return `${Math.round(sec / 3600)}h`;
}

function rows(list: CloneView[]): string {
  if (!list.length) return 'no clones (sanbox clone create LUN[@SNAP] NAME)';
  const lines = [
    table(
      ['NAME', 'LUN', 'SOURCE', 'STATE', 'COPIED', 'RATE', 'ETA'],
      list.map((c) => [
        c.name,
        c.lun === undefined ? '-' : String(c.lun),
        `${c.source.export}${c.source.internal ? ' (internal)' : ''}`,
        c.state,
        `${ibytes(c.copiedBytes)} of ${ibytes(c.totalBytes)} (${c.percent}%)`,
        c.state === 'completed' ? '-' : `${ibytes(c.rateBytesPerSec)}/s${c.measuredBytesPerSec !== undefined ? ` (now ${ibytes(c.measuredBytesPerSec)}/s)` : ''}`,
        c.state === 'completed' ? `done in ${((c.copyMs ?? 0) / 1000).toFixed(1)}s` : eta(c.etaSec),
      ]),
    ),
  ];
  for (const c of list) if (c.error) lines.push(`${c.name}: ${c.error}`);
  return lines.join('\n');
}

export async function cloneCreateCommand(source: string, name: string, f: TargetFlags & { rate?: string; wait?: boolean; quiet?: boolean }): Promise<number> {
  nameArg(name, 'clone name');
  const rate = f.rate === undefined ? undefined : rateArg(f.rate, '--rate');
  const made = await withClient(f, async (c) => {
    const r = await c.createClone<CloneView>({ name, source, ...(rate !== undefined ? { rate } : {}) });
    return f.wait ? { clone: await waitForCopy(c, name, f) } : r;
  });
  if (f.json) printJson(made);
  else if (made.clone.state === 'completed') process.stdout.write(`clone ${name} of ${made.clone.source.export} completed: ${ibytes(made.clone.totalBytes)} in ${((made.clone.copyMs ?? 0) / 1000).toFixed(1)}s; LUN ${name} depends on nothing\n`);
  else process.stdout.write(`created clone ${name} (LUN ${made.clone.lun}) of ${made.clone.source.export}: usable now, copying ${ibytes(made.clone.totalBytes)} at ${ibytes(made.clone.rateBytesPerSec)}/s\n`);
  if (made.clone.state === 'failed') throw new CliError(EXIT.ERROR, 'clone-failed', `clone ${name}: the copy failed: ${made.clone.error ?? 'unknown error'}`);
  return EXIT.OK;
}

/** Polls until the copy completed, failed or paused; progress on stderr unless --json or --quiet. */
async function waitForCopy(c: ApiClient, name: string, f: ProgressFlags): Promise<CloneView> {
  const progress = startProgress(f, { label: `clone ${name}` });
  try {
    for (;;) {
      const v = (await c.getClone<CloneView>(name)).clone;
      progress.update(v.copiedBytes, { total: v.totalBytes });
      if (v.state === 'completed' || v.state === 'failed' || v.state === 'paused') {
        progress.finish(v.state === 'completed' ? 'done' : v.state === 'failed' ? 'failed' : 'stopped');
        return v;
      }
      await sleep(WAIT_POLL_MS);
    }
  } finally {
    progress.finish('stopped'); // a poll threw: the wait ends here (the error says why), not the copy
  }
}

export async function cloneStatusCommand(name: string | undefined, f: TargetFlags & WatchFlags): Promise<number> {
  if (name !== undefined) nameArg(name, 'clone');
  const client = await withClient(f, async (c) => c);
  const fetch = async (): Promise<CloneView[]> => {
    try {
      return name === undefined ? (await client.listClones<CloneView>()).clones : [(await client.getClone<CloneView>(name)).clone];
    } catch (e) {
      throw clientError(e);
    }
  };
  return watchStatus(f, fetch, {
    json: (v) => ({ once: name === undefined ? { clones: v } : { clone: v[0] }, line: name === undefined ? { clones: v } : { clone: v[0] } }),
    text: (v) => rows(v),
  });
}

export async function cloneSetCommand(name: string, f: TargetFlags & { rate?: string }): Promise<number> {
  nameArg(name, 'clone');
  if (f.rate === undefined) throw new CliError(EXIT.USAGE, 'usage', '--rate RATE is required (bytes per second, e.g. 64M or 10M/s)');
  const rate = rateArg(f.rate, '--rate');
  const r = await withClient(f, (c) => c.setCloneRate<CloneView>(name, rate));
  if (f.json) printJson(r);
  else process.stdout.write(`clone ${name} copies at ${ibytes(r.clone.rateBytesPerSec)}/s\n`);
  return EXIT.OK;
}

export async function cloneResumeCommand(name: string, f: TargetFlags): Promise<number> {
  nameArg(name, 'clone');
  const r = await withClient(f, (c) => c.resumeClone<CloneView>(name));
  if (f.json) printJson(r);
  else process.stdout.write(`clone ${name}: copy resumed at ${ibytes(r.clone.copiedBytes)} of ${ibytes(r.clone.totalBytes)}\n`);
  return EXIT.OK;
}

export async function cloneDeleteCommand(name: string, f: TargetFlags & { force?: boolean; keepLun?: boolean }): Promise<number> {
  nameArg(name, 'clone');
  const r = await withClient(f, (c) => c.deleteClone<CloneView>(name, { force: f.force === true, keepLun: f.keepLun === true }));
  if (f.json) printJson(r);
  else if (f.keepLun) process.stdout.write(`forgot clone ${name}; LUN ${name} stays (it depends on nothing)\n`);
  else process.stdout.write(`deleted clone ${name} and its LUN${r.deleted.state === 'completed' ? '' : ` (its copy stopped at ${r.deleted.percent}%)`}\n`);
  return EXIT.OK;
}

export function addCloneCommands(program: Command, run: Run): void {
  const clone = program
    .command('clone')
    .description('clones ("flash copies"): a new LUN that is a full, independent copy of a LUN or a snapshot, usable at once')
    .addHelpText(
      'after',
      `
A clone reads from its source until a background copy (at --rate) has copied every region; a
write to the clone copies its region first. A live LUN is cloned at the moment of "clone create"
(through an internal snapshot clone-NAME, deleted when the copy completes). Rates: 64M, 10M/s.`,
    );
  targetOptions(
    clone
      .command('create')
      .description('create a clone: a new LUN NAME with the data of SOURCE (LUN, or LUN@SNAP)')
      .argument('<source>', 'LUN name or id, or LUN@SNAP')
      .argument('<name>', 'the new LUN: 1-58 of A-Z a-z 0-9 . _ -')
      .option('--rate <rate>', 'bytes/s of the background copy (default 64M)')
      .option('--wait', 'wait until the copy has completed (exit 1 if it fails)')
      .option('-q, --quiet', 'with --wait: no progress on stderr'),
  ).action(run((source: string, name: string, o: TargetFlags & { rate?: string; wait?: boolean; quiet?: boolean }) => cloneCreateCommand(source, name, o)));
  targetOptions(
    clone
      .command('status')
      .alias('list')
      .description('every clone of the array, or one: state, bytes copied, rate, ETA')
      .argument('[name]', 'clone name')
      .option('--watch', 'repeat every --interval seconds until Ctrl-C')
      .option('--count <n>', 'with --watch: stop after n rounds')
      .option('--interval <seconds>', 'with --watch: seconds between rounds (default 1)'),
  ).action(run((name: string | undefined, o: TargetFlags & WatchFlags) => cloneStatusCommand(name, o)));
  targetOptions(clone.command('set').description("change a clone's copy rate at once").argument('<name>').option('--rate <rate>', 'bytes/s, e.g. 10M')).action(
    run((name: string, o: TargetFlags & { rate?: string }) => cloneSetCommand(name, o)),
  );
  targetOptions(clone.command('resume').description('start a failed copy again').argument('<name>')).action(run((name: string, o: TargetFlags) => cloneResumeCommand(name, o)));
  targetOptions(
    clone
      .command('delete')
      .alias('rm')
      .description('delete a clone and its LUN (a copy under way stops); refused while NBD sessions are open unless --force')
      .argument('<name>')
      .option('-f, --force', 'disconnect open NBD sessions of the clone LUN first')
      .option('--keep-lun', 'a completed clone: forget the clone, keep its LUN'),
  ).action(run((name: string, o: TargetFlags & { force?: boolean; keepLun?: boolean }) => cloneDeleteCommand(name, o)));
}
