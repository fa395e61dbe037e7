/** `sanbox serve` (quick single array) and `sanbox array serve --config` (a lab's array process). */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { ArrayError, checkName, formatSize, parseSize } from '../array/index.js';
import { ApiError, hostPort, isLoopback, nbdUri } from '../control/index.js';
import { formatEvent, startArray, startChassisArray, type ArrayServiceConfig, type LunSpec, type RunningArray } from '../control/service.js';
import { DEFAULT_SPS } from '../array/chassis/index.js';
import { BIN, CliError, EXIT, printJson, usage } from './common.js';
import { resolveToken } from './token-file.js';
import { tlsConfigFrom } from './tls-args.js';
import { nbdMemoryProblem, parsePskFile, type NbdTlsConfig } from '../nbd/index.js';

export interface ServeFlags {
  dir?: string;
  name?: string;
  port: string;
  bind: string;
  lun: string[];
  blockSize?: string;
  readOnly?: boolean;
  apiPort: string;
  apiBind: string;
  apiToken?: string;
  /** The token as the first line of this file (not shown in `ps`, unlike --api-token). */
  apiTokenFile?: string;
  api: boolean;
  quiet?: boolean;
  json?: boolean;
  /** Two storage processors (chassis + SP A on --port, SP B on --port + 1) with default settings. */
  sps?: boolean;
  /** NBD over TLS: off, on (optional) or require; credentials below. */
  tls?: string;
  tlsCertificates?: string;
  tlsPsk?: string;
  /** NBD memory budget (a size) of the array's NBD server, or of each SP's. */
  nbdMemory?: string;
}

function parsePort(v: string, what: string): number {
  if (!/^\d{1,5}$/.test(v) || Number(v) > 65535) throw usage(`${what} must be a port number 0-65535 (0: any free port), not ${JSON.stringify(v)}`);
  return Number(v);
}

/** `NAME=SIZE` or `NAME=SIZE:BLOCKSIZE`. */
export function parseLunArg(arg: string, defaultBlockSize?: number): LunSpec {
  const m = /^([^=]*)=([^:]*)(?::(.*))?$/.exec(arg);
  if (!m) throw usage(`--lun ${JSON.stringify(arg)}: expected NAME=SIZE or NAME=SIZE:BLOCKSIZE, e.g. disk0=1G`);
  const [, name, sizeText, bsText] = m;
  const bad = checkName(name);
  if (bad) throw usage(`--lun ${arg}: ${bad}`);
  const size = parseSize(sizeText!);
  if (size === undefined) throw usage(`--lun ${arg}: ${JSON.stringify(sizeText)} is not a size (e.g. 1G, 256M, 1048576)`);
  let blockSize = defaultBlockSize;
  if (bsText !== undefined) {
    if (bsText !== '512' && bsText !== '4096') throw usage(`--lun ${arg}: block size must be 512 or 4096`);
    blockSize = Number(bsText);
  }
  const bs = blockSize ?? 512;
  if (size <= 0 || size % bs !== 0) throw usage(`--lun ${arg}: size must be a positive multiple of the block size ${bs}`);
  return { name: name!, size, ...(blockSize !== undefined ? { blockSize } : {}) };
}

export function serveConfig(f: ServeFlags): ArrayServiceConfig {
  if (!f.dir) throw usage('serve needs --dir DIR (the array directory: metadata and image files)');
  const dir = resolve(f.dir);
  let name = f.name;
  if (name === undefined) {
    const base = basename(dir);
    name = checkName(base) ? 'array' : base;
  }
  const bad = checkName(name, 'array name');
  if (bad) throw usage(bad);
  let blockSize: number | undefined;
  if (f.blockSize !== undefined) {
    if (f.blockSize !== '512' && f.blockSize !== '4096') throw usage('--block-size must be 512 or 4096');
    blockSize = Number(f.blockSize);
  }
  const luns = f.lun.map((l) => parseLunArg(l, blockSize));
  const seen = new Set<string>();
  for (const l of luns) {
    if (seen.has(l.name)) throw usage(`--lun ${l.name} given twice`);
    seen.add(l.name);
  }
  const apiToken = resolveToken({ token: f.apiToken, file: f.apiTokenFile }, { token: '--api-token', file: '--api-token-file' }, 'SANBOX_TOKEN');
  if (f.api && !isLoopback(f.apiBind) && !apiToken) {
    throw usage(`--api-bind ${f.apiBind} is not loopback: give --api-token-file FILE (or SANBOX_TOKEN, or --api-token TOKEN), or --no-api`);
  }
  if (apiToken !== undefined && apiToken.length < 8) throw usage('the API token must be at least 8 characters');
  let nbdMemory: number | undefined;
  if (f.nbdMemory !== undefined) {
    nbdMemory = parseSize(f.nbdMemory);
    const bad = nbdMemoryProblem(nbdMemory);
    if (bad) throw usage(`--nbd-memory ${bad}, not ${JSON.stringify(f.nbdMemory)}`);
  }
  let tls: NbdTlsConfig | undefined;
  try {
    tls = tlsConfigFrom({ mode: f.tls, certificates: f.tlsCertificates, psk: f.tlsPsk }, process.cwd(), { mode: '--tls', certificates: '--tls-certificates', psk: '--tls-psk' });
  } catch (e) {
    throw usage((e as Error).message);
  }
  return {
    name,
    dir,
    nbd: { bind: f.bind, port: parsePort(f.port, '--port'), ...(tls ? { tls } : {}), ...(nbdMemory !== undefined ? { memory: nbdMemory } : {}) },
    api: f.api ? { bind: f.apiBind, port: parsePort(f.apiPort, '--api-port'), ...(apiToken ? { token: apiToken } : {}) } : false,
    luns,
    readOnly: f.readOnly === true,
    ...(f.sps ? { sps: structuredClone(DEFAULT_SPS) } : {}),
  };
}

