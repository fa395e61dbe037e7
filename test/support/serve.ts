/**
 * Test helper: runs `node bin/sanbox.js serve` as a child process (so it can be SIGKILLed like a
 * crashing array) and waits until it prints its endpoints.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { launchSanbox } from './launch.js';

export interface Served {
  proc: ChildProcess;
  pid: number;
  port: number;
  uri: (lun: string) => string;
  image: (lunId: number) => string;
  /** SIGKILL and wait for the exit. */
  kill: (signal?: NodeJS.Signals) => Promise<void>;
  stderr: () => string;
}

/** Starts `sanbox serve --dir DIR --port PORT --lun ...` and resolves once it is ready. */
export async function serve(dir: string, port: number, luns: string[] = ['disk=64M'], timeoutMs = 20_000): Promise<Served> {
  const args = ['serve', '--dir', dir, '--port', String(port), '--no-api', '--json', '-q'];
  for (const l of luns) args.push('--lun', l);
  const { proc, ready: info, stderr, exited } = await launchSanbox<{ nbd: { port: number } }>(args, 'sanbox serve', timeoutMs);
  return {
    proc,
    pid: proc.pid!,
    port: info.nbd.port,
    uri: (lun) => `nbd://127.0.0.1:${info.nbd.port}/${lun}`,
    image: (id) => join(dir, `lun${id}.img`),
    kill: async (signal = 'SIGKILL') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      await exited;
    },
    stderr,
  };
}
