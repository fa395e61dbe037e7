// The acknowledged-write ledger: checks docs/architecture.md guarantee 1 ("a write acknowledged to the host
// is never lost on any single fault") from the outside, through NBD, like a host would.
//
// - `LedgerWriter` opens several NBD connections (to one or several endpoints, e.g. both SP
//   ports), writes sequence-stamped blocks, overwrites the same blocks again and again (seeded
//   random choice, bounded by count and time), and records per block every ack and every write
//   whose outcome is unknown (connection died before the reply: "in flight at the fault"; or an
//   error reply: "failed"). Connections that die are reconnected, round robin over the
//   endpoints, within a bounded time.
// - `verifyLedger` reads every block back through NBD (any endpoint, reconnecting on loss) and
//   checks each holds its latest acknowledged value, or a newer one whose write was in flight or
//   failed; never an older one, never a mix, never garbage. `checkBlock` is the pure check, and
//   `verifyImageFile` runs it over an image file directly.
//
// Block format (see encodeBlock): every 512-byte sector of a block carries a stamp (magic, run id,
// writer, block index, sequence number, sector index, block size), a CRC32 of the whole block and
// a CRC32 of the sector, and the rest of the sector is filled from a PRNG seeded by (run, block,
// seq, sector). So a torn block (sectors from two writes), a misplaced block, a block from another
// run and garbage are all told apart.
//
// Ordering rule the writer keeps, so that "latest acknowledged" is well defined: at most one write
// per block is outstanding at any time (blocks are serialized; sequence numbers are global and
// increase, so per block they follow issue order). A block that had a write lost with a dying
// connection is frozen for the rest of the run: that write may still be sitting in a server that
// is alive, and re-writing the block could let it land after a newer acknowledged one without
// any fault of the array. Frozen blocks are what checks pre-fault data after the fault.
import { EventEmitter } from 'node:events';
import { crc32 } from 'node:zlib';
import { randomInt } from 'node:crypto';
import * as fs from 'node:fs';
import { NbdClient, ConnectionLost, NbdReplyError } from './nbd-client.mjs';

export { NbdClient, ConnectionLost, NbdReplyError };

export const SECTOR = 512;
const MAGIC = Buffer.from('SBXLEDG1');
const OFF = { magic: 0, run: 8, writer: 12, block: 16, seq: 20, sector: 24, sectors: 26, blockSize: 28, blockCrc: 32, sectorCrc: 36, fill: 40 };

/** Deterministic PRNG (mulberry32). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mix(...xs) {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  return h;
}

/**
 * The content of `block` written with sequence number `seq` by `writer` in run `runId`.
 * Deterministic: the verifier (and tests that forge rollbacks) can rebuild any version.
 */
export function encodeBlock(runId, writer, block, seq, blockSize) {
  if (blockSize % SECTOR !== 0 || blockSize <= 0) throw new Error(`block size ${blockSize} must be a positive multiple of ${SECTOR}`);
  const b = Buffer.alloc(blockSize);
  const sectors = blockSize / SECTOR;
  for (let s = 0; s < sectors; s++) {
    const o = s * SECTOR;
    MAGIC.copy(b, o + OFF.magic);
    b.writeUInt32BE(runId >>> 0, o + OFF.run);
    b.writeUInt32BE(writer >>> 0, o + OFF.writer);
    b.writeUInt32BE(block >>> 0, o + OFF.block);
    b.writeUInt32BE(seq >>> 0, o + OFF.seq);
    b.writeUInt16BE(s, o + OFF.sector);
    b.writeUInt16BE(sectors, o + OFF.sectors);
    b.writeUInt32BE(blockSize, o + OFF.blockSize);
    const r = rng(mix(runId, block, seq, s));
    for (let i = o + OFF.fill; i < o + SECTOR; i += 4) b.writeUInt32BE((r() * 4294967296) >>> 0, i);
  }
  const blockCrc = crc32(b); // both CRC fields are still zero here
  for (let s = 0; s < sectors; s++) b.writeUInt32BE(blockCrc, s * SECTOR + OFF.blockCrc);
  for (let s = 0; s < sectors; s++) {
    const o = s * SECTOR;
    b.writeUInt32BE(sectorCrc(b, o), o + OFF.sectorCrc);
  }
  return b;
}

