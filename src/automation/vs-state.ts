/**
 * The state of a volume set (a plain mirror or a consistency group), computed from the answers of
 * ALL its arrays (issue 14, seed 001). Pure: ./client.ts asks the arrays, this decides.
 *
 * First who holds production, from the roles every array reports (in this order):
 * 1. the set is on no array: Unknown `not-found`;
 * 2. an array did not answer: RecoverySiteForceSwap `other-side-unreachable` when an array at
 *    another site than home is primary and no array of the home site answers (the old primary
 *    cannot say it stepped down: it may still hold the set); otherwise Unknown
 *    `array-unreachable` (or `array-error` when one answered with an error: a silent array may
 *    have been promoted by force, never guessed);
 * 3. the set is missing on some arrays only: Unknown `inconsistent-answers`;
 * 4. no array is primary: Unknown `no-primary`;
 * 5. two arrays are primary: RecoverySiteForceSwap `two-primaries` when the one with the higher
 *    epoch is not at home, else Unknown `two-primaries`;
 * 6. the arrays name different primaries (mirror records): Unknown `inconsistent-answers`;
 * 7. split brain reported (both sides took writes): RecoverySiteForceSwap `split-brain` when
 *    production is not at home, else Unknown `split-brain`.
 * Then the primary's view is classified (./vs-condition.ts) and looked up in ./vs-table.ts;
 * a combination not in the table is Unknown `unmapped`.
 */
import type { GroupView } from '../replication/group/control.js';
import type { MirrorView } from '../replication/mirror/types.js';
import { groupCondition, mirrorCondition, type Classified, type MemberCondition } from './vs-condition.js';
import { lookupState, type Condition, type VsMode, type VsState } from './vs-table.js';

export * from './vs-table.js';

/** One array's answer: its view, or why there is none (unreachable: no API answered in time). */
export type Answer<V> = { array: string; site: string; view: V } | { array: string; site: string; error: 'unreachable' | 'not-found' | 'error'; message: string };

/** A group's view and its member mirrors' views from the same array (members: the primary's only). */
export interface GroupViews {
  group: GroupView;
  members: MirrorView[];
}

export type VsInput = { kind: 'mirror'; name: string; homeSite: string; answers: Answer<MirrorView>[] } | { kind: 'group'; name: string; homeSite: string; answers: Answer<GroupViews>[] };

export interface VsReading {
  set: string;
  kind: 'mirror' | 'group';
  state: VsState;
  /** stable keyword: the condition for a table state, else why (not-found, array-unreachable, ...) */
  reason: string;
  detail: string;
  homeSite: string;
  /** the site of the primary, null when unknown */
  productionSite: string | null;
  primaryArray: string | null;
  /** `east->west`: the production site to the secondaries' sites; null when unknown */
  direction: string | null;
  /** sync (a mirror, a synchronous group) or async; null when no view answered */
  mode: VsMode | null;
  condition: Condition | null;
  members?: MemberCondition[];
}

type Viewed<V> = Extract<Answer<V>, { view: V }>;

interface Facts<V> {
  role(v: V): 'primary' | 'secondary';
  epoch(v: V): number;
  /** the array the view's record names as primary (null: the record does not say) */
  namedPrimary(v: V): string | null;
  splitBrain(v: V): boolean;
  mode(v: V): VsMode;
  /** the primary's view classified (./vs-condition.ts) */
  condition(v: V): Classified & { members?: MemberCondition[] };
}

const MIRROR: Facts<MirrorView> = {
  role: (v) => v.local.role,
  epoch: (v) => v.record.epoch,
  namedPrimary: (v) => v.record.images.find((i) => i.role === 'primary')?.array ?? null,
  splitBrain: (v) => v.splitBrain,
  mode: () => 'sync',
  condition: (v) => mirrorCondition(v),
};

const GROUP: Facts<GroupViews> = {
  role: (v) => v.group.role,
  epoch: (v) => v.group.record.epoch,
  namedPrimary: () => null,
  splitBrain: (v) => v.members.some((m) => m.splitBrain),
  mode: (v) => (v.group.record.mode === 'synchronous' ? 'sync' : 'async'),
  condition: (v) => groupCondition(v.group, v.members),
};

export function volumeSetState(input: VsInput): VsReading {
  return input.kind === 'mirror' ? decide(input.name, 'mirror', input.homeSite, input.answers, MIRROR) : decide(input.name, 'group', input.homeSite, input.answers, GROUP);
}

