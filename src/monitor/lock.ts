/**
 * Exactly one daemon per state directory. The lock is a Linux abstract-namespace socket named
 * after the state directory's real path: binding it is atomic, and the kernel releases it the
 * moment its process dies, so there is no stale lock file to judge and no window in which two
 * starters both decide the lock is free. Ten `prmd` started at the same instant each try to
 * bind; one wins and serves, the others find it taken and just talk to the winner.
 */
import { createServer, type Server } from 'node:net';
import { createHash } from 'node:crypto';
import { realpath } from 'node:fs/promises';

export function lockNameOf(realDir: string): string {
  return `\0sanbox-monitor-${createHash('sha256').update(realDir).digest('hex').slice(0, 32)}`;
}

/** Takes the lock of `stateDir` (which must exist): the held lock, or null when another process holds it. */
export async function takeDaemonLock(stateDir: string): Promise<{ release: () => Promise<void> } | null> {
  const name = lockNameOf(await realpath(stateDir));
  const server: Server = createServer((s) => s.destroy());
  const won = await new Promise<boolean>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => (e.code === 'EADDRINUSE' ? resolve(false) : reject(e)));
    server.listen(name, () => resolve(true));
  });
  if (!won) return null;
  server.unref();
  return { release: () => new Promise<void>((r) => server.close(() => r())) };
}
