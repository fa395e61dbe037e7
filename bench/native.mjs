// Micro-benchmarks of the native hot path: Rust addon vs the TypeScript twin (benny).
// Prints ops/s of both and the ratio native/ts. `npm run bench:native`; BENCH_QUICK=1 for a short run,
// BENCH_ONLY=<regexp> runs only the benchmarks whose name matches (e.g. BENCH_ONLY=hmac).
// Imports the compiled modules from dist/ (rebuilt with tsc when src/native is newer).
import b from 'benny';
import { existsSync, mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist', 'native', 'index.js');
const newest = (d) => Math.max(...readdirSync(d).map((f) => statSync(join(d, f)).mtimeMs));
if (!existsSync(dist) || newest(join(root, 'src', 'native')) > statSync(dist).mtimeMs) {
  console.log('[bench] compiling TypeScript (tsc) ...');
  spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
}
const m = await import(dist);
const { TsRegionBitmap, NativeRegionBitmap, Writelog, crc32cTs, nativeInfo, NativeHmacSha256 } = m;
const { addon } = await import(join(root, 'dist', 'native', 'addon.js'));
console.log('native:', JSON.stringify(nativeInfo()));
if (!addon) {
  console.log('addon not loaded: nothing to compare (build it with `npm run build:native`)');
  process.exit(0);
}
const quick = process.env.BENCH_QUICK === '1';
const opts = { minSamples: quick ? 3 : 5, maxTime: quick ? 0.3 : 1.5 };

let seed = 12345;
const rnd = () => {
  // xorshift32: integer-exact (a float LCG loses its low bits and repeats early)
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
};

const TiB = 2 ** 40;
const REGION = 64 * 1024; // 16 Mi regions, 2 MiB of bitmap for a 1 TiB LUN
const BATCH = 1024;
const ranges = new Float64Array(2 * BATCH);
for (let i = 0; i < BATCH; i++) {
  ranges[2 * i] = Math.floor(rnd() * (TiB / 4096)) * 4096;
  ranges[2 * i + 1] = 4096;
}

const rows = [];
const only = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY, 'i') : null;
async function compare(name, unit, perOp, nativeFn, tsFn) {
  if (only && !only.test(name)) return;
  await b.suite(
    name,
    b.add('native', nativeFn),
    b.add('ts', tsFn),
    b.configure({ cases: opts }),
    b.complete((s) => {
      const n = s.results.find((r) => r.name === 'native').ops;
      const t = s.results.find((r) => r.name === 'ts').ops;
      rows.push({ name, unit, native: n * perOp, ts: t * perOp, ratio: n / t });
    }),
  );
}

// 1. mark 4 KiB ranges at random offsets (1 TiB LUN)
{
  const nb = new NativeRegionBitmap(TiB, REGION), tb = new TsRegionBitmap(TiB, REGION);
  let i = 0;
  await compare('mark 4KiB random, one call per range (queued, flushed per 512)', 'ranges/s', 1,
    () => { nb.mark(ranges[i], 4096); i = (i + 2) & (2 * BATCH - 1); },
    () => { tb.mark(ranges[i], 4096); i = (i + 2) & (2 * BATCH - 1); });
  await compare('mark 4KiB random, markMany x1024', 'ranges/s', BATCH, () => nb.markMany(ranges), () => tb.markMany(ranges));
}

// 2./3. count dirty bytes and walk dirty runs on a 1 TiB-LUN bitmap with 100k scattered dirty ranges
{
  const nb = new NativeRegionBitmap(TiB, REGION), tb = new TsRegionBitmap(TiB, REGION);
  const many = new Float64Array(2 * 100_000);
  for (let i = 0; i < 100_000; i++) {
    many[2 * i] = Math.floor(rnd() * (TiB / 4096 - 64)) * 4096;
    many[2 * i + 1] = 4096 * (1 + Math.floor(rnd() * 48));
  }
  nb.markMany(many);
  tb.markMany(many);
  if (nb.dirtyBytes() !== tb.dirtyBytes()) throw new Error('native and ts disagree');
  await compare('dirtyBytes of 1 TiB bitmap (16 Mi regions)', 'scans/s', 1, () => nb.dirtyBytes(), () => tb.dirtyBytes());
  const walk = (bm) => {
    let from = 0, n = 0;
    for (;;) {
      const r = bm.dirtyRuns(from, 4096);
      if (r.length === 0) return n;
      n += r.length / 2;
      from = r[r.length - 2] + r[r.length - 1];
    }
  };
  const runs = walk(nb);
  if (runs !== walk(tb)) throw new Error('native and ts disagree on runs');
  console.log(`[bench] 1 TiB bitmap: ${nb.countRegions()} dirty regions in ${runs} runs`);
  await compare(`walk all dirty runs of 1 TiB bitmap (${runs} runs)`, 'walks/s', 1, () => walk(nb), () => walk(tb));
  // Sparse: what a resync after a short outage walks.
  const sn = new NativeRegionBitmap(TiB, REGION), st = new TsRegionBitmap(TiB, REGION);
  sn.markMany(many.subarray(0, 2000));
  st.markMany(many.subarray(0, 2000));
  const sruns = walk(sn);
  if (sruns !== walk(st)) throw new Error('native and ts disagree on runs');
  await compare(`walk all dirty runs of 1 TiB bitmap, sparse (${sruns} runs)`, 'walks/s', 1, () => walk(sn), () => walk(st));
}

