/**
 * How `sanbox group` prints groups: the status block of one group, the `list` rows, and what a
 * promote says of the copy it made primary. Pure functions of the API's views.
 */
import type { GroupView } from '../control/index.js';
import { freezeWords, groupStateWords, refreshWaits } from '../replication/group/index.js';
import { table } from './common.js';
import { ibytes } from './mirror-render.js';

/** A group as the lab sees it: the primary's view, and each secondary array's receiver. */
export interface GroupStatus extends GroupView {
  /** the array this view is from (lab mode) */
  array?: string;
  receivers: Array<{ array: string; nextExpected: number; applied: number; batches: number }>;
}

export function ageText(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return '0 s';
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 120 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** A time of the array's clock as local HH:MM:SS.d; the full ISO time when it is a day old or more. */
function clockText(iso: string, ageMs: number): string {
  if (ageMs >= 86_400_000) return iso;
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${Math.floor(d.getMilliseconds() / 100)}`;
}

/**
 * What `promote` says of the copy's age, from the view's `promotion` (the receiver's own
 * observations: the old primary may have acknowledged writes after them that never arrived).
 */
export function promotionText(v: GroupView): string[] {
  const p = v.promotion;
  if (!p) return [];
  if (p.fromSnapshot) {
    const f = p.fromSnapshot;
    return [
      `every member was rolled back to snapshot ${f.snapshot} first: the copy is the group as of ${clockText(f.created, f.ageSeconds * 1000)} (${ageText(f.ageSeconds * 1000)} before the promote, when the resync began${f.groupSeq !== null ? `; through journal record ${f.groupSeq}` : ''}): a consistent copy; host writes the old primary acknowledged after that are not in it`,
    ];
  }
  if (!p.consistent) {
    const which = p.inconsistentMembers.map((m) => `${m.name} ${m.state ?? 'unknown'}`).join(', ');
    return [`NOT a consistent copy: ${which} (a resynchronization was under way or never done): the images mix regions of different times; check the data before using it`];
  }
  if (p.appliedThrough === null) return ['no receiver was open here: what the copy holds and how old it is are unknown'];
  // Synchronous writes reach the copy through the mirrors, not the journal: its position says nothing of their age.
  if (v.record.mode === 'synchronous') return ['the group was synchronous: host writes reached this copy through the mirrors, not the journal, so no journal age applies'];
  return [appliedText(p.appliedThrough, p.lastAppliedAt, p.secondsSinceLastApply), ...contactText(p.lastContactAt, p.at)];
}

function appliedText(through: number, lastAt: string | null, secs: number | null): string {
  const lost = 'host writes the old primary acknowledged after that are not in it';
  if (lastAt === null || secs === null) {
    if (through === 0) return 'no journal record was ever applied here: the copy holds what the initial synchronization or the last resync left; its age is unknown';
    return `the copy holds the primary's writes through record ${through}; none was applied since this array started, so its age is unknown: ${lost}`;
  }
  return `the copy holds the primary's writes through record ${through}, last applied ${ageText(secs * 1000)} before the promote (at ${clockText(lastAt, secs * 1000)}): ${lost}`;
}

function contactText(contactAt: string | null, at: string): string[] {
  if (contactAt === null) return [];
  const ms = Date.parse(at) - Date.parse(contactAt);
  return [`the old primary's sender last reached this array ${ageText(ms)} before the promote (a batch or a hello)`];
}

