// The rate of a resync: the bytes sent over the link (what the sync rate caps) and the bytes
// covered (holes and zero runs go as zero requests without payload) are reported apart.
import { describe, it, expect, afterEach } from 'vitest';
import { randomBytes } from 'node:crypto';
import { makeLab, until, type Lab } from '../../support/mirror-lab.js';
import { resyncText } from '../../../src/cli/mirror-render.js';
import type { ResyncView } from '../../../src/replication/mirror/types.js';

const MiB = 1024 * 1024;
let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

describe('resync rate', () => {
  it('a mostly empty LUN: the sent rate stays at the cap, the covered rate is higher (holes)', async () => {
    const cap = 1 * MiB;
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 256 * MiB }], { timers: { progressMs: 500 } });
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0', attributes: { syncRate: cap } });
    const dev = lab.hostDevice('alpha');
    for (let i = 0; i < 32; i++) await dev.write(i * 8 * MiB, randomBytes(64 * 1024)); // 2 MiB of data in 256 MiB
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0' }); // full synchronization
    await until(() => lab!.events('alpha', 'mirror.resync-progress').length >= 3, 20_000, 'progress');
    const live = n.get('m0').images.find((i) => i.imageId === 'bravo:0')!.resync as ResyncView | null;
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 20_000, 'resync done');
    // the first interval starts before the copy does; look at the ones after it
    const ps = lab.events('alpha', 'mirror.resync-progress').slice(1) as unknown as ResyncView[];
    for (const p of ps) {
      expect(p.rate, `sent rate ${p.rate} of progress ${JSON.stringify(p)}`).toBeLessThanOrEqual(cap * 1.5);
      expect(p.coveredRate).toBeGreaterThanOrEqual(p.rate);
      expect(p.bytesSent).toBeLessThanOrEqual(p.bytesDone);
    }
    expect(Math.max(...ps.map((p) => p.coveredRate!))).toBeGreaterThan(4 * cap);
    const done = lab.events('alpha', 'mirror.resync-done')[0]!;
    expect(done.bytesCopied).toBe(2 * MiB);
    expect(done.bytesDone).toBe(256 * MiB);
    // mirror status shows both
    if (live) expect(resyncText(live)).toMatch(/covered at .*\/s; sent .* at .*\/s/);
  });

  it('status text: both rates, the ETA from the covered rate', () => {
    const r: ResyncView = { full: true, reason: 'new secondary', bytesDone: 100 * MiB, bytesTotal: 200 * MiB, bytesSent: 2 * MiB, rate: 1 * MiB, coveredRate: 50 * MiB, eta: 2, startedAt: '' };
    expect(resyncText(r)).toBe('100 MiB of 200 MiB, covered at 50 MiB/s; sent 2 MiB at 1 MiB/s (holes and zeroes go without data), ETA 2 s (full: new secondary)');
    const window = { windowBytes: 2 * MiB, pieceBytes: 512 * 1024, baseRttMs: 2, queueDelayMs: 1.5, targetMs: 20, slowStart: false, hostBaselineMs: null, hostP90Ms: null, hostLimited: false, probes: 0, probe: 'off' as const };
    expect(resyncText({ ...r, controller: 'adaptive', window })).toContain('; adaptive: window 2 MiB in 512 KiB pieces, queue 1.5 of 20.0 ms)');
    const { pieceBytes: _, ...older } = window; // an array from before the piece size was shown
    expect(resyncText({ ...r, controller: 'adaptive', window: older as typeof window })).toContain('; adaptive: window 2 MiB, queue 1.5 of 20.0 ms)');
    // a view without the new fields (an older array): as before
    expect(resyncText({ full: false, reason: 'fracture log', bytesDone: 12.5 * MiB, bytesTotal: 64 * MiB, rate: 30 * MiB, eta: 125, startedAt: '' })).toBe('12.5 MiB of 64 MiB, 30 MiB/s, ETA 2 min 5 s (partial: fracture log)');
  });
});

