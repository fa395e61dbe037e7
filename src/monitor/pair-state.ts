/**
 * What the monitor makes of one poll: a mirror's or a consistency group's view, as the array's
 * API returns it, classified into the seed's five pair states ([0007]). Pure functions: the
 * daemon polls, this decides what it saw, ./decision.ts decides what to do about it.
 *
 * | seed            | HORCM | sanbox (first match wins, in this order)                              |
 * |-----------------|-------|------------------------------------------------------------------------|
 * | error-suspended | PSUE  | mirror ATTENTION ('attention'); split brain ('split-brain'); a         |
 * |                 |       | secondary fractured by a promote ('promote-fracture'); a secondary     |
 * |                 |       | UNSYNCHRONIZED with no resync running ('unsynchronized': a full copy   |
 * |                 |       | an operator starts). Group: any member so ('<member>:<reason>')        |
 * | deleted         | SMPL  | no secondary image ('no-secondaries'); group deleted ('group-deleted');|
 * |                 |       | not on the array at all (deletedReading: 'not-found')                  |
 * | resync          | COPY  | a secondary SYNCHRONIZING or with a resync running ('synchronizing').  |
 * |                 |       | Group: bypass after overflow with no member fractured ('bypass-resync'),|
 * |                 |       | refresh ('refresh'), a member resyncing ('member-resync'), incoherent  |
 * |                 |       | ('incoherent')                                                          |
 * | suspended       | PSUS  | a secondary fractured ('fractured-link', 'fractured-admin'); mirror     |
 * |                 |       | INACTIVE ('inactive'); a secondary unreachable or its link not          |
 * |                 |       | connected ('unreachable'). Group: 'paused', 'bypass-operator',          |
 * |                 |       | 'bypass-overflow' (members fractured), a sender not running             |
 * |                 |       | ('sender-<state>'), a member suspended ('<member>:<reason>')            |
 * | connected       | PAIR  | every secondary SYNCHRONIZED or CONSISTENT ('in-sync'); group           |
 * |                 |       | replicating ('replicating')                                             |
 *
 * Operator suspensions (admin fracture, INACTIVE, pause, bypass by the operator) set byOperator:
 * automatic recovery must not undo what a person did. On a secondary instance the link fields of
 * the images mean nothing (only the primary keeps links), so linkUp is false there and the record
 * copy alone is classified.
 */
import type { GroupView } from '../replication/group/control.js';
import type { ImageView, MirrorView } from '../replication/mirror/types.js';
import type { PairReading, PairState } from './types.js';

/** The part of a reading a rule decides; `note` goes to the detail line. */
interface Verdict {
  pair: PairState;
  reason: string;
  byOperator: boolean;
  note?: string;
}

const verdict = (pair: PairState, reason: string, note?: string, byOperator = false): Verdict => ({ pair, reason, byOperator, ...(note ? { note } : {}) });

const pct = (done: number, total: number): number => (total > 0 ? Math.floor((done * 100) / total) : 0);

/** Percent of a running copy of the image, null when none runs. */
function progress(i: ImageView): number | null {
  if (i.resync) return pct(i.resync.bytesDone, i.resync.bytesTotal);
  if (i.state === 'SYNCHRONIZING' && i.syncProgress) return pct(i.syncProgress.bytesDone, i.syncProgress.bytesTotal);
  if (i.state === 'SYNCHRONIZING') return 0;
  return null;
}

/** The primary side's link to the image is up (only meaningful on the primary instance). */
const linkConnected = (i: ImageView): boolean => i.link === 'connected' || i.link === 'local';

/** `bravo:0 CONSISTENT fractured(link) 37%`; `spaced` writes `fractured (link)` (the detail line's form). */
function imageText(i: ImageView, onPrimary: boolean, spaced: boolean): string {
  const words = [i.imageId, i.state ?? '-'];
  if (i.fractured) words.push(spaced ? `fractured (${i.fractureReason ?? '?'})` : `fractured(${i.fractureReason ?? '?'})`);
  if (i.reachability === 'UNREACHABLE') words.push('unreachable');
  else if (onPrimary && !linkConnected(i)) words.push(`link ${i.link}`);
  const p = progress(i);
  if (p !== null) words.push(`${p}%`);
  return words.join(' ');
}

