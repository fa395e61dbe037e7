/** What the API shows of a group: the view (record, members, senders, receiver, metrics) and the qdsinfo report. */
import type { GroupView } from './control.js';
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
  });
  return { text, view: v };
}
