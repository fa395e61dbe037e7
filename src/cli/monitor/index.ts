/**
 * The monitor's command-line side: prmd and chkmon (the source's tools, their own executables),
 * `sanbox monitor ...` (the same operations, sanbox's conventions), and `sanbox monitor serve`
 * (the daemon). The daemon itself is src/monitor.
 */
import type { Command } from 'commander';
import type { Run } from '../command-kit.js';
import { monitorServeCommand, type ServeFlags } from './serve.js';
import * as v from './verbs.js';

export { prmdMain } from './prmd.js';
export { chkmonMain, OPERATION_CODES } from './chkmon.js';
export { stateDirOf, ensureLocalDaemon, addressOf, type PlaceFlags } from './place.js';
export { EXIT_ALREADY_RUNNING } from './serve.js';
export { EXIT_WAIT_TIMEOUT } from './verbs.js';
export { resourceTable, resourceDetail } from './render.js';

const place = (c: Command): Command =>
  c
    .option('--state <dir>', 'the daemon\'s state directory (default: $SANBOX_MONITOR_STATE, else <images>/.monitor)')
    .option('--host <host:port>', 'a monitor on another host (its --listen address)')
    .option('--token-file <file>', 'the monitor\'s token: the first line of FILE (default: $SANBOX_MONITOR_TOKEN)')
    .option('--token <token>', 'the token itself: visible to other users in ps, prefer --token-file or $SANBOX_MONITOR_TOKEN')
    .option('--json', 'machine-readable output');

const resourceArgs = (c: Command): Command => c.argument('<app>', 'application name').argument('<group>', 'device group: the mirror\'s or consistency group\'s name');

export function addMonitorCommands(program: Command, run: Run): void {
  const m = program.command('monitor').description('pair resync monitor: watches mirrors and groups, resynchronizes suspended pairs (also: prmd, chkmon)');
  place(m.command('serve').description('run the monitor daemon in the foreground (prmd starts one in the background when none runs)'))
    .option('--listen <host:port>', 'also accept requests from other hosts here (needs a token)')
    .option('--http <host:port>', 'read-only HTTP: /v1/events (SSE), /v1/resources, /v1/status', '127.0.0.1:0')
    .option('--max-failures <n>', 'automatic resyncs that may fail inside the window before the resource is held', '3')
    .option('--failure-window <s>', 'seconds in which failures count', '600')
    .option('--resync-timeout <s>', 'seconds a resync may take to bring the pair back', '3600')
    .option('--no-events', 'do not follow the arrays\' event streams: polling only (for comparison)')
    .option('-q, --quiet', 'no event log on stderr (it always goes to <state>/monitor.log)')
    .action(run((f: ServeFlags) => monitorServeCommand(f)));
  place(resourceArgs(m.command('add').description('add (or update) a resource; starts the daemon when none runs')))
    .argument('<instance>', 'the array: a lab array name (or LAB:ARRAY), or its API URL http://[:TOKEN@]HOST:PORT')
    .option('--interval <s>', 'monitor interval in seconds', '30')
    .option('--autorecover <yes|no>', 'resynchronize when suspended', 'yes')
    .option('--admin-fractures <yes|no>', 'also resynchronize after an operator\'s fracture or pause')
    .action(run((a: string, g: string, i: string, f: v.AddFlags) => v.monitorAddCommand(a, g, i, f)));
  place(m.command('list').alias('ls').description('every monitored resource and its pair state')).action(run((f: v.VerbFlags) => v.monitorListCommand(f)));
  place(resourceArgs(m.command('show').description('one resource: state, volumes, last poll, last automatic resync, history'))).action(
    run((a: string, g: string, f: v.VerbFlags) => v.monitorShowCommand(a, g, f)),
  );
  place(resourceArgs(m.command('set').description('change a resource\'s instance, interval or autorecover flags')))
    .option('--instance <instance>', 'the array to ask')
    .option('--interval <s>', 'monitor interval in seconds')
    .option('--autorecover <yes|no>', 'resynchronize when suspended (yes also re-arms a held resource)')
    .option('--admin-fractures <yes|no>', 'also resynchronize after an operator\'s fracture or pause')
    .action(run((a: string, g: string, f: v.AddFlags & { instance?: string }) => v.monitorSetCommand(a, g, f)));
  place(m.command('remove').alias('rm').description('stop monitoring a resource (--all: every one, and stop the daemon)'))
    .argument('[app]')
    .argument('[group]')
    .option('--all', 'remove every resource and stop the daemon (REMOVEALL)')
    .action(run((a: string | undefined, g: string | undefined, f: v.VerbFlags & { all?: boolean }) => v.monitorRemoveCommand(a, g, f)));
  place(m.command('pid').description('the daemon\'s process id')).action(run((f: v.VerbFlags) => v.monitorPidCommand(f)));
  place(m.command('stop').description('stop the daemon; the database stays for the next start')).action(run((f: v.VerbFlags) => v.monitorStopCommand(f)));
  place(m.command('save').description('save the resource list to a file (prmd -d)').argument('<file>')).action(run((file: string, f: v.VerbFlags) => v.monitorSaveCommand(file, f)));
  place(m.command('load').description('add the resources of a file (prmd -u)').argument('<file>')).action(run((file: string, f: v.VerbFlags) => v.monitorLoadCommand(file, f)));
  place(resourceArgs(m.command('wait').description(`wait until a resource reaches a pair state (exit 0), or the timeout (exit ${v.EXIT_WAIT_TIMEOUT})`)))
    .option('--for <states>', 'pair states, comma-separated: connected, resync, suspended, error-suspended, deleted', 'connected')
    .option('--timeout <s>', 'seconds', '60')
    .action(run((a: string, g: string, f: v.VerbFlags & { for?: string; timeout?: string }) => v.monitorWaitCommand(a, g, f)));
  place(m.command('events').description('the monitor\'s kept events (-f: and follow new ones)'))
    .option('--since <seq>', 'only events after this sequence number')
    .option('-f, --follow', 'keep following')
    .action(run((f: v.VerbFlags & { since?: string; follow?: boolean }) => v.monitorEventsCommand(f)));
}
