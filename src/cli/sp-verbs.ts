/** `sanbox fault ...`, `sanbox lun trespass`, `sanbox lun recover`: two-SP array verbs (API clients). */
import type { ApiClient } from '../control/index.js';
import { clientError, resolveTarget, type TargetFlags } from './target.js';
import { CliError, EXIT, nameArg, printJson, usage } from './common.js';

async function arrayClient(arrayName: string, f: TargetFlags): Promise<ApiClient> {
  try {
    const c = await resolveTarget({ ...f, array: f.array ?? arrayName });
    const st = await c.status<{ array: string; sps?: unknown }>();
    if (st.array !== arrayName) throw new CliError(EXIT.ERROR, 'wrong-array', `the API at ${c.url} serves array ${st.array}, not ${arrayName}`);
    if (!st.sps) throw new CliError(EXIT.ERROR, 'no-sps', `array ${arrayName} runs without storage processors (single-process "serve"); SP faults need an array with "sps:" in its lab file`);
    return c;
  } catch (e) {
    throw clientError(e);
  }
}

function spArg(sp: string): string {
  const s = sp.toUpperCase();
  if (s !== 'A' && s !== 'B') throw usage(`unknown SP ${JSON.stringify(sp)}: an array has SPs A and B`);
  return s;
}

async function post(c: ApiClient, path: string, body?: unknown): Promise<Record<string, unknown>> {
  try {
    return await c.request<Record<string, unknown>>('POST', path, body ?? {});
  } catch (e) {
    throw clientError(e);
  }
}

function out(f: TargetFlags, r: unknown, text: string): number {
  if (f.json) printJson(r);
  else process.stdout.write(text + '\n');
  return EXIT.OK;
}

export type FaultVerb = 'sp-crash' | 'sp-restart' | 'power-fail' | 'power-restore' | 'battery-fail' | 'battery-repair';

export async function faultCommand(verb: FaultVerb, arrayName: string, sp: string | undefined, f: TargetFlags & { undetected?: boolean }): Promise<number> {
  const spName = verb === 'sp-crash' || verb === 'sp-restart' ? spArg(sp ?? '') : undefined;
  const c = await arrayClient(arrayName, f);
  const body = spName ? { sp: spName } : verb === 'battery-fail' && f.undetected ? { undetected: true } : {};
  const r = await post(c, `/v1/faults/${verb}`, body);
  let text = `${verb} ${arrayName}${spName ? ` SP ${spName}` : ''}: done`;
  if (verb === 'sp-crash') {
    const t = r.takeover as { sp?: string; ms?: number; luns?: number[] } | null;
    text = r.duringDump
      ? `SP ${spName} of ${arrayName} killed (pid ${String(r.pid)}, SIGKILL) during the power-fail dump: its vault copy is torn and will not be replayed; power-restore replays the peer's vault (it holds the mirror of SP ${spName}'s dirty pages)`
      : `SP ${spName} of ${arrayName} killed (pid ${String(r.pid)}, SIGKILL)` + (t ? `; SP ${t.sp} took over LUNs ${JSON.stringify(t.luns)} in ${t.ms} ms` : '; no takeover (peer not up)');
  } else if (verb === 'sp-restart') {
    text = `SP ${spName} of ${arrayName} is up (pid ${String(r.pid)}, port ${String(r.port)}) in ${String(r.ms)} ms; failback ${String(r.failbackPolicy ?? '')}: ${JSON.stringify(r.failback ?? [])}`;
  } else if (verb === 'power-fail') {
    const sps = (r.sps as Record<string, unknown>[] | undefined) ?? [];
    text = r.restoredMidDump
      ? `power of ${arrayName} failed and came back during the dump; SPs kept serving`
      : `power of ${arrayName} is off (hold-up ${String(r.holdUpMs)} ms): ` +
        sps.map((s) => `SP ${String(s.sp)} ${s.dumped ? `dumped ${String(s.pages)} pages (${String(s.bytes)} bytes) in ${String(s.ms)} ms` : s.aborted ? 'dump abandoned' : s.error !== undefined ? `dump torn (${String(s.error)})` : `no dump (${String(s.reason ?? s.state ?? 'torn')})`}`).join('; ');
  } else if (verb === 'power-restore') {
    text = r.restoredMidDump ? `power of ${arrayName} restored during the dump` : `power of ${arrayName} is on (${String(r.ms)} ms, vault restored: ${JSON.stringify(r.restored)})`;
  } else if (verb === 'battery-fail' || verb === 'battery-repair') {
    text = `battery of ${arrayName}: ${JSON.stringify(r.battery)}`;
  }
  return out(f, r, text);
}

export async function lunTrespassCommand(arrayName: string, lun: string, f: TargetFlags & { to?: string }): Promise<number> {
  nameArg(lun, 'LUN');
  const to = f.to !== undefined ? spArg(f.to) : undefined;
  const c = await arrayClient(arrayName, f);
  const r = await post(c, `/v1/luns/${encodeURIComponent(lun)}/trespass`, to ? { to } : {});
  return out(f, r, r.moved ? `LUN ${String(r.name)} moved from SP ${String(r.from)} to SP ${String(r.to)} in ${String(r.ms)} ms (destaged ${String(r.destagedBytes)} bytes)` : `LUN ${String(r.name)} is already owned by SP ${String(r.to)}`);
}

export async function lunRecoverCommand(arrayName: string, lun: string, f: TargetFlags & { acceptDataLoss?: boolean }): Promise<number> {
  nameArg(lun, 'LUN');
  if (!f.acceptDataLoss) throw usage('lun recover discards the lost cached writes of a cache-dirty LUN: pass --accept-data-loss');
  const c = await arrayClient(arrayName, f);
  const r = await post(c, `/v1/luns/${encodeURIComponent(lun)}/recover`, { acceptDataLoss: true });
  return out(f, r, `LUN ${String(r.name)} recovered (cache-dirty cleared; writes cached at the power failure are lost)`);
}
