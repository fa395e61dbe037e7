// The sanbox command in process: `main(args)` with stdout and stderr captured and the environment
// set for the call only (the tests of the verbs run it against real API servers).
import { vi } from 'vitest';
import { main } from '../../src/cli/index.js';

export interface CliCapture {
  code: number;
  out: string;
  err: string;
  /** stdout parsed as JSON, undefined when it is not JSON. */
  json: any;
}

/**
 * Runs the CLI in process: `env` is applied for the call (undefined deletes a variable) and
 * restored after it, as are process.stdout.write and process.stderr.write.
 */
export async function captureCli(args: string[], env: Record<string, string | undefined> = {}): Promise<CliCapture> {
  let out = '';
  let err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => ((out += String(c)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((c: string | Uint8Array) => ((err += String(c)), true));
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    const code = await main(args);
    let json: any;
    try {
      json = JSON.parse(out);
    } catch {
      json = undefined;
    }
    return { code, out, err, json };
  } finally {
    o.mockRestore();
    e.mockRestore();
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
