/** The lab's automation controllers as the CLI reaches them (bearer: the lab's automation secret). */
import { CliError, EXIT, sleep } from '../common.js';
import type { LabStateAutomation } from '../lab.js';
import { statusText, type ControllerStatus } from './rg-render.js';

/** How long a request waits for a controller that has just started (503 starting: its leases not yet compared). */
const STARTING_WAIT_MS = 10_000;

export async function call(auto: LabStateAutomation, site: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const end = Date.now() + STARTING_WAIT_MS;
  for (;;) {
    try {
      return await callOnce(auto, site, method, path, body);
    } catch (e) {
      if (!(e instanceof CliError && e.code === 'starting') || Date.now() > end) throw e;
      await sleep(300);
    }
  }
}

async function callOnce(auto: LabStateAutomation, site: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const c = auto.controllers.find((x) => x.site === site);
  if (!c) throw new CliError(EXIT.ERROR, 'not-found', `no automation controller at site ${site} (sites: ${auto.controllers.map((x) => x.site).join(', ')})`);
  let res: Response;
  try {
    res = await fetch(`${c.url}${path}`, { method, headers: { authorization: `Bearer ${auto.token}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}), signal: AbortSignal.timeout(10_000) });
  } catch (e) {
    throw new CliError(EXIT.UNREACHABLE, 'unreachable', `the automation controller of site ${site} (${c.url}) does not answer: ${(e as Error).message}`);
  }
  const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string } };
  if (!res.ok) throw new CliError(res.status === 400 ? EXIT.USAGE : EXIT.ERROR, json.error?.code ?? 'refused', json.error?.message ?? `HTTP ${res.status}`);
  return json;
}

export async function statuses(auto: LabStateAutomation): Promise<ControllerStatus[]> {
  return Promise.all(auto.controllers.map((c) => call(auto, c.site, 'GET', '/v1/status').then((s) => ({ ...(s as ControllerStatus), reachable: true }), (e: unknown) => ({ site: c.site, reachable: false, error: (e as Error).message, groups: [] }) as ControllerStatus)));
}

/** The site whose controller holds the group's lease (the higher epoch wins), or null. */
export function holderOf(all: ControllerStatus[], rg: string): string | null {
  const leases = all.flatMap((s) => s.groups.filter((g) => g.name === rg).map((g) => g.lease));
  return leases.sort((a, b) => b.epoch - a.epoch)[0]?.holder ?? null;
}


/** The automation section of `sanbox status`. */
export async function automationStatus(auto: LabStateAutomation): Promise<{ text: string; json: ControllerStatus[] }> {
  const all = await statuses(auto);
  return { text: `site automation:\n${statusText(all)}`, json: all };
}