function sectorCrc(b, o) {
  return crc32(b.subarray(o + OFF.fill, o + SECTOR), crc32(b.subarray(o, o + OFF.sectorCrc)));
}

/**
 * Decodes a block read back. Returns one of
 * - { kind: 'zero' }                               every byte zero (never written, or lost)
 * - { kind: 'stamp', run, writer, block, seq }     one intact version
 * - { kind: 'mixed', versions: [...] }             intact sectors from more than one version
 * - { kind: 'garbage', detail }                    anything else (bad CRC, bad magic, wrong layout)
 */
export function decodeBlock(buf) {
  if (isZero(buf)) return { kind: 'zero' };
  const sectors = buf.length / SECTOR;
  const seen = new Map();
  const bad = [];
  for (let s = 0; s < sectors; s++) {
    const o = s * SECTOR;
    if (!buf.subarray(o, o + 8).equals(MAGIC)) {
      bad.push(`sector ${s}: no stamp`);
      continue;
    }
    if (buf.readUInt32BE(o + OFF.sectorCrc) !== sectorCrc(buf, o)) {
      bad.push(`sector ${s}: sector CRC mismatch`);
      continue;
    }
    const v = { run: buf.readUInt32BE(o + OFF.run), writer: buf.readUInt32BE(o + OFF.writer), block: buf.readUInt32BE(o + OFF.block), seq: buf.readUInt32BE(o + OFF.seq) };
    if (buf.readUInt16BE(o + OFF.sector) !== s || buf.readUInt16BE(o + OFF.sectors) !== sectors || buf.readUInt32BE(o + OFF.blockSize) !== buf.length) {
      bad.push(`sector ${s}: holds sector ${buf.readUInt16BE(o + OFF.sector)}/${buf.readUInt16BE(o + OFF.sectors)} of a ${buf.readUInt32BE(o + OFF.blockSize)}-byte block (run ${v.run} block ${v.block} seq ${v.seq})`);
      continue;
    }
    const key = `${v.run}/${v.block}/${v.seq}/${v.writer}`;
    const e = seen.get(key);
    if (e) e.sectors.push(s);
    else seen.set(key, { ...v, sectors: [s] });
  }
  if (bad.length === 0 && seen.size === 1) {
    const [v] = seen.values();
    const copy = Buffer.from(buf);
    for (let s = 0; s < sectors; s++) {
      copy.writeUInt32BE(0, s * SECTOR + OFF.blockCrc);
      copy.writeUInt32BE(0, s * SECTOR + OFF.sectorCrc);
    }
    if (crc32(copy) !== buf.readUInt32BE(OFF.blockCrc)) return { kind: 'garbage', detail: 'every sector intact but the block CRC does not match' };
    return { kind: 'stamp', run: v.run, writer: v.writer, block: v.block, seq: v.seq };
  }
  const versions = [...seen.values()].map((v) => ({ run: v.run, block: v.block, seq: v.seq, writer: v.writer, sectors: compactRanges(v.sectors) }));
  if (seen.size >= 2) return { kind: 'mixed', versions, detail: bad.join('; ') };
  return { kind: 'garbage', versions, detail: bad.slice(0, 4).join('; ') + (bad.length > 4 ? `; ... (${bad.length} bad sectors)` : '') };
}

function isZero(b) {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

function compactRanges(xs) {
  const out = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last && last[1] === x - 1) last[1] = x;
    else out.push([x, x]);
  }
  return out.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}

/**
 * What the writer knows, per block: the latest acknowledged write, and the writes issued after it
 * whose outcome is unknown ('inflight': the connection died before the reply; 'failed': an error
 * reply; 'pending': still outstanding when the ledger was saved).
 */
