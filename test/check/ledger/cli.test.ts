/**
 * `sanbox check ledger write|verify` as fault scripts use it: write with a state file, then verify
 * in another process; exit 0 when every block checks, 1 on violations (each listed), 3 when the
 * server cannot be reached. The writer rides through a SIGKILL + restart of the server, and the
 * checker fails on a server that drops acknowledged writes. Usage errors: test/check/usage.test.ts.
 */
import { mkdtempSync, openSync, rmSync, writeSync, closeSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { serve, type Served } from '../../support/serve.js';
import { freePort } from '../../support/net.js';
import { requireBuild } from '../../support/paths.js';
import { runSanbox } from '../../support/launch.js';
import { startLyingServer } from '../lying-server.js';
import { expectProgress, progressLines } from '../progress-lines.js';

describe('sanbox check ledger', () => {
  let dir: string;
  let server: Served | null = null;
  beforeAll(() => requireBuild('cli/check-verbs.js'));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sanbox-check-ledger-'));
  });
  afterEach(async () => {
    await server?.kill();
    server = null;
    rmSync(dir, { recursive: true, force: true });
  });

  it('write + verify exit 0; a zeroed block makes verify exit 1 and lists it', async () => {
    server = await serve(dir, 0);
    const uri = server.uri('disk');
    const state = join(dir, 'ledger.json');
    const w = await runSanbox(['check', 'ledger', 'write', '--uri', uri, '--uri', uri, '--state', state, '--seconds', '1', '--blocks', '64', '--seed', '5', '--json']);
    expect(w.code, w.err).toBe(0);
    expect(w.json.acked).toBe(w.json.issued);
    expect(w.json.acked).toBeGreaterThan(64);
    expect(w.json.state).toBe(state);
    expect(w.err).toMatch(/ledger run \d+: issued/); // progress and the summary on stderr
    const saved = JSON.parse(readFileSync(state, 'utf8'));
    expect(saved).toMatchObject({ format: 'sanbox-ledger/1', blocks: 64, run: { seed: 5, complete: true } });

    const v = await runSanbox(['check', 'ledger', 'verify', '--uri', uri, '--state', state, '--json']);
    expect(v.code, v.err).toBe(0);
    expect(v.json).toMatchObject({ ok: true, blocksChecked: 64, violations: 0 });

    const fd = openSync(server.image(0), 'r+');
    writeSync(fd, Buffer.alloc(saved.blockSize), 0, saved.blockSize, saved.baseOffset + 7 * saved.blockSize);
    closeSync(fd);
    const bad = await runSanbox(['check', 'ledger', 'verify', '--uri', uri, '--state', state]);
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/FAILED .* 1 violations/);
    expect(bad.out).toMatch(/block 7 @28672: lost/);
    const badJson = await runSanbox(['check', 'ledger', 'verify', '--uri', uri, '--state', state, '--json']);
    expect(badJson.code).toBe(1);
    expect(badJson.json).toMatchObject({ ok: false, violations: 1, violationsByKind: { lost: 1 } });
    expect(badJson.json.details[0]).toMatchObject({ block: 7, offset: 28672, kind: 'lost' });
  });

  it('--progress-json: one JSON line a second on stderr even with -q, windows adding up to the acks', async () => {
    server = await serve(dir, 0);
    const state = join(dir, 'ledger.json');
    const w = await runSanbox(['check', 'ledger', 'write', '--uri', server.uri('disk'), '--state', state, '--seconds', '2.5', '--blocks', '64', '-q', '--json', '--progress-json']);
    expect(w.code, w.err).toBe(0);
    const lines = progressLines(w.err);
    expect(lines.length, w.err).toBeGreaterThanOrEqual(4); // the start, ticks at 1 s and 2 s, and the last partial window
    expect(w.err.trim().split('\n')).toHaveLength(lines.length); // -q: nothing else on stderr
    expectProgress(lines, 'ledger', w.json);
    expect(lines.filter((l) => l.window.acks > 0).length).toBeGreaterThanOrEqual(2);
  });

  it('fails (exit 1, violations listed) against a server that drops acknowledged writes', async () => {
    const lie = await startLyingServer(50);
    try {
      const state = join(dir, 'lie.json');
      const w = await runSanbox(['check', 'ledger', 'write', '--uri', lie.uri, '--state', state, '--seconds', '60', '--max-writes', '3000', '--blocks', '128', '--seed', '14', '--connections', '2', '-q', '--json']);
      expect(w.code, w.err).toBe(0);
      expect(w.json.issued).toBeGreaterThanOrEqual(3000); // bounded by count, not time: block 5 is overwritten however slow the machine
      expect(w.json.acked).toBe(w.json.issued); // the lie: every write acknowledged
      const v = await runSanbox(['check', 'ledger', 'verify', '--uri', lie.uri, '--state', state, '--json']);
      expect(v.code, v.err).toBe(1);
      expect(v.json.ok).toBe(false);
      expect(v.json.violations).toBeGreaterThan(0);
      expect(v.json.details.find((d: { block: number }) => d.block === 5)?.kind).toBe('stale');
      for (const k of Object.keys(v.json.violationsByKind)) expect(['stale', 'lost']).toContain(k);
      const text = await runSanbox(['check', 'ledger', 'verify', '--uri', lie.uri, '--state', state]);
      expect(text.code).toBe(1);
      expect(text.out).toMatch(/block 5 @20480: stale/);
    } finally {
      await lie.close();
    }
  });

  it('a writer rides through SIGKILL + restart of the server; verify passes after', async () => {
    const port = await freePort();
    server = await serve(dir, port);
    const uri = server.uri('disk');
    const state = join(dir, 'ledger.json');
    const writer = runSanbox(['check', 'ledger', 'write', '--uri', uri, '--state', state, '--seconds', '10', '--blocks', '256', '--seed', '6', '--json', '-q', '--reconnect-timeout', '20']);
    // Kill only once the writer is writing (its blocks reach the image), however slowly it started.
    const image = server.image(0);
    const deadline = Date.now() + 20_000;
    while (statSync(image).blocks === 0 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
    expect(statSync(image).blocks, 'the writer never wrote').toBeGreaterThan(0);
    await server.kill('SIGKILL');
    server = await serve(dir, port);
    const w = await writer;
    expect(w.code, w.err).toBe(0);
    expect(w.json.reconnects).toBeGreaterThanOrEqual(1);
    expect(w.json.faults.length).toBeGreaterThanOrEqual(1);
    const v = await runSanbox(['check', 'ledger', 'verify', '--uri', uri, '--state', state, '--json']);
    expect(v.code, v.err).toBe(0);
    expect(v.json.ok).toBe(true);
  });

  it('exit 3 when the server cannot be reached (write creates no state file)', async () => {
    const port = await freePort();
    const state = join(dir, 'never.json');
    const w = await runSanbox(['check', 'ledger', 'write', '--uri', `nbd://127.0.0.1:${port}/disk`, '--state', state, '--seconds', '1', '--json']);
    expect(w.code, w.err).toBe(3);
    expect(w.json.error.code).toBe('unreachable');
    expect(() => statSync(state)).toThrow();
    // verify needs a valid state file first (else exit 2): write one against a live server
    server = await serve(dir, 0);
    expect((await runSanbox(['check', 'ledger', 'write', '--uri', server.uri('disk'), '--state', state, '--seconds', '0.2', '--blocks', '8', '-q'])).code).toBe(0);
    const v = await runSanbox(['check', 'ledger', 'verify', '--uri', `nbd://127.0.0.1:${port}/disk`, '--state', state]);
    expect(v.code).toBe(3);
    expect(v.err).toMatch(/no endpoint reachable/);
  });
});
