/** `sanbox status` and `sanbox lun ...`: thin clients of an array's management API. */
import { formatSize, parseSize } from '../array/index.js';
import type { ApiClient, LunView } from '../control/index.js';
import { CliError, EXIT, nameArg, printJson, table, usage } from './common.js';
import { statusMirrorsSection } from './mirror-verbs.js';
import { fenceText } from './fence-verbs.js';
import { clientError, findLab, resolveTarget, type TargetFlags } from './target.js';
import { labMonitorStatus } from './lab-monitor.js';
import { automationStatus } from './automation/controllers.js';
import type { LabState } from './lab.js';

// Their home is target.ts (below the verb modules); re-exported for existing importers.
export { clientError, findLab, labArrayClients, resolveTarget, type TargetFlags } from './target.js';

async function withClient<T>(f: TargetFlags, fn: (c: ApiClient) => Promise<T>): Promise<T> {
  try {
    return await fn(await resolveTarget(f));
  } catch (e) {
    throw clientError(e);
  }
}

/** What a two-SP array adds to a LUN's record. */
interface SpLunFields {
  currentOwner?: string | null;
  paths?: Array<{ sp: string; uri: string; optimized: boolean }>;
}

function lunRows(luns: Array<LunView & SpLunFields>): string {
  const sps = luns.some((l) => l.paths !== undefined);
  return table(
    ['ID', 'NAME', 'SIZE', 'BLOCK', 'STATE', 'SESSIONS', ...(sps ? ['OWNER'] : []), 'URI', 'IMAGE'],
    luns.map((l) => [
      String(l.id),
      l.name,
      formatSize(l.size),
      String(l.blockSize),
      l.fenced ? `${l.state},fenced` : l.state,
      String(l.sessions),
      ...(sps ? [l.currentOwner ?? '-'] : []),
      // With SPs, the optimized path (the owner's port) first.
      (l.paths?.find((p) => p.optimized)?.uri ?? l.uris[0]) || '-',
      l.image,
    ]),
  );
}

interface SpStatus {
  name: string;
  state: string;
  pid: number | null;
  nbd?: { host: string; port: number } | null;
  lunsOwned: number[];
  cache: { size: number; dirtyBytes: number; mode: string | null; reason: string };
}

function spRows(sps: SpStatus[]): string {
  return table(
    ['SP', 'STATE', 'PID', 'PORT', 'OWNS', 'CACHE', 'DIRTY', 'MODE'],
    sps.map((sp) => [
      sp.name,
      sp.state,
      sp.pid === null ? '-' : String(sp.pid),
      sp.nbd ? String(sp.nbd.port) : '-',
      sp.lunsOwned.length ? sp.lunsOwned.join(',') : '-',
      formatSize(sp.cache.size),
      formatSize(sp.cache.dirtyBytes),
      sp.cache.mode ? `${sp.cache.mode} (${sp.cache.reason})` : sp.cache.reason,
    ]),
  );
}

interface StatusJson {
  array: string;
  sanbox?: string;
  pid?: number;
  lab?: string;
  dir: string;
  readOnly: boolean;
  nbd: Array<{ host: string; port: number; tls?: string }>;
  api: { url?: string };
  luns: Array<LunView & SpLunFields>;
  problems: string[];
  power?: string;
  battery?: { state: string; charge: number; holdUpMs: number };
  sps?: SpStatus[];
  /** Active disk faults (`sanbox fault disk`). */
  diskFaults?: Array<{ name: string; summary: string; injected: number; delayed: number }>;
  /** Snapshots. */
  snapshots?: Array<{ export: string; kind: string; state: string; created: string; usedBytes: number }>;
}

/** `sanbox status` of a lab (no --api, no --array): every array's supervision state, and the first running array in detail. */
async function labOverview(f: TargetFlags): Promise<{ rows: LabArrayRow[]; pick: string; monitor?: LabState['monitor']; automation?: LabState['automation']; dashboard?: string } | undefined> {
  if (f.api ?? (process.env.SANBOX_API || undefined)) return undefined;
  if (f.array) return undefined;
  const lab = await findLab(f);
  const rows = lab.arrays.map((a) => ({ name: a.name, state: a.state ?? 'running', ...(a.site ? { site: a.site } : {}), ...(a.lastExit ? { lastExit: a.lastExit } : {}), ...(a.held ? { held: true } : {}) }));
  const up = rows.find((r) => r.state === 'running');
  if (!up) {
    const list = rows.map((r) => `${r.name} ${r.state}`).join(', ');
    throw new CliError(EXIT.UNREACHABLE, 'array-down', `no array of lab ${lab.lab} is running (${list}); start one with "sanbox fault array-restart ARRAY"`);
  }
  return { rows, pick: up.name, monitor: lab.monitor, automation: lab.automation, ...(lab.dashboard ? { dashboard: lab.dashboard.url } : {}) };
}

interface LabArrayRow {
  name: string;
  state: string;
  site?: string;
  held?: boolean;
  lastExit?: { code: number | null; signal: string | null; at: string };
}