export class Ledger {
  constructor({ runId, blockSize = 4096, baseOffset = 0, blocks, initial = 'zero' }) {
    if (!Number.isInteger(blocks) || blocks <= 0) throw new Error(`blocks must be a positive integer, got ${blocks}`);
    this.runId = runId >>> 0;
    this.blockSize = blockSize;
    this.baseOffset = baseOffset;
    this.blocks = blocks;
    /** 'zero': a block with no acknowledged write must read as zeroes (or an uncertain write); 'any': not checked. */
    this.initial = initial;
    /** block → { acked: {seq, writer} | null, uncertain: [{seq, writer, state}], writes, frozen } */
    this.entries = new Map();
  }

  offsetOf(block) {
    return this.baseOffset + block * this.blockSize;
  }

  entry(block) {
    let e = this.entries.get(block);
    if (!e) this.entries.set(block, (e = { acked: null, uncertain: [], writes: 0, frozen: false }));
    return e;
  }

  issued(block, seq, writer) {
    const e = this.entry(block);
    e.writes++;
    e.uncertain.push({ seq, writer, state: 'pending' });
  }

  settle(block, seq, state) {
    const e = this.entry(block);
    const i = e.uncertain.findIndex((u) => u.seq === seq);
    if (i < 0) throw new Error(`ledger: block ${block} seq ${seq} settled twice or never issued`);
    if (state === 'acked') {
      const u = e.uncertain[i];
      if (e.acked && e.acked.seq > seq) throw new Error(`ledger: block ${block} acked seq ${seq} after seq ${e.acked.seq} (blocks must be serialized)`);
      e.acked = { seq, writer: u.writer };
      // Everything issued before it is older: no longer acceptable.
      e.uncertain = e.uncertain.slice(i + 1);
    } else {
      e.uncertain[i].state = state;
      if (state === 'inflight') e.frozen = true;
    }
  }

  toJSON() {
    const entries = {};
    for (const [b, e] of [...this.entries.entries()].sort((x, y) => x[0] - y[0])) entries[b] = e;
    return { format: 'sanbox-ledger/1', runId: this.runId, blockSize: this.blockSize, baseOffset: this.baseOffset, blocks: this.blocks, initial: this.initial, entries };
  }

  static fromJSON(j) {
    if (j.format !== 'sanbox-ledger/1') throw new Error(`not a ledger file (format ${j.format})`);
    const l = new Ledger(j);
    for (const [b, e] of Object.entries(j.entries)) l.entries.set(Number(b), e);
    return l;
  }

