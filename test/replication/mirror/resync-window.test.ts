// The adaptive resync controller: its window (src/replication/mirror/resync-window.ts), driven
// sample by sample, and its gate (src/replication/mirror/resync-gate.ts) with the host guard.
import { describe, it, expect } from 'vitest';
import { afterAck, hostVerdict, initialWindow, pieceBytesFor, quantile, BASE_BUCKETS, GUARD_MS, HOST_BACKOFF, IDLE_PIECE_MAX_BYTES, IDLE_TARGET_MIN_MS, PIECE_BYTES, TARGET_MIN_MS, TARGET_SHARE, type WindowState } from '../../../src/replication/mirror/resync-window.js';
import { probeNext, ResyncGate, PROBE_MIN_SAMPLES, REPROBE_AFTER_MS } from '../../../src/replication/mirror/resync-gate.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Feeds `n` acks of `bytes` with RTT `rttMs` (a number, or one per ack), one every `everyMs`. */
function feed(state: WindowState, n: number, rttMs: number | ((i: number) => number), opts: { bytes?: number; everyMs?: number; fromMs?: number } = {}): { s: WindowState; at: number } {
  let s = state;
  let at = opts.fromMs ?? 0;
  for (let i = 0; i < n; i++) {
    at += opts.everyMs ?? 0.5;
    s = afterAck(s, { rttMs: typeof rttMs === 'number' ? rttMs : rttMs(i), bytes: opts.bytes ?? PIECE_BYTES, nowMs: at });
  }
  return { s, at };
}

/** A window past its first second on a path of `baseMs`, in slow start still. */
function settled(baseMs: number, maxBytes = 64 * MiB): { s: WindowState; at: number } {
  return feed(initialWindow(maxBytes, 0), 30, baseMs, { everyMs: 50 });
}

