/**
 * `sanbox fault array-crash|array-restart ARRAY` and `sanbox fault site-fail|site-restore SITE`:
 * clients of the running lab supervisor's control API (its URL and token are in the lab state
 * file). Exit 0 done, 1 refused (not running, already running, restart failed), 2 unknown array
 * or site, 3 no lab running / supervisor unreachable.
 */
import { CliError, EXIT, nameArg, printJson } from '../common.js';
import { findLab } from '../target.js';

export type LabFaultVerb = 'array-crash' | 'array-restart' | 'site-fail' | 'site-restore';

export interface LabFaultFlags {
  lab?: string;
  json?: boolean;
}

/** A restart waits for the array to be ready (the supervisor's own start-up timeout, 60 s by default). */
const CONTROL_TIMEOUT_MS = 180_000;

const ROUTES: Record<LabFaultVerb, (name: string) => string> = {
  'array-crash': (n) => `/v1/arrays/${encodeURIComponent(n)}/crash`,
  'array-restart': (n) => `/v1/arrays/${encodeURIComponent(n)}/restart`,
  'site-fail': (n) => `/v1/sites/${encodeURIComponent(n)}/fail`,
  'site-restore': (n) => `/v1/sites/${encodeURIComponent(n)}/restore`,
};

type Exit = { code: number | null; signal: string | null };
type Crash = { array: string; killed: number[]; exit: Exit };
type Restart = { array: string; pid: number; ms: number };

function text(verb: LabFaultVerb, r: any, lab: string): string {
  const labOpt = lab === 'default' ? '' : ` --lab ${lab}`;
  const crashed = (c: Crash) => `${c.array} (SIGKILL of ${c.killed.join(', ') || 'nothing: it had exited'})`;
  const up = (x: Restart) => `${x.array} (pid ${x.pid}, ${x.ms} ms)`;
  switch (verb) {
    case 'array-crash':
      return `array ${crashed(r as Crash)} is down; lab ${lab} keeps running\nrestart it: sanbox fault array-restart ${r.array}${labOpt}`;
    case 'array-restart':
      return `array ${up(r as Restart)} is up again`;
    case 'site-fail':
      return [
        `site ${r.site} failed`,
        `  crashed: ${(r.crashed as Crash[]).map(crashed).join(', ') || '-'}`,
        ...(r.alreadyDown.length ? [`  already down: ${(r.alreadyDown as string[]).join(', ')}`] : []),
        `  links cut: ${(r.linksCut as string[]).join(', ') || '-'}`,
        `restore it: sanbox fault site-restore ${r.site}${labOpt}`,
      ].join('\n');
    case 'site-restore':
      return [
        `site ${r.site} restored`,
        `  restarted: ${(r.restarted as Restart[]).map(up).join(', ') || '-'}`,
        `  links restored: ${(r.linksRestored as string[]).join(', ') || '-'}`,
        ...(r.linksStillCut.length ? [`  still cut (the other end's site has failed): ${(r.linksStillCut as string[]).join(', ')}`] : []),
      ].join('\n');
  }
}

export async function labFaultCommand(verb: LabFaultVerb, name: string, f: LabFaultFlags): Promise<number> {
  nameArg(name, verb.startsWith('site') ? 'site name' : 'array name');
  const lab = await findLab({ lab: f.lab }).catch((e: unknown) => {
    // findLab's hint names --api, which these verbs do not take: they talk to the supervisor.
    if (e instanceof CliError && e.exitCode === EXIT.UNREACHABLE && !(f.lab ?? process.env.SANBOX_LAB)) {
      throw new CliError(EXIT.UNREACHABLE, 'unreachable', 'no lab is running: start one with "sanbox up LAB.yaml" (lab/default.yaml, for instance)');
    }
    throw e;
  });
  if (!lab.control) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `the supervisor of lab ${lab.lab} has no control API (started by an older sanbox?): restart the lab`);
  let res: Response;
  try {
    res = await fetch(lab.control.url + ROUTES[verb](name), {
      method: 'POST',
      // JSON without a body: the control API refuses what a web page could send (src/http-guard).
      headers: { Authorization: `Bearer ${lab.control.token}`, Accept: 'application/json', 'Content-Type': 'application/json' },
      signal: AbortSignal.timeout(CONTROL_TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message;
    throw new CliError(EXIT.UNREACHABLE, 'unreachable', `cannot reach the supervisor of lab ${lab.lab} at ${lab.control.url}: ${cause}`);
  }
  const body = (await res.json().catch(() => ({}))) as any;
  if (!res.ok) {
    const e = body?.error ?? {};
    const exit = [EXIT.ERROR, EXIT.USAGE, EXIT.UNREACHABLE].includes(e.exitCode) ? (e.exitCode as 1 | 2 | 3) : EXIT.ERROR;
    throw new CliError(exit, String(e.code ?? 'error'), String(e.message ?? `supervisor answered HTTP ${res.status}`));
  }
  if (f.json) printJson(body);
  else process.stdout.write(text(verb, body, lab.lab) + '\n');
  return EXIT.OK;
}
