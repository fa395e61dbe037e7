/**
 * One action of a scenario (a timeline step, or half of a nemesis fault) done through the lab's
 * APIs, the same requests the `sanbox` verbs send, and the verb a person would type for it.
 * Workload, wait and command actions belong to the run (run.ts) and are not handled here.
 */
import type { ApiClient } from '../../control/index.js';
import type { ActionSpec } from '../spec/types.js';
import type { LabApis } from './apis.js';

/** Link settings per direction when the run began, for `link-settings-restore`. */
export type LinkBaseline = Map<string, Record<'a-to-b' | 'b-to-a', { latencyMs: number; jitterMs: number; bandwidth: number }>>;

export type ApiAction = Exclude<ActionSpec, { kind: 'workload-stop' | 'workload-wait' | 'wait' | 'sleep' | 'command' }>;

export function isApiAction(a: ActionSpec): a is ApiAction {
  return !['workload-stop', 'workload-wait', 'wait', 'sleep', 'command'].includes(a.kind);
}

/** Promote waits for the old primary's journal; a restart for the array to be ready. */
const SLOW_MS = 180_000;

const seg = encodeURIComponent;

export async function doApiAction(a: ApiAction, apis: LabApis, baseline: LinkBaseline): Promise<unknown> {
  switch (a.kind) {
    case 'link-cut':
      return apis.link(a.link).request('POST', '/v1/cut', { direction: a.direction, reset: a.reset });
    case 'link-restore':
      return apis.link(a.link).request('POST', '/v1/restore', {});
    case 'link-set': {
      const body: Record<string, unknown> = { direction: a.direction };
      if (a.latencyMs !== null) body.latencyMs = a.latencyMs;
      if (a.jitterMs !== null) body.jitterMs = a.jitterMs;
      if (a.bandwidth !== null) body.bandwidth = a.bandwidth;
      return apis.link(a.link).request('POST', '/v1/set', body);
    }
    case 'link-settings-restore': {
      const b = baseline.get(a.link);
      if (!b) throw new Error(`no baseline settings of link ${a.link}`);
      const link = apis.link(a.link);
      await link.request('POST', '/v1/set', { direction: 'a-to-b', ...b['a-to-b'] });
      return link.request('POST', '/v1/set', { direction: 'b-to-a', ...b['b-to-a'] });
    }
    case 'sp-crash':
    case 'sp-restart':
      return apis.array(a.array, SLOW_MS).request('POST', `/v1/faults/${a.kind}`, { sp: a.sp });
    case 'power-fail':
    case 'power-restore':
    case 'battery-fail':
    case 'battery-repair':
      return apis.array(a.array, SLOW_MS).request('POST', `/v1/faults/${a.kind}`, {});
    case 'array-crash':
      return afterLabChange(apis, apis.control().request('POST', `/v1/arrays/${seg(a.array)}/crash`, {}));
    case 'array-restart':
      return afterLabChange(apis, apis.control(SLOW_MS).request('POST', `/v1/arrays/${seg(a.array)}/restart`, {}));
    case 'site-fail':
      return afterLabChange(apis, apis.control().request('POST', `/v1/sites/${seg(a.site)}/fail`, {}));
    case 'site-restore':
      return afterLabChange(apis, apis.control(SLOW_MS).request('POST', `/v1/sites/${seg(a.site)}/restore`, {}));
    case 'disk-fault':
      return apis.array(a.array).request('PUT', `/v1/luns/${seg(a.lun)}/disk-fault`, diskFaultBody(a));
    case 'disk-clear':
      return apis.array(a.array).request('DELETE', `/v1/luns/${seg(a.lun)}/disk-fault`);
    case 'mirror-promote':
      return apis.array(a.array, SLOW_MS).promoteMirror(a.mirror, { force: a.force, fromSnapshot: a.fromSnapshot });
    case 'group-promote':
      return apis.array(a.array, SLOW_MS).promoteGroup(a.group, { force: a.force, fromSnapshot: a.fromSnapshot });
    case 'mirror-resolve':
      return apis.array(a.array, SLOW_MS).resolveSplitBrain(a.mirror, { survivor: a.survivor });
    case 'mirror-synchronize':
      return (await primaryOfMirror(apis, a.mirror, a.array)).synchronizeMirror(a.mirror);
    case 'mirror-fracture':
      return (await primaryOfMirror(apis, a.mirror, a.array)).fractureMirror(a.mirror);
    case 'group-pause':
      return (await primaryOfGroup(apis, a.group, a.array)).pauseGroup(a.group);
    case 'group-resume':
      return (await primaryOfGroup(apis, a.group, a.array)).resumeGroup(a.group);
  }
}

function diskFaultBody(a: Extract<ApiAction, { kind: 'disk-fault' }>): Record<string, unknown> {
  const body: Record<string, unknown> = { rate: a.rate, errno: a.errno };
  if (a.errors.length) body.errors = a.errors;
  if (a.range) body.range = a.range;
  if (a.delayMs > 0 || a.jitterMs > 0) body.delay = { ms: a.delayMs, jitterMs: a.jitterMs };
  if (a.seed !== null) body.seed = a.seed;
  if (a.loseUnflushed) body.loseUnflushed = true;
  return body;
}

