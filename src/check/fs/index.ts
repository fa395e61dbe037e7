/**
 * File-system check of a LUN through NBD, the way a host would see it: nbdfuse exposes the export
 * as a file (read-only), a loop device turns that into a block device, and `e2fsck -fn` checks it
 * without changing anything. Needs root, /dev/fuse, /dev/loop-control and the tools; where they
 * are missing, `fsCheckUnavailable()` says what is missing. Every loop device and FUSE mount is
 * undone before it returns.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ignoreOnClose } from '../../errors/index.js';
import { NbdClient, parseNbdUri } from '../nbd-client/index.js';

const TOOLS = ['nbdfuse', 'losetup', 'e2fsck', 'fusermount3'] as const;
const SYSTEM_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
const READY_TIMEOUT_MS = 20_000;
const TOOL_TIMEOUT_MS = 120_000;

/** The fs check cannot run here (no root, no FUSE, no loop devices, a tool missing). */
export class FsCheckUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FsCheckUnavailable';
  }
}

export interface FsCheckReport {
  ok: boolean;
  uri: string;
  /** e2fsck's exit status: 0 clean, 4 errors left uncorrected, 8 operational error (e.g. no ext2/3/4 superblock) */
  e2fsckExitCode: number;
  /** what e2fsck printed (stdout and stderr) */
  output: string;
  elapsedMs: number;
}

function findTool(name: string): string | null {
  for (const d of [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...SYSTEM_DIRS]) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Why the fs check cannot run on this machine, or null when it can. */
export function fsCheckUnavailable(): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (losetup and a FUSE mount)';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse (FUSE is not available)';
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control (loop devices are not available)';
  const missing = TOOLS.filter((t) => !findTool(t));
  if (missing.length) return `missing tools: ${missing.join(' ')} (Debian: nbdfuse fuse3 mount e2fsprogs)`;
  return null;
}

interface Ran {
  code: number;
  out: string;
}

function runTool(tool: string, args: string[], timeoutMs = TOOL_TIMEOUT_MS): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const p = spawn(findTool(tool) ?? tool, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    // 'close', not 'exit': the last output may still be in the pipes at 'exit'
    p.on('close', (code, sig) => {
      clearTimeout(t);
      resolve({ code: code ?? (sig ? 128 : 1), out });
    });
  });
}

/** A pause that does not keep the process alive. */
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * Runs e2fsck -fn on the export at `uri`. Throws FsCheckUnavailable when the machine cannot, a
 * BadNbdUri for a bad URI, ConnectionLost when the server cannot be reached, and Error when
 * nbdfuse or losetup fail.
 */
export async function checkFileSystem(uri: string): Promise<FsCheckReport> {
  parseNbdUri(uri);
  const why = fsCheckUnavailable();
  if (why) throw new FsCheckUnavailable(`sanbox check fs cannot run here: ${why}`);
  // Reachable at all? (nbdfuse would only say so after its own timeout.)
  const probe = await NbdClient.connect(uri, { timeoutMs: 5000 });
  await ignoreOnClose(probe.close(1000), 'closing the fs check probe');
  const t0 = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'sanbox-check-fs-'));
  const mp = join(work, 'fuse');
  const undo: (() => Promise<unknown>)[] = [];
  try {
    mkdirSync(mp);
    const pidfile = join(work, 'nbdfuse.pid');
    const fuse = spawn(findTool('nbdfuse')!, ['-r', '-P', pidfile, mp, uri], { stdio: ['ignore', 'ignore', 'pipe'] });
    let fuseErr = '';
    fuse.stderr.on('data', (d) => (fuseErr += d));
    let fuseExited = false;
    const fuseGone = new Promise<void>((r) => fuse.once('exit', () => ((fuseExited = true), r())));
    undo.push(async () => {
      if (fuseExited) return;
      let r = await runTool('fusermount3', ['-u', mp], 15_000);
      if (r.code !== 0) r = await runTool('fusermount3', ['-uz', mp], 15_000);
      if ((await Promise.race([fuseGone.then(() => 'gone'), sleep(10_000).then(() => 'late')])) === 'late') {
        fuse.kill('SIGKILL');
        await fuseGone;
      }
    });
    const file = join(mp, 'nbd');
    const deadline = Date.now() + READY_TIMEOUT_MS;
    const ready = () => existsSync(pidfile) && existsSync(file);
    while (!fuseExited && !ready() && Date.now() < deadline) await sleep(50);
    if (fuseExited || !ready()) throw new Error(`nbdfuse ${fuseExited ? 'exited' : 'not ready within 20 s'}: ${fuseErr.trim()}`);
    const lo = await runTool('losetup', ['-r', '-f', '--show', file], 30_000);
    const dev = lo.out.trim();
    if (lo.code !== 0 || !/^\/dev\/loop\d+$/.test(dev)) throw new Error(`losetup failed (${lo.code}): ${lo.out.trim()}`);
    undo.push(() => runTool('losetup', ['-d', dev], 30_000));
    const fsck = await runTool('e2fsck', ['-fn', dev]);
    return { ok: fsck.code === 0, uri, e2fsckExitCode: fsck.code, output: fsck.out, elapsedMs: Date.now() - t0 };
  } finally {
    while (undo.length) await ignoreOnClose(undo.pop()!(), 'undoing the fs check mounts');
    // Directories only (never recursive: a mount left behind must not be walked into).
    await ignoreOnClose(rm(join(work, 'nbdfuse.pid'), { force: true }), 'removing the nbdfuse pid file');
    await ignoreOnClose(rmdir(mp), 'removing the fs check mount point');
    await ignoreOnClose(rmdir(work), 'removing the fs check directory');
  }
}
