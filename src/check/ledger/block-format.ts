/**
 * The ledger's block format. Every 512-byte sector of a block carries a stamp (magic, run id,
 * writer, block index, sequence number, sector index, block size), a CRC32 of the whole block and
 * a CRC32 of the sector, and the rest of the sector is filled from a PRNG seeded by (run, block,
 * seq, sector). So a torn block (sectors from two writes), a misplaced block, a block from another
 * run and garbage are all told apart, and any version can be rebuilt from its coordinates.
 */
import { crc32 } from 'node:zlib';
import { mixSeed, mulberry32 } from '../../random/index.js';

export const SECTOR = 512;
const MAGIC = Buffer.from('SBXLEDG1');
const OFF = { magic: 0, run: 8, writer: 12, block: 16, seq: 20, sector: 24, sectors: 26, blockSize: 28, blockCrc: 32, sectorCrc: 36, fill: 40 } as const;

export interface BlockVersion {
  run: number;
  writer: number;
  block: number;
  seq: number;
}
export type Decoded =
  | { kind: 'zero' }
  | ({ kind: 'stamp' } & BlockVersion)
  | { kind: 'mixed'; versions: (BlockVersion & { sectors: string })[]; detail: string }
  | { kind: 'garbage'; detail: string; versions?: (BlockVersion & { sectors: string })[] };

/**
 * The content of `block` written with sequence number `seq` by `writer` in run `runId`.
 * Deterministic: the verifier (and tests that forge rollbacks) can rebuild any version.
 */
export function encodeBlock(runId: number, writer: number, block: number, seq: number, blockSize: number): Buffer {
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
    const r = mulberry32(mixSeed(runId, block, seq, s));
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

function sectorCrc(b: Buffer, o: number): number {
  return crc32(b.subarray(o + OFF.fill, o + SECTOR), crc32(b.subarray(o, o + OFF.sectorCrc)));
}

/**
 * Decodes a block read back: `zero` (every byte zero: never written, or lost), `stamp` (one intact
 * version), `mixed` (intact sectors from more than one version) or `garbage` (anything else: bad
 * CRC, bad magic, wrong layout).
 */
export function decodeBlock(buf: Buffer): Decoded {
  if (isZero(buf)) return { kind: 'zero' };
  const sectors = buf.length / SECTOR;
  const seen = new Map<string, BlockVersion & { sectors: number[] }>();
  const bad: string[] = [];
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
    return { kind: 'stamp', run: v!.run, writer: v!.writer, block: v!.block, seq: v!.seq };
  }
  const versions = [...seen.values()].map((v) => ({ run: v.run, block: v.block, seq: v.seq, writer: v.writer, sectors: compactRanges(v.sectors) }));
  if (seen.size >= 2) return { kind: 'mixed', versions, detail: bad.join('; ') };
  return { kind: 'garbage', versions, detail: bad.slice(0, 4).join('; ') + (bad.length > 4 ? `; ... (${bad.length} bad sectors)` : '') };
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i += 8) if (b.readBigUInt64LE(i) !== 0n) return false;
  return true;
}

function compactRanges(xs: number[]): string {
  const out: [number, number][] = [];
  for (const x of xs) {
    const last = out[out.length - 1];
    if (last && last[1] === x - 1) last[1] = x;
    else out.push([x, x]);
  }
  return out.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(',');
}
