// bench:mirror's "resync under host load" rows (issue 18, goal 4): what a resync does to the host
// writes of the same mirror, and how much of the link it takes, with the fixed controller (the
// sync rate and a window of WINDOW[priority] MiB) and the adaptive one (src/replication/mirror/
// resync-window.ts), interleaved and repeated. The mirror `mad` (LUN `adapt`) runs over the lab's
// emulator set to --adaptive-latency one way and --adaptive-bandwidth; its syncRate is 4x that
// cap, so only the controller limits the resync; its protectResync is --adaptive-protect (on: the
// secondary keeps a snapshot of its last consistent point while it resyncs, so every first write
// to a chunk there, the host's too, copies the old data first). Per repeat, in alternating order:
//   alone      fio (4k random writes, --adaptive-qd) on the first --adaptive-host bytes of the LUN
//              with the mirror in sync: the host's p50/p99 without a resync;
//   fixed / adaptive   the same fio while a resync runs: the mirror is fractured, --adaptive-dirty
//              bytes after the host's span are written at the primary, synchronize, 0.5 s, then
//              fio; the resync's data rate during fio (its bytesSent), the host's bytes per second,
//              the link's spare bandwidth (cap - host payload) and the resync's share of it.
// The host writes only regions that are in sync, so every one of them crosses the link. Goals
// (adaptive): host p99 within 1.2x of alone; resync >= 90% of the spare bandwidth.
import { MiB, log, until, fmtBytes, table } from './common.mjs';
import { runFio, summarizeWrites } from './fio.mjs';
import { createMirror, secondaryOf } from './lab.mjs';

export const ADAPTIVE_DEFAULTS = { adaptiveProtect: true, adaptiveLatency: 1, adaptiveBandwidth: '40M', adaptiveQd: 4, adaptiveHost: '64M', adaptiveDirty: '256M', adaptiveRepeat: 2 };

/** The LUN the section needs on both arrays. */
export function adaptiveLun(o) {
  return { name: 'adapt', size: o.adaptiveHostBytes + o.adaptiveDirtyBytes };
}

function hostArgs(uri, o) {
  return ['--name=host', '--ioengine=nbd', `--uri=${uri}`, '--rw=randwrite', '--bs=4k', `--iodepth=${o.adaptiveQd}`, '--offset=0', `--size=${o.adaptiveHostBytes}`, `--runtime=${Math.round(o.runtime * 1000)}ms`, '--time_based'];
}

/** Writes `bytes` from `from`, every MiB different. */
async function fillDirty(dev, from, bytes) {
  const pool = Buffer.alloc(MiB);
  for (let off = 0; off < bytes; off += MiB) {
    pool.writeUInt32LE(off / MiB, 0); // every MiB differs
    await dev.write(from + off, pool.subarray(0, Math.min(MiB, bytes - off)));
  }
}

async function alone(o, lab) {
  const s = summarizeWrites(await runFio(hostArgs(lab.uri('adapt'), o), { label: 'host alone', seconds: o.runtime }));
  const img = secondaryOf(lab, 'mad');
  if (img.fractured || img.link !== 'connected' || img.resync) throw new Error(`mirror mad was not in sync during the host-alone row (${img.state}, ${img.link})`);
  return { ...s, hostBps: (s.iops * 4096) };
}

async function underResync(o, lab, controller) {
  const a = lab.node('alpha');
  await a.setAttributes('mad', { syncController: controller });
  await a.fracture('mad');
  await until(() => secondaryOf(lab, 'mad').fractured, 10_000, 'fracture');
  const dev = lab.hostDevice('alpha', 'adapt');
  await fillDirty(dev, o.adaptiveHostBytes, o.adaptiveDirtyBytes);
  await dev.flush(); // the fill's writeback is not the resync's cost: every fsync would wait behind it
  await a.synchronize('mad');
  await new Promise((r) => setTimeout(r, 500)); // past slow start and the first chunks
  const sent = () => secondaryOf(lab, 'mad').resync?.bytesSent ?? null;
  const s0 = sent();
  if (s0 === null) throw new Error(`the ${controller} resync ended within 0.5 s: give a larger --adaptive-dirty`);
  const t0 = performance.now();
  const windows = [];
  const sampler = setInterval(() => { const w = secondaryOf(lab, 'mad').resync?.window; if (w) windows.push(w); }, 100);
  let fio;
  try {
    fio = summarizeWrites(await runFio(hostArgs(lab.uri('adapt'), o), { label: `host under a ${controller} resync`, seconds: o.runtime }));
  } finally {
    clearInterval(sampler);
  }
  const s1 = sent();
  const t1 = performance.now();
  if (s1 === null) throw new Error(`the ${controller} resync ended before fio did: give a larger --adaptive-dirty`);
  const seconds = (t1 - t0) / 1000;
  const resyncBps = (s1 - s0) / seconds;
  const hostBps = fio.iops * 4096;
  const spareBps = Math.max(1, o.adaptiveBandwidthBps - hostBps);
  await until(() => { const i = secondaryOf(lab, 'mad'); return !i.resync && !i.fractured && i.state !== 'SYNCHRONIZING'; }, 120_000, `the ${controller} resync to end`);
  const mean = (k) => (windows.length ? windows.reduce((x, w) => x + w[k], 0) / windows.length : null);
  const last = windows.at(-1);
  const controllerMeans = windows.length ? { hostBaselineMs: last.hostBaselineMs, hostP90Ms: mean('hostP90Ms'), hostLimited: windows.filter((w) => w.hostLimited).length / windows.length, probes: last.probes, baseRttMs: mean('baseRttMs'), queueDelayMs: mean('queueDelayMs'), targetMs: mean('targetMs') } : null;
  return { ...fio, hostBps, resyncBps, spareBps, share: resyncBps / spareBps, meanWindow: mean('windowBytes'), controllerMeans };
}