export async function statusCommand(f: TargetFlags): Promise<number> {
  let mirrors: string | undefined;
  const overview = await labOverview(f);
  if (overview && overview.rows.some((r) => r.state !== 'running')) f = { ...f, array: overview.pick };
  const st = await withClient(f, async (c) => {
    const r = await c.status<StatusJson>();
    if (!f.json) mirrors = await statusMirrorsSection(c, f);
    return r;
  });
  const monitor = overview?.monitor ? await labMonitorStatus(overview.monitor) : undefined;
  const automation = overview?.automation ? await automationStatus(overview.automation) : undefined;
  if (f.json) {
    printJson(overview ? { ...st, labArrays: overview.rows, ...(monitor ? { monitor: monitor.json } : {}), ...(automation ? { automation: automation.json } : {}), ...(overview.dashboard ? { dashboard: overview.dashboard } : {}) } : st);
    return EXIT.OK;
  }
  const down = overview?.rows.filter((r) => r.state !== 'running') ?? [];
  const lines = [
    ...(down.length
      ? [
          `lab ${st.lab ?? ''}: ${overview!.rows.map((r) => `${r.name} ${r.state === 'running' ? 'up' : `DOWN (${r.state}${r.lastExit ? `, ${r.lastExit.signal ?? `exit ${r.lastExit.code}`}` : ''})`}`).join(', ')}`,
          ...down.map((r) => `  restart: sanbox fault array-restart ${r.name}`),
          '',
        ]
      : []),
    `array ${st.array}${st.lab ? ` (lab ${st.lab})` : ''}: ${st.readOnly ? 'read-only' : 'read-write'}, sanbox ${st.sanbox ?? '?'}, pid ${st.pid ?? '?'}`,
    `  dir   ${st.dir}`,
    `  NBD   ${st.nbd.map((n) => `${n.host}:${n.port}${n.tls ? ` (TLS ${n.tls === 'require' ? 'required' : 'optional'})` : ''}`).join(', ')}`,
    `  API   ${st.api.url ?? '?'}`,
    ...(overview?.dashboard ? [`  dashboard of lab ${st.lab ?? ''}  ${overview.dashboard}`] : []),
    ...(st.sps && st.battery ? [`  power ${st.power ?? '?'}, battery ${st.battery.state} ${st.battery.charge}% (hold-up ${st.battery.holdUpMs} ms)`, '', spRows(st.sps)] : []),
    '',
    st.luns.length ? lunRows(st.luns) : 'no LUNs (sanbox lun create NAME SIZE)',
    ...st.luns.filter((l) => l.fenced).map(fenceText),
  ];
  if (mirrors) lines.push('', mirrors);
  if (monitor) lines.push('', monitor.text);
  if (automation) lines.push('', automation.text);
  if (st.snapshots?.length) lines.push('', 'snapshots:', ...st.snapshots.map((s) => `  ${s.export}  ${s.kind}, ${s.state}, taken ${s.created}, ${formatSize(s.usedBytes)} saved`));
  if (st.diskFaults?.length) lines.push('', 'disk faults:', ...st.diskFaults.map((d) => `  LUN ${d.name}: ${d.summary}; ${d.injected} errors injected, ${d.delayed} requests delayed`));
  for (const p of st.problems) lines.push(`warning: ${p}`);
  process.stdout.write(lines.join('\n') + '\n');
  return EXIT.OK;
}

export async function lunListCommand(f: TargetFlags): Promise<number> {
  const r = await withClient(f, (c) => c.listLuns<LunView>());
  if (f.json) printJson(r);
  else process.stdout.write((r.luns.length ? [lunRows(r.luns), ...r.luns.filter((l) => l.fenced).map(fenceText)].join('\n') : 'no LUNs') + '\n');
  return EXIT.OK;
}

function sizeArg(text: string): number {
  const n = parseSize(text);
  if (n === undefined) throw usage(`${JSON.stringify(text)} is not a size (e.g. 1G, 256M, 1048576)`);
  return n;
}

export async function lunCreateCommand(name: string, size: string, f: TargetFlags & { blockSize?: string }): Promise<number> {
  nameArg(name, 'LUN name');
  const bytes = sizeArg(size);
  let blockSize: number | undefined;
  if (f.blockSize !== undefined) {
    if (!/^\d+$/.test(f.blockSize)) throw usage('--block-size must be 512 or 4096');
    blockSize = Number(f.blockSize);
  }
  const r = await withClient(f, (c) => c.createLun<LunView>({ name, size: bytes, ...(blockSize !== undefined ? { blockSize } : {}) }));
  if (f.json) printJson(r);
  else process.stdout.write(`created LUN ${r.lun.id} ${r.lun.name}: ${formatSize(r.lun.size)}, block ${r.lun.blockSize}${r.lun.uris[0] ? `, ${r.lun.uris[0]}` : ''}\n`);
  return EXIT.OK;
}

export async function lunDeleteCommand(ref: string, f: TargetFlags & { force?: boolean }): Promise<number> {
  nameArg(ref, 'LUN');
  const r = await withClient(f, (c) => c.deleteLun<LunView>(ref, f.force === true));
  if (f.json) printJson(r);
  else process.stdout.write(`deleted LUN ${r.deleted.id} ${r.deleted.name}\n`);
  return EXIT.OK;
}

export async function lunGrowCommand(ref: string, size: string, f: TargetFlags): Promise<number> {
  nameArg(ref, 'LUN');
  const relative = size.startsWith('+');
  const bytes = sizeArg(relative ? size.slice(1) : size);
  // +SIZE is the array's relative grow (one request: concurrent ones each add theirs)
  const r = await withClient(f, (c) => c.growLun<LunView>(ref, relative ? { by: bytes } : { size: bytes }));
  if (f.json) printJson(r);
  else process.stdout.write(`grew LUN ${r.lun.id} ${r.lun.name} to ${formatSize(r.lun.size)} (${r.lun.size} bytes)\n`);
  return EXIT.OK;
}