function mirrorVerdict(view: MirrorView, secs: ImageView[], onPrimary: boolean): Verdict {
  const state = view.record.state;
  if (state === 'ATTENTION') return verdict('error-suspended', 'attention', 'the minimum conditions are not met');
  if (view.splitBrain) return verdict('error-suspended', 'split-brain', 'split brain: both sides took writes');
  if (secs.length === 0) return verdict('deleted', 'no-secondaries', 'no secondary images');
  const promoted = secs.find((i) => i.fractured && i.fractureReason === 'promote');
  if (promoted) return verdict('error-suspended', 'promote-fracture', `${promoted.imageId} fractured by a promote`);
  const unsynced = secs.find((i) => i.state === 'UNSYNCHRONIZED' && i.resync === null);
  if (unsynced) return verdict('error-suspended', 'unsynchronized', `${unsynced.imageId} needs a full copy`);
  const running = secs.find((i) => i.resync !== null || i.state === 'SYNCHRONIZING');
  if (running) return resyncVerdict(running);
  return suspendedVerdict(view, secs, onPrimary) ?? inSyncVerdict(secs);
}

function resyncVerdict(i: ImageView): Verdict {
  const done = i.resync?.bytesDone ?? i.syncProgress?.bytesDone ?? 0;
  const total = i.resync?.bytesTotal ?? i.syncProgress?.bytesTotal ?? 0;
  return verdict('resync', 'synchronizing', `${i.imageId} ${pct(done, total)}% (${done}/${total} bytes)`);
}

/**
 * INACTIVE, fractured, or unreachable. An admin fracture among link fractures counts as the
 * operator's: a resync would undo it too (synchronize takes every fractured secondary).
 */
function suspendedVerdict(view: MirrorView, secs: ImageView[], onPrimary: boolean): Verdict | null {
  const fractured = secs.filter((i) => i.fractured);
  // A deactivated mirror is the operator's whatever else holds: autorecover must not resync it.
  if (view.record.state === 'INACTIVE') return verdict('suspended', 'inactive', 'deactivated by the operator', true);
  if (fractured.some((i) => i.fractureReason === 'admin')) return verdict('suspended', 'fractured-admin', 'fractured by the operator', true);
  if (fractured.length > 0) return verdict('suspended', 'fractured-link', `${fractured.map((i) => i.imageId).join(', ')} fractured by a link failure`);
  const lost = secs.find((i) => i.reachability === 'UNREACHABLE' || (onPrimary && !linkConnected(i)));
  if (lost) return verdict('suspended', 'unreachable', `${lost.imageId} cannot be reached`);
  return null;
}

function inSyncVerdict(secs: ImageView[]): Verdict {
  const odd = secs.find((i) => i.state !== 'SYNCHRONIZED' && i.state !== 'CONSISTENT');
  return odd ? verdict('unknown', 'unclassified', `${odd.imageId} ${odd.state ?? '-'}`) : verdict('connected', 'in-sync');
}

/** A mirror's view. On a secondary instance: linkUp false, the record copy classified without links. */
export function classifyMirror(view: MirrorView): PairReading {
  const onPrimary = view.local.role === 'primary';
  const secs = view.images.filter((i) => i.role === 'secondary');
  const v = mirrorVerdict(view, secs, onPrimary);
  const primary = view.images.find((i) => i.role === 'primary') ?? null;
  const pvolName = primary && primary.imageId === view.local.imageId ? `${primary.array}:${view.local.lunName}` : (primary?.imageId ?? '-');
  const images = secs.map((i) => imageText(i, onPrimary, true)).join(', ') || 'no secondary images';
  const notes = [v.note, onPrimary ? undefined : 'this instance holds the secondary image (links not known here)'].filter(Boolean);
  return {
    kind: 'mirror',
    pair: v.pair,
    reason: v.reason,
    detail: [`${view.record.state}`, images, ...notes].join('; '),
    role: v.pair === 'deleted' ? null : view.local.role,
    epoch: view.record.epoch,
    primaryArray: primary?.array ?? null,
    pvol: `${pvolName} ${view.record.state}`,
    svol: secs.map((i) => imageText(i, onPrimary, false)).join(', ') || '-',
    linkUp: onPrimary && secs.length > 0 && secs.every((i) => i.link === 'connected'),
    byOperator: v.byOperator,
  };
}

interface Member {
  name: string;
  reading: PairReading;
}

const prefixed = (m: Member, pair: PairState): Verdict => ({ pair, reason: `${m.name}:${m.reading.reason}`, byOperator: m.reading.byOperator, note: `${m.name}: ${m.reading.detail}` });