function endpointHost(bind: string): string {
  return bind === '0.0.0.0' || bind === '::' ? '127.0.0.1' : bind;
}

/**
 * An nbds:// URI with what libnbd needs to use the array's TLS credentials: the PSK user before
 * the host (the libnbd 1.14 of Debian 12 ignores a tls-username parameter) and the PSK file, or the
 * certificates directory (its ca-cert.pem verifies the server).
 */
function withTlsCredentials(uri: string, tls: NbdTlsConfig | undefined): string {
  if (!tls || tls.mode === 'off') return uri;
  if (tls.psk) {
    let user = 'USER';
    try {
      user = [...parsePskFile(readFileSync(tls.psk, 'utf8'), tls.psk).keys()][0] ?? user;
    } catch {
      /* checked at start; only a hint here */
    }
    return `${uri.replace('nbds://', `nbds://${encodeURIComponent(user)}@`)}?tls-psk-file=${tls.psk}`;
  }
  return `${uri}?tls-certificates=${tls.certificates}`;
}

/** The lines printed when an array is up. */
export function readyText(run: RunningArray, prefix = '', tls?: NbdTlsConfig): string {
  const a = run.array;
  const host = endpointHost(run.nbd.host);
  const luns = a.listLuns();
  const scheme = run.nbd.tls ? 'nbds' : 'nbd';
  const lines = [
    `${prefix}array ${a.name} (${a.readOnly ? 'read-only' : 'read-write'}) in ${a.dir}`,
    ...(run.chassis ? run.nbdAll.map((ep) => `${prefix}  SP ${ep.sp}  ${scheme}://${hostPort(host, ep.port)}`) : []),
    `${prefix}  NBD   ${scheme}://${hostPort(host, run.nbd.port)}${run.nbd.tls ? ` (TLS ${run.nbd.tls === 'require' ? 'required' : 'optional'})` : ''}  exports: ${
      luns.length ? luns.map((l) => `${l.name} (${formatSize(l.size)}${l.state !== 'online' ? ', ' + l.state : ''})`).join(', ') : 'none yet'
    }`,
  ];
  if (run.apiUrl) lines.push(`${prefix}  API   ${run.apiUrl}`);
  const first = luns.find((l) => l.state === 'online');
  if (first) {
    const uri = nbdUri(host, run.nbd.port, first.name, run.nbd.tls);
    if (run.nbd.tls) {
      // libnbd takes the credentials in the URI; qemu needs a tls-creds object (see docs/nbd.md).
      lines.push(`${prefix}  try   nbdinfo '${withTlsCredentials(uri, tls)}'`);
    } else {
      lines.push(`${prefix}  try   nbdinfo ${uri}`);
      lines.push(`${prefix}        qemu-io -f raw -c 'read -v 0 512' ${uri}`);
    }
  } else {
    lines.push(`${prefix}  no LUNs yet: sanbox lun create NAME SIZE${run.apiUrl ? ` --api ${run.apiUrl}` : ''}`);
  }
  if (run.apiUrl) lines.push(`${prefix}        SANBOX_API=${run.apiUrl} sanbox status`);
  for (const p of a.openProblems) lines.push(`${prefix}  warning: ${p}`);
  return lines.join('\n');
}

/** Machine-readable summary of a running array (what `array serve` reports to its supervisor). */
export function readyInfo(run: RunningArray): {
  name: string;
  pid: number;
  dir: string;
  nbd: { host: string; port: number; tls?: 'on' | 'require' };
  api: { url: string } | undefined;
  sps?: { name: string; host: string; port: number }[];
} {
  return {
    name: run.array.name,
    pid: process.pid,
    dir: run.array.dir,
    nbd: { host: endpointHost(run.nbd.host), port: run.nbd.port, ...(run.nbd.tls ? { tls: run.nbd.tls } : {}) },
    api: run.apiUrl ? { url: run.apiUrl } : undefined,
    ...(run.chassis ? { sps: run.nbdAll.map((ep) => ({ name: ep.sp ?? '?', host: endpointHost(ep.host), port: ep.port })) } : {}),
  };
}

