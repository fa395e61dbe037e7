/**
 * The ledger as a command (test/support/ledger/cli.mjs), as fault scripts use it: write with a saved
 * ledger, then verify in another process; exit 0 when every block checks, 1 on violations, 2 on
 * usage errors. The writer survives a SIGKILL + restart of the server it writes to.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync, writeSync, closeSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { serve, type Served } from '../serve.js';
import { freePort } from '../net.js';
import { REPO } from '../paths.js';

const CLI = join(REPO, 'test', 'support', 'ledger', 'cli.mjs');

function run(args: string[], timeoutMs = 60_000): { done: Promise<{ code: number | null; out: string; err: string; json: any }>; kill: () => void } {
  const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  p.stderr.on('data', (d) => (err += d));
  const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; out: string; err: string; json: any }>((res) =>
    p.on('exit', (code) => {
      clearTimeout(t);
      let json = null;
      try {
        json = JSON.parse(out);
      } catch {
        /* not JSON */
      }
      res({ code, out, err, json });
    }),
  );
  return { done, kill: () => p.kill('SIGTERM') };
}

describe('ledger CLI', () => {
  let dir: string;
  let server: Served | null = null;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sanbox-ledger-cli-'));
  });
  afterEach(async () => {
    await server?.kill();
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('write + verify exit 0; a zeroed block makes verify exit 1 with the details', async () => {
    server = await serve(dir, 0);
    const uri = server.uri('disk');
    const ledger = join(dir, 'ledger.json');
    const w = await run(['write', '-e', uri, '--ledger', ledger, '--duration', '1', '--blocks', '64', '--seed', '5', '--json', '--quiet']).done;
    expect(w.code, w.err).toBe(0);
    expect(w.json.write.acked).toBe(w.json.write.issued);
    const v = await run(['verify', '-e', uri, '--ledger', ledger, '--json', '--quiet']).done;
    expect(v.code, v.err).toBe(0);
    expect(v.json.verify).toMatchObject({ ok: true, blocksChecked: 64, violations: 0 });

    const saved = JSON.parse(readFileSync(ledger, 'utf8'));
    const fd = openSync(server.image(0), 'r+');
    writeSync(fd, Buffer.alloc(saved.blockSize), 0, saved.blockSize, saved.baseOffset + 7 * saved.blockSize);
    closeSync(fd);
    const bad = await run(['verify', '-e', uri, '--ledger', ledger]).done;
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/FAILED .* 1 violations/);
    expect(bad.err).toMatch(/block 7 @28672: lost/);
  });

  it('usage errors exit 2', async () => {
    expect((await run(['verify', '-e', 'nbd://127.0.0.1:1/x']).done).code).toBe(2);
    expect((await run(['bogus']).done).code).toBe(2);
    expect((await run(['run']).done).code).toBe(2);
  });

  it('a writer process rides through SIGKILL + restart of the server (run: write then verify)', async () => {
    const port = await freePort();
    server = await serve(dir, port);
    const r = run(['run', '-e', server.uri('disk'), '--duration', '6', '--blocks', '256', '--seed', '6', '--json', '--quiet', '--reconnect-timeout', '20']);
    // Kill only once the writer is writing (its blocks reach the image), however slowly it started.
    const image = server.image(0);
    const deadline = Date.now() + 20_000;
    while (statSync(image).blocks === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    expect(statSync(image).blocks, 'the writer never wrote').toBeGreaterThan(0);
    await server.kill('SIGKILL');
    server = await serve(dir, port);
    const res = await r.done;
    expect(res.code, res.err).toBe(0);
    expect(res.json.write.reconnects).toBeGreaterThanOrEqual(1);
    expect(res.json.verify.ok).toBe(true);
  });
});
