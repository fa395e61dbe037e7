/**
 * Gathers the views of a volume set from every array of a running lab that holds it, each
 * request with a deadline, and hands them to the pure ./vs-state.ts. An array that does not
 * answer (down, crashed, too slow) is a fact of the answer, not an exception.
 *
 * The lab's volume sets: its consistency groups, and its mirrors that are in no group (a group's
 * members move with it). Home site: the site of the lab file's primary array.
 */
import { ApiClient, ClientError } from '../control/index.js';
import type { LabState } from '../cli/lab.js';
import { arrayDownMessage } from '../cli/target.js';
import type { MirrorView } from '../replication/mirror/types.js';
import { volumeSetState, type Answer, type GroupViews, type VsReading } from './vs-state.js';

/** How long one array may take to answer one request of a reading. */
export const ARRAY_DEADLINE_MS = 3000;

export interface LabVolumeSet {
  name: string;
  kind: 'mirror' | 'group';
  /** the lab file's primary array first, then the secondaries' */
  arrays: string[];
  homeSite: string;
  /** a group's member mirrors */
  members?: string[];
}

/** The site of an array of the lab: its own `site`, the lab's `sites:`, else the array's name. */
export function siteOf(lab: LabState, array: string): string {
  return lab.arrays.find((a) => a.name === array)?.site ?? lab.sites?.find((s) => s.arrays.includes(array))?.name ?? array;
}

const arrayOf = (ref: string): string => ref.slice(0, ref.indexOf(':') < 0 ? ref.length : ref.indexOf(':'));
const unique = (xs: string[]): string[] => [...new Set(xs)];

/** Every volume set of the lab: groups, then mirrors in no group. */
export function labVolumeSets(lab: LabState): LabVolumeSet[] {
  const grouped = new Set((lab.groups ?? []).flatMap((g) => g.members));
  const groups: LabVolumeSet[] = (lab.groups ?? []).map((g) => ({ name: g.name, kind: 'group', arrays: unique([g.primary, ...g.secondaries]), homeSite: siteOf(lab, g.primary), members: g.members }));
  const mirrors: LabVolumeSet[] = (lab.mirrors ?? [])
    .filter((m) => !grouped.has(m.name))
    .map((m) => ({ name: m.name, kind: 'mirror', arrays: unique([arrayOf(m.primary), ...m.secondaries.map(arrayOf)]), homeSite: siteOf(lab, arrayOf(m.primary)) }));
  return [...groups, ...mirrors];
}

/** The group a mirror of the lab belongs to, if any. */
export function groupOfMirror(lab: LabState, mirror: string): string | undefined {
  return (lab.groups ?? []).find((g) => g.members.includes(mirror))?.name;
}

export interface ReadOptions {
  /** overrides the lab state file's API tokens */
  token?: string;
  deadlineMs?: number;
}

/** A client of one array of the lab, or why there is none (not in the lab state, down). */
export function arrayClient(lab: LabState, array: string, o: ReadOptions = {}): ApiClient | { error: 'unreachable' | 'error'; message: string } {
  const a = lab.arrays.find((x) => x.name === array);
  if (!a) return { error: 'error', message: `array ${array} is not in the state of lab ${lab.lab}` };
  const down = arrayDownMessage(lab, a);
  if (down) return { error: 'unreachable', message: down };
  return new ApiClient({ url: a.api.url, token: o.token ?? a.api.token, timeoutMs: o.deadlineMs ?? ARRAY_DEADLINE_MS });
}

function failure<V>(array: string, site: string, e: unknown): Answer<V> {
  if (e instanceof ClientError && e.unreachable) return { array, site, error: 'unreachable', message: e.message };
  if (e instanceof ClientError && e.status === 404) return { array, site, error: 'not-found', message: e.message };
  return { array, site, error: 'error', message: (e as Error).message ?? String(e) };
}

async function ask<V>(lab: LabState, array: string, o: ReadOptions, fn: (c: ApiClient) => Promise<V>): Promise<Answer<V>> {
  const site = siteOf(lab, array);
  const c = arrayClient(lab, array, o);
  if (!(c instanceof ApiClient)) return { array, site, ...c };
  try {
    return { array, site, view: await fn(c) };
  } catch (e) {
    return failure(array, site, e);
  }
}

/** A group's view on one array, and on its primary the member mirrors' views too. */
async function groupViews(c: ApiClient, name: string): Promise<GroupViews> {
  const group = await c.getGroup(name);
  const members: MirrorView[] = group.role === 'primary' ? await Promise.all(group.members.map((m) => c.getMirror(m.name))) : [];
  return { group, members };
}

/** The state of one volume set of the lab, from all its arrays (asked in parallel). */
export async function readVolumeSet(lab: LabState, set: LabVolumeSet, o: ReadOptions = {}): Promise<VsReading> {
  if (set.kind === 'mirror') {
    const answers = await Promise.all(set.arrays.map((a) => ask(lab, a, o, (c) => c.getMirror(set.name))));
    return volumeSetState({ kind: 'mirror', name: set.name, homeSite: set.homeSite, answers });
  }
  const answers = await Promise.all(set.arrays.map((a) => ask(lab, a, o, (c) => groupViews(c, set.name))));
  return volumeSetState({ kind: 'group', name: set.name, homeSite: set.homeSite, answers });
}
