/** `sanbox doctor`: what this machine offers sanbox (node, native addon, real client tools). */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { packageVersion } from '../control/service.js';
import { nativeInfo, type NativeInfo } from '../native/index.js';
import { EXIT, printJson, table } from './common.js';

export const MIN_NODE = [20, 17] as const;

/** Tools, how to ask their version, and what they are for. */
export const TOOLS: Array<{ name: string; args: string[]; purpose: string }> = [
  { name: 'qemu-io', args: ['--version'], purpose: 'interop: I/O patterns' },
  { name: 'qemu-img', args: ['--version'], purpose: 'interop: convert, map' },
  { name: 'nbdinfo', args: ['--version'], purpose: 'interop: size, flags, --list, --map' },
  { name: 'nbdcopy', args: ['--version'], purpose: 'interop: multi-conn copy' },
  { name: 'nbdsh', args: ['--version'], purpose: 'interop: scripted error replies' },
  { name: 'nbdfuse', args: ['--version'], purpose: 'mount a LUN without kernel nbd' },
  { name: 'fio', args: ['--version'], purpose: 'benchmark (nbd engine)' },
  { name: 'nbd-client', args: ['-V'], purpose: 'kernel client /dev/nbdX' },
  { name: 'nbdkit', args: ['--version'], purpose: 'benchmark peer' },
  { name: 'mkfs.ext4', args: ['-V'], purpose: 'file system on a LUN' },
];

export interface ToolReport {
  name: string;
  installed: boolean;
  /** Works: ran and printed a version. */
  ok: boolean;
  version?: string;
  path?: string;
  problem?: string;
  /** Works, with a caveat. */
  note?: string;
  purpose: string;
}

/** PATH with the system directories first (Debian's python3 for nbdsh, /usr/sbin tools). */
function toolPath(): string {
  const sys = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
  const rest = (process.env.PATH ?? '').split(':').filter((p) => p && !sys.includes(p));
  return [...sys, ...rest].join(':');
}

function which(name: string, path: string): string | undefined {
  for (const d of path.split(':')) {
    const p = `${d}/${name}`;
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** A client tool's `--version` gets this long before doctor calls it hung. */
const TOOL_TIMEOUT_MS = 5000;

function runVersion(file: string, args: string[], path: string): Promise<{ code: number | null; out: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: TOOL_TIMEOUT_MS, env: { ...process.env, PATH: path, LC_ALL: 'C' }, encoding: 'utf8' }, (err, stdout, stderr) => {
      const out = `${stdout}\n${stderr}`;
      const code = err ? ((err as { code?: unknown }).code as number | null) ?? null : 0;
      resolve({ code: typeof code === 'number' ? code : null, out, ...(err && typeof (err as { code?: unknown }).code === 'string' ? { error: err.message } : {}) });
    });
  });
}

export async function probeTool(t: { name: string; args: string[]; purpose: string }): Promise<ToolReport> {
  const path = toolPath();
  const where = which(t.name, path);
  if (!where) return { name: t.name, installed: false, ok: false, purpose: t.purpose };
  const r = await runVersion(where, t.args, path);
  const m = /(\d+\.\d+(?:\.\d+)?)/.exec(r.out.split('\n').find((l) => /\d+\.\d+/.test(l)) ?? '');
  const version = m?.[1];
  // nbd-client -V exits 1 after printing its version; accept a version line as proof of life.
  const ok = version !== undefined && (r.code === 0 || t.name === 'nbd-client');
  const rep: ToolReport = { name: t.name, installed: true, ok, path: where, purpose: t.purpose };
  if (version) rep.version = version;
  if (!ok) rep.problem = (r.error ?? r.out.trim().split('\n').filter(Boolean).pop() ?? `exit ${r.code}`).slice(0, 200);
  // nbdsh runs `python3` from PATH: a pyenv python3 first on the user's PATH lacks `import nbd`.
  if (ok && t.name === 'nbdsh' && process.env.PATH && process.env.PATH !== path) {
    const mine = await runVersion(where, t.args, process.env.PATH);
    if (mine.code !== 0) rep.note = `fails with your PATH (${mine.out.trim().split('\n').filter(Boolean).pop()?.slice(0, 120)}); put /usr/bin first`;
  }
  return rep;
}

/** The addon's loader never throws: a missing or broken addon is reported as the twin, with why. */
async function nativeReport(): Promise<NativeInfo & { error?: string }> {
  return nativeInfo();
}

export interface DoctorReport {
  sanbox: string;
  node: { version: string; ok: boolean; required: string };
  platform: string;
  native: NativeInfo & { error?: string };
  tools: ToolReport[];
  devices: { kernelNbd: boolean; fuse: boolean; loop: boolean };
}

export async function doctorReport(): Promise<DoctorReport> {
  const [maj, min] = process.versions.node.split('.').map(Number) as [number, number];
  const nodeOk = maj > MIN_NODE[0] || (maj === MIN_NODE[0] && min >= MIN_NODE[1]);
  const [native, tools] = await Promise.all([nativeReport(), Promise.all(TOOLS.map(probeTool))]);
  return {
    sanbox: packageVersion(),
    node: { version: process.version, ok: nodeOk, required: `>=${MIN_NODE.join('.')}` },
    platform: `${process.platform}-${process.arch}`,
    native,
    tools,
    devices: { kernelNbd: existsSync('/dev/nbd0'), fuse: existsSync('/dev/fuse'), loop: existsSync('/dev/loop-control') },
  };
}

export async function doctorCommand(f: { json?: boolean }): Promise<number> {
  const r = await doctorReport();
  const code = r.node.ok ? EXIT.OK : EXIT.ERROR;
  if (f.json) {
    printJson(r);
    return code;
  }
  const n = r.native;
  const nativeLine = n.loaded
    ? `loaded${n.version ? ` ${n.version}` : ''}${n.path ? ` (${n.path})` : ''}; crc32c: ${n.crcImpl}; hmac-sha256: ${n.shaImpl}`
    : `not loaded: TypeScript fallback${n.forcedTwin ? ' (forced)' : ''}${n.reason || n.error ? `: ${n.reason ?? n.error}` : ''}; crc32c: ${n.crcImpl}; hmac-sha256: ${n.shaImpl}`;
  const lines = [
    `sanbox ${r.sanbox} on ${r.platform}`,
    `node    ${r.node.version} ${r.node.ok ? 'ok' : `TOO OLD: sanbox needs node ${r.node.required}`}`,
    `native  ${nativeLine}`,
    '',
    table(
      ['TOOL', 'VERSION', 'STATUS', 'FOR'],
      r.tools.map((t) => [t.name, t.version ?? '-', t.ok ? t.path! : t.installed ? `broken: ${t.problem}` : 'not installed', t.purpose]),
    ),
    '',
    `kernel nbd (/dev/nbd0): ${r.devices.kernelNbd ? 'yes: nbd-client 127.0.0.1 10809 /dev/nbd0 -N disk0' : 'no: use nbdfuse + losetup + mount (see README)'}`,
    `fuse (/dev/fuse): ${r.devices.fuse ? 'yes' : 'no'}    loop devices: ${r.devices.loop ? 'yes' : 'no'}`,
  ];
  for (const t of r.tools) if (t.note) lines.push(`note: ${t.name} ${t.note}`);
  const missing = r.tools.filter((t) => !t.installed).map((t) => t.name);
  if (missing.length) lines.push(`missing tools: ${missing.join(' ')} (Debian: qemu-utils libnbd-bin python3-libnbd fio nbdkit nbd-client e2fsprogs)`);
  process.stdout.write(lines.join('\n') + '\n');
  return code;
}
