// A real file system on a LUN: nbdfuse exposes the export as a file, a loop
// device turns it into a block device, then mkfs.ext4, mount, write files,
// sync, umount, e2fsck -fn clean; the server is restarted on the same images
// and the file system is checked and read back again. Needs root, /dev/fuse and
// losetup; every mount, loop device and FUSE mount is undone in finally blocks.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MiB, mustRun, rmrf, run, startServer, tempDir, toolEnv, waitFor, type NbdServer } from './harness.js';

function skipReason(): string | null {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not root';
  if (!existsSync('/dev/fuse')) return 'no /dev/fuse';
  if (!existsSync('/dev/loop-control')) return 'no /dev/loop-control';
  for (const t of ['nbdfuse', 'losetup', 'mkfs.ext4', 'e2fsck', 'mount', 'umount']) {
    const found = ['/usr/bin', '/usr/sbin', '/bin', '/sbin', '/usr/local/bin'].some((d) => existsSync(join(d, t)));
    if (!found) return `${t} not installed`;
  }
  return null;
}

const reason = skipReason();
if (reason) console.warn(`[interop/ext4] SKIPPED: ${reason}`);

const SIZE = 256 * MiB;
const cleanups: Array<() => Promise<void>> = [];
let work: string;

interface Fuse { child: ChildProcess; mp: string; file: string; stderr: () => string }