  save(path) {
    const tmp = `${path}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(this.toJSON()));
    fs.renameSync(tmp, path);
  }

  static load(path) {
    return Ledger.fromJSON(JSON.parse(fs.readFileSync(path, 'utf8')));
  }
}

/**
 * Checks one block's content against the ledger. Returns null when acceptable, else a violation
 * { block, offset, kind, expected, found, detail }. Kinds: 'lost' (zeroes where a write was
 * acknowledged), 'stale' (an older version of this block), 'mixed' (sectors of several
 * versions), 'garbage', 'misplaced' (another block's data), 'foreign' (another run's data),
 * 'phantom' (a version of this block the writer never issued after the latest ack).
 */
export function checkBlock(ledger, block, buf) {
  const e = ledger.entries.get(block) ?? { acked: null, uncertain: [] };
  const d = decodeBlock(buf);
  const acked = e.acked;
  const okSeqs = new Set(e.uncertain.map((u) => u.seq));
  if (acked) okSeqs.add(acked.seq);
  const expected = { acked: acked?.seq ?? null, uncertain: e.uncertain.map((u) => `${u.seq}(${u.state})`) };
  const v = (kind, detail, found) => ({ block, offset: ledger.offsetOf(block), kind, expected, found, detail });
  switch (d.kind) {
    case 'zero':
      if (acked) return v('lost', `block reads as zeroes but seq ${acked.seq} was acknowledged`, 'zeroes');
      if (ledger.initial === 'any' || ledger.initial === 'zero') return null;
      return null;
    case 'stamp': {
      const found = `run ${d.run} block ${d.block} seq ${d.seq} writer ${d.writer}`;
      if (d.run !== ledger.runId) {
        if (!acked && e.uncertain.length === 0 && ledger.initial === 'any') return null;
        return v('foreign', `holds data of run ${d.run}, not of this run ${ledger.runId}`, found);
      }
      if (d.block !== block) return v('misplaced', `holds block ${d.block}'s data`, found);
      if (okSeqs.has(d.seq)) return null;
      if (acked && d.seq < acked.seq) return v('stale', `holds seq ${d.seq}, older than the acknowledged seq ${acked.seq}`, found);
      if (!acked && ledger.initial === 'any') return null;
      return v('phantom', `holds seq ${d.seq}, which was never written to this block after its latest ack`, found);
    }
    case 'mixed':
      return v('mixed', `sectors of ${d.versions.length} versions: ${d.versions.map((x) => `seq ${x.seq} (run ${x.run} block ${x.block}) sectors ${x.sectors}`).join(' | ')}${d.detail ? `; ${d.detail}` : ''}`, 'mixed');
    default:
      if (!acked && e.uncertain.length === 0 && ledger.initial === 'any') return null;
      return v('garbage', d.detail, 'garbage');
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes sequence-stamped blocks through NBD and keeps the ledger. Usage:
 *   const w = new LedgerWriter({ endpoints: ['nbd://127.0.0.1:10809/disk'], blocks: 1024, seed: 1 });
 *   const done = w.run();            // resolves with the report when bounds are reached or stop()
 *   await w.until((s) => s.acked >= 500);   // ... inject a fault ...
 *   const report = await done;
 *   const result = await verifyLedger(w.ledger, { endpoints: [...] });
 */
export class LedgerWriter extends EventEmitter {
  constructor(opts) {
    super();
    const o = {
      connections: 4,
      depth: 4,
      blocks: 256,
      blockSize: 4096,
      baseOffset: 0,
      seed: 1,
      runId: undefined,
      maxWrites: 20000,
      durationMs: 10_000,
      prefill: true,
      fuaRatio: 0,
      reconnectTimeoutMs: 15_000,
      connectTimeoutMs: 3000,
      opTimeoutMs: 30_000,
      initial: 'zero',
      ...opts,
    };
    if (!Array.isArray(o.endpoints) || o.endpoints.length === 0) throw new Error('LedgerWriter: at least one endpoint');
    this.o = o;
    this.runId = (o.runId ?? randomInt(1, 2 ** 31)) >>> 0;
    this.ledger = new Ledger({ runId: this.runId, blockSize: o.blockSize, baseOffset: o.baseOffset, blocks: o.blocks, initial: o.initial });
    this.rand = rng(o.seed);
    this.nextSeq = 1;
    this.busy = new Set();
    this.stopped = false;
    this.stats = { issued: 0, acked: 0, failed: 0, inflightAtFault: 0, pendingAtEnd: 0, reconnects: 0, gaveUp: 0, failedByErrno: {}, frozenBlocks: 0 };
    this.faults = [];
    this.conns = [];
    this.latencies = [];
  }

  stop() {
    this.stopped = true;
    this.emit('progress', this.stats);
  }

