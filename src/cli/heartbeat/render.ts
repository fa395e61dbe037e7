/** The human output of `sanbox hb status` and `sanbox hb notices`. */
import type { HeartbeatStatusTable } from '../../heartbeat/index.js';
import { table } from '../common.js';

export interface AgentStatus {
  host: string;
  site: string;
  role: 'production' | 'standby';
  production: string;
  standby: string;
  master: string | null;
  isMaster: boolean;
  intervalMs: number;
  timeoutMs: number;
  serial: number;
  table: HeartbeatStatusTable;
  lastPeerContactAgoMs: number | null;
  witness: { state: string; error?: string; sites?: Record<string, { ageMs: number | null }> };
  failedOver: { detectionMs: number | null; promoteMs: number; promoted: string[]; failed: { name: string; error: string }[] } | null;
  fenced: boolean;
  notices: number;
  send: { network: boolean; mirrors: boolean; disabled: string[] };
}

function one(a: { host: string; site: string; status?: AgentStatus; error?: string }): string {
  if (!a.status) return `${a.host} (site ${a.site}): not answering: ${a.error}`;
  const s = a.status;
  const t = s.table;
  const head = `${s.host}  site ${s.site} (${s.role})  ${s.isMaster ? 'MASTER' : `master ${s.master ?? 'none yet'}`}  serial ${s.serial}  interval ${s.intervalMs} ms, timeout ${s.timeoutMs} ms`;
  const lines = [head];
  if (!s.isMaster) return lines.join('\n');
  lines.push(
    `  network heartbeat enable (200) ${t.networkEnable.padEnd(8)} remote group status by network (210) ${t.remoteGroupStatusByNetwork}`,
    `  remote copy heartbeat enable (220) ${t.remoteCopyEnable.padEnd(8)} remote group status by mirror (230) ${t.remoteGroupStatusByMirror}`,
  );
  const used = t.devices.filter((d) => d.status !== 'NULL');
  if (used.length) {
    const rows = used.map((d) => [String(d.slot), d.address ?? '', d.mirror ?? '', d.status, String(d.validStreak), d.reason]);
    lines.push(table(['slot', 'device address (240)', 'mirror', 'status (241)', 'streak', 'reason'], rows).replace(/^/gm, '  '));
  } else lines.push('  no heartbeat mirrors read here');
  lines.push(`  last valid heartbeat from ${s.role === 'production' ? s.standby : s.production}: ${s.lastPeerContactAgoMs === null ? 'never' : `${s.lastPeerContactAgoMs} ms ago`}`);
  lines.push(`  sending: network ${s.send.network ? 'on' : 'off'}, mirrors ${s.send.mirrors ? 'on' : 'off'}${s.send.disabled.length ? ` (disabled: ${s.send.disabled.join(', ')})` : ''}`);
  if (s.witness.state !== 'not-configured') lines.push(`  witness ${s.witness.state}${s.witness.error ? `: ${s.witness.error}` : ''}`);
  if (s.failedOver) lines.push(`  FAILED OVER: detection ${s.failedOver.detectionMs} ms, promote ${s.failedOver.promoteMs} ms, promoted ${s.failedOver.promoted.join(', ') || 'nothing'}${s.failedOver.failed.length ? `, failed ${s.failedOver.failed.map((x) => x.name).join(', ')}` : ''}`);
  if (s.fenced) lines.push('  FENCED: this site\'s failover volumes refuse host writes');
  if (s.notices) lines.push(`  ${s.notices} failure notices (sanbox hb notices)`);
  return lines.join('\n');
}

export function statusText(answers: { host: string; site: string; status?: AgentStatus; error?: string }[]): string {
  return answers.map(one).join('\n');
}

export function noticesText(notices: { host: string; seq: number; level: string; componentId: string; address: string; details: string; detectedAtMs: number; via: string[] }[]): string {
  if (!notices.length) return 'no failure notices';
  return table(
    ['host', 'seq', 'level', 'component', 'address', 'detected', 'via', 'details'],
    notices.map((n) => [n.host, String(n.seq), n.level, n.componentId, n.address, new Date(n.detectedAtMs).toISOString(), n.via.join('+'), n.details]),
  );
}
