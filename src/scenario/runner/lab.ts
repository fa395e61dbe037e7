/**
 * The lab of one scenario run: the scenario's lab file rewritten for the run (its own lab name,
 * free ports chosen now and fixed for the whole run so a restarted array comes back where its
 * clients look for it, every array directory under the run's image directory), started with
 * `sanbox up --detach` and stopped with `sanbox down`, as a user would.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import type { LabState } from '../../cli/lab/index.js';

/** bin/sanbox.js of this package (dist/scenario/runner/lab.js is three levels below the root). */
export const SANBOX_BIN = fileURLToPath(new URL('../../../bin/sanbox.js', import.meta.url));

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Ports below the kernel's ephemeral range (32768 and up on Linux) that are free now, all held
 * until every one is chosen so none repeats. Not ephemeral ones: a crashed array comes back on
 * its port, which an outgoing connection could have been given meanwhile.
 */
export const PORT_RANGE = { from: 20_000, to: 32_000 } as const;

export async function freePorts(n: number, random: () => number = Math.random): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let tries = 0; servers.length < n; tries++) {
      if (tries > n * 50) throw new Error(`no ${n} free ports in ${PORT_RANGE.from}-${PORT_RANGE.to}`);
      const port = PORT_RANGE.from + Math.floor(random() * (PORT_RANGE.to - PORT_RANGE.from));
      const s = createServer();
      const bound = await new Promise<boolean>((ok) => s.once('error', () => ok(false)).listen(port, '127.0.0.1', () => ok(true)));
      if (bound) servers.push(s);
    }
    return servers.map((s) => (s.address() as { port: number }).port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  }
}

/**
 * The lab file for the run: the same arrays, LUNs, links, mirrors, groups and sites, under the
 * name `labName`, on fresh ports, with relative secret files resolved against the original.
 */
export async function rewriteLab(labFile: string, labName: string): Promise<string> {
  const doc = parse(readFileSync(labFile, 'utf8')) as Obj;
  if (!isObj(doc) || !Array.isArray(doc.arrays)) throw new Error(`${labFile}: not a lab file (no arrays:)`);
  const arrays = (doc.arrays as unknown[]).filter(isObj).filter((a) => a.host === undefined);
  const links = Array.isArray(doc.links) ? (doc.links as unknown[]).filter(isObj) : [];
  const ports = await freePorts(arrays.length * 4 + links.length * 3);
  const next = () => ports.pop() as number;
  for (const a of arrays) {
    delete a.dir;
    const bind = (v: unknown) => (isObj(v) && typeof v.bind === 'string' ? v.bind : '127.0.0.1');
    a.nbd = a.sps !== undefined ? { bind: bind(a.nbd), ports: [next(), next()] } : { bind: bind(a.nbd), port: next() };
    a.api = { ...(isObj(a.api) ? a.api : {}), bind: bind(a.api), port: next() };
    if (a.remoteLink !== undefined) a.remoteLink = { ...(isObj(a.remoteLink) ? a.remoteLink : {}), bind: bind(a.remoteLink), port: next() };
  }
  for (const l of links) {
    l.listen = { bind: isObj(l.listen) && typeof l.listen.bind === 'string' ? l.listen.bind : '127.0.0.1', toB: next(), toA: next() };
    l.api = { ...(isObj(l.api) ? l.api : {}), port: next() };
    if (typeof l.secretFile === 'string' && !isAbsolute(l.secretFile)) l.secretFile = resolve(dirname(labFile), l.secretFile);
  }
  // A fixed dashboard port would clash between runs: any free one (its URL is in the lab state).
  if (isObj(doc.dashboard)) doc.dashboard = { ...doc.dashboard, port: 0 };
  // The heartbeat's agents, witness and network API likewise (their URLs are in the lab state).
  if (isObj(doc.heartbeat)) {
    const hb = doc.heartbeat;
    if (Array.isArray(hb.hosts)) for (const h of hb.hosts) if (isObj(h)) h.port = 0;
    if (isObj(hb.witness)) hb.witness = { ...hb.witness, port: 0 };
    hb.network = { ...(isObj(hb.network) ? hb.network : {}), api: { port: 0 } };
  }
  // The automation controllers likewise; their host resources' commands name scripts next to the original lab file.
  if (isObj(doc.automation)) rewriteAutomation(doc.automation, dirname(resolve(labFile)));
  doc.lab = labName;
  return `# ${labFile}, rewritten for a scenario run (lab name, ports, directories)\n${stringify(doc)}`;
}

