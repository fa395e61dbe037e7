/**
 * What replication of a volume set is doing, classified from its primary's API view into one
 * Condition of ./vs-table.ts (with a detail line). Pure. Only the primary's view counts here: it
 * alone keeps the links and the fracture logs (a secondary's view holds the record copy).
 */
import type { GroupView } from '../replication/group/control.js';
import type { ImageView, MirrorView } from '../replication/mirror/types.js';
import type { Condition } from './vs-table.js';

export interface Classified {
  condition: Condition;
  detail: string;
}

/** Worst first: the condition of a set of images, or of a group's members, is the first that holds. */
const IMAGE_ORDER: readonly Condition[] = ['promote-fractured', 'unsynchronized', 'suspended', 'copying', 'duplex'];

const linkConnected = (i: ImageView): boolean => i.link === 'connected' || i.link === 'local';

const pct = (done: number, total: number): number => (total > 0 ? Math.floor((done * 100) / total) : 0);

/** One secondary image, as the primary sees it. */
export function imageCondition(i: ImageView): Classified {
  const id = i.imageId;
  if (i.fractured && i.fractureReason === 'promote') return { condition: 'promote-fractured', detail: `${id} fractured by a promote (to be resynchronized)` };
  if (i.state === 'UNSYNCHRONIZED' && i.resync === null) return { condition: 'unsynchronized', detail: `${id} UNSYNCHRONIZED, no copy running` };
  if (i.fractured) return { condition: 'suspended', detail: `${id} ${i.state ?? '-'} fractured (${i.fractureReason ?? '?'})` };
  if (i.reachability === 'UNREACHABLE') return { condition: 'suspended', detail: `${id} ${i.state ?? '-'} unreachable` };
  if (!linkConnected(i)) return { condition: 'suspended', detail: `${id} ${i.state ?? '-'} link ${i.link}` };
  if (i.resync !== null) return { condition: 'copying', detail: `${id} resync ${pct(i.resync.bytesDone, i.resync.bytesTotal)}%` };
  if (i.state === 'SYNCHRONIZING') return { condition: 'copying', detail: `${id} SYNCHRONIZING ${i.syncProgress ? pct(i.syncProgress.bytesDone, i.syncProgress.bytesTotal) : 0}%` };
  if (i.state === 'SYNCHRONIZED' || i.state === 'CONSISTENT') return { condition: 'duplex', detail: `${id} ${i.state}` };
  return { condition: 'unsynchronized', detail: `${id} ${i.state ?? 'no state'}` };
}

/** The worst of several (images, members); `fallback` when there are none. */
function worst(items: Classified[], fallback: Classified): Classified {
  // A member ATTENTION, INACTIVE (or with no secondaries) is not an image condition: it wins, named.
  const other = items.find((x) => !IMAGE_ORDER.includes(x.condition));
  if (other) return other;
  for (const c of IMAGE_ORDER) {
    const hits = items.filter((x) => x.condition === c);
    if (hits.length) return { condition: c, detail: hits.map((h) => h.detail).join(', ') };
  }
  return fallback;
}

/** A mirror's view on its primary array. */
export function mirrorCondition(view: MirrorView): Classified {
  if (view.record.state === 'ATTENTION') return { condition: 'attention', detail: 'mirror ATTENTION: the minimum conditions are not met' };
  if (view.record.state === 'INACTIVE') return { condition: 'inactive', detail: 'mirror INACTIVE: deactivated (no host access)' };
  const secs = view.images.filter((i) => i.role === 'secondary');
  if (secs.length === 0) return { condition: 'no-secondaries', detail: 'no secondary image' };
  return worst(secs.map(imageCondition), { condition: 'no-secondaries', detail: 'no secondary image' });
}

export interface MemberCondition extends Classified {
  name: string;
}

/** A group's members, each from its mirror view on the group's primary (a missing view: unsynchronized, said so). */
export function memberConditions(group: GroupView, members: MirrorView[]): MemberCondition[] {
  return group.members.map((m) => {
    const v = members.find((x) => x.record.mirrorId === m.mirrorId || x.record.name === m.name);
    const c = v ? mirrorCondition(v) : { condition: 'unsynchronized' as const, detail: 'no view of the member on the primary' };
    return { name: m.name, ...c };
  });
}

/** A synchronous group: its members take the mirrors' synchronous path (pause and senders carry nothing). */
function syncGroupCondition(group: GroupView, ms: MemberCondition[]): Classified {
  const r = group.record;
  if (r.bypass.on) return { condition: 'bypass', detail: `bypass (${r.bypass.reason ?? '?'}): changes go to the fracture logs` };
  return worst(ms.map(prefixed), { condition: 'no-secondaries', detail: 'no members' });
}

const prefixed = (m: MemberCondition): Classified => ({ condition: m.condition, detail: `${m.name}: ${m.detail}` });

/** An asynchronous or near-synchronous group: the journal, its senders, then its members. */
function asyncGroupCondition(group: GroupView, ms: MemberCondition[]): Classified {
  const r = group.record;
  if (r.bypass.on) return { condition: 'bypass', detail: `bypass (${r.bypass.reason ?? '?'}): journaling stopped, changes go to the fracture logs` };
  if (r.refresh?.running) return { condition: 'refresh', detail: `refresh ${pct(r.refresh.bytesDone, r.refresh.bytesTotal)}%: the secondaries are incoherent` };
  if (r.paused) return { condition: 'paused', detail: `the sender is paused: the secondaries hold the journal through the last batch sent (${sendersText(group)})` };
  const bad = ms.find((m) => m.condition === 'promote-fractured' || m.condition === 'unsynchronized' || m.condition === 'attention' || m.condition === 'inactive');
  if (bad) return prefixed(bad);
  const sender = group.senders.find((s) => s.state !== 'running');
  if (sender) return { condition: 'sender-down', detail: `sender to ${sender.array} ${sender.state}${sender.lastError ? `: ${sender.lastError}` : ''}` };
  const m = worst(ms.map(prefixed), { condition: 'duplex', detail: '' });
  if (m.condition !== 'duplex') return m;
  if (group.incoherent !== null) return { condition: 'incoherent', detail: group.incoherent };
  return { condition: 'journaling', detail: `journaling (${sendersText(group)})` };
}

function sendersText(group: GroupView): string {
  return group.senders.map((s) => `${s.array} ${s.state} acked through ${s.ackedThrough}`).join(', ') || 'no sender';
}

/** A group's view on its primary array, with its members' mirror views from the same array. */
export function groupCondition(group: GroupView, members: MirrorView[]): Classified & { members: MemberCondition[] } {
  const ms = memberConditions(group, members);
  if (group.record.deleted) return { condition: 'deleted', detail: 'the group was deleted', members: ms };
  const c = group.record.mode === 'synchronous' ? syncGroupCondition(group, ms) : asyncGroupCondition(group, ms);
  return { ...c, members: ms };
}