function startError(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof ApiError) return new CliError(EXIT.USAGE, e.code, e.message);
  if (e instanceof ArrayError) return new CliError(EXIT.ERROR, e.code, e.message);
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EADDRINUSE') return new CliError(EXIT.ERROR, 'address-in-use', `cannot listen: ${err.message}`);
  if (err.code === 'EADDRNOTAVAIL') return new CliError(EXIT.ERROR, 'address-not-available', `cannot listen: ${err.message}`);
  return new CliError(EXIT.ERROR, err.code ?? 'error', err.message ?? String(e));
}

/**
 * Runs an array until SIGINT/SIGTERM/SIGHUP (or, under a supervisor, until the IPC channel
 * closes), then shuts it down gracefully. Resolves with the exit code.
 */
export async function runArray(cfg: ArrayServiceConfig, opts: { quiet?: boolean; json?: boolean; supervised?: boolean; lab?: string }): Promise<number> {
  let run: RunningArray;
  try {
    const extra = () => (opts.lab ? { lab: opts.lab } : {});
    run = cfg.sps
      ? await startChassisArray({ ...cfg, sps: cfg.sps }, { exec: process.execPath, args: [BIN] }, extra, (line) => {
          if (!opts.quiet) process.stderr.write(line + '\n');
        })
      : await startArray(cfg, extra);
  } catch (e) {
    throw startError(e);
  }
  if (!opts.quiet) run.array.on('event', (ev) => process.stderr.write(formatEvent(ev) + '\n'));
  if (opts.supervised && process.send) {
    process.send({ type: 'ready', ...readyInfo(run) });
  } else if (opts.json) {
    printJson({ ...readyInfo(run), luns: run.array.listLuns().map((l) => ({ id: l.id, name: l.name, uri: nbdUri(endpointHost(run.nbd.host), run.nbd.port, l.name, run.nbd.tls), size: l.size, blockSize: l.blockSize, image: l.imagePath })) });
  } else {
    process.stdout.write(readyText(run, '', cfg.nbd.tls) + '\nCtrl-C stops.\n');
  }
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (why: string) => {
      if (stopping) {
        // A second Ctrl-C from the user means "now"; repeated SIGTERMs and the supervisor going
        // away during shutdown do not.
        if (why === 'SIGINT') {
          process.stderr.write(`sanbox: ${why} again: exiting without a clean shutdown\n`);
          process.exit(130);
        }
        return;
      }
      stopping = true;
      if (!opts.quiet) process.stderr.write(`sanbox: ${why}: shutting down array ${cfg.name}\n`);
      run.close().then(
        () => {
          for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, handlers[s]);
          if (process.connected) process.disconnect();
          resolveExit(EXIT.OK);
        },
        (e: unknown) => {
          process.stderr.write(`sanbox: shutdown failed: ${(e as Error).message}\n`);
          resolveExit(EXIT.ERROR);
        },
      );
    };
    // Under a supervisor, Ctrl-C reaches the whole process group: the supervisor decides and
    // sends SIGTERM, so the array ignores SIGINT itself.
    const handlers = {
      SIGINT: opts.supervised ? () => undefined : () => stop('SIGINT'),
      SIGTERM: () => stop('SIGTERM'),
      SIGHUP: () => stop('SIGHUP'),
    };
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, handlers[s]);
    // A lab array stops when its supervisor goes away.
    if (opts.supervised && process.send) process.once('disconnect', () => stop('supervisor gone'));
  });
}

export async function serveCommand(f: ServeFlags): Promise<number> {
  const cfg = serveConfig(f);
  return runArray(cfg, { quiet: f.quiet, json: f.json });
}

export async function arrayServeCommand(f: { config: string; lab?: string; quiet?: boolean; json?: boolean }): Promise<number> {
  let cfg: ArrayServiceConfig;
  try {
    cfg = JSON.parse(await readFile(f.config, 'utf8')) as ArrayServiceConfig;
  } catch (e) {
    throw usage(`cannot read array config ${f.config}: ${(e as Error).message}`);
  }
  if (!cfg || typeof cfg !== 'object' || typeof cfg.name !== 'string' || typeof cfg.dir !== 'string' || !cfg.nbd || !Array.isArray(cfg.luns)) {
    throw usage(`${f.config} is not an array config (name, dir, nbd, api, luns)`);
  }
  return runArray(cfg, { quiet: f.quiet, json: f.json, supervised: process.send !== undefined, lab: f.lab });
}