  /** Resolves once pred(stats) holds (checked on every settled write), or rejects after timeoutMs. */
  until(pred, timeoutMs = 30_000) {
    if (pred(this.stats)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.off('progress', on);
        reject(new Error(`LedgerWriter.until: timed out after ${timeoutMs} ms (${JSON.stringify(this.stats)})`));
      }, timeoutMs);
      const on = (s) => {
        if (pred(s)) {
          clearTimeout(t);
          this.off('progress', on);
          resolve();
        }
      };
      this.on('progress', on);
    });
  }

  async run() {
    const o = this.o;
    const t0 = Date.now();
    this.deadline = t0 + o.durationMs;
    this.conns = Array.from({ length: o.connections }, (_, i) => ({ id: i, client: null, connecting: null, endpointIndex: i % o.endpoints.length, dead: false }));
    try {
      // Open every connection first: a bad endpoint is an error, not a fault.
      await Promise.all(this.conns.map((c) => this.connect(c, o.connectTimeoutMs, false)));
      if (o.prefill) await this.prefill();
      const lanes = [];
      for (const c of this.conns) for (let d = 0; d < o.depth; d++) lanes.push(this.lane(c));
      await Promise.all(lanes);
    } finally {
      for (const c of this.conns) await c.client?.close(1000).catch(() => {});
      for (const e of this.ledger.entries.values()) if (e.uncertain.some((u) => u.state === 'pending')) this.stats.pendingAtEnd++;
    }
    return this.report(Date.now() - t0);
  }

  report(elapsedMs) {
    const lat = [...this.latencies].sort((a, b) => a - b);
    const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
    let frozen = 0;
    for (const e of this.ledger.entries.values()) if (e.frozen) frozen++;
    this.stats.frozenBlocks = frozen;
    return {
      runId: this.runId,
      seed: this.o.seed,
      endpoints: this.o.endpoints,
      connections: this.o.connections,
      depth: this.o.depth,
      blocks: this.o.blocks,
      blockSize: this.o.blockSize,
      elapsedMs,
      ...this.stats,
      faults: this.faults,
      latencyMs: { p50: q(0.5), p99: q(0.99), max: lat.length ? lat[lat.length - 1] : null },
    };
  }

  /** Makes sure `c` has a live client; tries endpoints round robin until reconnectTimeoutMs. */
  async connect(c, timeoutMs, isReconnect = true) {
    if (c.client && !c.client.closed) return c.client;
    if (c.dead) return null;
    if (c.connecting) return c.connecting;
    c.connecting = (async () => {
      const o = this.o;
      const give = Date.now() + timeoutMs;
      let lastErr = null;
      let tries = 0;
      while (Date.now() < give && (!this.stopped || !isReconnect)) {
        const uri = o.endpoints[c.endpointIndex % o.endpoints.length];
        try {
          c.client = await NbdClient.connect(uri, { timeoutMs: Math.min(o.connectTimeoutMs, Math.max(200, give - Date.now())) });
          if (isReconnect) {
            this.stats.reconnects++;
            this.emit('reconnect', { conn: c.id, uri });
          }
          return c.client;
        } catch (e) {
          lastErr = e;
          tries++;
          if (isReconnect) c.endpointIndex++;
          if (!isReconnect && tries >= 3) break;
          await sleep(Math.min(50 * tries, 250));
        }
      }
      if (!isReconnect) throw lastErr ?? new Error('connect failed');
      c.dead = true;
      this.stats.gaveUp++;
      return null;
    })().finally(() => {
      c.connecting = null;
    });
    return c.connecting;
  }

  async prefill() {
    const o = this.o;
    let next = 0;
    const lane = async (c) => {
      while (!this.stopped && !c.dead && next < o.blocks && this.stats.issued < o.maxWrites && Date.now() < this.deadline) {
        const b = next++;
        this.busy.add(b);
        await this.writeOne(c, b);
      }
    };
    const lanes = [];
    for (const c of this.conns) for (let d = 0; d < o.depth; d++) lanes.push(lane(c));
    await Promise.all(lanes);
  }

  pickBlock() {
    for (let i = 0; i < 16; i++) {
      const b = Math.floor(this.rand() * this.o.blocks);
      if (this.busy.has(b)) continue;
      if (this.ledger.entries.get(b)?.frozen) continue;
      return b;
    }
    return -1;
  }

  async lane(c) {
    const o = this.o;
    while (!this.stopped && !c.dead && this.stats.issued < o.maxWrites && Date.now() < this.deadline) {
      const b = this.pickBlock();
      if (b < 0) {
        await sleep(1);
        continue;
      }
      this.busy.add(b);
      await this.writeOne(c, b);
    }
  }

  /** One write of block `b` (already marked busy) on connection `c`; never throws. */
  async writeOne(c, b) {
    const o = this.o;
    try {
      const client = await this.connect(c, o.reconnectTimeoutMs);
      if (!client) return;
      const seq = this.nextSeq++;
      const data = encodeBlock(this.runId, c.id, b, seq, o.blockSize);
      const fua = o.fuaRatio > 0 && this.rand() < o.fuaRatio;
      this.ledger.issued(b, seq, c.id);
      this.stats.issued++;
      const t = performance.now();
      let timer;
      try {
        await Promise.race([
          client.write(this.ledger.offsetOf(b), data, { fua }),
          new Promise((_, rej) => {
            timer = setTimeout(() => {
              // A reply that never comes: treat the connection as dead (its writes are in flight).
              client.destroy(`no reply within ${o.opTimeoutMs} ms`);
              rej(new ConnectionLost('op timeout'));
            }, o.opTimeoutMs);
          }),
        ]);
        this.latencies.push(performance.now() - t);
        this.ledger.settle(b, seq, 'acked');
        this.stats.acked++;
      } catch (e) {
        if (e.notSent) {
          // The connection was already gone: nothing reached the wire.
          this.ledger.settle(b, seq, 'failed');
          this.stats.notSent = (this.stats.notSent ?? 0) + 1;
        } else if (e instanceof NbdReplyError) {
          this.ledger.settle(b, seq, 'failed');
          this.stats.failed++;
          this.stats.failedByErrno[e.errno] = (this.stats.failedByErrno[e.errno] ?? 0) + 1;
        } else {
          this.ledger.settle(b, seq, 'inflight');
          this.stats.inflightAtFault++;
          this.noteFault(client, e);
        }
      } finally {
        clearTimeout(timer);
      }
    } finally {
      this.busy.delete(b);
      this.emit('progress', this.stats);
    }
  }

  noteFault(client, err) {
    if (client.faultNoted) {
      client.faultNoted.inflight++;
      return;
    }
    client.faultNoted = { time: new Date().toISOString(), uri: client.uri, reason: client.closeReason || err.message, inflight: 1 };
    this.faults.push(client.faultNoted);
    this.emit('fault', client.faultNoted);
  }
}

