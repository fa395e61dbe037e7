/**
 * `sanbox automation serve`, `sanbox rg status|online|offline|move`, `sanbox site recover`: the
 * resource groups of a lab's site automation (issue 14, docs/automation.md), through the
 * per-site controllers `sanbox up` started. An operation is sent to the controller of the site it
 * acts at; the verb then follows its step log until it ends (progress on stderr).
 * Exit codes: 0 done, 1 refused or failed (the step and why), 2 usage, 3 the lab or a controller
 * is not running or does not answer, 4 the operation did not end within --timeout (it goes on).
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AutomationController, checkConfig, controllerHttp, type ControllerConfig } from '../../automation/controller/index.js';
import type { Operation } from '../../automation/rg/operation.js';
import { CliError, EXIT, nameArg, printJson, sleep, usage } from '../common.js';
import type { Run } from '../command-kit.js';
import type { LabState, LabStateAutomation } from '../lab.js';
import { findLab } from '../target.js';
import { labVolumeSets, readVolumeSet } from '../../automation/client.js';
import { call, holderOf, statuses } from './controllers.js';
import { statesText } from './render.js';
import { operationText, statusText, stepLine, type ControllerStatus } from './rg-render.js';

export const EXIT_OP_TIMEOUT = 4;
const POLL_MS = 300;

interface Flags {
  lab?: string;
  json?: boolean;
  plan?: boolean;
  wait?: boolean;
  timeout?: string;
  site?: string;
  to?: string;
}

async function serve(f: { config: string }): Promise<number> {
  let cfg: ControllerConfig;
  try {
    cfg = checkConfig(JSON.parse(readFileSync(f.config, 'utf8')) as ControllerConfig);
  } catch (e) {
    throw usage(`controller configuration ${f.config}: ${(e as Error).message}`);
  }
  const c = new AutomationController(cfg, (line) => process.stdout.write(line + '\n'));
  const http = controllerHttp(c);
  const port = await http.start();
  process.stdout.write(`automation controller of site ${cfg.site} on http://${cfg.listen.host}:${port}\n`);
  c.start();
  await new Promise<void>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve());
  });
  await c.stop();
  await http.close();
  return EXIT.OK;
}

async function automationOf(f: Flags): Promise<{ lab: LabState; auto: LabStateAutomation }> {
  const lab = await findLab({ ...(f.lab ? { lab: f.lab } : {}) });
  if (!lab.automation) throw new CliError(EXIT.ERROR, 'no-automation', `lab ${lab.lab} has no site automation (automation: in its lab file)`);
  return { lab, auto: lab.automation };
}

async function statusCommand(rg: string | undefined, f: Flags): Promise<number> {
  if (rg !== undefined) nameArg(rg, 'resource group');
  const { lab, auto } = await automationOf(f);
  const all = await statuses(auto);
  if (rg !== undefined && !all.some((s) => s.groups.some((g) => g.name === rg)) && all.every((s) => s.reachable)) throw new CliError(EXIT.ERROR, 'not-found', `lab ${lab.lab} has no resource group ${rg}`);
  // the states of the groups' volume sets, from the arrays (as vs state reads them)
  const names = [...new Set(all.flatMap((c) => c.groups.filter((g) => rg === undefined || g.name === rg).flatMap((g) => g.volumeSets)))];
  const sets = await Promise.all(labVolumeSets(lab).filter((s) => names.includes(s.name)).map((s) => readVolumeSet(lab, s)));
  if (f.json) printJson({ lab: lab.lab, controllers: all, sets });
  else process.stdout.write(statusText(all, rg) + (sets.length ? `\n${statesText(sets)}` : '') + '\n');
  return EXIT.OK;
}

/** Follows an operation's step log at `site` until it ends or the deadline. */
async function follow(auto: LabStateAutomation, site: string, id: string, timeoutMs: number, quiet: boolean): Promise<Operation | null> {
  const end = Date.now() + timeoutMs;
  const said = new Set<string>();
  while (Date.now() < end) {
    const { operations } = (await call(auto, site, 'GET', '/v1/operations')) as { operations: Operation[] };
    const op = operations.find((o) => o.id === id);
    if (!op) throw new CliError(EXIT.ERROR, 'not-found', `operation ${id} is not in the step log of site ${site}`);
    for (const s of op.steps) {
      const line = stepLine(s);
      if (!quiet && s.status !== 'pending' && !said.has(line)) process.stderr.write(`${op.kind} ${op.rg}: ${line}\n`), said.add(line);
    }
    if (op.status !== 'running') return op;
    await sleep(POLL_MS);
  }
  return null;
}