async function fuseMount(srv: NbdServer, mp: string): Promise<Fuse> {
  mkdirSync(mp, { recursive: true });
  const pidfile = join(work, `nbdfuse-${Date.now()}.pid`);
  const child = spawn('nbdfuse', ['-P', pidfile, mp, srv.uri('fs')], { env: toolEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
  child.stdout!.resume();
  let exited = false;
  child.on('exit', () => { exited = true; });
  const f: Fuse = { child, mp, file: join(mp, 'nbd'), stderr: () => err };
  cleanups.push(async () => fuseUnmount(f));
  try {
    await waitFor(() => exited || (existsSync(pidfile) && existsSync(f.file)), 20_000, 'nbdfuse to be ready');
  } catch (e) {
    throw new Error(`${(e as Error).message}\nnbdfuse stderr: ${err}\nserver stderr: ${srv.stderr().slice(-3000)}`);
  }
  if (exited) throw new Error(`nbdfuse exited early: ${err}\nserver stderr: ${srv.stderr().slice(-3000)}`);
  return f;
}

async function fuseUnmount(f: Fuse): Promise<void> {
  if (f.child.exitCode !== null || f.child.signalCode !== null) return;
  const exitP = new Promise<void>((r) => f.child.once('exit', () => r()));
  let r = await run('fusermount3', ['-u', f.mp], { timeoutMs: 15_000 });
  if (r.code !== 0) r = await run('fusermount3', ['-uz', f.mp], { timeoutMs: 15_000 });
  const t = new Promise<'t'>((res) => setTimeout(() => res('t'), 10_000).unref());
  if ((await Promise.race([exitP.then(() => 'e' as const), t])) === 't') {
    f.child.kill('SIGKILL');
    await exitP;
  }
}

async function losetupAttach(file: string): Promise<string> {
  const r = await mustRun('losetup', ['-f', '--show', file], { timeoutMs: 30_000 });
  const dev = r.stdout.trim();
  expect(dev).toMatch(/^\/dev\/loop\d+$/);
  cleanups.push(async () => { await run('losetup', ['-d', dev], { timeoutMs: 30_000 }); });
  return dev;
}

async function mountFs(dev: string, mnt: string, ro = false): Promise<void> {
  mkdirSync(mnt, { recursive: true });
  await mustRun('mount', ['-t', 'ext4', ...(ro ? ['-o', 'ro'] : []), dev, mnt], { timeoutMs: 60_000 });
  cleanups.push(async () => {
    const r = await run('umount', [mnt], { timeoutMs: 60_000 });
    if (r.code !== 0 && !/not mounted/.test(r.stderr)) await run('umount', ['-l', mnt], { timeoutMs: 30_000 });
  });
}

/** Run cleanups in reverse order (umount, losetup -d, fusermount -u, stop). */
async function unwind(): Promise<void> {
  while (cleanups.length) {
    const c = cleanups.pop()!;
    try { await c(); } catch (e) { console.warn(`[interop/ext4] cleanup failed: ${(e as Error).message}`); }
  }
}

function sha(b: Buffer) {
  return createHash('sha256').update(b).digest('hex');
}

describe.skipIf(reason !== null)('ext4 on a LUN via nbdfuse + loop', () => {
  afterAll(async () => {
    await unwind();
    if (work) rmrf(work);
  });

  it('mkfs, mount, write files, sync, umount, e2fsck clean; again after a server restart', { timeout: 300_000 }, async () => {
    work = tempDir('sanbox-ext4-');
    const dir = join(work, 'images');
    const mp = join(work, 'fuse');
    const mnt = join(work, 'mnt');
    let srv = await startServer({ luns: [{ name: 'fs', size: SIZE }], dir });
    cleanups.push(async () => { await srv.stop(); });

    const fuse = await fuseMount(srv, mp);
    const dev = await losetupAttach(fuse.file);
    await mustRun('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', dev], { timeoutMs: 120_000, server: srv });
    await mountFs(dev, mnt);

    const files = new Map<string, string>();
    mkdirSync(join(mnt, 'sub', 'deeper'), { recursive: true });
    const sizes = [0, 1, 511, 4096, 65537, 1 * MiB, 3 * MiB + 123, 16 * MiB];
    for (let i = 0; i < 24; i++) {
      const rel = i % 3 === 0 ? join('sub', 'deeper', `f${i}`) : i % 3 === 1 ? join('sub', `f${i}`) : `f${i}`;
      const data = randomBytes(sizes[i % sizes.length]!);
      writeFileSync(join(mnt, rel), data);
      files.set(rel, sha(data));
    }
    // overwrite and delete some, so the fs frees and reuses blocks (discard/zero paths)
    writeFileSync(join(mnt, 'f2'), Buffer.alloc(2 * MiB, 0x61));
    files.set('f2', sha(Buffer.alloc(2 * MiB, 0x61)));
    rmrf(join(mnt, 'f5'));
    files.delete('f5');
    await mustRun('sync', ['-f', join(mnt, 'f2')]);
    await mustRun('fstrim', ['-v', mnt], { timeoutMs: 60_000 }).catch(() => { /* fstrim may be unsupported on loop-over-fuse; optional */ });

    // unmount (the cleanup registered by mountFs becomes a no-op afterwards)
    await mustRun('umount', [mnt], { timeoutMs: 60_000, server: srv });
    const fsck = await run('e2fsck', ['-fn', dev], { timeoutMs: 120_000 });
    expect(fsck.code, `e2fsck -fn not clean:\n${fsck.stdout}\n${fsck.stderr}`).toBe(0);

    // detach everything, restart the server on the same images
    await unwind();
    const stop = await srv.stop();
    expect(stop.killed, 'server did not exit within 10 s of SIGTERM').toBe(false);
    srv = await startServer({ luns: [{ name: 'fs', size: SIZE }], dir });
    cleanups.push(async () => { await srv.stop(); });

    const fuse2 = await fuseMount(srv, mp);
    const dev2 = await losetupAttach(fuse2.file);
    const fsck2 = await run('e2fsck', ['-fn', dev2], { timeoutMs: 120_000 });
    expect(fsck2.code, `e2fsck -fn after restart not clean:\n${fsck2.stdout}\n${fsck2.stderr}`).toBe(0);
    await mountFs(dev2, mnt, true);
    for (const [rel, h] of files) {
      expect(sha(readFileSync(join(mnt, rel))), rel).toBe(h);
    }
    expect(existsSync(join(mnt, 'f5'))).toBe(false);
    expect(readdirSync(join(mnt, 'sub', 'deeper')).length).toBe(8);
    await unwind();
  });
});