describe('adaptive resync window', () => {
  it('slow start: grows by every byte acknowledged while no queueing delay shows', () => {
    const s0 = initialWindow(64 * MiB, 0);
    const w0 = s0.windowBytes;
    const { s } = feed(s0, 8, 4);
    expect(s.slowStart).toBe(true);
    expect(s.windowBytes).toBe(w0 + 8 * PIECE_BYTES);
    expect(s.baseRttMs).toBe(4);
    expect(s.queueDelayMs).toBe(0);
    expect(s.targetMs).toBe(TARGET_SHARE * 4);
  });

  it('never beyond the maximum, never below two pieces', () => {
    let { s, at } = feed(initialWindow(256 * KiB, 0), 100, 4);
    expect(s.windowBytes).toBe(256 * KiB);
    // a long queue: halves once per base RTT down to the floor
    for (let i = 0; i < 100; i++) s = afterAck(s, { rttMs: 80, bytes: PIECE_BYTES, nowMs: (at += 5) });
    expect(s.windowBytes).toBe(2 * PIECE_BYTES);
    expect(s.slowStart).toBe(false);
  });

  it('a delay of four times the target halves the window, at most once per base RTT', () => {
    let { s, at } = settled(4); // base 4 ms, target 2 ms
    // the current delay is the least of the last 8 samples: late replies change nothing until 8 in a row
    for (let i = 0; i < 7; i++) s = afterAck(s, { rttMs: 14, bytes: PIECE_BYTES, nowMs: (at += 0.1) });
    expect(s.queueDelayMs).toBe(0);
    expect(s.slowStart).toBe(true);
    const w = s.windowBytes;
    s = afterAck(s, { rttMs: 14, bytes: PIECE_BYTES, nowMs: (at += 0.1) });
    expect(s.queueDelayMs).toBe(10);
    expect(s.windowBytes).toBe(w / 2);
    s = afterAck(s, { rttMs: 14, bytes: PIECE_BYTES, nowMs: (at += 0.1) });
    expect(s.windowBytes).toBe(w / 2); // within one base RTT of the last halving
    s = afterAck(s, { rttMs: 14, bytes: PIECE_BYTES, nowMs: (at += 4) });
    expect(s.windowBytes).toBe(w / 4);
  });

  it('between the target and four times it: shrinks in proportion; below it: grows by under a piece per window', () => {
    let { s, at } = settled(4);
    ({ s, at } = feed(s, 8, 7, { fromMs: at })); // delay 3 = 1.5 x the target: leaves slow start, shrinks
    expect(s.slowStart).toBe(false);
    const w = s.windowBytes;
    ({ s, at } = feed(s, 8, 7, { fromMs: at }));
    expect(s.windowBytes).toBeLessThan(w);
    expect(s.windowBytes).toBeGreaterThan(w / 2);
    const w2 = s.windowBytes;
    // a window's worth of acks at no delay: about one piece more, not a doubling
    ({ s } = feed(s, Math.ceil(w2 / PIECE_BYTES), 4, { fromMs: at }));
    expect(s.windowBytes).toBeGreaterThan(w2);
    expect(s.windowBytes).toBeLessThanOrEqual(w2 + 1.1 * PIECE_BYTES);
  });

  it('grows only a window the copy fills: within one piece of the same size, or two regions, of it', () => {
    const { s } = settled(4, 64 * MiB);
    const w = 2994 * KiB;
    const at = (onWireBytes: number, bytes: number) => afterAck({ ...s, windowBytes: w, recent: [...s.recent], baseBuckets: [...s.baseBuckets] }, { rttMs: 4, bytes, nowMs: 1600, onWireBytes }).windowBytes;
    // a copy held up elsewhere (the disk, the sync rate): two regions on the wire, no growth
    expect(at(2 * PIECE_BYTES, PIECE_BYTES)).toBe(w);
    // four pieces of a quarter of the window, rounded down to whole regions: 2,816 of 2,994 KiB
    // on the wire and a fifth would not fit, so the window was the limit and grows
    const piece = pieceBytesFor({ ...s, windowBytes: w }, true);
    expect(piece).toBe(704 * KiB);
    expect(at(4 * piece, piece)).toBe(w + piece);
    // regions while the host writes: within two of it, the window was full
    expect(at(w - 2 * PIECE_BYTES, PIECE_BYTES)).toBeGreaterThan(w);
    expect(at(w - 3 * PIECE_BYTES, PIECE_BYTES)).toBe(w);
  });

  it('noise on an empty path is not read as a queue; a slower path is learned within BASE_BUCKETS seconds', () => {
    // replies vary 4-6 ms with an empty queue (a busy machine, an emulator's timers)
    const noisy = (i: number) => 4 + ((i * 7919) % 100) / 50;
    let { s, at } = feed(initialWindow(64 * MiB, 0), 4000, noisy, { everyMs: 1 });
    expect(s.baseRttMs).toBe(4);
    expect(s.queueDelayMs).toBeLessThan(s.targetMs / 2);
    expect(s.windowBytes).toBeGreaterThan(16 * MiB); // so the window kept growing
    ({ s, at } = feed(s, (BASE_BUCKETS + 2) * 10, 10, { everyMs: 100, fromMs: at }));
    expect(s.baseRttMs).toBe(10);
    expect(s.queueDelayMs).toBe(0);
  });

  it('a standing queue never becomes the base', () => {
    let { s, at } = settled(4);
    // 20 s of replies 3 ms late (a queue the window holds): the base stays 4 while one empty-path reply a second comes
    for (let t = 0; t < 20; t++) {
      ({ s, at } = feed(s, 99, 7, { everyMs: 10, fromMs: at }));
      ({ s, at } = feed(s, 1, 4, { everyMs: 10, fromMs: at }));
    }
    expect(s.baseRttMs).toBe(4);
    expect(s.queueDelayMs).toBe(0); // the current filter saw the empty-path reply among the last 8
  });

  it('the target is at least TARGET_MIN_MS (a loopback link)', () => {
    const { s } = feed(initialWindow(64 * MiB, 0), 10, 0.05);
    expect(s.targetMs).toBe(TARGET_MIN_MS);
  });

  it('host verdicts: over the slack shrinks the window (once per GUARD_MS) and ends slow start; under it only clears the flag', () => {
    const { s } = settled(4);
    const w = s.windowBytes;
    const a = hostVerdict(s, { over: true, nowMs: 10_000 });
    expect(a.windowBytes).toBe(w * HOST_BACKOFF);
    expect(a.hostLimited).toBe(true);
    expect(a.slowStart).toBe(false);
    expect(hostVerdict(a, { over: true, nowMs: 10_000 + GUARD_MS / 2 }).windowBytes).toBe(a.windowBytes);
    expect(hostVerdict(a, { over: true, nowMs: 10_000 + GUARD_MS }).windowBytes).toBe(w * HOST_BACKOFF * HOST_BACKOFF);
    const b = hostVerdict(a, { over: false, nowMs: 10_500 });
    expect(b.hostLimited).toBe(false);
    expect(b.windowBytes).toBe(a.windowBytes);
  });

  it('an idle host: the target is the base RTT, at least IDLE_TARGET_MIN_MS', () => {
    let s = initialWindow(64 * MiB, 0);
    for (let i = 0; i < 10; i++) s = afterAck(s, { rttMs: 2, bytes: PIECE_BYTES, nowMs: i, hostIdle: true });
    expect(s.targetMs).toBe(IDLE_TARGET_MIN_MS);
    s = afterAck(s, { rttMs: 2, bytes: PIECE_BYTES, nowMs: 20 });
    expect(s.targetMs).toBe(TARGET_MIN_MS);
  });

  it('piece size: one region while the host writes; while it is idle, whole regions up to a quarter of the window, at most a chunk', () => {
    const at = (windowBytes: number) => ({ ...initialWindow(64 * MiB, 0), windowBytes });
    expect(pieceBytesFor(at(2 * MiB), false)).toBe(PIECE_BYTES);
    expect(pieceBytesFor(at(2 * MiB), true)).toBe(512 * KiB);
    expect(pieceBytesFor(at(600 * KiB), true)).toBe(128 * KiB); // 150 KiB, whole regions
    expect(pieceBytesFor(at(2 * PIECE_BYTES), true)).toBe(PIECE_BYTES);
    expect(pieceBytesFor(at(64 * MiB), true)).toBe(IDLE_PIECE_MAX_BYTES);
  });

  it('rejects impossible samples', () => {
    expect(() => afterAck(initialWindow(MiB, 0), { rttMs: -1, bytes: 1, nowMs: 0 })).toThrow(/bad resync sample/);
    expect(() => afterAck(initialWindow(MiB, 0), { rttMs: 1, bytes: 0, nowMs: 0 })).toThrow(/bad resync sample/);
    expect(() => initialWindow(KiB, 0)).toThrow(/below/);
    expect(() => quantile([], 0.5)).toThrow(/nothing/);
    expect(quantile([5, 1, 4, 2, 3], 0.5)).toBe(3);
  });
});

