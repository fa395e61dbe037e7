/**
 * How `sanbox mirror` and `sanbox status` print mirrors: sizes and durations for people, the
 * status block of one mirror, the one-line summary. Pure functions of the API's views.
 */
import { formatSize } from '../array/index.js';
import type { ImageView, MirrorView, ResyncView } from '../replication/mirror/types.js';
import { table } from './common.js';

/** Binary size for progress lines: `12.5 MiB`, `64 MiB`, `1 GiB`, `512 KiB`, `0 B`. */
export function ibytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const text = i === 0 ? String(v) : v >= 100 ? v.toFixed(0) : String(Number(v.toFixed(1)));
  return `${text} ${units[i]}`;
}

function duration(s: number): string {
  if (s < 60) return `${Math.max(0, Math.round(s))} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/**
 * `100 MiB of 200 MiB, covered at 50 MiB/s; sent 2 MiB at 1 MiB/s (holes and zeroes go without
 * data), ETA 2 s (full: new secondary)`: covered counts the holes, sent is what the sync rate
 * caps. A view without them (an older array): `12.5 MiB of 64 MiB, 30 MiB/s, ETA 2 s (...)`.
 */
export function resyncText(r: ResyncView): string {
  const parts = [`${ibytes(r.bytesDone)} of ${ibytes(r.bytesTotal)}`];
  if (r.bytesSent !== undefined && r.coveredRate !== undefined) {
    const covered = r.coveredRate > 0 ? `covered at ${ibytes(r.coveredRate)}/s; ` : '';
    const skipped = r.bytesSent < r.bytesDone ? ' (holes and zeroes go without data)' : '';
    parts[0] += `, ${covered}sent ${ibytes(r.bytesSent)}${r.rate > 0 ? ` at ${ibytes(r.rate)}/s` : ''}${skipped}`;
  } else if (r.rate > 0) parts.push(`${ibytes(r.rate)}/s`);
  if (r.eta !== null) parts.push(`ETA ${duration(r.eta)}`);
  // the run's checksum mode, and what the comparison saved (./resync-csum.ts on the primary)
  const cs = r.checksums === undefined ? '' : `; checksums ${r.checksums}${r.bytesCompared ? `: compared ${ibytes(r.bytesCompared)}, ${r.chunksSkipped ?? 0} pieces identical` : ''}`;
  return `${parts.join(', ')} (${r.full ? 'full' : 'partial'}: ${r.reason}${cs}${controllerText(r)})`;
}

/** The adaptive controller's window in a few words (./resync-window.ts on the primary). */
function controllerText(r: ResyncView): string {
  const w = r.window;
  if (!w) return r.controller === 'fixed' ? '; fixed rate' : '';
  const host = w.hostBaselineMs !== null && w.hostP90Ms !== null ? `, host p90 ${w.hostP90Ms.toFixed(1)} ms against ${w.hostBaselineMs.toFixed(1)} ms alone${w.hostLimited ? ': backing off' : ''}` : '';
  return `; adaptive: window ${ibytes(w.windowBytes)}${w.pieceBytes ? ` in ${ibytes(w.pieceBytes)} pieces` : ''}, queue ${w.queueDelayMs.toFixed(1)} of ${w.targetMs.toFixed(1)} ms${host}`;
}

function imageRow(i: ImageView, names: Map<string, string>): string[] {
  const fractured = i.fractured ? `yes (${i.fractureReason ?? '?'})` : i.role === 'primary' ? '-' : 'no';
  let resync = '-';
  if (i.resync) resync = resyncText(i.resync);
  else if (i.syncProgress && i.role === 'secondary') resync = `paused at ${ibytes(i.syncProgress.bytesDone)} of ${ibytes(i.syncProgress.bytesTotal)}`;
  return [
    names.get(i.imageId) ?? i.imageId,
    i.role,
    i.state ?? '-',
    i.reachability,
    i.link + (i.linkError ? ' (*)' : ''),
    fractured,
    i.fractureLog ? formatSize(i.fractureLog.bytes) : '-',
    resync,
  ];
}

/** The human status block of one mirror. */
export function mirrorText(v: MirrorView, names: Map<string, string> = new Map()): string {
  const r = v.record;
  const localName = names.get(v.local.imageId) ?? `${v.local.imageId.split(':')[0]}:${v.local.lunName}`;
  const lines = [
    `mirror ${r.name}  ${r.state}  epoch ${r.epoch}  ${r.writePolicy}  region ${formatSize(r.regionSize)}  sync ${formatSize(r.syncRate)}/s (${r.syncController ?? 'adaptive'}, ${r.syncPriority}, checksums ${r.resyncChecksums ?? 'auto'})  id ${r.mirrorId}`,
    `  local image ${localName} (${v.local.role})` +
      (v.writeIntentLog ? `; write-intent log ${v.writeIntentLog.regions} region${v.writeIntentLog.regions === 1 ? '' : 's'} (${formatSize(v.writeIntentLog.bytes)}), ${v.writeIntentLog.inFlight} in flight` : '') +
      `; activation ${r.activationPolicy}, min images ${r.minImagesRequired}, max missing ${r.maxMissingImages}${r.allowSecondaryReads ? ', secondary reads allowed' : ''}${r.protectResync === false ? ', resync protection off' : ''}`,
  ];
  if (r.heartbeat) lines.push(`  heartbeat mirror: installed by ${r.heartbeat.by} since ${new Date(r.heartbeat.sinceMs).toISOString()}; fracture, remove-secondary, deactivate, destroy, promote refused (uninstall first)`);
  const fallback = fallbackText(v);
  if (fallback) lines.push(`  fallback: ${fallback}`);
  const rows = v.images.map((i) => imageRow(i, names));
  lines.push(
    table(['IMAGE', 'ROLE', 'STATE', 'REACH', 'LINK', 'FRACTURED', 'FRACTURE LOG', 'RESYNC'], rows)
      .split('\n')
      .map((l) => '  ' + l)
      .join('\n'),
  );
  for (const i of v.images) if (i.linkError) lines.push(`  (*) ${names.get(i.imageId) ?? i.imageId}: ${i.linkError}`);
  for (const i of v.images) {
    if (!i.splitBrain) continue;
    const sb = i.splitBrain;
    lines.push(
      `  SPLIT BRAIN with ${names.get(i.imageId) ?? i.imageId}: here ${sb.local.regions} region${sb.local.regions === 1 ? '' : 's'} (${formatSize(sb.local.bytes)}) changed, there ${sb.remote.regions} (${formatSize(sb.remote.bytes)}); ` +
        `keep one side: sanbox mirror resolve ${r.name} --survivor ARRAY`,
    );
  }
  if (v.splitBrain && !v.images.some((i) => i.splitBrain)) lines.push(`  SPLIT BRAIN: both sides took writes; sanbox mirror resolve ${r.name} --survivor ARRAY`);
  return lines.join('\n');
}

/** One line per mirror for `sanbox status`. */
export function mirrorLine(v: MirrorView, names: Map<string, string> = new Map()): string {
  const name = (id: string) => names.get(id) ?? id;
  const secs = v.images
    .filter((i) => i.role === 'secondary')
    .map((i) => {
      const pct = i.resync && i.resync.bytesTotal > 0 ? ` ${Math.floor((100 * i.resync.bytesDone) / i.resync.bytesTotal)}%` : '';
      return `${name(i.imageId)} ${i.state ?? '-'}${pct}${i.fractured ? ` fractured (${i.fractureReason ?? '?'})` : ''}${i.reachability === 'UNREACHABLE' ? ' unreachable' : ''}`;
    });
  const p = v.images.find((i) => i.role === 'primary');
  return `${v.record.name}  ${v.record.state}  epoch ${v.record.epoch}  here: ${v.local.role}  ${p ? name(p.imageId) : '?'} -> ${secs.join(', ') || 'no secondaries'}${v.splitBrain ? '  SPLIT BRAIN' : ''}`;
}

function age(s: number): string {
  return s < 10 ? `${s.toFixed(1)} s` : duration(s);
}

/**
 * The consistent point this array's secondary image can fall back to while a resync rewrites it
 * (its resync-protection snapshot), or why there is none. Nothing when no resync touched it.
 */
export function fallbackText(v: MirrorView): string | undefined {
  const p = v.protection;
  if (!p || v.local.role !== 'secondary') return undefined;
  const f = p.fallback;
  if (f && f.valid) {
    const grp = f.members.length > 1 ? ` (with ${f.members.filter((m) => m !== v.record.name).join(', ')}: one point of the group${f.groupSeq !== null ? `, journal record ${f.groupSeq}` : ''})` : '';
    return `snapshot ${f.snapshot} (${f.export}), ${age(f.ageSeconds)} old, cut when the resync began${grp}; promote --from-snapshot rolls back to it`;
  }
  if (f) return `snapshot ${f.snapshot} is NO LONGER VALID (a full snapshot store or a delete): nothing to fall back to`;
  if (p.state === 'unprotected') return `NONE: the image is being (or was) resynchronized without a snapshot of its last consistent point${p.enabled ? '' : ' (protectResync off)'}`;
  return undefined;
}