/** Runs the section; rows go to `out`. */
export async function adaptiveSection(o, lab, out) {
  await createMirror(lab, 'mad', 'adapt', { syncRate: 4 * o.adaptiveBandwidthBps, protectResync: o.adaptiveProtect });
  await lab.emu.set({ latencyMs: o.adaptiveLatency, bandwidth: o.adaptiveBandwidthBps });
  log(`resync under host load: mirror mad (protectResync ${o.adaptiveProtect ? 'on' : 'off'}, ${fmtBytes(o.adaptiveHostBytes)} host span + ${fmtBytes(o.adaptiveDirtyBytes)} dirtied per row), link ${o.adaptiveLatency} ms one way, ${(o.adaptiveBandwidthBps / 1e6).toFixed(0)} MB/s, host QD${o.adaptiveQd}, ${o.adaptiveRepeat} repeats`);
  try {
    for (let r = 0; r < o.adaptiveRepeat; r++) {
      const order = r % 2 === 0 ? ['alone', 'fixed', 'adaptive'] : ['adaptive', 'fixed', 'alone'];
      for (const mode of order) {
        const row = { repeat: r + 1, mode, ...(mode === 'alone' ? await alone(o, lab) : await underResync(o, lab, mode)) };
        log(`  [${r + 1}] ${mode}: host ${row.iops.toFixed(0)} IOPS, p50 ${row.p50us.toFixed(0)} us, p99 ${row.p99us.toFixed(0)} us` +
          (mode === 'alone' ? '' : `; resync ${(row.resyncBps / 1e6).toFixed(1)} MB/s = ${(100 * row.share).toFixed(0)}% of the spare ${(row.spareBps / 1e6).toFixed(1)} MB/s${row.meanWindow ? `, window ~${fmtBytes(Math.round(row.meanWindow))} (host p90 ${row.controllerMeans.hostP90Ms?.toFixed(2)} ms against ${row.controllerMeans.hostBaselineMs?.toFixed(2)} ms without the resync, host-limited ${(100 * row.controllerMeans.hostLimited).toFixed(0)}% of the time, ${row.controllerMeans.probes} probes; base RTT ${row.controllerMeans.baseRttMs.toFixed(2)} ms, queue ${row.controllerMeans.queueDelayMs.toFixed(2)} ms, target ${row.controllerMeans.targetMs.toFixed(2)} ms)` : ''}`));
        out.push(row);
      }
    }
  } finally {
    await lab.emu.set({ latencyMs: 0, bandwidth: 0 });
  }
}

export const median = (xs) => { const s = [...xs].sort((x, y) => x - y); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };

/** The section's table (medians over the repeats) and its goals. */
export function adaptiveReport(rows, options) {
  if (!rows.length) return '';
  const by = (m, k) => median(rows.filter((r) => r.mode === m).map((r) => r[k]));
  const p99Alone = by('alone', 'p99us');
  let s = `\nResync under host load (4k random writes at QD${options.adaptiveQd} on the mirror's in-sync span while its resync runs; protectResync ${options.adaptiveProtect ? 'on' : 'off'}; link ${options.adaptiveLatency} ms one way, capped at ${(options.adaptiveBandwidthBps / 1e6).toFixed(0)} MB/s, syncRate 4x the cap; median of ${options.adaptiveRepeat} interleaved repeats)\n\n`;
  const head = ['controller', 'host IOPS', 'host p50 us', 'host p99 us', 'p99 x alone', 'host MB/s', 'resync MB/s', 'spare MB/s', 'of spare', 'window'];
  s += table(head, ['alone', 'fixed', 'adaptive'].filter((m) => rows.some((r) => r.mode === m)).map((m) => {
    const resync = m === 'alone' ? null : by(m, 'resyncBps');
    const win = m === 'alone' ? null : by(m, 'meanWindow');
    return [m, by(m, 'iops').toFixed(0), by(m, 'p50us').toFixed(0), by(m, 'p99us').toFixed(0), (by(m, 'p99us') / p99Alone).toFixed(2) + 'x', (by(m, 'hostBps') / 1e6).toFixed(1),
      resync === null ? '' : (resync / 1e6).toFixed(1), resync === null ? '' : (by(m, 'spareBps') / 1e6).toFixed(1), resync === null ? '' : `${(100 * by(m, 'share')).toFixed(0)}%`, win ? fmtBytes(Math.round(win)) : (m === 'fixed' ? `${fmtBytes(2 * MiB)} (fixed)` : '')];
  }));
  const p99x = by('adaptive', 'p99us') / p99Alone;
  const share = by('adaptive', 'share');
  s += '\nspare = cap - host payload bytes/s; of spare = resync data bytes/s during fio / spare; window = the adaptive window, sampled every 100 ms.\n';
  s += `Goals (adaptive): host p99 <= 1.2x alone: ${p99x.toFixed(2)}x ${p99x <= 1.2 ? 'MET' : 'MISSED'}; resync >= 90% of the spare bandwidth: ${(100 * share).toFixed(0)}% ${share >= 0.9 ? 'MET' : 'MISSED'}\n`;
  return s;
}