/**
 * Reads every block the ledger knows (or every block of the region, `all: true`) through NBD and
 * checks it. Tries the endpoints in order, and on a lost connection reconnects (next endpoint)
 * within `reconnectTimeoutMs` and re-reads what was outstanding. Read errors are collected in
 * `unreadable` (with the errno); they count against `ok` unless `allowReadErrors`.
 */
export async function verifyLedger(ledger, opts) {
  const o = { depth: 16, reconnectTimeoutMs: 15_000, connectTimeoutMs: 3000, all: false, allowReadErrors: false, maxDetails: 50, ...opts };
  const blocks = o.all ? Array.from({ length: ledger.blocks }, (_, i) => i) : [...ledger.entries.keys()].sort((a, b) => a - b);
  const violations = [];
  const unreadable = [];
  const byKind = {};
  let endpointIndex = 0;
  let client = null;
  let used = null;
  const reconnects = [];
  let connecting = null;
  const getClient = () => {
    if (client && !client.closed) return Promise.resolve(client);
    connecting ??= connectAny().finally(() => {
      connecting = null;
    });
    return connecting;
  };
  const connectAny = async () => {
    const give = Date.now() + o.reconnectTimeoutMs;
    let lastErr;
    for (let tries = 0; Date.now() < give; tries++) {
      const uri = o.endpoints[endpointIndex % o.endpoints.length];
      try {
        client = await NbdClient.connect(uri, { timeoutMs: o.connectTimeoutMs });
        if (used) reconnects.push(uri);
        used = uri;
        return client;
      } catch (e) {
        lastErr = e;
        endpointIndex++;
        await sleep(Math.min(50 * (tries + 1), 250));
      }
    }
    throw new Error(`verify: no endpoint reachable within ${o.reconnectTimeoutMs} ms: ${lastErr?.message}`);
  };
  let next = 0;
  const lane = async () => {
    while (next < blocks.length) {
      const b = blocks[next++];
      for (let attempt = 0; ; attempt++) {
        const c = await getClient();
        try {
          const buf = await c.read(ledger.offsetOf(b), ledger.blockSize);
          const viol = checkBlock(ledger, b, buf);
          if (viol) {
            byKind[viol.kind] = (byKind[viol.kind] ?? 0) + 1;
            violations.push(viol);
          }
          break;
        } catch (e) {
          if (e instanceof NbdReplyError) {
            unreadable.push({ block: b, offset: ledger.offsetOf(b), errno: e.errno });
            break;
          }
          if (attempt >= 5) throw e;
          endpointIndex++;
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: o.depth }, lane));
  } finally {
    await client?.close(1000).catch(() => {});
  }
  const unreadableByErrno = {};
  for (const u of unreadable) unreadableByErrno[u.errno] = (unreadableByErrno[u.errno] ?? 0) + 1;
  return summarize(ledger, { blocksChecked: blocks.length, violations, byKind, unreadable, unreadableByErrno, endpoint: used, reconnects, allowReadErrors: o.allowReadErrors, maxDetails: o.maxDetails });
}