function groupVerdict(view: GroupView, members: Member[]): Verdict {
  const r = view.record;
  if (r.deleted) return verdict('deleted', 'group-deleted', 'the group was deleted');
  const broken = members.find((m) => m.reading.pair === 'error-suspended');
  if (broken) return prefixed(broken, 'error-suspended');
  if (r.paused) return verdict('suspended', 'paused', 'paused by the operator', true);
  if (r.bypass.on) return bypassVerdict(view, members);
  if (r.refresh?.running) return verdict('resync', 'refresh', `refresh ${pct(r.refresh.bytesDone, r.refresh.bytesTotal)}% (${r.refresh.bytesDone}/${r.refresh.bytesTotal} bytes)`);
  const resyncing = members.find((m) => m.reading.pair === 'resync');
  if (resyncing) return { ...prefixed(resyncing, 'resync'), reason: 'member-resync' };
  const sender = view.senders.find((s) => s.state !== 'running');
  if (sender) return verdict('suspended', `sender-${sender.state}`, `sender to ${sender.array} ${sender.state}${sender.lastError ? `: ${sender.lastError}` : ''}`);
  const suspended = members.find((m) => m.reading.pair === 'suspended');
  if (suspended) return prefixed(suspended, 'suspended');
  if (view.incoherent !== null) return verdict('resync', 'incoherent', view.incoherent);
  return verdict('connected', 'replicating');
}

/**
 * Bypass: the operator's (or with no reason given: treated as the operator's, the safe side), or
 * after an overflow, where fractured members need a resync from their fracture logs.
 */
function bypassVerdict(view: GroupView, members: Member[]): Verdict {
  if (view.record.bypass.reason !== 'overflow') return verdict('suspended', 'bypass-operator', 'bypass turned on by the operator', true);
  const fractured = members.find((m) => m.reading.pair === 'suspended');
  if (fractured) return verdict('suspended', 'bypass-overflow', `writelog overflow; ${fractured.name}: ${fractured.reading.detail}`);
  return verdict('resync', 'bypass-resync', 'writelog overflow: the members resynchronize from their fracture logs');
}

function groupStateText(view: GroupView): string {
  const r = view.record;
  const words: string[] = [];
  if (r.paused) words.push('paused');
  if (r.bypass.on) words.push(`bypass(${r.bypass.reason ?? '?'})`);
  if (r.refresh?.running) words.push(`refresh ${pct(r.refresh.bytesDone, r.refresh.bytesTotal)}%`);
  return words.length ? words.join(' ') : 'replicating';
}

/** `bravo running acked 1234, charlie down acked 1200`; a secondary instance: its receiver. */
function sendersText(view: GroupView): string {
  if (view.senders.length) return view.senders.map((s) => `${s.array} ${s.state} acked ${s.ackedThrough}`).join(', ');
  if (view.receiver) return `receiver next ${view.receiver.nextExpected} applied ${view.receiver.applied}`;
  return '-';
}

function groupLinkUp(view: GroupView, members: Member[]): boolean {
  if (view.role !== 'primary') return false;
  if (view.senders.length) return view.senders.every((s) => s.state === 'running');
  return members.length > 0 && members.every((m) => m.reading.linkUp);
}

/** A group's view and its member mirrors' views from the same array (empty when unknown). */
export function classifyGroup(view: GroupView, members: MirrorView[]): PairReading {
  const ms: Member[] = members.map((m) => ({ name: m.record.name, reading: classifyMirror(m) }));
  const v = groupVerdict(view, ms);
  const state = groupStateText(view);
  const senders = sendersText(view);
  const notes = [v.note, view.role === 'primary' ? undefined : 'this instance holds the secondary side'].filter(Boolean);
  return {
    kind: 'group',
    pair: v.pair,
    reason: v.reason,
    detail: [`${view.record.mode} ${state}`, senders, ...notes].join('; '),
    role: v.pair === 'deleted' ? null : view.role,
    epoch: view.record.epoch,
    primaryArray: ms.find((m) => m.reading.primaryArray !== null)?.reading.primaryArray ?? null,
    pvol: `${view.record.name} ${view.record.mode} ${state}`,
    svol: senders,
    linkUp: groupLinkUp(view, ms),
    byOperator: v.byOperator,
  };
}

/** The mirror or group is not on the array (any more): the seed's deleted (SMPL). */
export function deletedReading(kind: PairReading['kind']): PairReading {
  return { kind, pair: 'deleted', reason: 'not-found', detail: `no such ${kind} on the array`, role: null, epoch: null, primaryArray: null, pvol: '-', svol: '-', linkUp: false, byOperator: false };
}
