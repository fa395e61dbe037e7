/**
 * `sanbox check prefix write|verify` against `sanbox serve` with two LUNs: write then verify
 * passes; a copy that holds exactly a prefix of the acknowledged order passes and reports the
 * missing acknowledged writes and the lag (RPO); a copy with an out-of-order apply (a later write
 * present, an earlier acknowledged one skipped) and a copy with foreign or torn blocks fail with
 * exit 1 and every violation listed. Usage errors: test/check/usage.test.ts.
 */
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadPrefixState, PREFIX_BLOCK, prefixBlock, type PrefixState } from '../../../src/check/prefix/index.js';
import { serve, type Served } from '../../support/serve.js';
import { freePort } from '../../support/net.js';
import { requireBuild } from '../../support/paths.js';
import { runSanbox } from '../../support/launch.js';
import { expectProgress, progressLines } from '../progress-lines.js';

const LUNS = ['disk0=16M', 'disk1=16M'];

/** Writes the given writes of the state straight into the image files of `to` (behind its back). */
function apply(to: Served, st: PrefixState, ks: number[]): void {
  const fds = st.luns.map((_, lun) => openSync(to.image(lun), 'r+'));
  try {
    for (const k of ks) {
      const w = st.writes[k]!;
      writeSync(fds[w.lun]!, prefixBlock(st.run, k, w.lun), 0, PREFIX_BLOCK, w.block * PREFIX_BLOCK);
    }
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

describe('sanbox check prefix', () => {
  let dir: string;
  const servers: Served[] = [];
  beforeAll(() => requireBuild('cli/check-verbs.js'));
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sanbox-check-prefix-'));
  });
  afterEach(async () => {
    while (servers.length) await servers.pop()!.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const start = async (name: string) => {
    const s = await serve(join(dir, name), 0, LUNS);
    servers.push(s);
    return s;
  };
  const uris = (s: Served) => `${s.uri('disk0')},${s.uri('disk1')}`;

  it('write then verify: exit 0, nothing missing, lag 0', async () => {
    const primary = await start('primary');
    const state = join(dir, 'prefix.json');
    const w = await runSanbox(['check', 'prefix', 'write', '--uri', uris(primary), '--state', state, '--seconds', '1', '--seed', '3', '--json']);
    expect(w.code, w.err).toBe(0);
    expect(w.json.acked).toBe(w.json.issued);
    expect(w.json.acked).toBeGreaterThan(100);
    expect(w.err).toMatch(/prefix run \d+: \d+ writes issued over 2 LUNs/);
    const saved = JSON.parse(readFileSync(state, 'utf8'));
    expect(saved).toMatchObject({ format: 'sanbox-prefix/1', blockSize: 4096, blocks: 4096, seed: 3, complete: true });
    const v = await runSanbox(['check', 'prefix', 'verify', '--uri', primary.uri('disk0'), '--uri', primary.uri('disk1'), '--state', state, '--json']);
    expect(v.code, v.err).toBe(0);
    expect(v.json).toMatchObject({ ok: true, violations: 0, missingAcked: 0, lagSeconds: 0, present: w.json.acked, acked: w.json.acked, prefixLength: w.json.acked });
    const text = await runSanbox(['check', 'prefix', 'verify', '--uri', uris(primary), '--state', state]);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/prefix verify run \d+: OK .* 0 acknowledged writes missing, lag 0\.000 s \(RPO\)/);
  });

  it('--progress-json: one JSON line a second on stderr even with -q, windows adding up to the acks', async () => {
    // LUNs large enough (sparse) that the fresh blocks outlast the 2.5 s however fast the machine.
    const primary = await serve(join(dir, 'big'), 0, ['disk0=1G', 'disk1=1G']);
    servers.push(primary);
    const state = join(dir, 'prefix.json');
    const w = await runSanbox(['check', 'prefix', 'write', '--uri', uris(primary), '--state', state, '--seconds', '2.5', '--depth', '2', '-q', '--json', '--progress-json']);
    expect(w.code, w.err).toBe(0);
    const lines = progressLines(w.err);
    expect(lines.length, w.err).toBeGreaterThanOrEqual(3); // the start, at least the tick at 1 s, and the last partial window
    expect(w.err.trim().split('\n')).toHaveLength(lines.length); // -q: nothing else on stderr
    expectProgress(lines, 'prefix', w.json);
    expect(lines[1]!.window.acks).toBeGreaterThan(0); // lines[0] is the start of the series
    expect(w.json.elapsedMs).toBeGreaterThanOrEqual(2500); // bounded by time, not by running out of blocks
  });

  it('a copy holding a prefix passes and reports the RPO; an out-of-order apply fails with the violation listed', async () => {
    const primary = await start('primary');
    const state = join(dir, 'prefix.json');
    const w = await runSanbox(['check', 'prefix', 'write', '--uri', uris(primary), '--state', state, '--seconds', '1', '--seed', '4', '-q']);
    expect(w.code, w.err).toBe(0);
    const st = loadPrefixState(state);
    const n = Math.floor(st.ackOrder.length / 2);
    expect(n).toBeGreaterThan(50);

    // The secondary holds the first n acknowledged writes: a consistent, older image.
    const prefixCopy = await start('prefix-copy');
    apply(prefixCopy, st, st.ackOrder.slice(0, n));
    const ok = await runSanbox(['check', 'prefix', 'verify', '--uri', uris(prefixCopy), '--state', state, '--json']);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.json).toMatchObject({ ok: true, present: n, prefixLength: n, missingAcked: st.ackOrder.length - n });
    const lastAck = st.writes[st.ackOrder.at(-1)!]!.ackedAt!;
    const pointAck = st.writes[st.ackOrder[n - 1]!]!.ackedAt!;
    expect(ok.json.lagSeconds).toBeCloseTo((lastAck - pointAck) / 1000, 6);
    expect(ok.json.recoveryPointAt).toBe(new Date(pointAck).toISOString());

    // Out of order: write j (acknowledged) skipped, later writes that depended on it applied.
    const j = Math.floor(n / 2);
    const skipped = st.ackOrder[j]!;
    const later = st.ackOrder.slice(j + 1, n).filter((k) => st.writes[k]!.dependsOn > j);
    expect(later.length).toBeGreaterThan(0);
    const outOfOrder = await start('out-of-order');
    apply(outOfOrder, st, st.ackOrder.slice(0, n).filter((k) => k !== skipped));
    const bad = await runSanbox(['check', 'prefix', 'verify', '--uri', uris(outOfOrder), '--state', state, '--json']);
    expect(bad.code, bad.err).toBe(1);
    expect(bad.json.ok).toBe(false);
    expect(bad.json.prefixLength).toBe(j);
    expect(bad.json.violationsByKind).toEqual({ order: later.length });
    expect(bad.json.details.map((d: { write: number }) => d.write).sort((a: number, b: number) => a - b)).toEqual(later.sort((a, b) => a - b).slice(0, 50));
    for (const d of bad.json.details) expect(d).toMatchObject({ kind: 'order', missing: skipped });
    const text = await runSanbox(['check', 'prefix', 'verify', '--uri', uris(outOfOrder), '--state', state]);
    expect(text.code).toBe(1);
    expect(text.out).toMatch(new RegExp(`order: write \\d+ \\(disk[01]\\) is present, but write ${skipped} \\(disk[01]\\), acknowledged before \\d+ was issued, is not: not a prefix`));
  });

  it('foreign, torn and misplaced blocks are violations, each listed', async () => {
    const primary = await start('primary');
    const state = join(dir, 'prefix.json');
    expect((await runSanbox(['check', 'prefix', 'write', '--uri', uris(primary), '--state', state, '--seconds', '30', '--max-writes', '2000', '-q'])).code).toBe(0); // half the blocks at most: free ones remain
    const st = loadPrefixState(state);
    const copy = await start('copy');
    apply(copy, st, st.ackOrder);
    const [a, b] = [st.writes[st.ackOrder[0]!]!, st.writes[st.ackOrder[1]!]!];
    // Blocks this run never wrote, per LUN; each planted block takes its own (the foreign and
    // the misplaced one may land on the same LUN).
    const unused = [0, 1].map((lun) => [...Array(st.blocks).keys()].filter((x) => !st.writes.some((w) => w.lun === lun && w.block === x)));
    const free = (lun: number) => {
      const x = unused[lun]!.shift();
      if (x === undefined) throw new Error(`no unused block left on LUN ${lun}`);
      return x;
    };
    const fd0 = openSync(copy.image(0), 'r+');
    const fd1 = openSync(copy.image(1), 'r+');
    const fdOf = (lun: number) => (lun === 0 ? fd0 : fd1);
    try {
      // foreign: another run's write in a block this run never wrote
      writeSync(fd0, prefixBlock(st.run + 1, 0, 0), 0, PREFIX_BLOCK, free(0) * PREFIX_BLOCK);
      // torn: write a with its second half flipped
      const torn = prefixBlock(st.run, a.k, a.lun);
      for (let i = 2048; i < PREFIX_BLOCK; i++) torn[i] ^= 0xff;
      writeSync(fdOf(a.lun), torn, 0, PREFIX_BLOCK, a.block * PREFIX_BLOCK);
      // misplaced: write b also at a block of the other LUN this run never wrote
      const other = 1 - b.lun;
      writeSync(fdOf(other), prefixBlock(st.run, b.k, b.lun), 0, PREFIX_BLOCK, free(other) * PREFIX_BLOCK);
    } finally {
      closeSync(fd0);
      closeSync(fd1);
    }
    const v = await runSanbox(['check', 'prefix', 'verify', '--uri', uris(copy), '--state', state, '--json']);
    expect(v.code, v.err).toBe(1);
    expect(v.json.violationsByKind).toMatchObject({ foreign: 1, torn: 1, misplaced: 1 });
    expect(v.json.details.find((d: { kind: string }) => d.kind === 'torn')).toMatchObject({ write: a.k, lun: a.lun, block: a.block });
  });

  it('exit 3 when a LUN cannot be reached (write creates no state file)', async () => {
    const primary = await start('primary');
    const port = await freePort();
    const state = join(dir, 'never.json');
    const w = await runSanbox(['check', 'prefix', 'write', '--uri', `${primary.uri('disk0')},nbd://127.0.0.1:${port}/disk1`, '--state', state, '--seconds', '1', '--json']);
    expect(w.code, w.err).toBe(3);
    expect(w.json.error.code).toBe('unreachable');
    expect(() => readFileSync(state)).toThrow();
    expect((await runSanbox(['check', 'prefix', 'write', '--uri', uris(primary), '--state', state, '--seconds', '0.2', '-q'])).code).toBe(0);
    const v = await runSanbox(['check', 'prefix', 'verify', '--uri', `nbd://127.0.0.1:${port}/disk0,nbd://127.0.0.1:${port}/disk1`, '--state', state]);
    expect(v.code).toBe(3);
    expect(v.err).toMatch(/cannot reach/);
  });
});
