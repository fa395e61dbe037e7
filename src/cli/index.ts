/**
 * The `sanbox` command. Every verb has `--json`; exit codes are stable (see common.ts / README):
 * 0 ok, 1 error from the array (or a server could not start), 2 usage error, 3 cannot reach the array.
 */
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../control/service.js';
import { lunCreateCommand, lunDeleteCommand, lunGrowCommand, lunListCommand, statusCommand, type TargetFlags } from './client-verbs.js';
import { CliError, EXIT } from './common.js';
import { doctorCommand } from './doctor.js';
import { arrayServeCommand, serveCommand, type ServeFlags } from './serve.js';
import { downCommand, upCommand } from './updown.js';
import { linkCutCommand, linkRestoreCommand, linkSetCommand, linkStatusCommand, type LinkFlags, type LinkSetFlags } from './link-verbs.js';
import { faultCommand, lunRecoverCommand, lunTrespassCommand, type FaultVerb } from './sp-verbs.js';
import { runSpProcess } from '../array/sp-process/index.js';
import {
  mirrorActivateCommand,
  mirrorAddSecondaryCommand,
  mirrorCreateCommand,
  mirrorDeactivateCommand,
  mirrorDestroyCommand,
  mirrorFractureCommand,
  mirrorPromoteCommand,
  mirrorRemoveSecondaryCommand,
  mirrorResolveCommand,
  mirrorSetCommand,
  mirrorStatusCommand,
  mirrorSyncCommand,
  mirrorVerifyCommand,
  type AddSecondaryFlags,
  type MirrorCreateFlags,
  type MirrorSetFlags,
  type MirrorStatusFlags,
} from './mirror-verbs.js';
import {
  groupBackfreshCommand,
  groupBypassCommand,
  groupCreateCommand,
  groupDeleteCommand,
  groupInfoCommand,
  groupListCommand,
  groupModeCommand,
  groupPauseCommand,
  groupPromoteCommand,
  groupRefreshCommand,
  groupSetCommand,
  groupStatusCommand,
  groupThrottleCommand,
  type BoundFlags,
  type GroupCreateFlags,
  type GroupSetFlags,
  type GroupStatusFlags,
} from './group-verbs.js';

export { EXIT } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const EXIT_HELP = `
Exit codes:
  0  ok
  1  the array refused or failed the request (or a server could not start)
  2  usage error: bad arguments or lab file; nothing was done
  3  cannot reach the array (no API found, connection refused, lab not running)

Finding the array (status, lun): --api URL, else $SANBOX_API, else the state file of a lab
started with "sanbox up" (--lab NAME or $SANBOX_LAB when several run). Token: --token, else
$SANBOX_TOKEN, else the lab state file.`;

function targetOptions(cmd: Command): Command {
  return cmd
    .option('--api <url>', 'management API base URL (default: $SANBOX_API, else the running lab)')
    .option('--token <token>', 'API bearer token (default: $SANBOX_TOKEN, else the lab state file)')
    .option('--lab <name>', 'lab whose array to use (default: $SANBOX_LAB, else the only running lab)')
    .option('--array <name>', "array of the lab (default: the lab's first)")
    .option('--json', 'machine-readable output');
}