async function operation(kind: 'online' | 'offline' | 'move' | 'recover', rg: string, f: Flags, siteOf: (all: ControllerStatus[]) => string): Promise<number> {
  nameArg(rg, kind === 'recover' ? 'site' : 'resource group');
  const timeoutMs = f.timeout === undefined ? 600_000 : Number(f.timeout) * 1000;
  if (!(timeoutMs > 0 && timeoutMs <= 86_400_000)) throw usage(`--timeout must be seconds, more than 0 and at most 86400, not ${JSON.stringify(f.timeout)}`);
  const { auto } = await automationOf(f);
  const site = siteOf(await statuses(auto));
  const path = kind === 'recover' ? '/v1/site/recover' : `/v1/rg/${kind}`;
  const body = kind === 'recover' ? { site: rg, plan: f.plan === true } : { rg, site, plan: f.plan === true };
  const answer = (await call(auto, site, 'POST', path, body)) as { operation?: Operation; operations?: Operation[]; plan?: unknown; plans?: unknown; refused?: { rg: string; code: string; message: string }[] };
  if (f.plan) {
    if (f.json) printJson({ site, ...answer });
    else process.stdout.write(operationText({ site, answer }) + '\n');
    return EXIT.OK;
  }
  const started = answer.operations ?? (answer.operation ? [answer.operation] : []);
  if (f.wait === false) {
    if (f.json) printJson({ site, operations: started });
    else process.stdout.write(started.map((o) => `${o.kind} ${o.rg} at ${site}: operation ${o.id} started`).join('\n') + '\n');
    return EXIT.OK;
  }
  const done = await Promise.all(started.map((o) => follow(auto, site, o.id, timeoutMs, f.json === true)));
  const refused = answer.refused ?? [];
  const code = done.some((o) => o === null) ? EXIT_OP_TIMEOUT : done.some((o) => o!.status === 'failed') || refused.length ? EXIT.ERROR : EXIT.OK;
  if (f.json) printJson({ site, operations: done.map((o, i) => o ?? started[i]), refused, exitCode: code });
  else {
    const lines = done.map((o, i) => (o ? operationText({ site, operation: o }) : `${started[i]!.kind} ${started[i]!.rg}: still running after ${f.timeout ?? 600} s (rg status)`));
    for (const r of refused) lines.push(`${r.rg}: refused (${r.code}): ${r.message}`);
    process.stdout.write((lines.length ? lines.join('\n') : `site ${rg}: no resource group held there to recover`) + '\n');
  }
  return code;
}

export function addResourceGroupCommands(program: Command, run: Run): void {
  const auto = program.command('automation').description('site automation controllers (sanbox up starts one per site of a lab with automation:)');
  auto.command('serve').description("run one site's automation controller").requiredOption('--config <file>', 'the controller configuration (JSON)').action(run(serve));
  const opts = (c: Command) => c.option('--lab <name>', 'the lab (default: $SANBOX_LAB, else the only running lab)').option('--json', 'machine-readable output');
  const opOpts = (c: Command) => opts(c).option('--plan', 'show the steps, change nothing').option('--no-wait', 'return once the operation started').option('--timeout <seconds>', 'how long to follow the operation (default 600)');
  const rg = program.command('rg').description('resource groups of the site automation: status, online, offline, move (docs/automation.md)');
  opts(rg.command('status [rg]').description('every resource group: the site holding it, its lease, its last operation and steps')).action(run((g: string | undefined, f: Flags) => statusCommand(g, f)));
  opOpts(rg.command('online <rg>').description('storage to the right state at the site, then the host resources in order').option('--site <site>', 'where (default: the group\'s preferred site)')).action(
    run((g: string, f: Flags) => operation('online', g, f, (all) => f.site ?? all.flatMap((s) => s.groups).find((x) => x.name === g)?.preferredSite ?? '')),
  );
  opOpts(rg.command('offline <rg>').description('the host resources stopped in reverse order at the site holding the group')).action(
    run((g: string, f: Flags) => operation('offline', g, f, (all) => holderOf(all, g) ?? all.flatMap((s) => s.groups).find((x) => x.name === g)?.preferredSite ?? '')),
  );
  opOpts(rg.command('move <rg>').description('planned swap: stop, bring the sets in sync, reverse the direction without a copy, start at the other site').requiredOption('--to <site>', 'the destination site')).action(
    run((g: string, f: Flags) => operation('move', g, f, () => f.to!)),
  );
  const site = program.command('site').description('sites of the site automation');
  opOpts(site.command('recover <site>').description('the site is lost: recover every resource group it held at the other site')).action(
    run((s: string, f: Flags) => operation('recover', s, f, (all) => all.find((c) => c.site !== s)?.site ?? s)),
  );
}
