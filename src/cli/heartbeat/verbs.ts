/**
 * `sanbox hb serve|witness|status|notices|mode|install|uninstall|notify` (docs/heartbeat.md).
 * Exit codes as docs/cli.md: 0 ok, 1 refused (an agent said no, with its reason), 2 usage,
 * 3 no agent of the lab answers.
 */
import type { Command } from 'commander';
import { HeartbeatAgent, Witness, getJson, loadAgentConfig, postJson, type AgentConfig } from '../../heartbeat/agent/index.js';
import { COMPONENT_KINDS, NOTICE_LEVELS } from '../../heartbeat/index.js';
import { CliError, EXIT, nameArg, printJson, usage } from '../common.js';
import type { Run } from '../command-kit.js';
import { findLab } from '../target.js';
import type { LabState } from '../lab.js';
import { arrayEndpoint, lunUris, stateArray } from './lab.js';
import { noticesText, statusText, type AgentStatus } from './render.js';

interface LabFlags {
  lab?: string;
  json?: boolean;
  host?: string;
}

async function labHeartbeat(f: LabFlags): Promise<{ lab: LabState; hb: NonNullable<LabState['heartbeat']> }> {
  const lab = await findLab({ ...(f.lab ? { lab: f.lab } : {}) });
  if (!lab.heartbeat) throw new CliError(EXIT.ERROR, 'not-configured', `lab ${lab.lab} has no heartbeat (lab file: heartbeat:)`);
  return { lab, hb: lab.heartbeat };
}

/** Every host's status (those that answer), or only --host's. */
async function statuses(f: LabFlags): Promise<{ lab: LabState; answers: { host: string; site: string; status?: AgentStatus; error?: string }[] }> {
  const { lab, hb } = await labHeartbeat(f);
  const hosts = f.host ? hb.hosts.filter((h) => h.name === f.host) : hb.hosts;
  if (!hosts.length) throw usage(`lab ${lab.lab} has no heartbeat host ${f.host} (hosts: ${hb.hosts.map((h) => h.name).join(', ')})`);
  const answers = await Promise.all(
    hosts.map(async (h) => {
      const r = await getJson(`${h.url}/v1/status`, 3000);
      return r.ok ? { host: h.name, site: h.site, status: r.body as AgentStatus } : { host: h.name, site: h.site, error: r.error };
    }),
  );
  if (answers.every((a) => a.error)) throw new CliError(EXIT.UNREACHABLE, 'unreachable', `no heartbeat agent of lab ${lab.lab} answers:\n  ${answers.map((a) => `${a.host}: ${a.error}`).join('\n  ')}`);
  return { lab, answers };
}

/** The URL of a site's master (the production's unless `site` says otherwise). */
async function masterUrl(f: LabFlags, site?: string): Promise<{ url: string; host: string }> {
  const { lab, hb } = await labHeartbeat(f);
  const { answers } = await statuses({ ...f, host: undefined });
  const want = site ?? answers.find((a) => a.status)?.status?.production;
  const m = answers.find((a) => a.site === want && a.status?.isMaster);
  if (!m) throw new CliError(EXIT.UNREACHABLE, 'no-master', `no master of site ${want} answers in lab ${lab.lab}`);
  return { url: hb.hosts.find((h) => h.name === m.host)!.url, host: m.host };
}

async function post(url: string, path: string, body: unknown, f: LabFlags): Promise<unknown> {
  const r = await postJson(`${url}${path}`, body, 30_000);
  if (!r.ok) throw new CliError(r.status === undefined ? EXIT.UNREACHABLE : r.status === 400 ? EXIT.USAGE : EXIT.ERROR, (r.body as { error?: { code?: string } } | undefined)?.error?.code ?? 'refused', r.error);
  if (f.json) printJson(r.body);
  return r.body;
}

const onOff = (v: string | undefined, what: string): boolean | undefined => {
  if (v === undefined) return undefined;
  if (v === 'on' || v === 'yes') return true;
  if (v === 'off' || v === 'no') return false;
  throw usage(`${what} must be on or off, not ${JSON.stringify(v)}`);
};

