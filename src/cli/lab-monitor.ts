/**
 * The lab's pair resync monitor: `sanbox up` starts a daemon for the lab's `monitor:` (state in
 * `<images>/.labs/<lab>.monitor/`, so prmd and chkmon find it without options while the lab is
 * the only one with a monitor) and loads its resources, each asked of `LAB:ARRAY`; stopping the
 * lab stops the daemon, whose database stays for the next `up`.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labsDir, pidAlive, sleep } from './common.js';
import type { Lab, LabState } from './lab.js';
import { ensureLocalDaemon, resourceTable } from './monitor/index.js';
import { RC, infoPathOf, request, socketPathOf, type DaemonInfo } from '../monitor/index.js';

/** How long a stopping lab waits for its monitor to exit. */
const MONITOR_STOP_MS = 10_000;

export function labMonitorDir(lab: string): string {
  return join(labsDir(), `${lab}.monitor`);
}

export async function startLabMonitor(lab: Lab, log: (t: string) => void): Promise<NonNullable<LabState['monitor']>> {
  const stateDir = labMonitorDir(lab.name);
  const started = await ensureLocalDaemon({ state: stateDir });
  if (started.code !== RC.OK) throw new Error(`the lab's monitor did not start: ${started.message}`);
  const resources = lab.monitor!.resources.map((r) => ({
    appName: r.appName,
    deviceGroup: r.deviceGroup,
    instance: `${lab.name}:${r.array}`,
    intervalSeconds: r.intervalSeconds,
    autorecover: r.autorecover,
    resyncAdminFractures: r.resyncAdminFractures,
  }));
  const loaded = await request({ socketPath: socketPathOf(stateDir) }, { msgType: 'LOAD', resources });
  if (loaded.code !== RC.OK) throw new Error(`the lab's monitor refused its resources: ${loaded.message}`);
  const info = JSON.parse(await readFile(infoPathOf(stateDir), 'utf8')) as DaemonInfo;
  log(`monitor ${info.pid} watches ${resources.map((r) => `${r.appName}/${r.deviceGroup}`).join(', ')} (chkmon -show)`);
  return { stateDir, pid: started.pid!, socket: info.socket, ...(info.http ? { http: info.http } : {}), resources: resources.length };
}

/** Stops the lab's monitor (its database stays); kills it when it does not stop in time. */
export async function stopLabMonitor(m: NonNullable<LabState['monitor']>): Promise<void> {
  await request({ socketPath: m.socket }, { msgType: 'SHUTDOWN' }, 5000);
  const end = Date.now() + MONITOR_STOP_MS;
  while (pidAlive(m.pid) && Date.now() < end) await sleep(50);
  if (pidAlive(m.pid)) process.kill(m.pid, 'SIGKILL');
}

/** The lab monitor's part of `sanbox status`: its resources, or why they cannot be shown. */
export async function labMonitorStatus(m: NonNullable<LabState['monitor']>): Promise<{ text: string; json: unknown }> {
  const r = await request({ socketPath: m.socket }, { msgType: 'SHOWALL' }, 5000);
  const head = `monitor pid ${m.pid}, ${m.resources} resources (chkmon -show; events: sanbox monitor events)`;
  if (r.code !== RC.OK) return { text: `${head}\n  not answering: ${r.message}`, json: { ...m, error: r.message } };
  return { text: `${head}\n${resourceTable(r.resources ?? [])}`, json: { ...m, entries: r.resources } };
}
