/** What the API shows of a group: the view (record, members, senders, receiver, metrics) and the qdsinfo report. */
import type { GroupView } from './control.js';
import { REFRESH_MAX_WRITELOG_PERCENT } from './copy.js';
import type { GroupEntry } from './entry.js';
import type { GroupHost } from './host.js';
import { formatQdsinfo } from './perf.js';
import { newWindow } from './primary-group.js';
import type { GroupMetrics } from './types.js';

export function groupView(host: GroupHost, g: GroupEntry): GroupView {
  const members = g.record.members.map((id) => {
    const m = host.member(id);
    return { mirrorId: id, name: m?.name ?? id, lun: m?.lunId ?? -1, secondaries: m?.secondaryArrays ?? [] };
  });
  let incoherent: string | null = null;
  if (g.record.bypass.on) incoherent = `bypass (${g.record.bypass.reason}): the secondaries are being resynchronized from the fracture logs`;
  else if (g.record.refresh?.running) incoherent = 'refresh in progress';
  return {
    record: structuredClone(g.record),
    role: g.primary ? 'primary' : 'secondary',
    members,
    senders: [...(g.primary?.senders.values() ?? [])].map((s) => ({ array: s.route.array, state: s.state, ackedThrough: s.ackedThrough, ...(s.lastError ? { lastError: s.lastError } : {}) })),
    receiver: g.receiver ? { nextExpected: g.receiver.nextExpected, applied: g.receiver.applied, batches: g.receiver.batches } : null,
    metrics: liveMetrics(g),
    incoherent,
    promotion: g.promotion ? { ...g.promotion } : null,
    protection: !g.primary && host.protection ? { enabled: g.record.protectResync !== false, fallback: host.protection.fallback(g.record.members), resyncBegun: host.protection.resyncBegun(g.record.members).map((id) => host.member(id)?.name ?? id) } : null,
    writelog: liveWritelog(g),
    throttledBy: throttledBy(g),
  };
}

/** The writelog chain now (the main segment and the extensions chained in). */
function liveWritelog(g: GroupEntry): GroupView['writelog'] {
  if (!g.primary) return null;
  const u = g.primary.writelog.usage();
  return { capacity: u.capacity, extensionsInUse: u.extensionsInUse, extensionsFree: u.extensionsFree };
}

/** The throttle that raised the sender's sleep, with its test. */
function throttledBy(g: GroupEntry): GroupView['throttledBy'] {
  const t = g.throttle;
  const i = t?.state.sleepRaisedBy;
  const spec = i !== null && i !== undefined ? t?.engine.throttles[i] : undefined;
  if (!g.primary || g.primary.senderSleepMs <= 0 || !spec) return null;
  return { throttle: i!, measure: spec.measure, op: spec.op, value: spec.value };
}

/** Gauges as of now (backlog, sequence numbers), rates as of the last performance record. */
function liveMetrics(g: GroupEntry): GroupMetrics | null {
  if (!g.primary) return null;
  const m = g.primary.metrics(newWindow());
  const last = g.lastMetrics;
  Object.assign(m, last ? { netkbps: last.netkbps, dataKbps: last.dataKbps, entriesPerSec: last.entriesPerSec, pctcpu: last.pctcpu, writesDelayed: last.writesDelayed, delayedMs: last.delayedMs } : { netkbps: 0, dataKbps: 0, entriesPerSec: 0, pctcpu: 0, writesDelayed: 0, delayedMs: 0 });
  return m;
}

const OP_TEXT: Record<string, string> = { lt: '<', le: '<=', eq: '=', ne: '!=', ge: '>=', gt: '>', 'rises-above': 'rises above', 'falls-below': 'falls below' };

/**
 * Why a running refresh may not progress (empty: nothing holds it): the group paused, a sender
 * whose link is down or refused, a throttle's sleep before each transmission, the writelog too
 * full for the refresh to add to it (it waits for the senders to drain it).
 */
export function refreshWaits(v: GroupView): string[] {
  const r = v.record;
  const out: string[] = [];
  if (r.paused) out.push(`the group is paused (sanbox group resume ${r.name})`);
  for (const s of v.senders) {
    const why = s.lastError ? ` (${s.lastError})` : '';
    if (s.state === 'down') out.push(`link down to ${s.array}${why}`);
    else if (s.state === 'connecting') out.push(`connecting to ${s.array}${why}`);
    else if (s.state === 'refused') out.push(`${s.array} refused the sender${why}`);
    else if (s.state === 'stopped') out.push(`the sender to ${s.array} is stopped`);
  }
  const m = v.metrics;
  if (m && m.senderSleepMs > 0) {
    const t = v.throttledBy;
    const by = t ? `throttle #${t.throttle}: ${t.measure} ${OP_TEXT[t.op] ?? t.op} ${t.value}` : 'set by a throttle';
    out.push(`sender sleeping ${m.senderSleepMs} ms per transmission (${by})`);
  }
  if (m && m.pctwl > REFRESH_MAX_WRITELOG_PERCENT) out.push(`the writelog is ${m.pctwl.toFixed(1)}% full: the refresh adds to it only below ${REFRESH_MAX_WRITELOG_PERCENT}%`);
  return out;
}

/** The qdsinfo report of the group and the view it was made from. */
export function groupInfo(host: GroupHost, g: GroupEntry): { text: string; view: GroupView } {
  const v = groupView(host, g);
  const u = g.primary?.writelog.usage();
  const text = formatQdsinfo({
    name: g.record.name,
    mode: g.record.mode,
    paused: g.record.paused,
    bypass: g.record.bypass,
    members: v.members.map((m) => ({ mirror: m.name, lun: String(m.lun), secondary: m.secondaries.join(',') })),
    metrics: v.metrics as GroupMetrics,
    writelog: { capacity: u?.capacity ?? g.record.writelog.capacity, extensionsInUse: u?.extensionsInUse ?? 0, extensionsFree: u?.extensionsFree ?? g.record.writelog.extensions },
    refresh: g.record.refresh,
    nearSync: g.record.nearSync,
    throttles: g.record.throttles.length,
    freeze: g.record.freeze,
    waiting: g.record.refresh?.running ? refreshWaits(v) : [],
  });
  return { text, view: v };
}
