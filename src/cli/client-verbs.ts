/** `sanbox status` and `sanbox lun ...`: thin clients of an array's management API. */
import { formatSize, parseSize } from '../array/index.js';
import { ApiClient, ClientError, type LunView } from '../control/index.js';
import { CliError, EXIT, printJson, table, usage } from './common.js';
import { readState, runningLabs, type LabState } from './lab.js';
import { statusMirrorsSection } from './mirror-verbs.js';

export interface TargetFlags {
  api?: string;
  token?: string;
  lab?: string;
  array?: string;
  json?: boolean;
}

/**
 * Finds the array to talk to: --api URL, else $SANBOX_API, else the state file of --lab NAME
 * ($SANBOX_LAB), else the only running lab. --array (default: the lab's first array) picks an
 * array of a lab. The token: --token, else $SANBOX_TOKEN, else the lab state file.
 */
export async function resolveTarget(f: TargetFlags): Promise<ApiClient> {
  const token = f.token ?? (process.env.SANBOX_TOKEN || undefined);
  const url = f.api ?? (process.env.SANBOX_API || undefined);
  if (url) return new ApiClient({ url, token });
  const state = await findLab(f);
  const arr = f.array ? state.arrays.find((a) => a.name === f.array) : state.arrays[0];
  if (!arr) {
    throw usage(`lab ${state.lab} has no array ${f.array ?? ''} (arrays: ${state.arrays.map((a) => a.name).join(', ') || 'none yet'})`);
  }
  return new ApiClient({ url: arr.api.url, token: token ?? arr.api.token });
}

/**
 * Every array of the lab (--lab, $SANBOX_LAB, else the only running lab) with a client each;
 * undefined when the target is an explicit API URL (--api / $SANBOX_API) or --array picks one.
 */
export async function labArrayClients(f: TargetFlags): Promise<{ lab: LabState; arrays: { name: string; client: ApiClient }[] } | undefined> {
  if (f.api ?? (process.env.SANBOX_API || undefined)) return undefined;
  if (f.array) return undefined;
  const token = f.token ?? (process.env.SANBOX_TOKEN || undefined);
  const lab = await findLab(f);
  return { lab, arrays: lab.arrays.map((a) => ({ name: a.name, client: new ApiClient({ url: a.api.url, token: token ?? a.api.token }) })) };
}

/** The lab to talk to: --lab NAME ($SANBOX_LAB), else the only running lab. */
export async function findLab(f: TargetFlags): Promise<LabState> {
  const labName = f.lab ?? (process.env.SANBOX_LAB || undefined);
  let state: LabState | undefined;
  if (labName) {
    state = await readState(labName);
    if (!state) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `lab ${labName} is not running (no state file); start it with "sanbox up"`);
  } else {
    const labs = await runningLabs();
    if (labs.length === 0) {
      throw new CliError(
        EXIT.UNREACHABLE,
        'unreachable',
        'no array to talk to: give --api URL, set SANBOX_API, or start a lab with "sanbox up lab/default.yaml"',
      );
    }
    if (labs.length > 1) throw usage(`several labs are running (${labs.map((l) => l.lab).join(', ')}): pick one with --lab NAME`);
    state = labs[0]!;
  }
  return state;
}

/** Maps API-client failures to CLI errors: unreachable → 3, refused by the array → 1. */
export function clientError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof ClientError) return new CliError(e.unreachable ? EXIT.UNREACHABLE : EXIT.ERROR, e.code, e.message);
  return new CliError(EXIT.ERROR, 'error', (e as Error).message ?? String(e));
}

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
      l.state,
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
  nbd: Array<{ host: string; port: number }>;
  api: { url?: string };
  luns: Array<LunView & SpLunFields>;
  problems: string[];
  power?: string;
  battery?: { state: string; charge: number; holdUpMs: number };
  sps?: SpStatus[];
}

export async function statusCommand(f: TargetFlags): Promise<number> {
  let mirrors: string | undefined;
  const st = await withClient(f, async (c) => {
    const r = await c.status<StatusJson>();
    if (!f.json) mirrors = await statusMirrorsSection(c, f);
    return r;
  });
  if (f.json) {
    printJson(st);
    return EXIT.OK;
  }
  const lines = [
    `array ${st.array}${st.lab ? ` (lab ${st.lab})` : ''}: ${st.readOnly ? 'read-only' : 'read-write'}, sanbox ${st.sanbox ?? '?'}, pid ${st.pid ?? '?'}`,
    `  dir   ${st.dir}`,
    `  NBD   ${st.nbd.map((n) => `${n.host}:${n.port}`).join(', ')}`,
    `  API   ${st.api.url ?? '?'}`,
    ...(st.sps && st.battery ? [`  power ${st.power ?? '?'}, battery ${st.battery.state} ${st.battery.charge}% (hold-up ${st.battery.holdUpMs} ms)`, '', spRows(st.sps)] : []),
    '',
    st.luns.length ? lunRows(st.luns) : 'no LUNs (sanbox lun create NAME SIZE)',
  ];
  if (mirrors) lines.push('', mirrors);
  for (const p of st.problems) lines.push(`warning: ${p}`);
  process.stdout.write(lines.join('\n') + '\n');
  return EXIT.OK;
}

export async function lunListCommand(f: TargetFlags): Promise<number> {
  const r = await withClient(f, (c) => c.listLuns<LunView>());
  if (f.json) printJson(r);
  else process.stdout.write((r.luns.length ? lunRows(r.luns) : 'no LUNs') + '\n');
  return EXIT.OK;
}

function sizeArg(text: string): number {
  const n = parseSize(text);
  if (n === undefined) throw usage(`${JSON.stringify(text)} is not a size (e.g. 1G, 256M, 1048576)`);
  return n;
}

export async function lunCreateCommand(name: string, size: string, f: TargetFlags & { blockSize?: string }): Promise<number> {
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
  const r = await withClient(f, (c) => c.deleteLun<LunView>(ref, f.force === true));
  if (f.json) printJson(r);
  else process.stdout.write(`deleted LUN ${r.deleted.id} ${r.deleted.name}\n`);
  return EXIT.OK;
}

export async function lunGrowCommand(ref: string, size: string, f: TargetFlags): Promise<number> {
  const relative = size.startsWith('+');
  const bytes = sizeArg(relative ? size.slice(1) : size);
  const r = await withClient(f, async (c) => {
    let target = bytes;
    if (relative) {
      const cur = await c.request<{ lun: LunView }>('GET', `/v1/luns/${encodeURIComponent(ref)}`);
      target = cur.lun.size + bytes;
    }
    return c.growLun<LunView>(ref, target);
  });
  if (f.json) printJson(r);
  else process.stdout.write(`grew LUN ${r.lun.id} ${r.lun.name} to ${formatSize(r.lun.size)} (${r.lun.size} bytes)\n`);
  return EXIT.OK;
}
