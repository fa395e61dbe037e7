// The progress meter (src/cli/progress/meter.ts) and its rate window (rate.ts) with a clock moved
// by hand and a stand-in stream: redraws at most every REDRAW_MS on a terminal, plain lines at
// most every PLAIN_EVERY_MS elsewhere (the start, a new note and the end aside), the rate over
// the last seconds only, nothing when off, and the mode the flags choose.
import { describe, expect, it } from 'vitest';
import { PLAIN_EVERY_MS, ProgressMeter, progressMode, RateWindow, REDRAW_MS, type ProgressMode } from '../../../src/cli/progress/index.js';
import { ManualClock } from '../../support/clock.js';

const MiB = 2 ** 20;

function rig(mode: ProgressMode, total?: number, columns = 100) {
  const clock = new ManualClock(1_000_000);
  const writes: string[] = [];
  const out = { write: (t: string) => writes.push(t), columns };
  const meter = new ProgressMeter({ label: 'clone c1', total, mode, out, now: () => clock.now(), tickMs: 0 });
  return { clock, writes, meter, text: () => writes.join('') };
}

describe('rate window', () => {
  it('is unknown with no sample or a span under 200 ms', () => {
    const w = new RateWindow(5000);
    expect(w.rate(0)).toBeUndefined();
    w.add(0, 0);
    expect(w.rate(100)).toBeUndefined();
    expect(w.rate(1000)).toBe(0); // one reading, a second ago, nothing moved since: a known 0
  });

  it('measures the last seconds, not since the start', () => {
    const w = new RateWindow(5000);
    // 10 s at 10 MiB/s, then 10 s at 1 MiB/s
    for (let t = 0; t <= 10; t++) w.add(t * 1000, t * 10 * MiB);
    expect(w.rate(10_000)).toBeCloseTo(10 * MiB, -3);
    for (let t = 11; t <= 20; t++) w.add(t * 1000, 100 * MiB + (t - 10) * MiB);
    expect(w.rate(20_000)).toBeCloseTo(1 * MiB, -3); // since the start it would be 5.5 MiB/s
  });

  it('decays towards 0 when nothing moves, and keeps a base when samples are sparse', () => {
    const w = new RateWindow(5000);
    w.add(0, 0);
    w.add(1000, 64 * MiB);
    expect(w.rate(1000)).toBeCloseTo(64 * MiB, -3);
    expect(w.rate(4000)).toBeCloseTo(16 * MiB, -3); // the same bytes over 4 s
    expect(w.rate(30_000)).toBe(0); // only the last sample left as the base
  });

  it('refuses time going back', () => {
    const w = new RateWindow();
    w.add(1000, 0);
    expect(() => w.add(999, 1)).toThrow(RangeError);
  });
});

