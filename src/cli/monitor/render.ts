/** How the monitor's resources look on a terminal (chkmon -show, sanbox monitor list/show). */
import { table } from '../common.js';
import type { ResourceView } from '../../monitor/index.js';

const ago = (iso: string | null): string => (iso === null ? '-' : `${Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))}s ago`);

export function resourceTable(rs: ResourceView[]): string {
  if (rs.length === 0) return 'no resources are monitored';
  return table(
    ['APP', 'GROUP', 'INSTANCE', 'INTERVAL', 'AUTO', 'STATE', 'PVOL', 'SVOL', 'NEXT', 'POLLED', 'LAST-AUTO-RESYNC'],
    rs.map((r) => [
      r.appName,
      r.deviceGroup,
      r.instance,
      `${r.intervalSeconds}s`,
      r.autorecover ? 'yes' : 'no',
      `${r.sourceState} ${r.pair}${r.phase !== 'watching' ? ` [${r.phase}]` : ''}`,
      r.pvol,
      r.svol,
      `${r.timeRemaining}s`,
      ago(r.lastPoll),
      r.lastAutoResync ? `${ago(r.lastAutoResync.time)} (${r.lastAutoResync.seconds}s)` : '-',
    ]),
  );
}

export function resourceDetail(r: ResourceView): string {
  const lines = [
    `${r.appName}/${r.deviceGroup}: ${r.sourceState} (${r.pair}, ${r.reason})`,
    `  instance        ${r.instance} (${r.kind ?? 'kind unknown yet'})`,
    `  interval        ${r.intervalSeconds} s, next poll in ${r.timeRemaining} s (interval began ${r.startTime})`,
    `  autorecover     ${r.autorecover ? 'yes' : 'no'}${r.resyncAdminFractures ? ', also after operator fractures' : ''}; phase ${r.phase}${r.retryAt ? `, retry at ${r.retryAt}` : ''}`,
    `  sanbox state    ${r.detail}`,
    `  primary         ${r.pvol}`,
    `  secondary       ${r.svol}`,
    `  last poll       ${r.lastPoll ?? 'never'}${r.lastError ? `; error: ${r.lastError}` : ''}`,
    `  last auto sync  ${r.lastAutoResync ? `${r.lastAutoResync.time} (${r.lastAutoResync.seconds} s)` : 'never'}`,
    `  failures        ${r.failures.length} in the window`,
    '  history',
    ...r.history.map((h) => `    ${h.time}  ${h.what}: ${h.text}`),
  ];
  return lines.join('\n');
}
