/**
 * `sanbox monitor serve`: runs the daemon in the foreground until SIGINT/SIGTERM, REMOVEALL or
 * SHUTDOWN. A second daemon for the same state directory exits at once with code 4
 * (EXIT_ALREADY_RUNNING), which is how the losers of a prmd start race end.
 */
import { MonitorAlreadyRunning, MonitorDaemon, type CheckerOptions } from '../../monitor/index.js';
import { CliError, EXIT, intArg, printJson, usage } from '../common.js';
import { monitorToken, resolveLabArray, stateDirOf, type PlaceFlags } from './place.js';

export const EXIT_ALREADY_RUNNING = 4;

export interface ServeFlags extends PlaceFlags {
  listen?: string;
  http?: string;
  quiet?: boolean;
  json?: boolean;
  maxFailures?: string;
  failureWindow?: string;
  resyncTimeout?: string;
  /** commander's --no-events */
  events?: boolean;
}

function hostPort(v: string, what: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw usage(`${what} must be HOST:PORT, not ${JSON.stringify(v)}`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export async function monitorServeCommand(f: ServeFlags): Promise<number> {
  const token = monitorToken(f);
  const listen = f.listen === undefined ? undefined : hostPort(f.listen, '--listen');
  if (listen && !(token && token.length >= 16)) throw usage('--listen needs --token-file FILE (or $SANBOX_MONITOR_TOKEN, or --token; 16 characters or more): other hosts must prove who they are');
  const checker: Partial<CheckerOptions> = {
    maxFailures: intArg(f.maxFailures, '--max-failures', 3, 1, 100),
    failureWindowMs: intArg(f.failureWindow, '--failure-window', 600, 1, 86_400) * 1000,
    resyncTimeoutMs: intArg(f.resyncTimeout, '--resync-timeout', 3600, 1, 86_400) * 1000,
  };
  let daemon: MonitorDaemon;
  try {
    daemon = await MonitorDaemon.start({
      stateDir: await stateDirOf(f),
      resolveName: resolveLabArray,
      listen,
      token,
      http: hostPort(f.http ?? '127.0.0.1:0', '--http'),
      checker,
      followEvents: f.events !== false,
      log: f.quiet ? undefined : (line) => process.stderr.write(line + '\n'),
    });
  } catch (e) {
    if (e instanceof MonitorAlreadyRunning) {
      process.stderr.write(`sanbox monitor: ${e.message}\n`);
      return EXIT_ALREADY_RUNNING;
    }
    throw new CliError(EXIT.ERROR, 'start-failed', `the monitor could not start: ${(e as Error).message}`);
  }
  if (f.json) printJson(daemon.info);
  else process.stdout.write(`monitor daemon ${process.pid} serving ${daemon.info!.socket}${daemon.info!.tcp ? `, tcp ${daemon.info!.tcp}` : ''}${daemon.info!.http ? `, events ${daemon.info!.http}/v1/events` : ''}\n`);
  const stop = () => void daemon.stop('signal');
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await daemon.stopped;
  process.off('SIGINT', stop);
  process.off('SIGTERM', stop);
  return EXIT.OK;
}
