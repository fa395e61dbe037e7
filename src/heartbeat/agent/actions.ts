/**
 * What an agent does to the arrays and to the operator: the failover (promote the configured
 * mirrors and groups at the standby site, forced: the production site is declared dead), the
 * fence (the production's arrays refuse host writes to the failover volumes), the mirror pin
 * (an installed heartbeat mirror refuses a split), and the command per notice level.
 */
import { spawn } from 'node:child_process';
import { ApiClient } from '../../control/client.js';
import type { FailureNotice } from '../notice.js';
import type { AgentConfig, ArrayEndpoint } from './config.js';

const client = (a: ArrayEndpoint, timeoutMs = 30_000) => new ApiClient({ url: a.url, ...(a.token ? { token: a.token } : {}), timeoutMs });

export interface FailoverResult {
  promoted: string[];
  failed: { name: string; error: string }[];
  promoteMs: number;
}

export async function runFailover(cfg: AgentConfig): Promise<FailoverResult> {
  const t0 = performance.now();
  const promoted: string[] = [];
  const failed: { name: string; error: string }[] = [];
  const jobs = [
    ...cfg.failover.mirrors.map((m) => ({ name: m.name, run: () => client(m.array).promoteMirror(m.name, { force: true }), isPrimary: async () => (await client(m.array).getMirror(m.name)).local.role === 'primary' })),
    ...cfg.failover.groups.map((g) => ({ name: g.name, run: () => client(g.array, 120_000).promoteGroup(g.name, { force: true }), isPrimary: async () => (await client(g.array).getGroup(g.name)).role === 'primary' })),
  ];
  await Promise.all(
    jobs.map(async (j) => {
      try {
        await j.run();
        promoted.push(j.name);
      } catch (e) {
        // the goal is this side primary: an earlier failover or a faster operator reached it too
        if (await j.isPrimary().catch(() => false)) promoted.push(j.name);
        else failed.push({ name: j.name, error: (e as Error).message });
      }
    }),
  );
  return { promoted: promoted.sort(), failed, promoteMs: Math.round(performance.now() - t0) };
}

/** Fences (or unfences) every configured LUN; returns the LUNs that could not be changed. */
export async function setFence(cfg: AgentConfig, fenced: boolean, reason: string): Promise<{ done: string[]; failed: { lun: string; error: string }[] }> {
  const done: string[] = [];
  const failed: { lun: string; error: string }[] = [];
  await Promise.all(
    cfg.fence.luns.map(async (l) => {
      const body = fenced ? { fenced: true, reason, by: cfg.host } : { fenced: false, by: cfg.host };
      try {
        await client(l.array, cfg.intervalMs * 2).request('POST', `/v1/luns/${encodeURIComponent(l.lun)}/fence`, body);
        done.push(`${l.array.name}:${l.lun}`);
      } catch (e) {
        failed.push({ lun: `${l.array.name}:${l.lun}`, error: (e as Error).message });
      }
    }),
  );
  return { done, failed };
}

/** Marks a heartbeat mirror installed (or not) on its primary array: installed, it refuses a split. */
export async function pinMirror(array: ArrayEndpoint, mirror: string, installed: boolean, by: string): Promise<void> {
  await client(array).request('POST', `/v1/mirrors/${encodeURIComponent(mirror)}/heartbeat`, { installed, by });
}

/** Runs the operator's command for a notice's level; the notice's fields go in the environment. */
export function runNoticeAction(command: string, n: FailureNotice): Promise<{ code: number | null; signal: string | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SANBOX_HB_LEVEL: n.level,
        SANBOX_HB_COMPONENT: n.componentId,
        SANBOX_HB_KIND: n.componentKind,
        SANBOX_HB_ADDRESS: n.address,
        SANBOX_HB_DETAILS: n.details,
        SANBOX_HB_DETECTED_MS: String(n.detectedAtMs),
        SANBOX_HB_SENDER: n.senderId,
        SANBOX_HB_SEQ: String(n.seq),
      },
    });
    let output = '';
    const take = (b: Buffer) => {
      if (output.length < 4096) output += b.toString('utf8');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', (e) => resolve({ code: null, signal: null, output: `cannot run: ${e.message}` }));
    child.on('close', (code, signal) => resolve({ code, signal, output: output.slice(0, 4096) }));
  });
}
