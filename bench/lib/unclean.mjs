// bench:mirror's "unclean stop" rows (issue 18, goal 3): the primary array (its own process) is
// SIGKILLed after scattered small writes, so its write-intent log marks 1 MiB extents; at its
// restart they join the fracture log as regions that MAY differ, and the resync runs with
// checksums off (resyncChecksums never: the extents are copied) and on (auto: hashes compared,
// only the differing 4 KiB pieces sent). Per row: the bytes that actually differ (the two image
// files compared byte for byte after the kill), the bytes on the link during the resync (the
// emulator's counters, both directions, from the link's return to mirror.resync-done: the
// reconnection's handshake and record pushes are in them), their ratio, the mirror's own counters
// and the time; goal: link bytes <= 1.1 x differing bytes with checksums on.
//
// Two scenarios, each run twice (off, on) from fresh arrays with the same writes:
// - "link cut": the secondary is fractured (as after a link loss), the writes land only on the
//   primary, then the kill: every written 4 KiB block differs;
// - "link up": the writes replicate synchronously; the kill and a reset of the link in the same
//   instant (the primary site goes dark): only the writes in flight can differ.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, readSync, closeSync, readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HOST, MiB, REPO, log, freePort, until, fmtBytes, table } from './common.mjs';
import { SECRET } from './lab.mjs';

const BLOCK = 4096;

/** mulberry32 (src/random, built): the same writes in the off and on runs. */
const { mulberry32: rng } = await import(pathToFileURL(join(resolve(process.env.SANBOX_DIST || join(REPO, 'dist')), 'random', 'index.js')).href);

function imageFile(dir) {
  const hit = readdirSync(dir, { recursive: true }).filter((f) => /(^|\/)lun0\.img$/.test(f));
  if (hit.length !== 1) throw new Error(`${dir}: ${hit.length} lun0.img`);
  return join(dir, hit[0]);
}

