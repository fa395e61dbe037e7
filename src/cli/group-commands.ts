/** `sanbox group ...`: the commands, their options and help (the verbs are in group-verbs.ts). */
import type { Command } from 'commander';
import { targetOptions, type Run } from './command-kit.js';
import {
  groupBypassCommand,
  groupCreateCommand,
  groupDeleteCommand,
  groupInfoCommand,
  groupListCommand,
  groupModeCommand,
  groupPauseCommand,
  groupSetCommand,
  groupStatusCommand,
  groupThrottleCommand,
  type BoundFlags,
  type GroupCreateFlags,
  type GroupSetFlags,
  type GroupStatusFlags,
} from './group-verbs.js';
import { groupBackfreshCommand, groupRefreshCommand } from './group-copy.js';
import { groupPromoteCommand, groupSnapshotCommand } from './group-pit.js';
import type { ProgressFlags } from './progress/index.js';
import { groupPerfCommand, type GroupPerfFlags } from './group-perf.js';
import type { TargetFlags } from './target.js';

export function addGroupCommands(program: Command, run: Run): void {
  const group = program
    .command('group')
    .description('consistency groups: mirrors replicated in one global order (asynchronous, near-synchronous, synchronous), writelog, throttles, qdsinfo, performance plots')
    .addHelpText(
      'after',
      `
Which array: --api URL or --array NAME; otherwise the lab's array that holds the group's primary
side (promote: a secondary; create: the primary of the first member mirror).
Sizes: 64K, 64M, 1G. Durations: 10s, 500ms, 1m (a bare number is seconds).`,
    );
  const groupRef = ['<group>', 'group name or id'] as const;
  const bounds = (c: Command) =>
    c
      .option('--max-entries <n>', 'near-synchronous: host writes wait at this many unacknowledged entries (0: no bound)')
      .option('--max-bytes <size>', 'near-synchronous: ... or at this many unacknowledged bytes (0: no bound)')
      .option('--low-entries <n>', 'near-synchronous: they resume below this (default: half of --max-entries)')
      .option('--low-bytes <size>', 'near-synchronous: ... or below this (default: half of --max-bytes)');
  targetOptions(
    bounds(
      group
        .command('create')
        .description('create a consistency group of mirrors (on their primary array); it starts in bypass until every secondary is in sync')
        .argument('<name>', 'group name: 1-64 of A-Z a-z 0-9 . _ -')
        .option('--members <m1,m2>', 'member mirrors, comma-separated (required): same primary array, same secondary arrays')
        .option('--mode <mode>', 'asynchronous (default), near-synchronous or synchronous'),
    )
      .option('--writelog <size>', 'writelog capacity (default 256M)')
      .option('--extensions <n>', 'writelog extensions in the pool, 0-128 (default 0)')
      .option('--extension-size <size>', 'capacity of each extension (default 64M)')
      .option('--extend-at <percent>', 'chain an extension in at this usage, 1-100 (default 90)')
      .option('--throttle-every <duration>', 'throttle evaluation interval (default 10s)')
      .option('--throttles <file>', 'throttles (YAML list, as in the lab file)')
      .option('--perf-every <duration>', 'performance record interval (default 10s)')
      .option('--perf-max <size>', 'performance file size limit, one previous generation kept (default 1M)')
      .option('--protect-resync <on|off>', "snapshot the secondaries' last consistent point before a resync rewrites them (default on)")
      .option('--freeze <armed|off>', 'synchronous mode: when one member stops replicating to an array, every member stops sending to it (default off)'),
  ).action(run((name: string, opts: GroupCreateFlags) => groupCreateCommand(name, opts)));
  targetOptions(group.command('list').alias('ls').description('every group of the lab, once: mode, state, primary, members, backlog')).action(
    run((opts: TargetFlags) => groupListCommand(opts)),
  );
  targetOptions(
    group
      .command('status')
      .description('mode, bypass/refresh/coherence, senders (state, acknowledged through), backlog, oldest entry, receivers (next expected) on the secondaries')
      .argument('[group]', 'group name or id (default: every group)')
      .option('-w, --watch', 're-print every second until Ctrl-C')
      .option('--count <n>', 'with --watch: stop after N prints')
      .option('--interval <seconds>', 'with --watch: seconds between prints (default 1)'),
  ).action(run((ref: string | undefined, opts: GroupStatusFlags) => groupStatusCommand(ref, opts)));
  targetOptions(group.command('info').description("the source's qdsinfo: state, writelog usage and extensions, entries waiting, rates, sender").argument(...groupRef)).action(
    run((ref: string, opts: TargetFlags) => groupInfoCommand(ref, opts)),
  );
  targetOptions(
    group
      .command('perf')
      .description("the source's qdsperftool: the group's performance records (KB/s sent, entries/s, backlog, writelog %, lag) as a table, JSON, or an SVG chart")
      .argument(...groupRef)
      .option('--since <time>', 'only records from this long ago (10m, 30s, 2h, 1d; a bare number is seconds) or this ISO time on')
      .option('--svg <file>', 'plot them into FILE (one SVG, a panel per measurement over time) instead of the table')
      .option('--png <file>', 'the same chart as a PNG (through rsvg-convert, Debian package librsvg2-bin)'),
  ).action(run((ref: string, opts: GroupPerfFlags) => groupPerfCommand(ref, opts)));
  targetOptions(
    bounds(
      group
        .command('mode')
        .description('change the mode while running (no write lost or reordered; leaving a journaling mode drains the journal first)')
        .argument(...groupRef)
        .argument('<mode>', 'asynchronous, near-synchronous or synchronous'),
    ),
  ).action(run((ref: string, mode: string, opts: TargetFlags & BoundFlags) => groupModeCommand(ref, mode, opts)));
  targetOptions(group.command('pause').description('pause the sender(s): writes are journaled, the backlog grows').argument(...groupRef)).action(
    run((ref: string, opts: TargetFlags) => groupPauseCommand(ref, true, opts)),
  );
  targetOptions(group.command('resume').description('resume the sender(s)').argument(...groupRef)).action(run((ref: string, opts: TargetFlags) => groupPauseCommand(ref, false, opts)));
  targetOptions(
    group
      .command('bypass')
      .description('on: stop journaling, changes go to the fracture logs; off: back to journaling once the secondaries are resynchronized')
      .argument(...groupRef)
      .argument('<on|off>', 'on or off'),
  ).action(run((ref: string, on: string, opts: TargetFlags) => groupBypassCommand(ref, on, opts)));
  targetOptions(
    group
      .command('refresh')
      .description('copy every allocated region to the secondaries through the writelog (incoherent until done); shows progress on stderr until done')
      .argument(...groupRef)
      .option('--no-wait', 'return once started')
      .option('--interval <seconds>', 'seconds between progress polls (default 0.5)')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(run((ref: string, opts: TargetFlags & ProgressFlags & { wait?: boolean; interval?: string }) => groupRefreshCommand(ref, opts)));
  targetOptions(
    group
      .command('backfresh')
      .description("copy a secondary's image back to the primary (the members are offline to hosts meanwhile); shows progress on stderr until done")
      .argument(...groupRef)
      .option('--from <array>', 'the secondary array to copy from (default: the first)')
      .option('-q, --quiet', 'no progress on stderr'),
  ).action(run((ref: string, opts: TargetFlags & ProgressFlags & { from?: string }) => groupBackfreshCommand(ref, opts)));
  targetOptions(
    group
      .command('promote')
      .description("make the group primary on a secondary array (runs there): every member is promoted after the batch the receiver applies; says which journal record the copy holds and how long before the promote it was applied")
      .argument(...groupRef)
      .option('-f, --force', 'promote without asking the old primary to step down (it is gone), and members that are not a point in time as they are; if the old primary is alive behind a cut link: split brain')
      .option('--from-snapshot', "roll every member back to the group's resync-protection snapshot (its last consistent point) first"),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean; fromSnapshot?: boolean }) => groupPromoteCommand(ref, opts)));
  targetOptions(
    group
      .command('snapshot')
      .description('snapshot every member LUN of the group on one array at one write boundary (a secondary: between two applied batches, through a known journal record)')
      .argument(...groupRef)
      .argument('<name>', 'snapshot name (each member LUN gets LUN@NAME)')
      .option('--side <side>', 'primary (default) or secondary: which array of the lab (or --array NAME)'),
  ).action(run((ref: string, name: string, opts: TargetFlags & { side?: string }) => groupSnapshotCommand(ref, name, { ...opts, role: opts.side })));
  targetOptions(
    group
      .command('throttle')
      .description("replace the group's throttles (a YAML list, as under groups: ... throttles: in a lab file), or clear them")
      .argument(...groupRef)
      .option('--file <throttles.yaml>', 'the throttles')
      .option('--clear', 'no throttles'),
  ).action(run((ref: string, opts: TargetFlags & { file?: string; clear?: boolean }) => groupThrottleCommand(ref, opts)));
  targetOptions(
    bounds(
      group
        .command('set')
        .description('change intervals, the performance file limit or the near-synchronous bounds (the writelog size is fixed at create)')
        .argument(...groupRef)
        .option('--throttle-every <duration>', 'throttle evaluation interval, e.g. 10s')
        .option('--perf-every <duration>', 'performance record interval, e.g. 10s')
        .option('--perf-max <size>', 'performance file size limit, e.g. 1M')
        .option('--protect-resync <on|off>', "snapshot the secondaries' last consistent point before a resync rewrites them")
        .option('--freeze <armed|off>', 'synchronous mode: when one member stops replicating to an array, every member stops sending to it'),
    ),
  ).action(run((ref: string, opts: GroupSetFlags) => groupSetCommand(ref, opts)));
  targetOptions(group.command('delete').alias('rm').description('delete the group (switches to synchronous first: the journal drains); the mirrors stay').argument(...groupRef)).action(
    run((ref: string, opts: TargetFlags) => groupDeleteCommand(ref, opts)),
  );
}
