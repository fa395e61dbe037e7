/** Text of `sanbox rg status|online|offline|move` and `sanbox site recover`. */
import type { Lease } from '../../automation/rg/lease.js';
import type { Operation, Step } from '../../automation/rg/operation.js';
import { table } from '../common.js';

export interface ControllerStatus {
  site: string;
  reachable: boolean;
  error?: string;
  peer?: { site: string; reachable: boolean; declaredLost: boolean; peerSilentMs: number };
  groups: { name: string; preferredSite: string; failover: string; failback: string; volumeSets: string[]; resources: string[]; lease: Lease; busy: boolean; online?: boolean; health?: Record<string, { running: boolean; since: string }>; lastOperation: Operation | null }[];
}

export function stepLine(s: Step): string {
  const d = s.startedAt && s.endedAt ? ` ${((Date.parse(s.endedAt) - Date.parse(s.startedAt)) / 1000).toFixed(1)} s` : '';
  return `${s.kind} ${s.target}: ${s.status}${s.reason ? ` (${s.reason})` : ''}${d}${s.status === 'failed' && s.detail ? `: ${s.detail}` : ''}`;
}

const opSummary = (o: Operation | null): string => (o ? `${o.kind} at ${o.site} ${o.status}${o.error ? ` (${o.error.code})` : ''}` : '-');

export function statusText(all: ControllerStatus[], only?: string): string {
  const lines = all.map((c) => (c.reachable ? `controller ${c.site}: up; peer ${c.peer?.site} ${c.peer?.declaredLost ? 'DECLARED LOST' : c.peer?.reachable ? 'reachable' : `silent ${((c.peer?.peerSilentMs ?? 0) / 1000).toFixed(0)} s`}` : `controller ${c.site}: not answering (${c.error})`));
  const seen = new Map<string, { site: string; g: ControllerStatus['groups'][number] }>();
  for (const c of all) for (const g of c.groups) if (!only || g.name === only) if (!seen.has(g.name) || seen.get(g.name)!.g.lease.epoch < g.lease.epoch) seen.set(g.name, { site: c.site, g });
  const rows = [...seen.values()].map(({ g }) => {
    const last = all.flatMap((c) => c.groups.filter((x) => x.name === g.name && x.lastOperation).map((x) => x.lastOperation!)).sort((a, b) => Date.parse(b.requestedAt) - Date.parse(a.requestedAt))[0] ?? null;
    // the health the holder's controller watches: a resource that stopped by itself is DOWN
    const health = all.find((c) => c.site === g.lease.holder)?.groups.find((x) => x.name === g.name)?.health ?? {};
    const resources = g.resources.map((r) => (health[r] ? `${r}${health[r]!.running ? '' : ' DOWN'}` : r)).join(',');
    return [g.name, g.lease.holder ?? '-', String(g.lease.epoch) + (g.lease.forced ? ' forced' : ''), g.preferredSite, `${g.failover}/${g.failback}`, g.volumeSets.join(','), resources || '-', opSummary(last)];
  });
  return [...lines, table(['RG', 'HELD BY', 'EPOCH', 'PREFERRED', 'FAILOVER/BACK', 'SETS', 'RESOURCES', 'LAST OPERATION'], rows)].join('\n');
}

interface PlanView {
  steps: Step[];
  storage: { set: string; state: string; action: string; reason: string; detail: string }[];
}

function planText(site: string, rg: string, p: PlanView): string {
  const now = (s: Step) => (s.kind === 'storage' ? p.storage.find((d) => d.set === s.target) : undefined);
  const lines = p.steps.map((s, i) => {
    const d = now(s);
    return `  ${i + 1}. ${s.kind} ${s.target}${d ? `: now ${d.state}, would ${d.action} (${d.detail})` : ''}`;
  });
  return [`plan at ${site}${rg ? ` for ${rg}` : ''}:`, ...lines].join('\n');
}

export function operationText(x: { site: string; operation?: Operation; answer?: { plan?: unknown; plans?: unknown; refused?: unknown } }): string {
  if (x.answer) {
    const plans = (x.answer.plans as { rg: string; plan: PlanView }[] | undefined) ?? [{ rg: '', plan: x.answer.plan as PlanView }];
    const refused = (x.answer.refused as { rg: string; message: string }[] | undefined) ?? [];
    if (!plans.length && !refused.length) return `site ${x.site}: no resource group to recover`;
    return [...plans.map((p) => planText(x.site, p.rg, p.plan)), ...refused.map((r) => `${r.rg}: refused: ${r.message}`)].join('\n');
  }
  const o = x.operation!;
  const took = o.endedAt ? ` in ${((Date.parse(o.endedAt) - Date.parse(o.requestedAt)) / 1000).toFixed(1)} s` : '';
  const head = `${o.kind} ${o.rg} at ${o.site}: ${o.status}${took}${o.error ? `: ${o.error.code}: ${o.error.message}` : ''}`;
  return [head, ...o.steps.map((s) => `  ${stepLine(s)}`)].join('\n');
}