const tick = () => new Promise((r) => setImmediate(r));

describe('resync gate', () => {
  it('holds a piece while the window is full, and lets it go when one is acknowledged', async () => {
    const gate = new ResyncGate(4 * MiB);
    gate.state = { ...gate.state, windowBytes: 2 * PIECE_BYTES };
    const replies: Array<() => void> = [];
    const sent: number[] = [];
    const piece = (i: number) => gate.send(PIECE_BYTES, () => false, () => new Promise<void>((r) => (sent.push(i), replies.push(r))));
    const all = [piece(1), piece(2), piece(3)];
    await tick();
    expect(sent).toEqual([1, 2]); // the third waits for room
    replies.shift()!();
    await tick();
    expect(sent).toEqual([1, 2, 3]);
    for (const r of replies.splice(0)) r();
    expect(await Promise.all(all)).toEqual([true, true, true]);
    gate.close();
  });

  it('a piece larger than the window goes alone; a stopped run gives up its wait', async () => {
    const gate = new ResyncGate(4 * MiB);
    let release!: () => void;
    const big = gate.send(8 * MiB, () => false, () => new Promise<void>((r) => (release = r)));
    let stop = false;
    let ran = false;
    const next = gate.send(PIECE_BYTES, () => stop, async () => void (ran = true));
    await tick();
    stop = true;
    release();
    expect(await big).toBe(true);
    expect(await next).toBe(false);
    expect(ran).toBe(false);
    gate.close();
  });

  it('a writing host makes it pause: nothing new on the wire until the quiet time measured the host alone', async () => {
    const gate = new ResyncGate(4 * MiB);
    let release!: () => void;
    const first = gate.send(PIECE_BYTES, () => false, () => new Promise<void>((r) => (release = r)));
    gate.hostSample(3); // the host writes: a probe starts, draining the resync
    expect(gate.view().probe).toBe('draining');
    let second = false;
    const next = gate.send(PIECE_BYTES, () => false, async () => void (second = true));
    release();
    await first;
    expect(gate.view().probe).toBe('quiet');
    expect(second).toBe(false);
    gate.hostSample(50); // sent before the quiet time began (it queued behind the resync): not the host alone
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < PROBE_MIN_SAMPLES; i++) gate.hostSample(2 + i / 10); // the host alone: 2.0-2.7 ms
    await until(() => gate.view().probe === 'off');
    expect(await next).toBe(true);
    expect(second).toBe(true);
    expect(gate.view().hostBaselineMs).toBeCloseTo(2.7);
    expect(gate.view().probes).toBe(1);
    gate.close();
  });

  it('a baseline the host beats while the resync runs is measured again a second later, not ten', async () => {
    const gate = new ResyncGate(4 * MiB);
    const probe = async (ms: number) => {
      gate.hostSample(ms); // starts the probe: nothing on the wire, so the quiet time begins at once
      await new Promise((r) => setTimeout(r, ms + 5)); // writes sent within the quiet time
      for (let i = 0; i < PROBE_MIN_SAMPLES; i++) gate.hostSample(ms);
      await until(() => gate.view().probe === 'off');
    };
    await probe(18); // measured while the host's own first writes were slow
    expect(gate.view().hostBaselineMs).toBe(18);
    const t0 = Date.now();
    // with the resync running the host does 8 ms: the baseline was wrong
    while (gate.view().probes === 1 && Date.now() - t0 < 3 * REPROBE_AFTER_MS) {
      for (let i = 0; i < 5; i++) gate.hostSample(8);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(gate.view().probes).toBe(2);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(REPROBE_AFTER_MS - 50);
    await new Promise((r) => setTimeout(r, 12));
    for (let i = 0; i < PROBE_MIN_SAMPLES; i++) gate.hostSample(7);
    await until(() => gate.view().probe === 'off');
    expect(gate.view().hostBaselineMs).toBe(7);
    gate.close();
  });

  it('pieces grow while the host is idle and are one region again from its first write on', () => {
    const gate = new ResyncGate(4 * MiB);
    gate.state = { ...gate.state, windowBytes: 2 * MiB };
    expect(gate.pieceBytes()).toBe(512 * KiB);
    expect(gate.view().pieceBytes).toBe(512 * KiB); // status shows it
    gate.hostSample(3);
    expect(gate.pieceBytes()).toBe(PIECE_BYTES);
    expect(gate.view().pieceBytes).toBe(PIECE_BYTES);
    gate.close();
  });

  it('probe phases: anything out of order throws', () => {
    expect(probeNext('off', 'start')).toBe('draining');
    expect(probeNext('draining', 'drained')).toBe('quiet');
    expect(probeNext('quiet', 'done')).toBe('off');
    expect(() => probeNext('off', 'done')).toThrow(/done in phase off/);
    expect(() => probeNext('quiet', 'start')).toThrow(/start in phase quiet/);
  });
});

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
