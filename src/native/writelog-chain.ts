/**
 * The segment chain under the writelog (./writelog.ts documents the model): the segment files,
 * the metadata block that records the chain, recovery of the chain from it after a crash, and
 * chaining extensions in and out. A base class of Writelog, separate so that the journal's own
 * file reads as its API (append, group commit, read, ack); the state is protected because the
 * journal drives it directly. The bytes on disk are ./writelog-format.ts's.
 */
import { closeSync, fdatasyncSync, fsyncSync, ftruncateSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { addon } from './addon.js';
import { NativeRing, TsRing, REC_HEADER, align8, readU32, readU64, type Ring } from './ring.js';
import { META_SLOT, SEG_HEADER, checkSegment, encodeMetaSlot, encodeSegHeader, pwriteAll, readBestMeta, segmentBase, type Meta, type SegMeta, type Segment } from './writelog-format.js';
import { RecordBatch, WritelogCorruptError, type Durability, type RecoveryReport, type WritelogOptions } from './writelog-records.js';

/** Group commit interval by default: one fdatasync covers every record appended meanwhile. */
const GROUP_COMMIT_MS = 2;
/** The metadata hint is written at least this often by default (or every metaEveryAppends appends). */
const META_EVERY_MS = 1000;

export abstract class WritelogChain {
  readonly impl: 'native' | 'ts';
  readonly durability: Durability;
  /** Set by open() on existing files. */
  recovery: RecoveryReport | null = null;
  protected readonly segs = new Map<number, Segment>();
  protected chain: number[] = [0];
  protected nextSeq = 1;
  protected epoch = 0;
  protected gen = 0;
  protected appendsSinceMeta = 0;
  protected lastMetaAt = 0;
  protected readonly o: Required<Omit<WritelogOptions, 'dir' | 'impl'>> & { dir?: string };
  protected readonly verify: boolean;
  protected ackedSinceMeta = false;
  /** Highest sequence known durable (the group commit and durable metadata writes advance it). */
  protected durableSeq = 0;

  protected constructor(opts: WritelogOptions) {
    const impl = opts.impl ?? (addon ? 'native' : 'ts');
    if (impl === 'native' && !addon) throw new Error('native addon not loaded');
    this.impl = impl;
    this.o = {
      dir: opts.dir,
      name: opts.name ?? 'writelog',
      capacity: opts.capacity,
      extensionCapacity: opts.extensionCapacity ?? opts.capacity,
      maxExtensions: opts.maxExtensions ?? 0,
      extendAtPercent: opts.extendAtPercent ?? 90,
      releaseBelowPercent: opts.releaseBelowPercent ?? 50,
      durability: opts.durability ?? 'group',
      groupCommitMs: opts.groupCommitMs ?? GROUP_COMMIT_MS,
      metaEveryAppends: opts.metaEveryAppends ?? 1024,
      metaEveryMs: opts.metaEveryMs ?? META_EVERY_MS,
      verifyReads: opts.verifyReads ?? opts.dir !== undefined,
      now: opts.now ?? Date.now,
    };
    this.durability = opts.dir === undefined ? 'none' : this.o.durability;
    this.verify = this.o.verifyReads;
    const ok = (c: number) => Number.isSafeInteger(c) && c >= 4096 && c % 8 === 0;
    if (!ok(this.o.capacity) || !ok(this.o.extensionCapacity)) throw new RangeError('writelog capacities must be multiples of 8 and >= 4096');
    if (!Number.isInteger(this.o.maxExtensions) || this.o.maxExtensions < 0 || this.o.maxExtensions > 128) throw new RangeError('maxExtensions must be 0..128');
    if (!['none', 'group', 'fdatasync'].includes(this.o.durability)) throw new RangeError(`unknown durability ${String(this.o.durability)}`);
  }

  /** Every record up to durableSeq is durable now: the journal wakes its durable() waiters. */
  protected abstract wake(): void;

  protected segPath(idx: number): string {
    return join(this.o.dir!, idx === 0 ? `${this.o.name}.wl` : `${this.o.name}.ext${idx}.wl`);
  }
  protected makeSeg(idx: number, path: string | null, fd: number, capacity: number): Segment {
    const ring = this.impl === 'native' ? new NativeRing(fd, segmentBase(idx), capacity, this.epoch) : new TsRing(fd, segmentBase(idx), capacity, this.epoch);
    return { idx, path, fd, capacity, ring, dirty: false };
  }
  protected createFile(idx: number, capacity: number): Segment {
    const path = this.segPath(idx);
    const fd = openSync(path, 'w+', 0o644);
    ftruncateSync(fd, segmentBase(idx) + capacity);
    pwriteAll(fd, encodeSegHeader(this.epoch, idx, capacity), 0);
    if (this.durability !== 'none') fsyncSync(fd);
    return this.makeSeg(idx, path, fd, capacity);
  }
  protected openFile(idx: number, capacity: number): Segment {
    const path = this.segPath(idx);
    const fd = openSync(path, 'r+');
    checkSegment(fd, path, this.epoch, idx, capacity);
    return this.makeSeg(idx, path, fd, capacity);
  }

  protected create(): void {
    this.epoch = randomInt(1, 0xffffffff);
    this.segs.set(0, this.createFile(0, this.o.capacity));
    this.writeMeta(true);
    this.writeMeta(true); // both slots valid from the start
    if (this.durability !== 'none') {
      const d = openSync(this.o.dir!, 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
    }
  }

  // ------------------------------------------------------------------ metadata

  protected snapshot(): Meta {
    const segs: Record<string, SegMeta> = {};
    for (const s of this.segs.values()) {
      const st = s.ring.stats();
      segs[s.idx] = { tail: st.tail, tailLocal: st.tailLocal, head: st.head, nextLocal: st.nextLocal, count: st.count, capacity: s.capacity };
    }
    // Drained segments other than the target leave the chain.
    const target = this.chain[this.chain.length - 1]!;
    const chain = this.chain.filter((i) => i === target || segs[i]!.count > 0);
    return { epoch: this.epoch, gen: this.gen + 1, nextSeq: this.nextSeq, chain, segs };
  }

  /** Writes the next metadata generation; with `sync`, fdatasync first when durable. Then reclaims space up to the persisted tails. */
  protected writeMeta(sync: boolean, force = false): void {
    if (this.o.dir === undefined) {
      this.applyMeta(this.snapshot());
      return;
    }
    const m = this.snapshot();
    const main = this.segs.get(0)!;
    const slot = encodeMetaSlot(m);
    pwriteAll(main.fd, slot, SEG_HEADER + (m.gen % 2) * META_SLOT);
    if (sync && (force || this.durability !== 'none')) {
      // Records first (they may live in other files), then the metadata's file.
      for (const s of this.segs.values()) if (s.idx !== 0 && s.dirty) fdatasyncSync(s.fd);
      fdatasyncSync(main.fd);
      for (const s of this.segs.values()) s.dirty = false;
      this.durableSeq = this.nextSeq - 1;
      this.wake();
    }
    this.applyMeta(m);
  }

  protected applyMeta(m: Meta): void {
    this.gen = m.gen;
    this.chain = m.chain;
    for (const s of this.segs.values()) s.ring.commitTail(m.segs[s.idx]!.tail);
    this.appendsSinceMeta = 0;
    this.ackedSinceMeta = false;
    this.lastMetaAt = this.o.now();
  }

  // ------------------------------------------------------------------ recovery

  protected recover(): void {
    const m = readBestMeta(this.segPath(0));
    this.epoch = m.epoch;
    this.gen = m.gen;
    if (!Array.isArray(m.chain) || m.chain.length === 0 || m.segs['0'] === undefined) throw new WritelogCorruptError('metadata without a chain');
    for (const [k, sm] of Object.entries(m.segs)) {
      const idx = Number(k);
      const seg = this.openFile(idx, sm.capacity);
      this.segs.set(idx, seg);
    }
    const rep: RecoveryReport = { records: 0, firstSeq: -1, lastSeq: -1, torn: false, damaged: false, droppedAfterGap: 0, metadataGeneration: m.gen };
    let last = -1;
    let gapAt = -1;
    for (const idx of this.segs.keys()) {
      const sm = m.segs[idx]!;
      const seg = this.segs.get(idx)!;
      if (!m.chain.includes(idx)) {
        seg.ring.reset(sm.head, sm.nextLocal); // spare or idle: empty
        continue;
      }
    }
    for (const idx of m.chain) {
      const sm = m.segs[idx];
      const seg = this.segs.get(idx);
      if (!sm || !seg) throw new WritelogCorruptError(`metadata chain names unknown segment ${idx}`);
      if (gapAt >= 0) {
        // Everything after a gap is dropped: not a prefix otherwise.
        seg.ring.recover(sm.tail, sm.tailLocal);
        rep.droppedAfterGap += seg.ring.stats().count;
        seg.ring.truncateAfter(gapAt);
        continue;
      }
      const why = seg.ring.recover(sm.tail, sm.tailLocal);
      if (why) rep.torn = true;
      const st = seg.ring.stats();
      if (st.head < sm.head) rep.damaged = true;
      if (st.count > 0) {
        if (last >= 0 && st.firstSeq !== last + 1) {
          // A gap between segments: keep the prefix only.
          gapAt = last;
          rep.droppedAfterGap += st.count;
          seg.ring.truncateAfter(last);
          continue;
        }
        if (rep.firstSeq < 0) rep.firstSeq = st.firstSeq;
        // Sequences inside a ring are strictly increasing; they must also be consecutive.
        let prev = last;
        let cut = -1;
        for (let from = st.firstSeq; cut < 0; ) {
          const batch = this.readRing(seg.ring, from, 64 << 20, 65536, false);
          if (batch.count === 0) break;
          for (let i = 0; i < batch.count; i++) {
            const s = readU64(batch.buffer, batch.offsets[i]! + 8);
            if (prev >= 0 && s !== prev + 1) {
              cut = prev;
              break;
            }
            prev = s;
          }
          from = batch.lastSeq + 1;
        }
        if (cut >= 0) {
          const before = seg.ring.stats().count;
          seg.ring.truncateAfter(cut);
          rep.droppedAfterGap += before - seg.ring.stats().count;
          gapAt = cut;
        }
        last = seg.ring.stats().lastSeq;
      }
    }
    rep.records = 0;
    for (const idx of m.chain) rep.records += this.segs.get(idx)!.ring.stats().count;
    rep.lastSeq = last;
    if (rep.records === 0) rep.firstSeq = -1;
    this.chain = m.chain.slice();
    this.nextSeq = Math.max(m.nextSeq, last + 1);
    if (gapAt >= 0) this.nextSeq = gapAt + 1;
    this.durableSeq = this.nextSeq - 1;
    this.recovery = rep;
    this.writeMeta(true);
  }

  // ------------------------------------------------------------------ chain

  protected target(): Segment {
    return this.segs.get(this.chain[this.chain.length - 1]!)!;
  }

  /** Chains a spare extension in as the new target (write-ahead metadata). False when none is free. */
  protected chainExtension(): boolean {
    const inChain = new Set(this.chain);
    let idx = -1;
    for (let i = 1; i <= this.o.maxExtensions; i++)
      if (!inChain.has(i)) {
        idx = i;
        break;
      }
    if (idx < 0) return false;
    if (!this.segs.has(idx)) {
      const seg = this.o.dir === undefined ? this.makeSeg(idx, null, -1, this.o.extensionCapacity) : this.createFile(idx, this.o.extensionCapacity);
      this.segs.set(idx, seg);
    }
    this.chain = [...this.chain, idx];
    this.writeMeta(true);
    return true;
  }

  /** Switches back to the main segment when it is drained and usage is low. */
  protected maybeReturnToMain(): void {
    if (this.chain.includes(0)) return;
    if (this.usagePercent() >= this.o.releaseBelowPercent) return;
    this.chain = [...this.chain, 0];
    this.writeMeta(true);
  }

  protected usagePercent(): number {
    let used = 0, cap = 0;
    for (const i of this.chain) {
      const s = this.segs.get(i)!;
      used += s.ring.stats().used;
      cap += s.capacity;
    }
    return cap ? (100 * used) / cap : 0;
  }

  /** One segment's records from `from` on, as a batch (readBatch and recovery). */
  protected readRing(ring: Ring, from: number, maxBytes: number, maxCount: number, verify: boolean): RecordBatch {
    const buf = ring.read(from, maxBytes, maxCount, verify);
    const offs: number[] = [];
    for (let o = 0; o < buf.length; o += align8(REC_HEADER + readU32(buf, o + 36))) offs.push(o);
    return new RecordBatch(buf, offs);
  }
}
