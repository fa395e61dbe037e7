/**
 * What a production agent can see fail at its own site (Fig. 10, step 1005): an array that does
 * not answer, an SP that is not up, a cache-dirty LUN, a heartbeat volume it cannot write. Each
 * failure is reported once when it appears (with its level from ../notice.ts's table) and once
 * more, as TEMPORALLY, when it clears; the agent turns each report into a failure notice.
 */
import { classifyLevel, type ComponentKind, type NoticeLevel } from '../notice.js';
import type { ArrayEndpoint } from './config.js';
import { getJson } from './peers.js';

export interface Failure {
  componentId: string;
  componentKind: ComponentKind;
  address: string;
  details: string;
  redundant: boolean;
  cacheDirty?: boolean;
}

export interface FailureReport extends Failure {
  level: NoticeLevel;
  reason: string;
}

interface ArrayStatusView {
  sps?: { name: string; state: string }[];
  luns?: { name: string; state?: string; cacheDirty?: boolean }[];
}

/** The failures visible in one array's status answer (or its silence). */
export async function arrayFailures(a: ArrayEndpoint, deadlineMs: number): Promise<Failure[]> {
  const r = await getJson(`${a.url}/v1/status`, deadlineMs);
  if (!r.ok) return [{ componentId: `array:${a.name}`, componentKind: 'array', address: a.url, details: `the array's API does not answer: ${r.error}`, redundant: false }];
  const st = r.body as ArrayStatusView;
  const out: Failure[] = [];
  const sps = st.sps ?? [];
  const down = sps.filter((s) => s.state !== 'up');
  for (const s of down) out.push({ componentId: `sp:${a.name}:${s.name}`, componentKind: 'sp', address: `${a.url} SP ${s.name}`, details: `SP ${s.name} is ${s.state}`, redundant: down.length < sps.length });
  for (const l of st.luns ?? []) {
    if (l.cacheDirty || l.state === 'cache-dirty') out.push({ componentId: `lun:${a.name}:${l.name}`, componentKind: 'lun', address: `${a.name}:${l.name}`, details: `LUN ${l.name} is cache-dirty`, redundant: false, cacheDirty: true });
  }
  return out;
}

/** Remembers which failures are open; reports each appearance and each recovery once. */
export class FailureWatch {
  private readonly open = new Map<string, Failure>();

  /** `seen`: every failure visible now (from every source). */
  update(seen: readonly Failure[]): FailureReport[] {
    const out: FailureReport[] = [];
    const now = new Map(seen.map((f) => [f.componentId, f]));
    for (const [id, f] of now) {
      if (this.open.has(id)) continue;
      this.open.set(id, f);
      const d = classifyLevel(f.componentKind, { failed: true, redundant: f.redundant, ...(f.cacheDirty ? { cacheDirty: true } : {}) });
      out.push({ ...f, level: d.level, reason: d.reason });
    }
    for (const [id, f] of this.open) {
      if (now.has(id)) continue;
      this.open.delete(id);
      const d = classifyLevel(f.componentKind, { failed: false, recovered: true });
      out.push({ ...f, details: `recovered: ${f.details}`, level: d.level, reason: d.reason });
    }
    return out;
  }

  list(): Failure[] {
    return [...this.open.values()];
  }
}
