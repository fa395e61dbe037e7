/**
 * A lab's site automation (`automation:` of the lab file): `sanbox up` starts one controller per
 * site (`sanbox automation serve --config`), after the mirrors and groups exist, each with its
 * configuration written here; a failed site takes its controller down with its arrays (SIGKILL:
 * it resumes from its step log when the site is restored).
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ControllerConfig } from '../../automation/controller/index.js';
import type { AutomationSpec } from '../../automation/rg/types.js';
import { BIN, CliError, EXIT, labsDir, sleep } from '../common.js';
import { freePort, spawnService, stopService } from '../service-process.js';
import type { Lab, LabStateAutomation } from '../lab.js';

const READY_MS = 15_000;
const STOP_MS = 5_000;

interface Controller {
  site: string;
  url: string;
  config: string;
  proc?: ChildProcess;
}

/** SIGKILL to the process group each started host resource left (`<rg>/<resource>.pgid`, src/automation/resources). */
function killResourceGroups(dir: string): string[] {
  const killed: string[] = [];
  for (const rg of existsSync(dir) ? readdirSync(dir) : []) {
    for (const f of readdirSync(join(dir, rg)).filter((x) => x.endsWith('.pgid'))) {
      const pgid = Number(readFileSync(join(dir, rg, f), 'utf8'));
      try {
        if (pgid > 1) process.kill(-pgid, 'SIGKILL');
        killed.push(`${rg}/${f.slice(0, -'.pgid'.length)}`);
      } catch {
        // ESRCH: it had ended already
      }
    }
  }
  return killed;
}

export class LabAutomationRunner {
  private readonly controllers: Controller[] = [];
  private readonly dir: string;

  constructor(
    private readonly lab: Lab,
    private readonly spec: AutomationSpec,
    private readonly log: (t: string) => void,
  ) {
    this.dir = join(labsDir(), `${lab.name}.automation`);
  }

  async start(): Promise<LabStateAutomation> {
    const binDir = join(this.dir, 'bin');
    mkdirSync(binDir, { recursive: true, mode: 0o700 });
    // the host resources' commands run `sanbox` of this build, whatever PATH says
    writeFileSync(join(binDir, 'sanbox'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(binDir, 'sanbox'), 0o755);
    const ports = await Promise.all(this.spec.controllers.map((c) => (c.port ? Promise.resolve(c.port) : freePort())));
    const urls = this.spec.controllers.map((c, i) => `http://${c.bind}:${ports[i]}`);
    this.spec.controllers.forEach((c, i) => {
      const peer = 1 - i;
      const stateDir = join(this.dir, c.site);
      mkdirSync(stateDir, { recursive: true, mode: 0o700 });
      const cfg: ControllerConfig = {
        lab: this.lab.name,
        site: c.site,
        peer: { site: this.spec.controllers[peer]!.site, url: urls[peer]! },
        listen: { host: c.bind, port: ports[i]! },
        secret: this.spec.secret,
        declareLostAfterMs: this.spec.declareLostAfterMs,
        resourceGroups: this.spec.resourceGroups,
        stateDir,
        binDir,
      };
      const config = join(stateDir, 'config.json');
      writeFileSync(config, JSON.stringify(cfg, null, 2) + '\n', { mode: 0o600 });
      this.controllers.push({ site: c.site, url: urls[i]!, config });
    });
    await Promise.all(this.controllers.map((c) => this.spawn(c)));
    // both up: they compare their leases within a second; the lab takes requests once they have
    await Promise.all(this.controllers.map((c) => this.confirmed(c)));
    return this.state();
  }

  state(): LabStateAutomation {
    return { dir: this.dir, token: this.spec.secret, controllers: this.controllers.map((c) => ({ site: c.site, url: c.url, pid: c.proc?.pid ?? 0, config: c.config })) };
  }

  private async spawn(c: Controller): Promise<void> {
    c.proc = await spawnService({
      what: `automation controller of site ${c.site}`,
      args: ['automation', 'serve', '--config', c.config],
      logPath: join(this.dir, c.site, 'controller.log'),
      readyMs: READY_MS,
      ready: () => fetch(`${c.url}/v1/status`, { headers: { authorization: `Bearer ${this.spec.secret}` }, signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false),
      onExit: (code, signal) => this.log(`automation controller of site ${c.site} exited (code ${code}, signal ${signal})`),
    });
  }

  private async confirmed(c: Controller): Promise<void> {
    const end = Date.now() + READY_MS;
    while (Date.now() < end) {
      const s = await fetch(`${c.url}/v1/status`, { headers: { authorization: `Bearer ${this.spec.secret}` }, signal: AbortSignal.timeout(1000) }).then(
        (r) => r.json() as Promise<{ leasesConfirmed?: boolean }>,
        () => ({}) as { leasesConfirmed?: boolean },
      );
      if (s.leasesConfirmed) return;
      await sleep(100);
    }
    throw new CliError(EXIT.ERROR, 'start-timeout', `automation controller of site ${c.site} did not compare its leases with its peer within ${READY_MS / 1000} s`);
  }

  private kill(c: Controller, signal: NodeJS.Signals): Promise<boolean> {
    return stopService(c.proc, signal, STOP_MS);
  }

  /** A failed site: its controller and the host resources it started die at once. */
  async siteFail(site: string): Promise<Record<string, unknown>> {
    const c = this.controllers.find((x) => x.site === site);
    if (!c) return {};
    const killed = await this.kill(c, 'SIGKILL');
    return { ...(killed ? { controllerKilled: site } : {}), resourcesKilled: killResourceGroups(join(this.dir, site, 'resources')) };
  }

  async siteRestore(site: string): Promise<Record<string, unknown>> {
    const c = this.controllers.find((x) => x.site === site);
    if (!c) return {};
    await this.spawn(c);
    return { controllerRestarted: site };
  }

  async stop(): Promise<void> {
    await Promise.all(this.controllers.map((c) => this.kill(c, 'SIGTERM')));
  }
}
