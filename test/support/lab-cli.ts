// The sanbox command as a child process against a lab of its own (the system tests that run
// `sanbox up --detach`): images under `imagesDir`, and no lab or API from the caller's environment.
import { spawnSync } from 'node:child_process';
import { BIN } from './paths.js';
import type { CliCapture } from './cli.js';

export function labCli(imagesDir: () => string): (args: string[], timeoutMs?: number) => CliCapture {
  return (args, timeoutMs = 60_000) => {
    const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, SANBOX_IMAGES: imagesDir(), SANBOX_LAB: '', SANBOX_API: '' }, encoding: 'utf8', timeout: timeoutMs });
    let json: any;
    try {
      json = JSON.parse(r.stdout);
    } catch {
      json = undefined;
    }
    return { code: r.status ?? -1, out: r.stdout, err: r.stderr, json };
  };
}

/** Polls `fn` every 250 ms until it returns a value; throws naming `what` after `ms`. */
export async function untilDefined<T>(what: string, fn: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