/** The human status block of one group. */
export function groupText(v: GroupView & { array?: string; receivers?: GroupStatus['receivers'] }): string {
  const r = v.record;
  const lines = [`group ${r.name}  ${r.mode}  id ${r.groupId}  ${v.array ? `${v.array}: ` : 'here: '}${v.role}`];
  const row = (k: string, text: string) => lines.push(`  ${k.padEnd(10)} ${text}`);
  row('state', groupStateWords({ paused: r.paused, bypass: r.bypass, refresh: r.refresh, metrics: v.metrics }));
  if (r.mode === 'near-synchronous') {
    const b = [r.nearSync.maxEntries ? `${r.nearSync.maxEntries} entries (resume below ${r.nearSync.lowEntries})` : '', r.nearSync.maxBytes ? `${ibytes(r.nearSync.maxBytes)} (resume below ${ibytes(r.nearSync.lowBytes)})` : ''].filter(Boolean);
    row('bound', `host writes wait at ${b.join(' or ') || 'no bound'}`);
  }
  const secs = [...new Set(v.members.flatMap((m) => m.secondaries))];
  row('members', `${v.members.map((m) => `${m.name} (LUN ${m.lun})`).join(', ')} -> ${secs.join(', ') || 'no secondaries'}`);
  const fz = freezeWords(r.mode, r.freeze);
  if (fz) row('freeze', fz);
  row('bypass', r.bypass.on ? `on (${r.bypass.reason ?? '?'}${r.bypass.since ? ` since ${r.bypass.since}` : ''}): changes go to the fracture logs` : 'off');
  if (r.refresh) {
    const pct = r.refresh.bytesTotal > 0 ? Math.floor((100 * r.refresh.bytesDone) / r.refresh.bytesTotal) : 100;
    row('refresh', `${r.refresh.running ? 'running' : 'stopped'}: ${ibytes(r.refresh.bytesDone)} of ${ibytes(r.refresh.bytesTotal)} (${pct}%)`);
    const waits = r.refresh.running ? refreshWaits(v) : [];
    if (waits.length) row('waiting', waits.join('; '));
  }
  row('coherent', v.incoherent ? `NO: ${v.incoherent}` : 'yes (the secondaries are a point-in-time copy of the group)');
  const fb = protectionText(v);
  if (fb) row('fallback', fb);
  const m = v.metrics;
  if (m) {
    row('backlog', `${m.entriesWaiting} entr${m.entriesWaiting === 1 ? 'y' : 'ies'}, ${ibytes(m.writelogBytes)} (${m.pctwl.toFixed(1)}% of the writelog${writelogSize(v)})${m.entriesWaiting > 0 ? `, oldest ${ageText(m.oldestEntryAgeMs)}` : ''}`);
    row('sequence', `next ${m.nextSeq}, acknowledged through ${m.ackedThrough}`);
    row('rates', `${m.netkbps.toFixed(1)} KB/s sent, ${m.entriesPerSec.toFixed(1)} entries/s; sender sleep ${m.senderSleepMs} ms, host-ack delay ${m.ackDelayMs} ms`);
  }
  if (v.senders.length) {
    lines.push(
      table(
        ['SENDER TO', 'STATE', 'ACKED THROUGH', 'ERROR'],
        v.senders.map((s) => [s.array, r.paused && !['stopped', 'paused'].includes(s.state) ? `${s.state} (paused)` : s.state, String(s.ackedThrough), s.lastError ?? '-']),
      )
        .split('\n')
        .map((l) => '  ' + l)
        .join('\n'),
    );
  }
  const receivers = v.receivers ?? (v.receiver ? [{ array: v.array ?? 'here', ...v.receiver }] : []);
  if (receivers.length) {
    lines.push(
      table(
        ['RECEIVER ON', 'NEXT EXPECTED', 'APPLIED', 'BATCHES'],
        receivers.map((x) => [x.array, String(x.nextExpected), String(x.applied), String(x.batches)]),
      )
        .split('\n')
        .map((l) => '  ' + l)
        .join('\n'),
    );
  }
  return lines.join('\n');
}

/**
 * The capacity `pctwl` is a percentage of: the main segment, plus the extensions chained in
 * (` 64 MiB`, or `: 64 MiB + 1 extension of 32 MiB = 96 MiB`).
 */
function writelogSize(v: GroupView): string {
  const cfg = v.record.writelog;
  const live = v.writelog;
  if (!live || live.extensionsInUse <= 0) return ` ${ibytes(live?.capacity ?? cfg.capacity)}`;
  const n = live.extensionsInUse;
  return `: ${ibytes(cfg.capacity)} + ${n} extension${n === 1 ? '' : 's'} of ${ibytes(cfg.extensionCapacity)} = ${ibytes(live.capacity)}`;
}

/** One line per group for `group list`. */
export function listRows(vs: GroupStatus[]): string {
  return table(
    ['GROUP', 'MODE', 'STATE', 'PRIMARY', 'MEMBERS', 'SECONDARIES', 'BACKLOG'],
    vs.map((v) => [
      v.record.name,
      v.record.mode,
      groupStateWords({ paused: v.record.paused, bypass: { ...v.record.bypass, since: null }, refresh: v.record.refresh, metrics: v.metrics }),
      v.role === 'primary' ? (v.array ?? 'here') : '?',
      v.members.map((m) => m.name).join(','),
      [...new Set(v.members.flatMap((m) => m.secondaries))].join(',') || '-',
      v.metrics ? `${v.metrics.entriesWaiting} / ${ibytes(v.metrics.writelogBytes)}` : '-',
    ]),
  );
}

/** A secondary's resync protection: the point its members can fall back to while a resync rewrites them. */
export function protectionText(v: GroupView): string | undefined {
  const p = v.protection;
  if (!p) return undefined;
  const f = p.fallback;
  if (f && f.valid) {
    const seq = f.groupSeq !== null ? `, through journal record ${f.groupSeq}` : '';
    return `snapshot ${f.snapshot} of ${f.members.join(', ')}, ${ageText(f.ageSeconds * 1000)} old (cut when the resync began${seq}): promote --from-snapshot rolls back to it`;
  }
  if (f) return `snapshot ${f.snapshot} is NO LONGER VALID (a full snapshot store or a delete): no consistent point to fall back to`;
  if (p.resyncBegun.length) return `NONE: ${p.resyncBegun.join(', ')} ${p.resyncBegun.length === 1 ? 'is' : 'are'} being resynchronized with no snapshot of the last consistent point${p.enabled ? '' : ' (protectResync off)'}`;
  return p.enabled ? undefined : 'resync protection off (protectResync: false)';
}
