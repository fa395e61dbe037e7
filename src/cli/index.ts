/**
 * The `sanbox` command. Every verb has `--json`; exit codes are stable (see common.ts / docs/cli.md):
 * 0 ok, 1 error from the array (or a server could not start), 2 usage error, 3 cannot reach the array.
 */
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../control/service.js';
import { lunCreateCommand, lunDeleteCommand, lunGrowCommand, lunListCommand, statusCommand } from './client-verbs.js';
import { CliError, EXIT } from './common.js';
import { doctorCommand } from './doctor.js';
import { arrayServeCommand, serveCommand, type ServeFlags } from './serve.js';
import { downCommand, upCommand } from './updown.js';
import { linkCutCommand, linkRestoreCommand, linkSetCommand, linkStatusCommand, type LinkFlags, type LinkSetFlags } from './link-verbs.js';
import { faultCommand, lunRecoverCommand, lunTrespassCommand, type FaultVerb } from './sp-verbs.js';
import { faultDiskCommand, type DiskFaultFlags } from './fault-verbs.js';
import { runSpProcess } from '../array/sp-process/index.js';
import { targetOptions, type Run } from './command-kit.js';
import type { TargetFlags } from './target.js';
import { addGroupCommands } from './group-commands.js';
import { addMirrorCommands } from './mirror-commands.js';
import { addFenceCommands } from './fence-verbs.js';
import { labFaultCommand, type LabFaultFlags, type LabFaultVerb } from './supervisor/index.js';
import { addCheckCommands } from './check-verbs.js';
import { addScenarioCommands } from './scenario-verbs.js';
import { addSnapshotCommands } from './snapshot-verbs.js';
import { addCloneCommands } from './clone-verbs.js';
import { addMonitorCommands } from './monitor/index.js';
import { addHeartbeatCommands } from './heartbeat/verbs.js';
import { addEventsCommand } from './events/index.js';
import { addAutomationCommands } from './automation/verbs.js';
import { addResourceGroupCommands } from './automation/rg-verbs.js';
import { handleOutputErrors } from './pipe.js';

export { EXIT } from './common.js';

const collect = (v: string, prev: string[]) => [...prev, v];

const EXIT_HELP = `
Exit codes:
  0  ok
  1  refused or failed by whoever answered (array, lab, link emulator), e.g. no such LUN
     or array, wrong token, not in this state; or a server could not start
  2  usage error: the command line is wrong by itself (malformed name, size, URL, lab
     file); nothing was done
  3  cannot reach the array (no API found, connection refused, lab not running)

Finding the array (status, lun): --api URL, else $SANBOX_API, else the state file of a lab
started with "sanbox up" (--lab NAME or $SANBOX_LAB when several run). Token: --token-file FILE
(its first line) or --token, else $SANBOX_TOKEN, else the lab state file; --token shows in ps.`;

/**
 * Runs the CLI; resolves with the process exit code (never calls process.exit itself, except
 * when its output is gone or cannot be written: src/cli/pipe.ts).
 */
