/**
 * Where the monitor daemon lives and how the CLI reaches it: the state directory (--state,
 * $SANBOX_MONITOR_STATE, else <images>/.monitor), its socket, a remote daemon (--host HOST:PORT
 * with --token or $SANBOX_MONITOR_TOKEN), starting a daemon in the background, and how a
 * daemon started by the CLI resolves lab array names.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { resolve } from 'node:path';
import { BIN, imagesDir } from '../common.js';
import { resolveToken } from '../token-file.js';
import { runningLabs } from '../lab.js';
import { arrayDownMessage } from '../target.js';
import { ApiClient } from '../../control/index.js';
import { ensureDaemon, logPathOf, socketPathOf, type ArrayAccess, type MonitorAddress, type Reply } from '../../monitor/index.js';

export interface PlaceFlags {
  state?: string;
  host?: string;
  token?: string;
  /** The token as the first line of this file (not shown in `ps`, unlike --token). */
  tokenFile?: string;
}

/** --token, else the first line of --token-file, else $SANBOX_MONITOR_TOKEN. */
export function monitorToken(f: PlaceFlags): string | undefined {
  return resolveToken({ token: f.token, file: f.tokenFile }, { token: '--token', file: '--token-file' }, 'SANBOX_MONITOR_TOKEN');
}

/**
 * The state directory: --state, else $SANBOX_MONITOR_STATE, else the monitor of the only
 * running lab that has one (like the array verbs find their lab), else <images>/.monitor.
 */
export async function stateDirOf(f: PlaceFlags): Promise<string> {
  const given = f.state ?? (process.env.SANBOX_MONITOR_STATE || undefined);
  if (given !== undefined) return resolve(given);
  const labs = (await runningLabs()).filter((l) => l.monitor);
  if (labs.length === 1) return labs[0]!.monitor!.stateDir;
  return resolve(imagesDir(), '.monitor');
}

/** The daemon's address: --host HOST:PORT (with a token), else the state directory's socket. */
export async function addressOf(f: PlaceFlags): Promise<MonitorAddress> {
  if (f.host === undefined) return { socketPath: socketPathOf(await stateDirOf(f)) };
  const m = /^(.+):(\d{1,5})$/.exec(f.host);
  if (!m || Number(m[2]) > 65535) throw new Error(`--host must be HOST:PORT, not ${JSON.stringify(f.host)}`);
  const token = monitorToken(f) ?? '';
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), token };
}

/** Starts `sanbox monitor serve --state DIR` detached from this process (its output to the log). */
export function spawnDaemon(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const log = openSync(logPathOf(stateDir), 'a', 0o600);
  const child = spawn(process.execPath, [BIN, 'monitor', 'serve', '--state', stateDir, '--quiet'], { detached: true, stdio: ['ignore', log, log] });
  child.unref();
}

/** prmd's first step: a daemon for the local state directory, started when none answers. */
export async function ensureLocalDaemon(f: PlaceFlags): Promise<Reply> {
  const stateDir = await stateDirOf(f);
  return ensureDaemon(socketPathOf(stateDir), () => spawnDaemon(stateDir));
}

/**
 * Resolves a lab array name ("alpha", or "LAB:alpha" when several labs have one) to its API,
 * reading the running labs' state files each time: an array restarted elsewhere is found again.
 */
export async function resolveLabArray(instance: string): Promise<ArrayAccess> {
  const [labName, arrayName] = instance.includes(':') ? (instance.split(':', 2) as [string, string]) : [undefined, instance];
  const labs = (await runningLabs()).filter((l) => labName === undefined || l.lab === labName);
  const found = labs.flatMap((lab) => lab.arrays.filter((a) => a.name === arrayName).map((a) => ({ lab, a })));
  if (found.length === 0) throw new Error(`no running lab has an array ${instance}`);
  if (found.length > 1) throw new Error(`several running labs have an array ${arrayName} (${found.map((x) => x.lab.lab).join(', ')}): name it LAB:${arrayName}`);
  const { lab, a } = found[0]!;
  const down = arrayDownMessage(lab, a);
  if (down) throw new Error(down);
  const token = a.api.token;
  return { client: new ApiClient({ url: a.api.url, token, timeoutMs: 10_000 }), url: a.api.url, token };
}
