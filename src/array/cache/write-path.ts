import { assertRange, BlockError, type ZeroOptions } from '../../block/device.js';
import { range, type CacheCore, type Page } from './core.js';
import type { Destager } from './destage.js';
import type { MirrorPage, PageRef } from './mirror.js';

/**
 * The write paths of a LUN's cache: write-back (into cache pages, mirrored to the peer before
 * the ack), write-through (below with FUA, merging into and cleaning cached pages) and
 * trim/zeroes. Each holds the page locks of its range while it touches the lower device.
 */

export async function writeBack(c: CacheCore, d: Destager, offset: number, data: Buffer): Promise<void> {
  const ps = c.pageSize;
  const end = offset + data.length;
  const p0 = Math.floor(offset / ps);
  const p1 = Math.floor((end - 1) / ps);
  // Pages the write covers only in part (the last page of the LUN may be short).
  const partial = (i: number): boolean => {
    const a = i * ps;
    const b = Math.min(c.size, a + ps);
    return offset > a || end < b;
  };
  const partialEdges = [...new Set([p0, p1])].filter(partial);

  let locked: number[] = [];
  const fills = new Map<number, Buffer>();
  /** Budget granted to this write and not yet turned into pages. */
  let mine = 0;
  const giveBackMine = (): void => {
    c.giveBack(mine);
    mine = 0;
  };
  try {
    for (;;) {
      if (c.closed) throw new BlockError('ESHUTDOWN', `cache of LUN ${c.lun} is closed`);
      if (!c.writeBackAllowed()) {
        c.unlockList(locked);
        giveBackMine();
        return await writeThrough(c, offset, data);
      }
      let missing = 0;
      for (let i = p0; i <= p1; i++) if (!c.dirty.has(i)) missing++;
      const needBytes = missing * ps;
      if (needBytes > c.budget.capacity) {
        c.unlockList(locked);
        giveBackMine();
        c.emit({ type: 'write-through-fallback', lun: c.lun, reason: 'large-write' });
        return await writeThrough(c, offset, data);
      }
      if (needBytes > mine) {
        const more = needBytes - mine;
        if (c.tryReserve(more)) {
          mine += more;
        } else {
          // Never wait for budget while holding page locks (destaging needs them) or part of
          // a reservation (two writers each holding half could wait for each other forever).
          c.unlockList(locked);
          fills.clear();
          giveBackMine();
          c.requestedBytes += needBytes;
          try {
            await c.budget.reserve(c.member, needBytes);
          } finally {
            c.requestedBytes -= needBytes;
          }
          c.reservedBytes += needBytes;
          mine = needBytes;
          continue;
        }
      }
      const needFill = partialEdges.filter((i) => !c.dirty.has(i));
      if (!needFill.every((i) => locked.includes(i) && fills.has(i))) {
        c.unlockList(locked);
        fills.clear();
        const want = needFill.slice().sort((a, b) => a - b);
        await c.locks.lockAll(want);
        locked = want;
        for (const i of want) {
          if (c.dirty.has(i)) continue;
          const a = i * ps;
          const b = Math.min(c.size, a + ps);
          const buf = Buffer.alloc(ps);
          await c.lower.read(a, b - a, buf);
          fills.set(i, buf);
        }
        continue;
      }
      break;
    }

    // Install synchronously: nothing from here awaits until the mirror call.
    const out = installWrite(c, offset, data, fills, partial, (i) => {
      if (mine < ps) throw new Error(`WriteCache bug: installing page ${i} of LUN ${c.lun} beyond the reservation`);
      mine -= ps;
    });
    c.unlockList(locked);
    giveBackMine();
    c.afterChange();
    d.schedule();

    const m = c.mirror;
    if (m) {
      try {
        await m.mirror(c.lun, out);
      } catch (e) {
        c.emit({ type: 'mirror-error', lun: c.lun, op: 'mirror', error: (e as Error).message });
        throw new BlockError('EIO', `mirroring write of LUN ${c.lun} to the peer SP failed: ${(e as Error).message}`);
      }
      if (c.mirror === m) for (const p of out) c.notePeerHeld(p.index, p.generation);
    }
  } finally {
    c.unlockList(locked);
    giveBackMine();
  }
}

/**
 * Copies a write-back write into its pages with the next generation, installing missing pages
 * (from `fills` for partial ones), each taking one page of the write's reservation
 * (`takePage`). Synchronous, so no other operation sees half of it. Returns the pages for the
 * peer (when there is one): the cache's own page buffers, valid only until the caller next
 * yields, so the mirror call must be made (and copies its pages) in the same synchronous block.
 */
function installWrite(c: CacheCore, offset: number, data: Buffer, fills: Map<number, Buffer>, partial: (i: number) => boolean, takePage: (i: number) => void): MirrorPage[] {
  const ps = c.pageSize;
  const end = offset + data.length;
  const { p0, p1 } = c.pageSpan(offset, data.length);
  const gen = ++c.generation;
  // Snapshots for the peer only when there is one (taken in this same synchronous block).
  const mirroring = c.mirror !== null;
  const out: MirrorPage[] = [];
  for (let i = p0; i <= p1; i++) {
    const a = i * ps;
    let page = c.dirty.get(i);
    if (!page) {
      const fill = fills.get(i);
      if (!fill && partial(i)) throw new Error(`WriteCache bug: partial page ${i} of LUN ${c.lun} has no fill`);
      takePage(i);
      // A page the write covers whole needs no zeroing, unless it runs past the LUN's end.
      page = c.installPage(i, fill ?? (a + ps <= c.size ? 'uninit' : 'zero'), gen, true);
    }
    const s = Math.max(offset, a);
    const e = Math.min(end, a + ps);
    data.copy(page.data, s - a, s - offset, e - offset);
    c.bumpGen(page, gen);
    // The page itself, not a snapshot: the mirror takes its copy before this block ends.
    if (mirroring) out.push({ index: i, generation: gen, data: page.data });
  }
  return out;
}