// 4./5. writelog: append 4 KiB records, batch reads
const rec = Buffer.alloc(4096, 0x5a);
const RB = 64;
const recs = Array.from({ length: RB }, (_, i) => ({ lunId: 1, offset: i * 4096, data: rec }));
{
  const mk = (impl) => Writelog.open({ capacity: 64 << 20, impl });
  const nw = mk('native'), tw = mk('ts');
  const appender = (w) => () => {
    const r = w.appendMany(recs);
    if (r.overflow || w.usage().percent > 50) w.ack(w.next - 1);
  };
  await compare('writelog append 4KiB records (memory), appendMany x64', 'records/s', RB, appender(nw), appender(tw));
  const single = (w) => () => {
    w.append(1, 0, rec);
    if ((w.next & 1023) === 0) w.ack(w.next - 1);
  };
  await compare('writelog append 4KiB records (memory), one call per record', 'records/s', 1, single(nw), single(tw));
}
const dir = mkdtempSync(join(tmpdir(), 'sanbox-bench-'));
try {
  for (const files of [false, true]) {
    const mk = (impl) => Writelog.open({ dir: files ? join(dir) : undefined, name: `wl-${impl}`, capacity: 64 << 20, impl, durability: 'none', verifyReads: true });
    const nw = mk('native'), tw = mk('ts');
    for (let i = 0; i < 200; i++) {
      nw.appendMany(recs);
      tw.appendMany(recs);
    }
    const reader = (w) => {
      let from = 1;
      return () => {
        const bt = w.readBatch(from, { maxCount: 256, maxBytes: 4 << 20 });
        from = bt.count && bt.lastSeq < w.next - 1 ? bt.lastSeq + 1 : 1;
      };
    };
    await compare(`writelog batch read 256 x 4KiB, CRC verified (${files ? 'file, page cache' : 'memory'})`, 'records/s', 256, reader(nw), reader(tw));
    await nw.close();
    await tw.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// 6. CRC32C of 1 MiB
{
  const mib = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib.length; i++) mib[i] = (i * 7) & 0xff;
  await compare('crc32c 1 MiB', 'MiB/s', 1, () => addon.crc32c(mib, 0), () => crc32cTs(mib, 0));
}

// 7. the link's frame MAC: HMAC-SHA256 truncated to 16 bytes over seq || header || JSON (one
// piece) and the payload (another), as src/link/protocol/frame.ts does it; "ts" is node:crypto's
// createHmac per frame (what version 2 of the link first shipped with)
{
  const { createHmac, timingSafeEqual, randomBytes } = await import('node:crypto');
  const key = randomBytes(32);
  const nodeMac = (head, rest) => createHmac('sha256', key).update(head).update(rest).digest().subarray(0, 16);
  const keyed = new NativeHmacSha256(key, 16);
  const out = Buffer.alloc(16);
  for (const [label, headLen, binLen] of [['80 B frame (no payload)', 80, 0], ['4 KiB write frame', 80, 4096]]) {
    const head = randomBytes(headLen), bin = randomBytes(binLen);
    const tag = nodeMac(head, bin);
    await compare(`hmac mac, ${label}`, 'MACs/s', 1, () => keyed.macInto(out, 0, head, bin), () => nodeMac(head, bin));
    await compare(`hmac verify, ${label}`, 'MACs/s', 1, () => keyed.verify(tag, head, bin), () => timingSafeEqual(nodeMac(head, bin), tag));
  }
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(1));
const us = (x) => (1e6 / x).toFixed(2);
console.log('\n| benchmark | unit | native | ts | native/ts | µs/op native | µs/op ts |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) console.log(`| ${r.name} | ${r.unit} | ${fmt(r.native)} | ${fmt(r.ts)} | ${r.ratio.toFixed(2)}x | ${us(r.native)} | ${us(r.ts)} |`);
