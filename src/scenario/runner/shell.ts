/** A scenario's `command` step: `sh -c` with the lab's environment (SANBOX_LAB, SANBOX_IMAGES, SANBOX_URI_*). */
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

export function sanboxShell(run: string, apis: LabApis): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const p = spawn('sh', ['-c', run], { env: shellEnv(apis), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d: Buffer) => (output += d.toString()));
    p.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), COMMAND_TIMEOUT_MS);
    p.on('error', (e) => resolve({ code: 127, output: e.message }));
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