describe('resync controller', () => {
  /** A mirror in sync over a link of 1 ms and `bandwidth`, then fractured with `dirty` bytes written at the primary. */
  async function dirtyMirror(attributes: Record<string, unknown>, dirty: number, bandwidth: number): Promise<void> {
    lab = await makeLab(['alpha', 'bravo'], [{ name: 'disk0', size: 64 * MiB }], { timers: { progressMs: 200 } });
    const n = lab.node('alpha');
    await n.create({ lun: 'disk0', name: 'm0', attributes: { syncRate: 1024 * MiB, ...attributes } });
    await n.addSecondary('m0', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(() => n.get('m0').images[1]!.link === 'connected', 10_000, 'link');
    lab.links['alpha-bravo']!.set({ latencyMs: 1, bandwidth });
    await n.fracture('m0');
    const dev = lab.hostDevice('alpha');
    for (let o = 0; o < dirty; o += MiB) await dev.write(o, randomBytes(MiB));
  }

  it('adaptive (the default): the queue and the window stay bounded, the run copies exactly the dirty bytes', async () => {
    const bw = 20 * 1000 * 1000;
    await dirtyMirror({}, 8 * MiB, bw);
    const n = lab!.node('alpha');
    expect(n.get('m0').record.syncController).toBeUndefined(); // absent: adaptive
    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 30_000, 'resync done');
    const started = lab!.events('alpha', 'mirror.resync-started')[0]!;
    expect(started.controller).toBe('adaptive');
    const done = lab!.events('alpha', 'mirror.resync-done')[0]!;
    expect(done.bytesCopied).toBe(8 * MiB);
    const ws = (lab!.events('alpha', 'mirror.resync-progress') as unknown as ResyncView[]).map((p) => p.window).filter((w) => w);
    expect(ws.length).toBeGreaterThan(0);
    for (const w of ws) {
      expect(w!.baseRttMs).toBeGreaterThanOrEqual(2); // the link's round trip
      // the window stays below its ceiling (the fixed controller's largest, 4 MiB): it did not run away
      expect(w!.windowBytes, JSON.stringify(w)).toBeLessThan(4 * 1024 * 1024);
    }
    // The queue it measures stays within what it halves at (4x its target) in most samples: a
    // sample may catch one round trip's excess before the halving (a loaded machine's late timer),
    // a window that ran away would be over in all of them.
    const over = ws.filter((w) => w!.queueDelayMs > 4 * w!.targetMs);
    expect(over.length, JSON.stringify(over)).toBeLessThanOrEqual(Math.floor(ws.length / 4));
    lab!.links['alpha-bravo']!.set({ latencyMs: 0, bandwidth: 0 });
    expect((await n.verify('m0')).result).toBe('identical');
  });

  it('a writer that keeps one region busy during the copy: only that region goes again, not its chunk', async () => {
    // 20 MB/s: a 1 MiB chunk is on the wire ~50 ms, longer than a host write waits for it, so
    // the writer's region is touched during its copy in (almost) every round
    const dirty = 8 * MiB;
    await dirtyMirror({}, dirty, 20 * 1000 * 1000);
    const n = lab!.node('alpha');
    const dev = lab!.hostDevice('alpha');
    const hot = 3 * MiB + 128 * 1024; // one 64 KiB region inside the fourth chunk
    let writes = 0;
    let writing = true;
    const writer = (async () => {
      for (const until = Date.now() + 3000; writing && Date.now() < until; writes++) await dev.write(hot + (writes % 16) * 4096, randomBytes(4096));
    })();
    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 30_000, 'resync done');
    writing = false;
    await writer;
    const done = lab!.events('alpha', 'mirror.resync-done')[0]!;
    expect(writes).toBeGreaterThan(20);
    // the dirty bytes once, and the hot region again only when a copy outlasts the writes' 20 ms
    // wait (a loaded machine): 32 times at most. Re-copying its 1 MiB chunk each round, or chasing
    // it, sent 31.5 MB and 55.6 MB here.
    expect(done.bytesCopied as number, JSON.stringify(done)).toBeLessThanOrEqual(dirty + 32 * 64 * 1024);
    lab!.links['alpha-bravo']!.set({ latencyMs: 0, bandwidth: 0 });
    expect((await n.verify('m0')).result).toBe('identical');
  });

  it('fixed: set on the mirror, shown in status and events; a bad value changes nothing', async () => {
    await dirtyMirror({ syncController: 'fixed' }, 2 * MiB, 100 * 1000 * 1000);
    const n = lab!.node('alpha');
    await expect(n.setAttributes('m0', { syncController: 'sometimes' as never })).rejects.toMatchObject({ code: 'invalid' });
    expect(n.get('m0').record.syncController).toBe('fixed');
    await n.synchronize('m0');
    await until(() => lab!.events('alpha', 'mirror.resync-done').length > 0, 30_000, 'resync done');
    expect(lab!.events('alpha', 'mirror.resync-started')[0]!.controller).toBe('fixed');
    for (const p of lab!.events('alpha', 'mirror.resync-progress') as unknown as ResyncView[]) expect(p.window).toBeNull();
    expect(lab!.events('alpha', 'mirror.resync-done')[0]!.bytesCopied).toBe(2 * MiB);
    const v = await n.setAttributes('m0', { syncController: 'adaptive' });
    expect(v.record.syncController).toBe('adaptive');
  });
});