/** Bytes and 4 KiB blocks that differ between two image files of `size` bytes. */
function diffImages(a, b, size) {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  const step = 16 * MiB;
  const x = Buffer.alloc(step);
  const y = Buffer.alloc(step);
  let bytes = 0;
  let blocks = 0;
  try {
    for (let off = 0; off < size; off += step) {
      const n = Math.min(step, size - off);
      x.fill(0, 0, n); // a short read (sparse tail) reads as zeroes
      y.fill(0, 0, n);
      readSync(fa, x, 0, n, off);
      readSync(fb, y, 0, n, off);
      for (let o = 0; o < n; o += BLOCK) {
        if (x.subarray(o, o + BLOCK).equals(y.subarray(o, o + BLOCK))) continue;
        blocks++;
        for (let i = o; i < o + BLOCK; i++) if (x[i] !== y[i]) bytes++;
      }
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
  return { bytes, blocks };
}

async function api(base, method, path, body) {
  const r = await fetch(base + path, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const j = await r.json();
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(j)}`);
  return j;
}

/** The events of a child array so far (SSE replay read for a moment). */
async function events(base) {
  const ac = new AbortController();
  const r = await fetch(`${base}/v1/events?since=0`, { signal: ac.signal });
  let text = '';
  const reader = r.body.getReader();
  const stop = setTimeout(() => ac.abort(), 300);
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString();
    }
  } catch { /* aborted */ }
  clearTimeout(stop);
  return text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
}

/** alpha in its own process (bench/lib/array-child.mjs), SIGKILL-able. */
async function startAlpha(lib, cfg) {
  const child = spawn(process.execPath, [join(dirname(fileURLToPath(import.meta.url)), 'array-child.mjs'), lib.dir, JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const line = await new Promise((res, rej) => {
    let buf = '';
    child.stdout.setEncoding('utf8').on('data', (d) => { buf += d; if (buf.includes('\n')) res(buf.slice(0, buf.indexOf('\n'))); });
    child.once('exit', (c, s) => rej(new Error(`alpha exited (${c ?? s}) before it served`)));
  });
  return { child, exited, nbdPort: JSON.parse(line).nbdPort };
}

/** `count` 4 KiB writes of random data at random blocks, `qd` in flight; `onCount` when `count` were acknowledged (writes go on until stopped). */
async function scatteredWrites(lib, uri, size, count, qd, seed) {
  const { NbdClient } = await import(pathToFileURL(join(lib.dir, 'check/nbd-client/index.js')).href);
  const c = await NbdClient.connect(uri);
  const rand = rng(seed);
  const data = randomBytes(BLOCK * 64);
  let issued = 0;
  let acked = 0;
  let stop = false;
  let reached;
  const reachedP = new Promise((r) => (reached = r));
  const worker = async () => {
    while (!stop) {
      const i = issued++;
      const off = Math.floor(rand() * (size / BLOCK)) * BLOCK;
      const buf = Buffer.from(data.subarray((i % 64) * BLOCK, (i % 64 + 1) * BLOCK));
      buf.writeUInt32LE(i, 0); // each write its own content
      try { await c.write(off, buf); } catch { return; }
      if (++acked === count) reached();
    }
  };
  const workers = Array.from({ length: qd }, worker);
  return { reached: reachedP, stop: () => { stop = true; void c.close(100).catch(() => undefined); return Promise.allSettled(workers); } };
}

/** One run: fresh arrays, prefilled identical, mirror with resyncChecksums `mode`, writes, SIGKILL, restart, resync. */
async function uncleanRun(o, lib, scenario, mode) {
  const root = mkdtempSync(join(o.workDir, `unclean-${scenario.replace(' ', '-')}-${mode}-`));
  const size = o.uncleanBytes;
  const [aLink, bLink, aApi] = [await freePort(), await freePort(), await freePort()];
  const emu = new lib.LinkEmulator({
    name: 'alpha-bravo', a: 'alpha', b: 'bravo', queueBytes: 8 * MiB, cutResetMs: 500,
    routes: [
      { name: 'to-b', listen: { host: HOST, port: 0 }, target: { host: HOST, port: bLink }, forward: 'a-to-b' },
      { name: 'to-a', listen: { host: HOST, port: 0 }, target: { host: HOST, port: aLink }, forward: 'b-to-a' },
    ],
  });
  await emu.start();
  const st = emu.status();
  const port = (n) => st.routes.find((r) => r.name === n).listen.port;
  const luns = [{ name: 'disk0', size }];
  let bravo = null;
  let alpha = null;
  try {
    bravo = await lib.startArray({ name: 'bravo', dir: join(root, 'bravo'), nbd: { bind: HOST, port: 0 }, api: false, luns, sync: o.fsync, remoteLink: { bind: HOST, port: bLink, peers: [{ array: 'alpha', host: HOST, port: port('to-a'), secret: SECRET }] } });
    const cfg = { name: 'alpha', dir: join(root, 'alpha'), nbd: { bind: HOST, port: 0 }, api: { bind: HOST, port: aApi }, luns, sync: o.fsync, remoteLink: { bind: HOST, port: aLink, peers: [{ array: 'bravo', host: HOST, port: port('to-b'), secret: SECRET }] } };
    alpha = await startAlpha(lib, cfg);
    const base = `http://${HOST}:${aApi}`;
    const uri = `nbd://${HOST}:${alpha.nbdPort}/disk0`;
    // identical data on both (a LUN in use; a sparse one would let a plain copy skip its holes)
    const { NbdClient } = await import(pathToFileURL(join(lib.dir, 'check/nbd-client/index.js')).href);
    const pre = await NbdClient.connect(uri);
    const bdev = bravo.array.catalog().lookup('disk0').device;
    const fill = rng(99);
    for (let off = 0; off < size; off += MiB) {
      const buf = Buffer.alloc(MiB);
      for (let i = 0; i < MiB; i += 4) buf.writeUInt32LE((fill() * 2 ** 32) >>> 0, i);
      await pre.write(off, buf);
      await bdev.write(off, buf);
    }
    await pre.close();
    await api(base, 'POST', '/v1/mirrors', { lun: 'disk0', name: 'm0', attributes: { resyncChecksums: mode, syncRate: 4 * o.bandwidthBps } });
    await api(base, 'POST', '/v1/mirrors/m0/secondaries', { array: 'bravo', lun: 'disk0', synchronized: true });
    await until(async () => (await api(base, 'GET', '/v1/mirrors/m0')).images[1].link === 'connected', 15_000, 'alpha -> bravo connected');
    if (scenario === 'link cut') await api(base, 'POST', '/v1/mirrors/m0/fracture', {});
    if (o.uncleanLatency) emu.set({ latencyMs: o.uncleanLatency });
    const w = await scatteredWrites(lib, uri, size, Math.round(o.uncleanWriteBytes / BLOCK), 16, 7);
    await w.reached;
    // the primary site goes dark: the array dies, and (link up) what is on the link with it
    if (scenario === 'link up') emu.cutLink('both', { reset: true });
    alpha.child.kill('SIGKILL');
    await alpha.exited;
    await w.stop();
    if (scenario !== 'link up') emu.cutLink('both', { reset: true });
    await new Promise((r) => setTimeout(r, 300));
    const a = imageFile(join(root, 'alpha'));
    const b = imageFile(join(root, 'bravo'));
    const differ = diffImages(a, b, size);
    // restart with the link cut, then count the link from its return to the end of the resync
    alpha = await startAlpha(lib, cfg);
    emu.set({ bandwidth: o.bandwidthBps });
    const unclean = (await events(base)).find((e) => e.type === 'mirror.unclean-stop');
    const total = () => { const t = emu.status().totals.bytes; return t['a-to-b'] + t['b-to-a']; };
    const before = total();
    const t0 = performance.now();
    emu.restore();
    if (scenario === 'link cut') {
      await until(async () => (await api(base, 'GET', '/v1/mirrors/m0')).images[1].link === 'connected', 15_000, 'reconnected');
      await api(base, 'POST', '/v1/mirrors/m0/synchronize', {});
    }
    let done;
    await until(async () => (done = (await events(base)).find((e) => e.type === 'mirror.resync-done')) !== undefined, 600_000, `resync (${scenario}, checksums ${mode})`, 100);
    const linkBytes = total() - before;
    const seconds = (performance.now() - t0) / 1000;
    const after = diffImages(a, b, size);
    const row = {
      scenario, mode, lunBytes: size, writes: Math.round(o.uncleanWriteBytes / BLOCK), uncleanBytes: unclean?.bytes ?? 0,
      differBytes: differ.bytes, differBlocks: differ.blocks, linkBytes, ratio: differ.bytes ? linkBytes / differ.bytes : null,
      bytesDone: done.bytesDone, bytesSent: done.bytesSent, bytesZeroed: done.bytesZeroed, bytesCompared: done.bytesCompared, chunksSkipped: done.chunksSkipped, hashBytes: done.hashBytes,
      checksums: done.checksums, resyncSeconds: done.seconds, seconds, identicalAfter: after.blocks === 0,
    };
    log(`  unclean stop, ${scenario}, checksums ${mode}: ${fmtBytes(differ.bytes)} differ (${differ.blocks} blocks), link ${fmtBytes(linkBytes)}, resync ${done.seconds.toFixed(2)} s${row.identicalAfter ? '' : `  IMAGES DIFFER AFTER (${after.blocks} blocks)`}`);
    return row;
  } finally {
    if (alpha) { alpha.child.kill('SIGKILL'); await alpha.exited; }
    await bravo?.close(100).catch(() => undefined);
    await emu.stop().catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  }
}

export async function uncleanSection(o, lib, out) {
  log(`unclean stop: ${fmtBytes(o.uncleanBytes)} LUN, ${fmtBytes(o.uncleanWriteBytes)} of scattered 4 KiB writes, link ${(o.bandwidthBps / 1e6).toFixed(0)} MB/s, ${o.uncleanLatency} ms one way`);
  for (const scenario of ['link cut', 'link up']) for (const mode of ['never', 'auto']) out.push(await uncleanRun(o, lib, scenario, mode));
}

export function uncleanReport(rows) {
  if (!rows.length) return '';
  const r0 = rows[0];
  let s = `\nResync after an unclean stop (SIGKILL of the primary after ${r0.writes} scattered 4 KiB writes, ${fmtBytes(r0.lunBytes)} LUN full of data, write-intent extents 1 MiB)\n\n`;
  const head = ['scenario', 'checksums', 'WIL marked', 'differ bytes', 'link bytes', 'link/differ', 'resync bytesDone', 'sent', 'zeroed', 'compared', 'pieces skipped', 'hash bytes', 'resync s', 'link up to done s', 'goal', 'identical after'];
  s += table(head, rows.map((r) => [r.scenario, r.mode === 'never' ? 'off (never)' : `on (${r.mode})`, String(r.uncleanBytes), String(r.differBytes), String(r.linkBytes), r.ratio === null ? 'n/a' : `${r.ratio.toFixed(2)}x`,
    String(r.bytesDone), String(r.bytesSent), String(r.bytesZeroed), String(r.bytesCompared ?? 0), String(r.chunksSkipped ?? 0), String(r.hashBytes ?? 0), r.resyncSeconds.toFixed(2), r.seconds.toFixed(2),
    r.mode === 'never' ? '' : r.ratio === null ? 'n/a (nothing differs)' : r.ratio <= 1.1 ? 'met' : 'MISSED', r.identicalAfter ? 'yes' : 'NO']));
  s += '\ndiffer = bytes that differ between the two image files after the kill (4 KiB blocks x their differing bytes); link = both directions, from the link\'s return to resync-done';
  s += ' (the reconnection\'s handshake, record and bitmap exchange included); goal (checksums on): link bytes <= 1.1 x differing bytes.\n';
  s += 'Where little differs (link up: the writes in flight at the kill) those fixed costs and the hashes of every compared piece make the ratio, not the data sent.\n';
  return s;
}