function decide<V>(set: string, kind: 'mirror' | 'group', homeSite: string, answers: Answer<V>[], f: Facts<V>): VsReading {
  const base: VsReading = { set, kind, state: 'Unknown', reason: '', detail: '', homeSite, productionSite: null, primaryArray: null, direction: null, mode: null, condition: null };
  const unknown = (reason: string, detail: string): VsReading => ({ ...base, reason, detail });
  const viewed = answers.filter((a): a is Viewed<V> => 'view' in a);
  const failed = answers.filter((a) => !('view' in a));
  if (answers.length === 0 || answers.every((a) => 'error' in a && a.error === 'not-found')) return unknown('not-found', `no ${kind} ${set} on ${answers.map((a) => a.array).join(', ') || 'any array'}`);
  const primaries = viewed.filter((a) => f.role(a.view) === 'primary').sort((a, b) => f.epoch(b.view) - f.epoch(a.view));
  const at = (a: Viewed<V>): VsReading => production(base, a, answers, f);
  const silent = failed.filter((a) => 'error' in a && a.error !== 'not-found');
  if (silent.length) {
    const top = primaries[0];
    const homeSilent = answers.filter((a) => a.site === homeSite).every((a) => !('view' in a));
    if (top && top.site !== homeSite && homeSilent) return force(at(top), 'other-side-unreachable', `primary at ${top.array} (site ${top.site}); ${failedText(silent)}: the old primary cannot say it stepped down`);
    return unknown(silent.every((a) => 'error' in a && a.error === 'unreachable') ? 'array-unreachable' : 'array-error', failedText(silent));
  }
  if (failed.length) return unknown('inconsistent-answers', `${kind} ${set} is missing on ${failed.map((a) => a.array).join(', ')} but present on ${viewed.map((a) => a.array).join(', ')}`);
  if (primaries.length === 0) return unknown('no-primary', `no array holds ${set} as primary (${viewed.map((a) => `${a.array} secondary`).join(', ')})`);
  const top = primaries[0]!;
  if (primaries.length > 1) {
    const text = `${primaries.map((a) => `${a.array} (epoch ${f.epoch(a.view)})`).join(' and ')} are both primary`;
    return top.site !== homeSite ? force(at(top), 'two-primaries', text) : unknown('two-primaries', `${text}; the newer is at the home site`);
  }
  const disagree = viewed.filter((a) => f.namedPrimary(a.view) !== null && f.namedPrimary(a.view) !== top.array);
  if (disagree.length) return unknown('inconsistent-answers', `${top.array} is primary but ${disagree.map((a) => `${a.array} names ${f.namedPrimary(a.view)}`).join(', ')}`);
  if (viewed.some((a) => f.splitBrain(a.view))) {
    const text = 'split brain: both sides took writes (sanbox mirror resolve)';
    return top.site !== homeSite ? force(at(top), 'split-brain', text) : unknown('split-brain', text);
  }
  return classify(at(top), top, f);
}

function failedText(failed: Answer<unknown>[]): string {
  return failed.map((a) => `${a.array} (site ${a.site}): ${'error' in a ? a.message : ''}`).join('; ');
}

/** Production at this primary: site, direction, mode. */
function production<V>(base: VsReading, p: Viewed<V>, answers: Answer<V>[], f: Facts<V>): VsReading {
  const others = [...new Set(answers.filter((a) => a.array !== p.array).map((a) => a.site))];
  return { ...base, productionSite: p.site, primaryArray: p.array, direction: `${p.site}->${others.join(',') || '-'}`, mode: f.mode(p.view) };
}

const force = (r: VsReading, reason: string, detail: string): VsReading => ({ ...r, state: 'RecoverySiteForceSwap', reason, detail });

function classify<V>(r: VsReading, p: Viewed<V>, f: Facts<V>): VsReading {
  const c = f.condition(p.view);
  const where = r.productionSite === r.homeSite ? 'home' : 'recovery';
  const state = lookupState(r.mode!, where, c.condition);
  const withC: VsReading = { ...r, condition: c.condition, ...(c.members ? { members: c.members } : {}) };
  if (!state) return { ...withC, reason: 'unmapped', detail: `not in the table: ${r.mode} mode, production ${where}, ${c.condition} (${c.detail})` };
  return { ...withC, state, reason: c.condition, detail: c.detail };
}