function rewriteAutomation(auto: Obj, labDir: string): void {
  if (Array.isArray(auto.controllers)) for (const c of auto.controllers) if (isObj(c)) c.port = 0;
  const groups = Array.isArray(auto.resourceGroups) ? auto.resourceGroups.filter(isObj) : [];
  for (const r of groups.flatMap((g) => (Array.isArray(g.resources) ? g.resources.filter(isObj) : [])))
    for (const k of ['start', 'stop', 'monitor']) if (typeof r[k] === 'string') r[k] = (r[k] as string).replace(/\$\{?SANBOX_LAB_DIR\}?/g, labDir);
}

export interface RunLab {
  name: string;
  file: string;
  /** where commands run: the scenario file's directory */
  scenarioDir: string;
  /** SANBOX_IMAGES of the run: array directories and the lab state */
  imagesDir: string;
  env: NodeJS.ProcessEnv;
}

/** The environment of everything the run starts: the lab's images and name, and `sanbox` on PATH. */
export function labEnv(runDir: string, imagesDir: string, labName: string): NodeJS.ProcessEnv {
  const bin = join(runDir, 'bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'sanbox'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(SANBOX_BIN)} "$@"\n`, { mode: 0o755 });
  return { ...process.env, SANBOX_IMAGES: imagesDir, SANBOX_LAB: labName, SANBOX_RUN_DIR: runDir, PATH: `${bin}:${process.env.PATH ?? ''}` };
}

/** Writes the run's lab file; nothing is started yet. */
export async function prepareLab(labFile: string, runDir: string, labName: string, scenarioDir: string): Promise<RunLab> {
  const imagesDir = join(runDir, 'images');
  mkdirSync(imagesDir, { recursive: true });
  const file = join(runDir, 'lab.yaml');
  writeFileSync(file, await rewriteLab(labFile, labName));
  return { name: labName, file, scenarioDir, imagesDir, env: labEnv(runDir, imagesDir, labName) };
}

export interface SanboxResult {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  json: unknown;
}

/** Runs `sanbox ARGS` (a child process), its stdout parsed as JSON when it is. */
export function sanbox(args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<SanboxResult> {
  return new Promise((ok, fail) => {
    const p = spawn(process.execPath, [SANBOX_BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', fail);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      ok({ code, signal, stdout, stderr, json: stdoutJson(stdout) ?? null });
    });
  });
}

/**
 * The JSON document a child printed on stdout, from its first line that opens one (fio prints
 * notes before it); undefined when there is none.
 */
export function stdoutJson(stdout: string): unknown {
  const start = stdout.startsWith('{') ? 0 : stdout.indexOf('\n{') + 1;
  try {
    return JSON.parse(stdout.slice(start));
  } catch {
    return undefined;
  }
}

const UP_TIMEOUT_MS = 180_000;

/** `sanbox up FILE --detach --json`: answers with the lab state once every array is ready. */
export async function startLab(lab: RunLab): Promise<LabState> {
  const r = await sanbox(['up', lab.file, '--detach', '--json'], lab.env, UP_TIMEOUT_MS);
  if (r.code !== 0 || !isObj(r.json)) {
    throw new Error(`sanbox up ${lab.file} failed (exit ${r.code ?? r.signal}): ${(r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n')}`);
  }
  return r.json as unknown as LabState;
}

/** `sanbox down NAME`: every process of the lab stops, crashed arrays included. */
export async function stopLab(lab: RunLab): Promise<void> {
  const r = await sanbox(['down', lab.name, '--json'], lab.env, 60_000);
  if (r.code !== 0) throw new Error(`sanbox down ${lab.name} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim()}`);
}

/** The lab's state file as the supervisor keeps it (arrays' state, URLs, the control API). */
export function readLabState(lab: RunLab): LabState {
  return JSON.parse(readFileSync(join(lab.imagesDir, '.labs', `${lab.name}.json`), 'utf8')) as LabState;
}
