/**
 * Every usage error of `sanbox check ...` exits 2 with a clear message (as JSON with --json) and
 * writes nothing: no state file appears and the LUNs of the server stay untouched (their sparse
 * image files keep zero allocated blocks).
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type Served } from '../support/serve.js';
import { requireBuild } from '../support/paths.js';
import { runSanbox, type SanboxRun } from '../support/launch.js';

describe('sanbox check: usage errors exit 2 and write nothing', () => {
  let dir: string;
  let server: Served;
  let out: string;
  beforeAll(async () => {
    requireBuild('cli/check-verbs.js');
    dir = mkdtempSync(join(tmpdir(), 'sanbox-check-usage-'));
    server = await serve(join(dir, 'array'), 0, ['disk0=16M', 'disk1=16M']);
    out = join(dir, 'out');
    mkdirSync(out);
    mkdirSync(join(out, 'a-directory'));
    writeFileSync(join(dir, 'not-json.json'), '{ nope');
    writeFileSync(join(dir, 'wrong-format.json'), JSON.stringify({ format: 'something/1' }));
    writeFileSync(join(dir, 'bad-ledger.json'), JSON.stringify({ format: 'sanbox-ledger/1', runId: 1, blockSize: 4096, baseOffset: 0, blocks: 4, initial: 'zero', entries: { 9: {} } }));
    writeFileSync(join(dir, 'bad-prefix.json'), JSON.stringify({ format: 'sanbox-prefix/1', run: 1, blockSize: 4096, blocks: 8, luns: [{ uri: 'nbd://x/y', name: 'y' }], seed: 1, startedAt: 1, savedAt: 1, complete: true, writes: [[0, 9, 0, null]], ackOrder: [] }));
    writeFileSync(
      join(dir, 'prefix-2luns.json'),
      JSON.stringify({ format: 'sanbox-prefix/1', run: 1, blockSize: 4096, blocks: 8, luns: [{ uri: 'nbd://x/a', name: 'a' }, { uri: 'nbd://x/b', name: 'b' }], seed: 1, startedAt: 1, savedAt: 1, complete: true, writes: [], ackOrder: [] }),
    );
  });
  afterAll(async () => {
    await server?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every bad flag, URI and state file', { timeout: 180_000 }, async () => {
    const u0 = server.uri('disk0');
    const u1 = server.uri('disk1');
    const st = join(out, 'state.json');
    const lw = ['check', 'ledger', 'write'];
    const lv = ['check', 'ledger', 'verify'];
    const pw = ['check', 'prefix', 'write'];
    const pv = ['check', 'prefix', 'verify'];
    const cases: [string[], RegExp][] = [
      [['check'], /./],
      [['check', 'ledger'], /./],
      [['check', 'bogus'], /./],
      [[...lw, '--state', st], /--uri is required/],
      [[...lw, '--uri', 'http://127.0.0.1/x', '--state', st], /not an nbd:\/\/ URI/],
      [[...lw, '--uri', 'nbd://127.0.0.1:99999/x', '--state', st], /bad port|not a URI/],
      [[...lw, '--uri', 'no uri at all', '--state', st], /not a URI/],
      [[...lw, '--uri', u0], /--state FILE is required/],
      [[...lw, '--uri', u0, '--state', join(out, 'missing-dir', 's.json')], /does not exist/],
      [[...lw, '--uri', u0, '--state', join(out, 'a-directory')], /is a directory/],
      [[...lw, '--uri', u0, '--state', st, '--blocks', '0'], /--blocks must be an integer >= 1/],
      [[...lw, '--uri', u0, '--state', st, '--blocks', 'many'], /--blocks/],
      [[...lw, '--uri', u0, '--state', st, '--seconds', '0'], /--seconds/],
      [[...lw, '--uri', u0, '--state', st, '--seconds', 'soon'], /--seconds/],
      [[...lw, '--uri', u0, '--state', st, '--seed', '-3'], /./],
      [[...lw, '--uri', u0, '--state', st, '--connections', '0'], /--connections/],
      [[...lw, '--uri', u0, '--state', st, '--block-size', '1000'], /--block-size must be a multiple of 512/],
      [[...lw, '--uri', u0, '--state', st, '--offset', '100'], /--offset must be a multiple of 512/],
      [[...lw, '--uri', u0, '--state', st, '--fua', '2'], /--fua/],
      [[...lw, '--uri', u0, '--state', st, '--bogus'], /./],
      [[...lw, '--uri', u0, '--state', st, '--blocks', '5000'], /needs 20480000/],
      [[...lv, '--state', st], /--uri is required/],
      [[...lv, '--uri', 'nbd://[bad', '--state', st], /not a URI/],
      [[...lv, '--uri', u0], /--state FILE is required/],
      [[...lv, '--uri', u0, '--state', join(dir, 'absent.json')], /cannot read ledger state file/],
      [[...lv, '--uri', u0, '--state', join(dir, 'not-json.json')], /is not JSON/],
      [[...lv, '--uri', u0, '--state', join(dir, 'wrong-format.json')], /not a ledger file/],
      [[...lv, '--uri', u0, '--state', join(dir, 'bad-ledger.json')], /entries\[9\]/],
      [[...lv, '--uri', u0, '--state', join(dir, 'bad-prefix.json')], /not a ledger file/],
      [[...lv, '--uri', u0, '--state', join(dir, 'not-json.json'), '--reconnect-timeout', 'x'], /./],
      [[...pw, '--state', st], /--uri is required/],
      [[...pw, '--uri', `${u0},ftp://x/y`, '--state', st], /not an nbd:\/\/ URI/],
      [[...pw, '--uri', `${u0},${u1}`], /--state FILE is required/],
      [[...pw, '--uri', `${u0},${u1}`, '--state', st, '--seconds', '-1'], /--seconds/],
      [[...pw, '--uri', `${u0},${u1}`, '--state', st, '--depth', '0'], /--depth/],
      [[...pw, '--uri', `${u0},${u1}`, '--state', st, '--max-writes', '0'], /--max-writes/],
      [[...pw, '--uri', `${u0},${u1}`, '--state', st, '--blocks', '5000'], /smallest LUN holds 4096 blocks/],
      [[...pv, '--uri', `${u0},${u1}`, '--state', join(dir, 'absent.json')], /cannot read prefix state file/],
      [[...pv, '--uri', `${u0},${u1}`, '--state', join(dir, 'wrong-format.json')], /not a prefix state file/],
      [[...pv, '--uri', u0, '--state', join(dir, 'bad-prefix.json')], /writes\[0\]\[1\]/],
      [[...pv, '--uri', u0, '--state', join(dir, 'prefix-2luns.json')], /names 1 LUNs; the state file has 2/],
      [[...pv, '--uri', `${u0},${u1}`], /--state FILE is required/],
      [['check', 'fs'], /--uri is required/],
      [['check', 'fs', '--uri', 'http://x/y'], /not an nbd:\/\/ URI/],
      [['check', 'fs', '--uri', `${u0},${u1}`], /one --uri/],
    ];
    const results: [string[], RegExp, SanboxRun][] = [];
    for (let i = 0; i < cases.length; i += 4) {
      const batch = cases.slice(i, i + 4);
      const rs = await Promise.all(batch.map(([args]) => runSanbox(args)));
      batch.forEach(([args, msg], k) => results.push([args, msg, rs[k]!]));
    }
    for (const [args, msg, r] of results) {
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(2);
      expect(r.err + r.out, args.join(' ')).toMatch(msg);
    }
    // --json: the error as a JSON document on stdout
    const j = await runSanbox([...lw, '--uri', u0, '--state', st, '--blocks', '0', '--json']);
    expect(j.code).toBe(2);
    expect(j.json.error).toMatchObject({ code: 'usage', exitCode: 2 });
    expect(j.json.error.message).toMatch(/--blocks/);
    const k = await runSanbox([...lv, '--uri', u0, '--state', join(dir, 'bad-ledger.json'), '--json']);
    expect(k.code).toBe(2);
    expect(k.json.error).toMatchObject({ code: 'bad-state-file', exitCode: 2 });
    // nothing was written: no state file, and the LUNs were never written to
    expect(readdirSync(out)).toEqual(['a-directory']);
    expect(readdirSync(join(out, 'a-directory'))).toEqual([]);
    expect(existsSync(st)).toBe(false);
    expect(statSync(server.image(0)).blocks).toBe(0);
    expect(statSync(server.image(1)).blocks).toBe(0);
  });
});
