/**
 * A scenario's `command` step: `sh -c` in the scenario file's directory, with the lab's
 * environment (SANBOX_LAB, SANBOX_IMAGES, SANBOX_RUN_DIR, SANBOX_SEED, SANBOX_URI_*).
 */
import { spawn } from 'node:child_process';
import type { LabApis } from './apis.js';

/** How long a command step may run. */
const COMMAND_TIMEOUT_MS = 600_000;

export function uriEnv(apis: LabApis): Record<string, string> {
  const env: Record<string, string> = {};
  const key = (s: string) => s.toUpperCase().replace(/[-.]/g, '_');
  for (const a of apis.current.arrays) {
    for (const lun of apis.lunNames(a.name)) env[`SANBOX_URI_${key(a.name)}_${key(lun)}`] = apis.uris(a.name, lun)[0];
  }
  return env;
}

/** The environment of commands: the lab's (with `sanbox` of this package first on PATH) and the URIs. */
export function shellEnv(apis: LabApis): NodeJS.ProcessEnv {
  return { ...apis.lab.env, ...uriEnv(apis) };
}

/** Runs `run`; on `signal` its whole process group is killed (a hung mount, a stuck client). */
export function sanboxShell(run: string, apis: LabApis, signal?: AbortSignal): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', run], { cwd: apis.lab.scenarioDir, env: shellEnv(apis), stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const kill = () => {
      if (p.pid === undefined || p.exitCode !== null) return;
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // the group is gone already
      }
    };
    signal?.addEventListener('abort', kill, { once: true });
    p.on('close', () => signal?.removeEventListener('abort', kill));
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(kill, COMMAND_TIMEOUT_MS);
    p.on('error', (e) => resolve({ code: 127, output: e.message }));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