describe('progress meter on a terminal', () => {
  it('redraws one line in place, at most every REDRAW_MS, and ends it with a newline', () => {
    const r = rig('tty', 64 * MiB);
    r.meter.update(0);
    expect(r.writes).toHaveLength(1);
    expect(r.writes[0]).toMatch(/^\r\x1b\[Kclone c1 \[\.+\] 0% 0 B\/64 MiB \?\/s ETA \?$/);
    r.clock.advance(REDRAW_MS / 2);
    r.meter.update(1 * MiB);
    expect(r.writes).toHaveLength(1); // too soon
    r.clock.advance(REDRAW_MS / 2);
    r.meter.update(2 * MiB);
    expect(r.writes).toHaveLength(2);
    for (let i = 0; i < 30; i++) {
      r.clock.advance(100);
      r.meter.update(2 * MiB + (i + 1) * 2 * MiB);
    }
    // 20 MiB/s over the window: 62 of 64 MiB done, 2 MiB left
    expect(r.writes.at(-1)).toMatch(/^\r\x1b\[Kclone c1 \[#+\.*\] 96% 62 MiB\/64 MiB 20 MiB\/s ETA 1s$/);
    expect(r.text()).not.toContain('\n');
    r.clock.advance(100);
    r.meter.finish('done', 64 * MiB);
    expect(r.writes.at(-1)).toMatch(/^\r\x1b\[Kclone c1 \[#+\] 100% 64 MiB\/64 MiB [\d.]+ MiB\/s done in 3\.2s\n$/);
    r.meter.finish('failed'); // once only
    r.meter.update(1);
    expect(r.writes.filter((w) => w.endsWith('\n'))).toHaveLength(1);
  });

  it('fits the stream\'s width', () => {
    const r = rig('tty', 64 * MiB, 40);
    r.meter.update(MiB, { note: 'a note that will not fit in forty columns at all' });
    expect(r.writes[0]!.replace('\r\x1b[K', '').length).toBeLessThanOrEqual(39);
  });

  it('log() prints a line above the bar and draws the bar again', () => {
    const r = rig('tty', 10 * MiB);
    r.meter.update(MiB);
    r.meter.log('[  1.0 s] step 0: link cut');
    expect(r.writes.at(-1)).toMatch(/^\r\x1b\[K\[ {2}1\.0 s\] step 0: link cut\nclone c1 \[/);
  });
});

describe('progress meter in a log', () => {
  it('a sentence at the start, at most every PLAIN_EVERY_MS, on a new note, and at the end', () => {
    const r = rig('plain', 100 * MiB);
    r.meter.update(0);
    for (let i = 1; i <= 40; i++) {
      r.clock.advance(250);
      r.meter.update(i * 2 * MiB);
    }
    // 10 s: the start, then one at 5 s and one at 10 s
    const lines = r.text().trimEnd().split('\n');
    expect(lines).toEqual([
      'clone c1: 0 B of 100 MiB (0%) after 0s, ?/s, ETA ?',
      'clone c1: 40 MiB of 100 MiB (40%) after 5s, 8 MiB/s, ETA 8s',
      'clone c1: 80 MiB of 100 MiB (80%) after 10s, 8 MiB/s, ETA 3s',
    ]);
    r.clock.advance(100);
    r.meter.update(80 * MiB, { note: 'waiting: sender sleeping 15 ms' });
    r.clock.advance(100);
    r.meter.update(80 * MiB, { note: 'waiting: sender sleeping 30 ms' }); // only a number moved: no news
    expect(r.text().trimEnd().split('\n').at(-1)).toMatch(/^clone c1: 80 MiB of 100 MiB \(80%\) after 10s, [\d.]+ MiB\/s, ETA \d+s; waiting: sender sleeping 15 ms$/);
    expect(r.text().trimEnd().split('\n')).toHaveLength(4);
    r.clock.advance(PLAIN_EVERY_MS);
    r.meter.finish('done', 100 * MiB);
    expect(r.text().trimEnd().split('\n').at(-1)).toBe('clone c1: done, 100 MiB of 100 MiB (100%) in 15.2s, 6.6 MiB/s on average');
    expect(r.text()).not.toContain('\r');
  });

  it('nothing at the end when there was never a reading (a quick job)', () => {
    const r = rig('plain');
    r.meter.finish('done');
    expect(r.writes).toEqual([]);
  });

  it('asserts the invariants of what it is given', () => {
    const r = rig('plain', 10);
    expect(() => r.meter.update(11)).toThrow(/done 11 exceeds total 10/);
    expect(() => r.meter.update(-1)).toThrow(RangeError);
    expect(() => r.meter.update(12, { total: 11 })).toThrow(RangeError);
    r.meter.update(12, { total: 20 }); // a total that grew
    expect(r.text()).toContain('12 B of 20 B');
  });
});

describe('progress meter off, and the mode of the flags', () => {
  it('off writes nothing', () => {
    const r = rig('off', 10);
    r.meter.update(1);
    r.meter.log('x');
    r.meter.finish('done', 10);
    expect(r.writes).toEqual([]);
  });

  it('--quiet: off; --json: off unless the verb kept its progress on stderr; a terminal: tty; else plain', () => {
    const tty = { isTTY: true };
    const pipe = { isTTY: false };
    expect(progressMode({}, tty)).toBe('tty');
    expect(progressMode({}, pipe)).toBe('plain');
    expect(progressMode({ quiet: true }, tty)).toBe('off');
    expect(progressMode({ json: true }, tty)).toBe('off');
    expect(progressMode({ json: true }, pipe, { jsonKeepsProgress: true })).toBe('plain');
    expect(progressMode({ json: true, quiet: true }, tty, { jsonKeepsProgress: true })).toBe('off');
  });
});
