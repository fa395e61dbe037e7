// The cost of the layer kit's hops (src/block): 4 KiB reads and writes on a page-cached image,
// straight on the FileBackingStore, through one checked() hop, and through three checked hops
// over two LayerDevice pass-throughs (what a deep stack adds). Rounds are interleaved
// (raw, 1 hop, 3 hops, then reversed, ...) and repeated; medians of ns per request and the
// ratio to raw are printed.
//
//   npm run bench:layers [-- --ops 20000 --rounds 7 --json]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO } from './lib/common.mjs';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const OPS = opt('ops', 20_000);
const ROUNDS = opt('rounds', 7);
const JSON_OUT = args.includes('--json');
if (!(OPS > 0) || !(ROUNDS > 0)) {
  console.error('--ops and --rounds must be positive numbers');
  process.exit(2);
}

const dist = process.env.SANBOX_DIST || join(REPO, 'dist');
const { FileBackingStore, LayerDevice, checked } = await import(pathToFileURL(join(dist, 'block', 'index.js')).href);
const dir = mkdtempSync(join(tmpdir(), 'sanbox-bench-layers-'));
const SIZE = 64 * 1024 * 1024;
const BS = 4096;
const path = join(dir, 'lun.img');
await FileBackingStore.create(path, SIZE);
const store = await FileBackingStore.open(path, { blockSize: 512 });
await store.write(0, Buffer.alloc(SIZE, 1)); // real data: reads come from the page cache

const stacks = {
  raw: store,
  '1 hop': checked(store, { name: 'bench: 1' }),
  '3 hops': checked(new LayerDevice(checked(new LayerDevice(checked(store, { name: 'bench: 3' })), { name: 'bench: 2' })), { name: 'bench: 1' }),
};
const names = Object.keys(stacks);
const data = Buffer.alloc(BS, 7);
const into = Buffer.alloc(BS);

async function round(dev, kind) {
  let x = 12345;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < OPS; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const off = ((x >>> 0) % (SIZE / BS)) * BS;
    if (kind === 'write') await dev.write(off, data);
    else await dev.read(off, BS, into);
  }
  return Number(process.hrtime.bigint() - t0) / OPS;
}

const samples = {};
for (const kind of ['read', 'write']) {
  for (const n of names) samples[`${kind} ${n}`] = [];
  for (const n of names) await round(stacks[n], kind); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) samples[`${kind} ${n}`].push(await round(stacks[n], kind));
  }
}
await store.close();
rmSync(dir, { recursive: true, force: true });

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const rows = [];
for (const kind of ['read', 'write']) {
  const base = median(samples[`${kind} raw`]);
  for (const n of names) {
    const m = median(samples[`${kind} ${n}`]);
    rows.push({ op: `4k ${kind}`, stack: n, nsPerOp: Math.round(m), ratio: Number((m / base).toFixed(3)), addedNs: Math.round(m - base) });
  }
}
if (JSON_OUT) console.log(JSON.stringify({ ops: OPS, rounds: ROUNDS, rows }, null, 2));
else {
  console.log(`layer kit hop cost: ${OPS} requests x ${ROUNDS} interleaved rounds, medians (ns per request)`);
  console.log('op          stack      ns/op   x raw   added ns');
  for (const r of rows) console.log(`${r.op.padEnd(11)} ${r.stack.padEnd(9)} ${String(r.nsPerOp).padStart(6)}  ${r.ratio.toFixed(3).padStart(6)}  ${String(r.addedNs).padStart(8)}`);
}