/** Runs the CLI; resolves with the process exit code (never calls process.exit itself). */
export async function main(argv: string[]): Promise<number> {
  let code: number = EXIT.OK;
  const json = argv.includes('--json');
  const run =
    <A extends unknown[]>(fn: (...args: A) => Promise<number>) =>
    async (...args: A) => {
      code = await fn(...args);
    };

  const program = new Command('sanbox')
    .description('sanbox: a storage-array emulator serving LUNs over NBD')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', EXIT_HELP);

  program
    .command('serve')
    .description('quick single-array server (like qemu-nbd / nbdkit file): creates LUNs if absent, exports them by name')
    .option('--dir <dir>', 'array directory (metadata and image files)')
    .option('--name <name>', 'array name (default: the directory name)')
    .option('-p, --port <port>', 'NBD port (0: any free port)', '10809')
    .option('-b, --bind <addr>', 'NBD listen address', '127.0.0.1')
    .option('--lun <NAME=SIZE[:BS]>', 'LUN to export, e.g. disk0=1G or disk1=256M:4096 (repeatable)', collect, [] as string[])
    .option('--block-size <bytes>', 'block size of LUNs created without one: 512 or 4096')
    .option('-r, --read-only', 'export every LUN read-only; the API refuses changes')
    .option('--api-port <port>', 'management API port (0: any free port, printed)', '0')
    .option('--api-bind <addr>', 'management API address (non-loopback needs --api-token)', '127.0.0.1')
    .option('--api-token <token>', 'management API bearer token (default: $SANBOX_TOKEN)')
    .option('--no-api', 'no management API')
    .option('-q, --quiet', 'no event log on stderr')
    .option('--json', 'print the endpoints as JSON when ready')
    .option('--sps', 'two storage processors: SP A on --port, SP B on --port + 1 (mirrored write cache)')
    .action(run((opts: ServeFlags) => serveCommand(opts)));

  const arrayCmd = program.command('array').description('run one array of a lab (used by "sanbox up")');
  arrayCmd
    .command('serve')
    .description('run the array described by a JSON config (written by "sanbox up") until signalled')
    .requiredOption('--config <file>', 'array config (JSON)')
    .option('--lab <name>', 'lab the array belongs to')
    .option('-q, --quiet', 'no event log on stderr')
    .option('--json', 'print the endpoints as JSON when ready')
    .action(run((opts: { config: string; lab?: string; quiet?: boolean; json?: boolean }) => arrayServeCommand(opts)));

  targetOptions(program.command('status').description('array status: LUNs, export names, NBD URIs, sizes, image files')).action(
    run((opts: TargetFlags) => statusCommand(opts)),
  );

  const lun = program.command('lun').description('manage LUNs of a running array');
  targetOptions(lun.command('list').alias('ls').description('list LUNs')).action(run((opts: TargetFlags) => lunListCommand(opts)));
  targetOptions(
    lun
      .command('create')
      .description('create a LUN (sparse image file); SIZE like 1G, 256M, 1048576')
      .argument('<name>', 'LUN name: 1-64 of A-Z a-z 0-9 . _ -')
      .argument('<size>', 'size, a multiple of the block size')
      .option('--block-size <bytes>', '512 (default) or 4096'),
  ).action(run((name: string, size: string, opts: TargetFlags & { blockSize?: string }) => lunCreateCommand(name, size, opts)));
  targetOptions(
    lun
      .command('delete')
      .alias('rm')
      .description('delete a LUN and its image file; refused while NBD sessions are open unless --force')
      .argument('<lun>', 'LUN id or name')
      .option('-f, --force', 'disconnect open NBD sessions first'),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean }) => lunDeleteCommand(ref, opts)));
  targetOptions(
    lun
      .command('grow')
      .description('grow a LUN (never shrinks); SIZE absolute (2G) or relative (+1G); open sessions see the new size on reconnect')
      .argument('<lun>', 'LUN id or name')
      .argument('<size>', 'new size, or +SIZE to add'),
  ).action(run((ref: string, size: string, opts: TargetFlags) => lunGrowCommand(ref, size, opts)));

  targetOptions(
    lun
      .command('trespass')
      .description('move a LUN to the other SP (quiesce, destage, move, resume); two-SP arrays')
      .argument('<array>', 'array name')
      .argument('<lun>', 'LUN id or name')
      .option('--to <sp>', 'target SP (default: the peer of the current owner)'),
  ).action(run((arr: string, ref: string, opts: TargetFlags & { to?: string }) => lunTrespassCommand(arr, ref, opts)));
  targetOptions(
    lun
      .command('recover')
      .description('clear the cache-dirty state of a LUN that lost cached writes (needs --accept-data-loss)')
      .argument('<array>', 'array name')
      .argument('<lun>', 'LUN id or name')
      .option('--accept-data-loss', 'accept that the writes cached at the power failure are lost'),
  ).action(run((arr: string, ref: string, opts: TargetFlags & { acceptDataLoss?: boolean }) => lunRecoverCommand(arr, ref, opts)));

  const fault = program.command('fault').description('inject faults into a two-SP array (SP crash, power, battery)');
  const faultVerbs: [FaultVerb, string, boolean][] = [
    ['sp-crash', 'SIGKILL an SP process; its peer takes over its LUNs', true],
    ['sp-restart', 'boot a crashed SP; it drops its superseded cache and gets its LUNs back per the failback policy', true],
    ['power-fail', 'cut power: SPs stop host I/O and dump their caches to the vault within the battery hold-up', false],
    ['power-restore', 'restore power: SPs boot, replay the vault, then serve (during a dump: the dump is abandoned)', false],
    ['battery-fail', 'fail the battery: write-through at once, and the next power failure gets no hold-up', false],
    ['battery-repair', 'replace the failed battery', false],
  ];
  for (const [verb, desc, needsSp] of faultVerbs) {
    const c = fault.command(verb).description(desc).argument('<array>', 'array name');
    if (needsSp) c.argument('<sp>', 'A or B');
    if (verb === 'battery-fail') c.option('--undetected', 'a latent failure: the SPs keep write-back until the next power failure finds it');
    targetOptions(c).action(
      run(async (...args: unknown[]) => {
        const arr = args[0] as string;
        const sp = needsSp ? (args[1] as string) : undefined;
        const opts = args[needsSp ? 2 : 1] as TargetFlags & { undetected?: boolean };
        return faultCommand(verb, arr, sp, opts);
      }),
    );
    c.exitOverride();
  }
  fault.exitOverride();

  const spCmd = program.command('sp').description('storage processor process (started by an array chassis)');
  spCmd
    .command('serve')
    .description('run one SP of an array; the chassis starts it and drives it over IPC')
    .requiredOption('--sp <name>', 'A or B')
    .action(run(() => runSpProcess()))
    .exitOverride();
  spCmd.exitOverride();

  program
    .command('doctor')
    .description('check node, the native addon and the real client tools')
    .option('--json', 'machine-readable output')
    .action(run((opts: { json?: boolean }) => doctorCommand(opts)));

  program
    .command('up')
    .description('start a lab (arrays and LUNs from a YAML file) in the foreground; Ctrl-C stops it')
    .argument('<lab.yaml>', 'lab file, e.g. lab/default.yaml')
    .option('-d, --detach', 'run in the background and return once the lab is up (log in <images>/.labs/<lab>.log)')
    .option('--timeout <seconds>', 'how long the arrays may take to start', '60')
    .option('--json', 'print the lab state as JSON when up')
    .action(run((file: string, opts: { detach?: boolean; json?: boolean; timeout?: string }) => upCommand(file, opts)));

  program
    .command('down')
    .description('stop a running lab (default: the only one running)')
    .argument('[lab]', 'lab name or lab file')
    .option('--timeout <seconds>', 'grace before SIGKILL', '30')
    .option('--json', 'machine-readable output')
    .action(run((ref: string | undefined, opts: { json?: boolean; timeout?: string }) => downCommand(ref, opts)));

  const link = program.command('link').description("remote links of a lab: the link emulator's latency, bandwidth, stalls, resets, cuts");
  const linkOptions = (c: Command) =>
    c
      .option('--lab <name>', 'lab (default: $SANBOX_LAB, else the only running lab)')
      .option('--api <url>', "a link emulator's control API URL (instead of the lab state file)")
      .option('--token <token>', 'link API bearer token (default: $SANBOX_LINK_TOKEN, else the lab state file)')
      .option('--json', 'machine-readable output');
  const dirOpt = ['--direction <dir>', 'a-to-b, b-to-a or both (default both)'] as const;
  linkOptions(
    link
      .command('set')
      .description('change latency, jitter, bandwidth of one or both directions; stall; reset connections')
      .argument('<link>', 'link name')
      .option('--latency <ms>', 'fixed one-way delay, ms')
      .option('--jitter <ms>', 'extra random delay, 0..ms (byte order is kept)')
      .option('--bandwidth <rate>', 'bytes per second: 10M, 512K/s, 1048576; 0 or unlimited: no cap')
      .option(...dirOpt)
      .option('--stall <ms>', 'hold all traffic for ms, then deliver it')
      .option('--reset', 'reset (TCP RST) the current connections'),
  ).action(run((name: string, opts: LinkSetFlags) => linkSetCommand(name, opts)));
  linkOptions(
    link
      .command('cut')
      .description('cut the link (black hole: nothing crosses; connections reset after cutResetMs)')
      .argument('<link>', 'link name')
      .option(...dirOpt)
      .option('--reset', 'also reset the current connections at once'),
  ).action(run((name: string, opts: LinkFlags & { direction?: string; reset?: boolean }) => linkCutCommand(name, opts)));
  linkOptions(link.command('restore').description('restore both directions; held bytes and connections go through').argument('<link>', 'link name')).action(
    run((name: string, opts: LinkFlags) => linkRestoreCommand(name, opts)),
  );
  linkOptions(
    link
      .command('status')
      .description('settings, connections, bytes each way, queued bytes, state, and the latest events')
      .argument('[link]', 'link name (default: every link of the lab)')
      .option('--events <n>', 'latest events to show (default 20)'),
  ).action(run((name: string | undefined, opts: LinkFlags & { events?: string }) => linkStatusCommand(name, opts)));
  link.exitOverride();
  for (const c of link.commands) c.exitOverride();

  const mirror = program
    .command('mirror')
    .description('remote mirrors: create, add secondaries, fracture, synchronize, promote, verify (run on the primary\'s array unless said otherwise)')
    .addHelpText(
      'after',
      `
Which array: --api URL or --array NAME; otherwise the lab's array that holds the mirror's primary
(promote: its secondary; resolve: the survivor; create: ARRAY:LUN, else the lab's first array).
Sizes and rates: 64K, 64M, 10M/s, 1048576.`,
    );
  const mirrorRef = ['<mirror>', 'mirror name or id'] as const;
  targetOptions(
    mirror
      .command('create')
      .description('create a mirror with LUN as its primary image (on this array); then add-secondary')
      .argument('<lun>', 'LUN id or name, or ARRAY:LUN')
      .option('--name <name>', 'mirror name (default: the LUN name)')
      .option('--region-size <size>', 'region of the write-intent and fracture logs: power of two 4K..64M (default 64K)')
      .option('--sync-rate <rate>', 'bytes/s for synchronizations (default 64M)')
      .option('--write-policy <policy>', 'synchronous (the only one so far)')
      .option('--activation <policy>', 'automatic or manual: how the mirror leaves ATTENTION')
      .option('--min-images <n>', 'images (primary included) required to stay ACTIVE; -1: none (default)')
      .option('--max-missing <n>', 'unreachable secondaries tolerated; -1: no limit (default)')
      .option('--secondary-reads', 'let hosts read the secondaries')
      .option('--sync-priority <p>', 'low, medium (default) or high'),
  ).action(run((lun: string, opts: MirrorCreateFlags) => mirrorCreateCommand(lun, opts)));
  targetOptions(
    mirror
      .command('add-secondary')
      .description('add a secondary image on another array (full synchronization unless --synchronized)')
      .argument(...mirrorRef)
      .option('--to <array:lun>', 'the secondary image, e.g. bravo:disk0 (required)')
      .option('--synchronized', 'the LUN is identical already: no initial copy')
      .option('--recovery <policy>', 'auto (default): resync when it comes back; manual: wait for "mirror sync"')
      .option('--sync-rate <rate>', "bytes/s for this image (default: the mirror's)"),
  ).action(run((ref: string, opts: AddSecondaryFlags) => mirrorAddSecondaryCommand(ref, opts)));
  targetOptions(
    mirror
      .command('remove-secondary')
      .description('remove a secondary image (graceful needs it reachable; --force always)')
      .argument(...mirrorRef)
      .argument('<image>', 'image id (bravo:0) or array name')
      .option('-f, --force', 'remove even when unreachable'),
  ).action(run((ref: string, image: string, opts: TargetFlags & { force?: boolean }) => mirrorRemoveSecondaryCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('promote')
      .description("make a secondary the primary (runs on the secondary's array)")
      .argument(...mirrorRef)
      .option('-f, --force', 'promote even an image that is not synchronized or consistent'),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean }) => mirrorPromoteCommand(ref, opts)));
  targetOptions(
    mirror
      .command('sync')
      .alias('synchronize')
      .description('synchronize fractured or unsynchronized secondaries (all, or one) from the fracture log')
      .argument(...mirrorRef)
      .argument('[image]', 'image id (bravo:0) or array name (default: every one that needs it)')
      .option('-f, --force', 'also on an INACTIVE mirror (CONSISTENT images)'),
  ).action(run((ref: string, image: string | undefined, opts: TargetFlags & { force?: boolean }) => mirrorSyncCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('fracture')
      .description('stop sending writes to secondaries (all, or one); they are tracked in the fracture log')
      .argument(...mirrorRef)
      .argument('[image]', 'image id (bravo:0) or array name (default: every secondary)'),
  ).action(run((ref: string, image: string | undefined, opts: TargetFlags) => mirrorFractureCommand(ref, image, opts)));
  targetOptions(mirror.command('activate').description('INACTIVE -> ACTIVE (or ATTENTION when the minimum conditions fail)').argument(...mirrorRef)).action(
    run((ref: string, opts: TargetFlags) => mirrorActivateCommand(ref, opts)),
  );
  targetOptions(
    mirror
      .command('deactivate')
      .description('ACTIVE -> INACTIVE (refused while an image synchronizes, unless --force)')
      .argument(...mirrorRef)
      .option('-f, --force', 'stop running synchronizations'),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean }) => mirrorDeactivateCommand(ref, opts)));
  targetOptions(mirror.command('destroy').description('destroy an INACTIVE mirror without secondaries (the LUNs stay)').argument(...mirrorRef)).action(
    run((ref: string, opts: TargetFlags) => mirrorDestroyCommand(ref, opts)),
  );
  targetOptions(
    mirror
      .command('set')
      .description('change mirror attributes, or one image\'s recovery policy / sync rate')
      .argument(...mirrorRef)
      .option('--name <name>', 'rename the mirror')
      .option('--sync-rate <rate>', 'bytes/s for synchronizations')
      .option('--sync-priority <p>', 'low, medium or high')
      .option('--min-images <n>', 'images required to stay ACTIVE; -1: none')
      .option('--max-missing <n>', 'unreachable secondaries tolerated; -1: no limit')
      .option('--activation <policy>', 'automatic or manual')
      .option('--secondary-reads <on|off>', 'let hosts read the secondaries')
      .option('--image <image>', 'image id or array name, for --recovery / --image-sync-rate')
      .option('--recovery <policy>', "the image's recovery policy: auto or manual")
      .option('--image-sync-rate <rate>', "the image's sync rate (default: the mirror's)"),
  ).action(run((ref: string, opts: MirrorSetFlags) => mirrorSetCommand(ref, opts)));
  targetOptions(
    mirror
      .command('status')
      .description('mirror state, epoch, and per image: role, state, reachability, fracture, fracture log, resync progress, split brain')
      .argument('[mirror]', 'mirror name or id (default: every mirror)')
      .option('-w, --watch', 're-print every second until Ctrl-C')
      .option('--count <n>', 'with --watch: stop after N prints')
      .option('--interval <seconds>', 'with --watch: seconds between prints (default 1)'),
  ).action(run((ref: string | undefined, opts: MirrorStatusFlags) => mirrorStatusCommand(ref, opts)));
  targetOptions(
    mirror
      .command('verify')
      .description('compare the secondary with the primary region by region (exit 1 when they differ, listing the regions)')
      .argument(...mirrorRef)
      .argument('[image]', 'image id or array name (default: the first secondary)'),
  ).action(run((ref: string, image: string | undefined, opts: TargetFlags) => mirrorVerifyCommand(ref, image, opts)));
  targetOptions(
    mirror
      .command('resolve')
      .description('end a split brain: keep the survivor\'s data, the other side resyncs from it')
      .argument(...mirrorRef)
      .option('--survivor <array>', 'the array whose data is kept (required)'),
  ).action(run((ref: string, opts: TargetFlags & { survivor?: string }) => mirrorResolveCommand(ref, opts)));
  mirror.exitOverride();
  for (const c of mirror.commands) c.exitOverride();

  const group = program
    .command('group')
    .description('consistency groups: mirrors replicated in one global order (asynchronous, near-synchronous, synchronous), writelog, throttles, qdsinfo')
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
      .option('--perf-max <size>', 'performance file size limit, one previous generation kept (default 1M)'),
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
      .description('copy every allocated region to the secondaries through the writelog (incoherent until done); shows progress until done')
      .argument(...groupRef)
      .option('--no-wait', 'return once started')
      .option('--interval <seconds>', 'seconds between progress polls (default 0.5)'),
  ).action(run((ref: string, opts: TargetFlags & { wait?: boolean; interval?: string }) => groupRefreshCommand(ref, opts)));
  targetOptions(
    group
      .command('backfresh')
      .description("copy a secondary's image back to the primary (the members are offline to hosts meanwhile)")
      .argument(...groupRef)
      .option('--from <array>', 'the secondary array to copy from (default: the first)'),
  ).action(run((ref: string, opts: TargetFlags & { from?: string }) => groupBackfreshCommand(ref, opts)));
  targetOptions(
    group
      .command('promote')
      .description("make the group primary on a secondary array (runs there): every member is promoted after the batch the receiver applies")
      .argument(...groupRef)
      .option('-f, --force', 'promote members that are not synchronized or consistent'),
  ).action(run((ref: string, opts: TargetFlags & { force?: boolean }) => groupPromoteCommand(ref, opts)));
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
        .option('--perf-max <size>', 'performance file size limit, e.g. 1M'),
    ),
  ).action(run((ref: string, opts: GroupSetFlags) => groupSetCommand(ref, opts)));
  targetOptions(group.command('delete').alias('rm').description('delete the group (switches to synchronous first: the journal drains); the mirrors stay').argument(...groupRef)).action(
    run((ref: string, opts: TargetFlags) => groupDeleteCommand(ref, opts)),
  );
  group.exitOverride();
  for (const c of group.commands) c.exitOverride();

  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  for (const c of [...arrayCmd.commands, ...lun.commands]) c.exitOverride();
  lun.exitOverride();
  arrayCmd.exitOverride();

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help, help VERB and --version exit 0; help shown because a verb was missing, and
      // everything else commander reports, is a usage error.
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    const err =
      e instanceof CliError ? e : new CliError(EXIT.ERROR, (e as NodeJS.ErrnoException)?.code ?? 'error', (e as Error)?.message ?? String(e));
    if (json) process.stdout.write(JSON.stringify({ error: { code: err.code, message: err.message, exitCode: err.exitCode } }, null, 2) + '\n');
    else process.stderr.write(`sanbox: ${err.message}\n`);
    return err.exitCode;
  }
}
