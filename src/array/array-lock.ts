/**
 * The array directory's lock file: one process at a time opens an array. A lock left by a dead
 * process is taken over.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { ArrayError } from './array-error.js';

const LOCK_ATTEMPTS = 3;

export function lockPathOf(dir: string): string {
  return join(dir, 'array.lock');
}

export async function takeLock(dir: string, name: string): Promise<void> {
  const path = lockPathOf(dir);
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    try {
      const fh = await fsp.open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL, 0o644);
      await fh.writeFile(`${process.pid}\n`);
      await fh.close();
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    // A lock file that vanished meanwhile reads as no owner: the next attempt takes it.
    const pid = Number((await fsp.readFile(path, 'utf8').catch(() => '')).trim());
    if (Number.isSafeInteger(pid) && pid > 0 && pidAlive(pid)) {
      throw new ArrayError('busy', `array ${name} in ${dir} is already open by process ${pid} (lock file ${path})`);
    }
    await fsp.rm(path, { force: true }); // stale lock of a dead process
  }
  throw new ArrayError('busy', `cannot take the lock ${path}`);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