/** The same check over an image file (offline: after a crash, or of a restored vault). */
export function verifyImageFile(ledger, path, opts = {}) {
  const fd = fs.openSync(path, 'r');
  const violations = [];
  const byKind = {};
  const blocks = opts.all ? Array.from({ length: ledger.blocks }, (_, i) => i) : [...ledger.entries.keys()].sort((a, b) => a - b);
  try {
    const buf = Buffer.alloc(ledger.blockSize);
    for (const b of blocks) {
      buf.fill(0);
      fs.readSync(fd, buf, 0, ledger.blockSize, ledger.offsetOf(b));
      const v = checkBlock(ledger, b, buf);
      if (v) {
        byKind[v.kind] = (byKind[v.kind] ?? 0) + 1;
        violations.push(v);
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return summarize(ledger, { blocksChecked: blocks.length, violations, byKind, unreadable: [], unreadableByErrno: {}, endpoint: path, reconnects: [], allowReadErrors: false, maxDetails: opts.maxDetails ?? 50 });
}

function summarize(ledger, r) {
  let ackedBlocks = 0;
  let uncertainBlocks = 0;
  for (const e of ledger.entries.values()) {
    if (e.acked) ackedBlocks++;
    if (e.uncertain.length) uncertainBlocks++;
  }
  const ok = r.violations.length === 0 && (r.allowReadErrors || r.unreadable.length === 0);
  return {
    ok,
    runId: ledger.runId,
    blocksChecked: r.blocksChecked,
    ackedBlocks,
    uncertainBlocks,
    violations: r.violations.length,
    violationsByKind: r.byKind,
    unreadable: r.unreadable.length,
    unreadableByErrno: r.unreadableByErrno,
    endpoint: r.endpoint,
    reconnects: r.reconnects,
    details: r.violations.slice(0, r.maxDetails),
    unreadableDetails: r.unreadable.slice(0, r.maxDetails),
  };
}

/** One line per report, for logs. */
export function formatWriteReport(w) {
  const errs = Object.entries(w.failedByErrno).map(([k, v]) => `${k}:${v}`).join(',');
  return `ledger run ${w.runId}: issued ${w.issued}, acked ${w.acked}, failed ${w.failed}${errs ? ` (${errs})` : ''}, in flight at fault ${w.inflightAtFault}, pending at end ${w.pendingAtEnd}, frozen blocks ${w.frozenBlocks}, reconnects ${w.reconnects}, faults ${w.faults.length}, ${w.elapsedMs} ms, ack p50 ${w.latencyMs.p50?.toFixed(2)} ms p99 ${w.latencyMs.p99?.toFixed(2)} ms`;
}

export function formatVerifyReport(v) {
  const lines = [
    `ledger verify run ${v.runId}: ${v.ok ? 'OK' : 'FAILED'} - ${v.blocksChecked} blocks checked (${v.ackedBlocks} with an ack, ${v.uncertainBlocks} with uncertain writes), ${v.violations} violations${v.violations ? ` ${JSON.stringify(v.violationsByKind)}` : ''}, ${v.unreadable} unreadable${v.unreadable ? ` ${JSON.stringify(v.unreadableByErrno)}` : ''} via ${v.endpoint}`,
  ];
  for (const d of v.details.slice(0, 10)) lines.push(`  block ${d.block} @${d.offset}: ${d.kind}: ${d.detail} (expected acked ${d.expected.acked}, uncertain [${d.expected.uncertain.join(' ')}])`);
  return lines.join('\n');
}