async function serve(f: { config: string }): Promise<number> {
  let cfg: AgentConfig;
  try {
    cfg = loadAgentConfig(f.config);
  } catch (e) {
    throw usage((e as Error).message);
  }
  const agent = new HeartbeatAgent(cfg, (line) => process.stdout.write(line + '\n'));
  await agent.start();
  await new Promise<void>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve());
  });
  await agent.stop();
  return EXIT.OK;
}

async function witness(f: { bind: string; port: string; cluster: string }): Promise<number> {
  const port = Number(f.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw usage(`--port must be 0-65535, not ${f.port}`);
  const w = new Witness({ host: f.bind, port, cluster: nameArg(f.cluster, 'cluster'), log: (l) => process.stdout.write(l + '\n') });
  const bound = await w.start();
  process.stdout.write(`witness of cluster ${f.cluster} on http://${f.bind}:${bound}\n`);
  await new Promise<void>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT'] as const) process.once(s, () => resolve());
  });
  await w.stop();
  return EXIT.OK;
}

async function install(mirror: string, f: LabFlags, uninstall: boolean): Promise<number> {
  const { lab } = await labHeartbeat(f);
  if (uninstall) {
    const m = await masterUrl(f);
    const body = await post(m.url, '/v1/uninstall', { mirror }, f);
    if (!f.json) process.stdout.write(`heartbeat mirror ${mirror} uninstalled (${JSON.stringify((body as { forwardedTo: unknown }).forwardedTo)})\n`);
    return EXIT.OK;
  }
  const lm = lab.mirrors?.find((x) => x.name === mirror);
  if (!lm || lm.secondaries.length !== 1) throw new CliError(EXIT.ERROR, 'not-found', `no mirror ${mirror} with one secondary in lab ${lab.lab} (heartbeat mirrors are created in the lab file or with sanbox mirror create)`);
  const side = (ref: string) => {
    const a = stateArray(lab, ref.slice(0, ref.indexOf(':')));
    return { mirror, address: `${lm.primary}>${lm.secondaries[0]}`, uris: lunUris(a, ref.slice(ref.indexOf(':') + 1)), array: arrayEndpoint(a), site: a.site ?? a.name };
  };
  const { site: from, ...send } = side(lm.primary);
  const { site: _s, ...receive } = side(lm.secondaries[0]!);
  const m = await masterUrl(f, from);
  const body = await post(m.url, '/v1/install', { mirror, from, send, receive }, f);
  if (!f.json) process.stdout.write(`heartbeat mirror ${mirror} installed by ${m.host} (forwarded: ${JSON.stringify((body as { forwardedTo: unknown }).forwardedTo)})\n`);
  return EXIT.OK;
}