export async function main(argv: string[]): Promise<number> {
  handleOutputErrors('sanbox', EXIT.ERROR); // `| head` and full disks: src/cli/pipe.ts
  let code: number = EXIT.OK;
  const json = argv.includes('--json');
  const run: Run =
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
    .option('--api-bind <addr>', 'management API address (non-loopback needs a token)', '127.0.0.1')
    .option('--api-token-file <file>', 'management API bearer token: the first line of FILE (default: $SANBOX_TOKEN)')
    .option('--api-token <token>', 'the token itself: visible to other users in ps, prefer --api-token-file or $SANBOX_TOKEN')
    .option('--no-api', 'no management API')
    .option('-q, --quiet', 'no event log on stderr')
    .option('--json', 'print the endpoints as JSON when ready')
    .option('--sps', 'two storage processors: SP A on --port, SP B on --port + 1 (mirrored write cache)')
    .option('--tls <mode>', 'NBD over TLS: off, on (optional) or require (default: require with credentials, else off)')
    .option('--tls-certificates <dir>', 'x509 credentials: DIR holds server-cert.pem and server-key.pem (qemu/nbdkit layout)')
    .option('--tls-psk <file>', 'pre-shared keys: FILE of USERNAME:HEXKEY lines (GnuTLS psktool format)')
    .option('--nbd-memory <size>', 'NBD memory budget: payload in flight + replies queued, all connections of a server (each SP its own), e.g. 512M', '256M')
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

  const fault = program.command('fault').description('inject faults: SP crash, power, battery (two-SP arrays); disk faults (any array); array crash and site failure (the lab)');
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
  }
  // disk faults (any array): src/cli/fault-verbs.ts
  const disk = fault
    .command('disk')
    .description('give a LUN a disk fault: errors (EIO/ENOSPC) and/or delays on chosen ops, seeded, and/or lose unflushed writes at a crash; --clear removes it')
    .argument('<array>', 'array name')
    .argument('<lun>', 'LUN id or name')
    .option('--errors <ops>', 'ops that fail: read,write,flush,trim,zero (default: all five, or none with only --delay or --lose-unflushed)')
    .option('--rate <p>', 'probability 0..1 that a matching request fails (default 1)')
    .option('--range <offset:length>', 'only requests overlapping this byte range (e.g. 0:1M; default the whole LUN)')
    .option('--errno <errno>', 'EIO (default) or ENOSPC')
    .option('--delay <ms[:jitter]>', 'wait MS (+ up to JITTER) ms before every matching request')
    .option('--seed <n>', 'seed of the error and jitter draws (default 1)')
    .option('--lose-unflushed', 'hold writes without FUA in memory until a flush: the next crash of the array loses them')
    .option('--max-unflushed <bytes>', 'with --lose-unflushed: hold at most this much (e.g. 8M; default 64M), then write the oldest down')
    .option('--show', 'show the LUN\'s disk fault and its counters')
    .option('--clear', 'remove the LUN\'s disk fault');
  targetOptions(disk).action(run((arr: string, ref: string, opts: DiskFaultFlags) => faultDiskCommand(arr, ref, opts)));
  // Lab faults: clients of the running lab supervisor (src/cli/supervisor), not of an array's API.
  const labFaultVerbs: [LabFaultVerb, string, string][] = [
    ['array-crash', 'SIGKILL every process of an array (chassis and SPs): a site losing power with no battery; the lab keeps running', 'array'],
    ['array-restart', 'start a crashed array again from its directory, exactly as after a real crash (its own recovery runs)', 'array'],
    ['site-fail', 'crash every array of a site and cut every link that touches it', 'site'],
    ['site-restore', 'restart the crashed arrays of a site and restore its links', 'site'],
  ];
  for (const [verb, desc, what] of labFaultVerbs) {
    fault
      .command(verb)
      .description(desc)
      .argument(`<${what}>`, `${what} name (of the lab file)`)
      .option('--lab <name>', 'lab (default: $SANBOX_LAB, else the only running lab)')
      .option('--json', 'machine-readable output')
      .action(run((name: string, opts: LabFaultFlags) => labFaultCommand(verb, name, opts)));
  }

  const spCmd = program.command('sp').description('storage processor process (started by an array chassis)');
  spCmd
    .command('serve')
    .description('run one SP of an array; the chassis starts it and drives it over IPC')
    .requiredOption('--sp <name>', 'A or B')
    .action(run(() => runSpProcess()));

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
      .option('--token-file <file>', 'link API bearer token: the first line of FILE (default: $SANBOX_LINK_TOKEN, else the lab state file)')
      .option('--token <token>', 'the token itself: visible to other users in ps, prefer --token-file')
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
      .option('--loss <percent>', 'share of chunks delayed by one retransmission timeout, 0-100 (a lost TCP segment)')
      .option('--rto <ms>', 'the retransmission timeout a loss costs, ms (default 200)')
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

  addMirrorCommands(program, run);
  addFenceCommands(program, run);

  addGroupCommands(program, run);

  addCheckCommands(program, run);
  addScenarioCommands(program, run);
  addSnapshotCommands(program, run);
  addCloneCommands(program, run);
  addMonitorCommands(program, run);
  addHeartbeatCommands(program, run);
  addEventsCommand(program, run);
  addAutomationCommands(program, run);
  addResourceGroupCommands(program, run);

  // Every command at every depth throws instead of exiting: its usage errors become exit 2 below.
  const overrideAll = (c: Command): void => {
    c.exitOverride();
    for (const sub of c.commands) overrideAll(sub);
  };
  overrideAll(program);

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
