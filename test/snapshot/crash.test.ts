/**
 * Crash safety of snapshots with a real process kill: a child (crash-child.mjs, running dist/)
 * takes snapshots of a LUN and keeps changing it through the copy-on-write layer with everything
 * synced; the parent SIGKILLs it at a seeded random moment, reopens the manager on the same
 * directory and image, and checks that every snapshot reads exactly the LUN as it was when the
 * snapshot was cut (replayed from the same seeded plan), never data written after it. Then it
 * overwrites the whole LUN and checks again (the reopened store's free slots are really free).
 * A second case kills the child during a rollback: the next open finishes it.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileBackingStore } from '../../src/block/index.js';
import { fileOps } from '../../src/native/index.js';
import { requireBuild } from '../support/paths.js';
import { mulberry32, reportSeedOnFailure, testSeed } from '../support/random.js';
import { Rig, firstDiff, tempRoot } from './helpers.js';
// @ts-expect-error a plain .mjs module shared with the child
import { changes, initialRegions, pattern } from './crash-plan.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const CHILD = join(HERE, 'crash-child.mjs');
const SIZE = 1 << 20;
const RS = 16 * 1024;
const EVERY = 40;

const root = tempRoot('sanbox-snap-crash-');
afterAll(() => root.cleanup());
beforeAll(() => requireBuild('snapshot/index.js', 'run `npx tsc -p tsconfig.json` (npm test does it)'));

interface Change {
  kind: 'write' | 'trim' | 'zero';
  offset: number;
  length: number;
  data?: Buffer;
}

/** Writes the LUN's content before the run into a new image; returns that content. */
async function prepare(dir: string, seed: number): Promise<Buffer> {
  const path = join(dir, 'disk0.img');
  await FileBackingStore.create(path, SIZE);
  const store = await FileBackingStore.open(path, { blockSize: 512 });
  const content = Buffer.alloc(SIZE);
  for (const [r, kind] of (initialRegions(seed, SIZE, RS) as string[]).entries()) {
    if (kind === 'data') {
      const d = pattern(1000 + r, r * RS, RS) as Buffer;
      await store.write(r * RS, d);
      d.copy(content, r * RS);
    } else if (kind === 'zero') await store.writeZeroes(r * RS, RS, { noHole: true });
  }
  await store.close();
  return content;
}

/** The LUN after the first `n` changes of the plan. */
function replay(initial: Buffer, seed: number, n: number): Buffer {
  const lun = Buffer.from(initial);
  const plan = changes(seed, SIZE, RS);
  for (let k = 0; k < n; k++) {
    const c = plan.next() as Change;
    if (c.kind === 'write') c.data!.copy(lun, c.offset);
    else if (c.kind === 'zero' || fileOps) lun.fill(0, c.offset, c.offset + c.length);
  }
  return lun;
}

/** Runs the child until it prints `until` (a line), waits `delayMs` more, SIGKILLs it; returns every line it printed. */
function runAndKill(dir: string, seed: number, mode: string, until: string, delayMs: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, String(seed), String(SIZE), String(RS), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    let err = '';
    let armed = false;
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i; (i = buf.indexOf('\n')) >= 0; ) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lines.push(line);
        if (line === until && !armed) {
          armed = true;
          setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL' && armed) resolve(lines);
      else reject(new Error(`child exited (${code ?? signal}) before the kill; printed ${JSON.stringify(lines)}; stderr: ${err}`));
    });
  });
}

async function expectSnapshot(rig: Rig, name: string, want: Buffer, what: string): Promise<void> {
  const got = await rig.readSnapshot(name);
  expect(got, `${what}: snapshot ${name} exists`).toBeDefined();
  if (!got!.equals(want)) {
    const at = firstDiff(got!, want);
    throw new Error(`${what}: snapshot ${name} differs from the LUN as it was when cut at byte ${at} (region ${Math.floor(at / RS)}): got ${got![at]}, want ${want[at]}`);
  }
}