export function addHeartbeatCommands(program: Command, run: Run): void {
  const hb = program.command('hb').description('heartbeats through mirrored volumes and the network (docs/heartbeat.md)');
  const labOpts = (c: Command) => c.option('--lab <name>', 'the lab (default: the only running lab)').option('--json', 'machine-readable output');
  hb.command('serve').description('run one host\'s heartbeat agent (sanbox up starts them)').requiredOption('--config <file>', 'the agent configuration (JSON)').action(run(serve));
  hb.command('witness').description('run a witness').option('--bind <addr>', 'listen address', '127.0.0.1').requiredOption('--port <n>', 'listen port').requiredOption('--cluster <name>', 'the cluster it serves').action(run(witness));
  labOpts(hb.command('status').description('every host: role, master, the heartbeat status table, witness, failover, fence').option('--host <name>', 'one host only')).action(
    run(async (f: LabFlags) => {
      const { answers } = await statuses(f);
      if (f.json) printJson({ hosts: answers });
      else process.stdout.write(statusText(answers) + '\n');
      return EXIT.OK;
    }),
  );
  labOpts(hb.command('notices').description('failure notices received from the other site').option('--host <name>', 'one host only')).action(
    run(async (f: LabFlags) => {
      const { hb: h } = await labHeartbeat(f);
      const hosts = f.host ? h.hosts.filter((x) => x.name === f.host) : h.hosts;
      const got = await Promise.all(hosts.map(async (x) => ({ host: x.name, ...(await getJson(`${x.url}/v1/notices`, 3000)) })));
      const notices = got.flatMap((g) => (g.ok ? (g.body as { notices: unknown[] }).notices.map((n) => ({ host: g.host, ...(n as object) })) : []));
      if (f.json) printJson({ notices, unreachable: got.filter((g) => !g.ok).map((g) => g.host) });
      else process.stdout.write(noticesText(notices as never) + '\n');
      return EXIT.OK;
    }),
  );
  labOpts(hb.command('mode').description('the heartbeat checking procedure (Fig. 8): which paths carry heartbeats').option('--network <on|off>').option('--mirrors <on|off>').option('--device <mirror>', 'one heartbeat mirror').option('--enabled <on|off>', 'with --device')).action(
    run(async (f: LabFlags & { network?: string; mirrors?: string; device?: string; enabled?: string }) => {
      const network = onOff(f.network, '--network');
      const mirrors = onOff(f.mirrors, '--mirrors');
      const enabled = onOff(f.enabled, '--enabled');
      if ((f.device === undefined) !== (enabled === undefined)) throw usage('--device and --enabled go together');
      if (network === undefined && mirrors === undefined && f.device === undefined) throw usage('give --network, --mirrors or --device with --enabled');
      const m = await masterUrl(f);
      await post(m.url, '/v1/mode', { ...(network !== undefined ? { network } : {}), ...(mirrors !== undefined ? { mirrors } : {}), ...(f.device ? { device: { mirror: f.device, enabled } } : {}) }, f);
      if (!f.json) process.stdout.write(`heartbeat checking procedure changed by ${m.host} and sent to the other hosts\n`);
      return EXIT.OK;
    }),
  );
  labOpts(hb.command('install <mirror>').description('install a heartbeat mirror without stopping (Fig. 4): it refuses a split until uninstalled')).action(run((m: string, f: LabFlags) => install(nameArg(m, 'mirror'), f, false)));
  labOpts(hb.command('uninstall <mirror>').description('uninstall a heartbeat mirror without stopping (Fig. 5)')).action(run((m: string, f: LabFlags) => install(nameArg(m, 'mirror'), f, true)));
  labOpts(
    hb
      .command('notify')
      .description('send a failure notice from the production master (Fig. 10)')
      .requiredOption('--component <id>', 'the failed component\'s identifier')
      .requiredOption('--kind <kind>', COMPONENT_KINDS.join(' | '))
      .requiredOption('--level <level>', NOTICE_LEVELS.join(' | '))
      .option('--details <text>', 'what failed', '')
      .option('--address <text>', 'where it is', ''),
  ).action(
    run(async (f: LabFlags & { component: string; kind: string; level: string; details: string; address: string }) => {
      if (!(NOTICE_LEVELS as readonly string[]).includes(f.level)) throw usage(`--level must be one of ${NOTICE_LEVELS.join(', ')}`);
      if (!(COMPONENT_KINDS as readonly string[]).includes(f.kind)) throw usage(`--kind must be one of ${COMPONENT_KINDS.join(', ')}`);
      const m = await masterUrl(f);
      const body = (await post(m.url, '/v1/notify', { componentId: f.component, componentKind: f.kind, level: f.level, details: f.details, address: f.address }, f)) as { notice: { seq: number }; delivered: string[]; failed: string[] };
      if (!f.json) process.stdout.write(`notice #${body.notice.seq} sent by ${m.host}: delivered ${body.delivered.join(', ') || 'nowhere'}${body.failed.length ? `; failed ${body.failed.join('; ')}` : ''}\n`);
      return body.delivered.length ? EXIT.OK : EXIT.ERROR;
    }),
  );
}