export async function writeThrough(c: CacheCore, offset: number, data: Buffer): Promise<void> {
  const ps = c.pageSize;
  const end = offset + data.length;
  const p0 = Math.floor(offset / ps);
  const p1 = Math.floor((end - 1) / ps);
  const indexes = range(p0, p1);
  await c.locks.lockAll(indexes);
  try {
    c.assertWritable();
    const gen = ++c.generation;
    const touched: Page[] = [];
    for (let i = p0; i <= p1; i++) {
      const page = c.dirty.get(i);
      if (!page) continue;
      const a = i * ps;
      const s = Math.max(offset, a);
      const e = Math.min(end, a + ps);
      data.copy(page.data, s - a, s - offset, e - offset);
      c.bumpGen(page, gen);
      touched.push(page);
    }
    // Cached edge pages go down whole, so afterwards every touched page equals the disk.
    const first = c.dirty.get(p0);
    const last = c.dirty.get(p1);
    const lo = first ? p0 * ps : offset;
    const hi = last ? Math.min(c.size, (p1 + 1) * ps) : end;
    let buf = data;
    if (lo !== offset || hi !== end) {
      buf = Buffer.allocUnsafe(hi - lo);
      if (first) first.data.copy(buf, 0, 0, Math.min(ps, hi - lo));
      if (last) last.data.copy(buf, p1 * ps - lo, 0, hi - p1 * ps);
      data.copy(buf, offset - lo);
    }
    await c.lower.write(lo, buf, { fua: true });
    for (const page of touched) {
      if (page.gen === gen) page.durableGen = gen;
      if (page.gen === gen) c.dropPage(page);
    }
    const m = c.mirror;
    const refs: PageRef[] = indexes.filter((i) => c.peerHeld.has(i)).map((i) => ({ index: i, generation: gen }));
    if (m && refs.length) {
      try {
        await m.release(c.lun, refs);
      } catch (e) {
        c.emit({ type: 'mirror-error', lun: c.lun, op: 'release', error: (e as Error).message });
        throw new BlockError('EIO', `write-through of LUN ${c.lun}: the peer still holds older copies (${(e as Error).message})`);
      }
      if (c.mirror === m) c.notePeerReleased(refs);
    }
    c.afterChange();
  } finally {
    c.locks.unlockAll(indexes);
  }
}

export async function discardRange(c: CacheCore, d: Destager, kind: 'trim' | 'zero', offset: number, length: number, opts: ZeroOptions): Promise<void> {
  c.assertWritable();
  assertRange(c, offset, length);
  if (length === 0) return;
  if (kind === 'zero' && opts.fastZero && !c.lower.capabilities.fastZero) throw new BlockError('ENOTSUP', 'zeroing would write data');
  d.touch();
  const ps = c.pageSize;
  const end = offset + length;
  const p0 = Math.floor(offset / ps);
  const p1 = Math.floor((end - 1) / ps);
  const indexes = range(p0, p1);
  await c.locks.lockAll(indexes);
  try {
    c.assertWritable();
    const gen = ++c.generation;
    const full: Page[] = [];
    for (let i = p0; i <= p1; i++) {
      const page = c.dirty.get(i);
      if (!page) continue;
      const a = i * ps;
      const b = Math.min(c.size, a + ps);
      if (offset <= a && end >= b) full.push(page);
      page.data.fill(0, Math.max(offset, a) - a, Math.min(end, b) - a);
      c.bumpGen(page, gen);
    }
    const m = c.mirror;
    if (m && indexes.some((i) => c.peerHeld.has(i))) {
      try {
        await m.discard(c.lun, offset, length, gen);
      } catch (e) {
        c.emit({ type: 'mirror-error', lun: c.lun, op: 'discard', error: (e as Error).message });
        throw new BlockError('EIO', `discarding ${kind} range of LUN ${c.lun} on the peer SP failed: ${(e as Error).message}`);
      }
      if (c.mirror === m) {
        for (const i of indexes) {
          if (!c.peerHeld.has(i)) continue;
          const a = i * ps;
          const b = Math.min(c.size, a + ps);
          if (offset <= a && end >= b) c.peerHeld.delete(i);
          else c.peerHeld.set(i, gen);
        }
      }
    }
    const fua = opts.fua === true || !c.writeBackAllowed();
    const lowerOpts: ZeroOptions = { ...opts, fua };
    if (kind === 'trim') await c.lower.trim(offset, length, { fua });
    else await c.lower.writeZeroes(offset, length, lowerOpts);
    if (!fua) c.lowerUnflushed = true;
    for (const page of full) {
      if (page.gen === gen) {
        page.durableGen = gen;
        c.dropPage(page);
      }
    }
    c.afterChange();
  } finally {
    c.locks.unlockAll(indexes);
  }
}