/** The supervisor rewrote the state file (an array's state, perhaps its pid): read it again. */
async function afterLabChange<T>(apis: LabApis, p: Promise<T>): Promise<T> {
  try {
    return await p;
  } finally {
    apis.refresh();
  }
}

/** The array holding the mirror's primary image: `array` if given, else the first running array that says it does. */
export function primaryOfMirror(apis: LabApis, mirror: string, array: string | null): Promise<ApiClient> {
  return primaryArray(apis, array, `mirror ${mirror}`, async (c) => (await c.getMirror(mirror)).local.role === 'primary');
}

export function primaryOfGroup(apis: LabApis, group: string, array: string | null): Promise<ApiClient> {
  return primaryArray(apis, array, `group ${group}`, async (c) => (await c.getGroup(group)).role === 'primary');
}

async function primaryArray(apis: LabApis, array: string | null, what: string, isPrimary: (c: ApiClient) => Promise<boolean>): Promise<ApiClient> {
  if (array !== null) return apis.array(array, SLOW_MS);
  for (const name of apis.arrayNames().filter((n) => apis.arrayRunning(n))) {
    const c = apis.array(name, SLOW_MS);
    if (await isPrimary(c).catch(() => false)) return c; // not there, or not answering: the next array
  }
  throw new Error(`no running array holds the primary of ${what}`);
}

/** The `sanbox` command that does the same (for the report and the progress lines). */
export function commandOf(a: ActionSpec, lab: string): string {
  const L = `--lab ${lab}`;
  const arr = (x: string | null) => (x === null ? '' : ` --array ${x}`);
  switch (a.kind) {
    case 'link-cut':
      return `sanbox link cut ${a.link} --direction ${a.direction}${a.reset ? ' --reset' : ''} ${L}`;
    case 'link-restore':
      return `sanbox link restore ${a.link} ${L}`;
    case 'link-set':
      return `sanbox link set ${a.link} --direction ${a.direction}${a.latencyMs !== null ? ` --latency ${a.latencyMs}` : ''}${a.jitterMs !== null ? ` --jitter ${a.jitterMs}` : ''}${a.bandwidth !== null ? ` --bandwidth ${a.bandwidth}` : ''} ${L}`;
    case 'link-settings-restore':
      return `sanbox link set ${a.link} (latency, jitter and bandwidth as at the start) ${L}`;
    case 'sp-crash':
    case 'sp-restart':
      return `sanbox fault ${a.kind} ${a.array} ${a.sp} ${L}`;
    case 'power-fail':
    case 'power-restore':
    case 'battery-fail':
    case 'battery-repair':
      return `sanbox fault ${a.kind} ${a.array} ${L}`;
    case 'array-crash':
    case 'array-restart':
      return `sanbox fault ${a.kind} ${a.array} ${L}`;
    case 'site-fail':
    case 'site-restore':
      return `sanbox fault ${a.kind} ${a.site} ${L}`;
    case 'disk-fault': {
      const o = [a.errors.length ? ` --errors ${a.errors.join(',')}` : '', ` --rate ${a.rate}`, ` --errno ${a.errno}`];
      if (a.range) o.push(` --range ${a.range.offset}:${a.range.length}`);
      if (a.delayMs || a.jitterMs) o.push(` --delay ${a.delayMs}:${a.jitterMs}`);
      if (a.seed !== null) o.push(` --seed ${a.seed}`);
      if (a.loseUnflushed) o.push(' --lose-unflushed');
      return `sanbox fault disk ${a.array} ${a.lun}${o.join('')} ${L}`;
    }
    case 'disk-clear':
      return `sanbox fault disk ${a.array} ${a.lun} --clear ${L}`;
    case 'mirror-promote':
      return `sanbox mirror promote ${a.mirror}${a.force ? ' --force' : ''}${a.fromSnapshot ? ' --from-snapshot' : ''} --array ${a.array} ${L}`;
    case 'group-promote':
      return `sanbox group promote ${a.group}${a.force ? ' --force' : ''}${a.fromSnapshot ? ' --from-snapshot' : ''} --array ${a.array} ${L}`;
    case 'mirror-resolve':
      return `sanbox mirror resolve ${a.mirror} --survivor ${a.survivor} --array ${a.array} ${L}`;
    case 'mirror-synchronize':
      return `sanbox mirror sync ${a.mirror}${arr(a.array)} ${L}`;
    case 'mirror-fracture':
      return `sanbox mirror fracture ${a.mirror}${arr(a.array)} ${L}`;
    case 'group-pause':
    case 'group-resume':
      return `sanbox group ${a.kind.slice(6)} ${a.group}${arr(a.array)} ${L}`;
    case 'workload-stop':
      return `(stop workload ${a.workload})`;
    case 'workload-wait':
      return `(wait for workload ${a.workload})`;
    case 'wait':
      return `(wait for ${a.condition.kind})`;
    case 'sleep':
      return `sleep ${a.ms / 1000}`;
    case 'command':
      return a.run;
  }
}