describe('snapshots across a SIGKILL', () => {
  it('every snapshot reads exactly the LUN as it was when cut, after the writer is killed at a random moment', async () => {
    const base = testSeed(0x5eed_5e01);
    const rand = mulberry32(base);
    let seed = base;
    reportSeedOnFailure(base);
    let snapsChecked = 0;
    for (let run = 0; run < 5; run++) {
      seed = Math.floor(rand() * 2 ** 31);
      const dir = join(root.path, `changes${run}`);
      mkdirSync(dir);
      const initial = await prepare(dir, seed);
      const delay = Math.floor(rand() * 800);
      const lines = await runAndKill(dir, seed, 'changes', 'snap s0', delay);
      const printed = lines.filter((l) => l.startsWith('snap ')).map((l) => l.slice(5));
      const rig = await Rig.reopenExisting(dir, SIZE, { storeBytes: 8 * SIZE, regionSize: RS, policy: 'refuse-writes' }, false);
      try {
        const names = rig.manager.list('disk0').map((v) => v.name);
        // Every snapshot the child saw created exists (one being created at the kill may too).
        for (const n of printed) expect(names, `run ${run} (seed ${seed}, kill ${delay} ms)`).toContain(n);
        expect(names.length - printed.length).toBeLessThanOrEqual(1);
        const want = new Map(names.map((n) => [n, replay(initial, seed, Number(n.slice(1)))]));
        for (const [n, w] of want) await expectSnapshot(rig, n, w, `run ${run} (seed ${seed}, kill ${delay} ms, ${lines.at(-1)})`);
        snapsChecked += want.size;
        // The reopened store goes on working: overwrite every region, the snapshots stay.
        await rig.lun.write(0, pattern(77, 0, SIZE));
        for (const [n, w] of want) await expectSnapshot(rig, n, w, `run ${run} after overwriting the LUN`);
        await rig.reopen();
        for (const [n, w] of want) await expectSnapshot(rig, n, w, `run ${run} after overwriting the LUN and reopening`);
      } finally {
        await rig.close();
      }
    }
    expect(snapsChecked).toBeGreaterThan(5);
  }, 60_000);

  it('a rollback killed part way is finished by the next open', async () => {
    const base = testSeed(0x5eed_5e02);
    const rand = mulberry32(base);
    reportSeedOnFailure(base);
    const outcomes = { finished: 0, notStarted: 0 };
    for (let run = 0; run < 4; run++) {
      const seed = Math.floor(rand() * 2 ** 31);
      const dir = join(root.path, `rollback${run}`);
      mkdirSync(dir);
      const initial = await prepare(dir, seed);
      const overwritten = pattern(seed & 0xff, 0, SIZE) as Buffer;
      const delay = Math.floor(rand() * 150);
      const lines = await runAndKill(dir, seed, 'rollback', 'rolling', delay);
      const rig = await Rig.reopenExisting(dir, SIZE, { storeBytes: 8 * SIZE, regionSize: RS, policy: 'refuse-writes' }, false);
      try {
        const what = `run ${run} (seed ${seed}, kill ${delay} ms after 'rolling', ${lines.at(-1)})`;
        expect(rig.manager.offline(0), what).toBe(false);
        await expectSnapshot(rig, 's0', initial, what);
        await expectSnapshot(rig, 's1', overwritten, what);
        // Either the rollback was recorded (and the open finished it) or it had not begun.
        const lun = await rig.lun.read(0, SIZE);
        if (lun.equals(initial)) outcomes.finished++;
        else if (lun.equals(overwritten)) outcomes.notStarted++;
        else throw new Error(`${what}: the LUN is neither s0 nor s1 after the open (first byte off s0 at ${firstDiff(lun, initial)})`);
        if (rig.events.some((e) => e.type === 'snapshot.rollback-resumed')) expect(lun.equals(initial), what).toBe(true);
      } finally {
        await rig.close();
      }
    }
    expect(outcomes.finished + outcomes.notStarted).toBe(4);
  }, 60_000);
});
