/**
 * A plain resync's copy of marked regions to one secondary (the checksum path is
 * ./resync-csum.ts): data runs as writes through the sync rate (and, with the adaptive controller,
 * its window), holes and zero runs as zero requests without payload. Chunks of scattered dirty
 * regions go together as one write of several extents when the secondary takes those.
 */
import type { Entry } from './entry.js';
import type { CopyChunk, ResyncRun, SecondaryPeer } from './primary.js';
import type { ResyncGate } from './resync-gate.js';

/** What a copy needs besides the run: the request timeout, and whether the run was stopped. */
export interface CopyContext {
  e: Entry;
  p: SecondaryPeer;
  run: ResyncRun;
  stopped: () => boolean;
  timeoutMs: number;
}

/**
 * Copies one chunk: data runs as writes (throttled), holes and zero runs as zero requests
 * (no payload, not throttled: they do not load the link). False when stopped while throttled.
 */
export async function copyChunk(x: CopyContext, c: CopyChunk): Promise<boolean> {
  const { e, p, run, stopped, timeoutMs } = x;
  const client = p.client!;
  const dev = e.lun.device;
  for (const { off, len, hole, data } of await runsOf(x, c)) {
    if (!data) {
      await zero(x, off, len, hole);
    } else if (run.gate) {
      const buf = run.buffers.take(len);
      // every piece settled (sendPieces waits for all): back to the pool; a throw keeps it out
      const sent = await sendPieces(x, run.gate, off, await dev.read(off, len, buf.subarray(0, len)));
      run.buffers.give(buf);
      if (!sent) return false;
    } else {
      if (!(await p.limiter!.take(len, stopped))) return false;
      const buf = run.buffers.take(len);
      const data = await dev.read(off, len, buf.subarray(0, len));
      await client.request('write', { mirrorId: e.id, imageId: p.imageId, offset: off, flags: { resync: true }, epoch: e.db.epoch }, data, { timeoutMs });
      run.buffers.give(buf); // answered: no longer referenced
      run.bytesCopied += len;
      run.writesSent++;
    }
  }
  return true;
}

/** One run of a chunk by block status: data to send, or a hole or zero run to zero. */
interface ChunkRun {
  off: number;
  len: number;
  hole: boolean;
  data: boolean;
}

/** A chunk's runs by block status, clipped to it. */
async function runsOf(x: CopyContext, c: CopyChunk): Promise<ChunkRun[]> {
  const out: ChunkRun[] = [];
  let off = c.offset;
  const end = c.offset + c.length;
  for (const ext of await x.e.lun.device.blockStatus(c.offset, c.length)) {
    if (off >= end) break;
    const len = Math.min(ext.length, end - off);
    out.push({ off, len, hole: ext.hole === true, data: !ext.hole && !ext.zero });
    off += len;
  }
  if (off < end) throw new Error(`block status of ${c.offset}+${c.length} covered only up to ${off}`);
  return out;
}

/**
 * Copies chunks of scattered regions (at most a chunk buffer's bytes in all) as one write of
 * their data extents, side by side in one buffer: one request, one frame and one reply for what
 * would take one each (a 10%-dirty LUN is mostly single 64 KiB regions). Holes and zero runs go
 * as zero requests. The caller checked that the secondary takes scattered writes.
 */
export async function copyScattered(x: CopyContext, batch: CopyChunk[]): Promise<boolean> {
  const { e, p, run, stopped, timeoutMs } = x;
  const dev = e.lun.device;
  const extents: Array<[number, number]> = [];
  let bytes = 0;
  for (const c of [...batch].sort((a, b) => a.offset - b.offset)) {
    // the extents go in increasing order (the cursor may have wrapped within the batch)
    for (const { off, len, hole, data } of await runsOf(x, c)) {
      if (!data) {
        await zero(x, off, len, hole);
        continue;
      }
      const last = extents.at(-1);
      if (last && last[0] + last[1] === off) last[1] += len;
      else extents.push([off, len]);
      bytes += len;
    }
  }
  if (bytes === 0) return true;
  if (!(await p.limiter!.take(bytes, stopped))) return false;
  const buf = run.buffers.take(bytes);
  let at = 0;
  for (const [o, l] of extents) at += (await dev.read(o, l, buf.subarray(at, at + l))).length;
  const data = buf.subarray(0, bytes);
  const write = async (): Promise<void> => {
    await p.client!.request('write', { mirrorId: e.id, imageId: p.imageId, offset: extents[0]![0], flags: { resync: true }, epoch: e.db.epoch, extents }, data, { timeoutMs });
    run.bytesCopied += bytes;
    run.writesSent++;
  };
  const sent = run.gate ? await run.gate.send(bytes, stopped, write) : (await write(), true);
  run.buffers.give(buf); // answered (or never sent): no longer referenced; a throw keeps it out
  return sent;
}

function zero(x: CopyContext, offset: number, length: number, trim: boolean): Promise<void> {
  const { e, p, run, timeoutMs } = x;
  return p
    .client!.request('zero', { mirrorId: e.id, imageId: p.imageId, offset, length, trim, epoch: e.db.epoch }, undefined, { timeoutMs })
    .then(() => void (run.bytesZeroed += length));
}

/**
 * The adaptive controller's copy of one data run: pieces of the gate's size, each through the
 * sync rate and then the window, all of them on the wire as the window allows.
 */
async function sendPieces(x: CopyContext, gate: ResyncGate, offset: number, data: Buffer): Promise<boolean> {
  const { e, p, run, stopped, timeoutMs } = x;
  const client = p.client!;
  const sends: Promise<boolean>[] = [];
  let failed = false;
  let at = 0;
  while (at < data.length && !stopped() && !failed) {
    const n = Math.min(gate.pieceBytes(), data.length - at);
    const piece = data.subarray(at, at + n);
    const pieceOffset = offset + at;
    if (!(await p.limiter!.take(n, stopped))) break;
    at += n;
    let admitted!: () => void;
    const inWindow = new Promise<void>((r) => (admitted = r));
    const send = gate.send(n, stopped, async () => {
      admitted();
      await client.request('write', { mirrorId: e.id, imageId: p.imageId, offset: pieceOffset, flags: { resync: true }, epoch: e.db.epoch }, piece, { timeoutMs });
      run.bytesCopied += n;
      run.writesSent++;
    });
    sends.push(send);
    const settled = send.then(
      () => undefined,
      () => void (failed = true), // thrown by Promise.all below, after every piece settled
    );
    await Promise.race([inWindow, settled]); // the next piece once this one is on the wire: pieces go in order
  }
  const settled = await Promise.allSettled(sends);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  return at === data.length && settled.every((r) => r.status === 'fulfilled' && r.value);
}
