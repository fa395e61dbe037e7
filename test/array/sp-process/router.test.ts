// The SP's LUN router with the chassis's routes (fake host): what goes to the chassis (mirror
// driver, snapshots, clones), what stays on the SP's own path, what is refused, what waits, and
// that a route change drains the direct requests admitted before it.
import { describe, expect, it } from 'vitest';
import { LunRouter } from '../../../src/array/sp-process/index.js';
import type { IoOp } from '../../../src/block/index.js';
import { CmiError } from '../../../src/array/cmi/index.js';

const CAPS = { trim: true, writeZeroes: true, fastZero: true, sparseStatus: true, coherentAcrossHandles: false };

function router() {
  const calls: string[] = [];
  let failing = false;
  const host = {
    powerDown: false,
    execLocal: async (_l: number, op: IoOp) => {
      calls.push(`local:${op.op}`);
      return op.op === 'read' ? { data: Buffer.alloc(op.length) } : {};
    },
    forward: async (_l: number, op: IoOp) => {
      calls.push(`forward:${op.op}`);
      return {};
    },
    toChassis: async (_l: number, op: IoOp) => {
      calls.push(`chassis:${op.op}`);
      if (failing) throw new CmiError('peer-gone', 'chassis gone');
      return op.op === 'read' ? { data: Buffer.alloc(op.length) } : {};
    },
    powerFailing: () => host.powerDown,
  };
  const r = new LunRouter(0, 1 << 20, 512, CAPS, false, host, 'owner');
  return { r, calls, host, fail: (v: boolean) => (failing = v) };
}

const errno = (p: Promise<unknown>) => p.then(() => 'ok', (e: { errno?: string }) => e.errno ?? 'error');

describe('LunRouter with the chassis\'s routes', () => {
  it('no image: the SP serves alone; primary: writes, trims, zeroes, flushes go to the chassis, reads stay', async () => {
    const { r, calls } = router();
    await r.write(0, Buffer.alloc(512));
    expect(calls).toEqual(['local:write']);
    r.setRoute({ mirror: { role: 'primary', allowReads: false } });
    await r.write(0, Buffer.alloc(512));
    await r.trim(0, 512);
    await r.writeZeroes(0, 512);
    await r.flush();
    await r.read(0, 512);
    await r.blockStatus(0, 512);
    expect(calls.slice(1)).toEqual(['chassis:write', 'chassis:trim', 'chassis:zero', 'chassis:flush', 'local:read', 'local:status']);
  });

  it('secondary: writes refused (EPERM), reads refused unless allowed; offline: everything but flush refused', async () => {
    const { r, calls } = router();
    r.setRoute({ mirror: { role: 'secondary', allowReads: false } });
    expect(await errno(r.write(0, Buffer.alloc(512)))).toBe('EPERM');
    expect(await errno(r.writeZeroes(0, 512))).toBe('EPERM');
    expect(await errno(r.read(0, 512))).toBe('EPERM');
    r.setRoute({ mirror: { role: 'secondary', allowReads: true } });
    expect(await errno(r.read(0, 512))).toBe('ok');
    expect(await errno(r.trim(0, 512))).toBe('EPERM');
    r.setRoute({ mirror: { role: 'primary', allowReads: false, offline: true } });
    expect(await errno(r.read(0, 512))).toBe('EPERM');
    expect(await errno(r.write(0, Buffer.alloc(512)))).toBe('EPERM');
    expect(await errno(r.flush())).toBe('ok');
    expect(calls).toEqual(['local:read', 'chassis:flush']);
  });

  it('roles not known yet: host I/O waits for them; a power failure swallows chassis errors', async () => {
    const { r, calls, host, fail } = router();
    r.setRoute('pending');
    const w = r.write(0, Buffer.alloc(512));
    await new Promise((res) => setTimeout(res, 30));
    expect(calls).toEqual([]);
    r.setRoute({ mirror: { role: 'primary', allowReads: false } });
    await w;
    expect(calls).toEqual(['chassis:write']);
    // the chassis is gone and the SP is stopping: no answer (here: until the state changes)
    fail(true);
    host.powerDown = true;
    let settled = false;
    const w2 = r.write(0, Buffer.alloc(512)).finally(() => (settled = true));
    await new Promise((res) => setTimeout(res, 50));
    expect(settled).toBe(false);
    // power back before the dump ended: it runs again and completes
    fail(false);
    host.powerDown = false;
    r.setState('owner');
    await w2;
    expect(calls.at(-1)).toBe('chassis:write');
  });

  it('a LUN with snapshots sends its changes to the chassis; a clone copying sends all but flush; a rolled-back LUN is offline', async () => {
    const { r, calls } = router();
    r.setRoute({ through: 'writes' });
    await r.write(0, Buffer.alloc(512));
    await r.trim(0, 512);
    await r.writeZeroes(0, 512);
    await r.read(0, 512);
    await r.flush();
    expect(calls).toEqual(['chassis:write', 'chassis:trim', 'chassis:zero', 'local:read', 'local:flush']);
    calls.length = 0;
    r.setRoute({ through: 'all' });
    await r.read(0, 512);
    await r.blockStatus(0, 512);
    await r.write(0, Buffer.alloc(512));
    await r.flush();
    expect(calls).toEqual(['chassis:read', 'chassis:status', 'chassis:write', 'local:flush']);
    calls.length = 0;
    r.setRoute({ through: 'writes', offline: 'it is being rolled back to a snapshot' });
    expect(await errno(r.read(0, 512))).toBe('EPERM');
    expect(await errno(r.write(0, Buffer.alloc(512)))).toBe('EPERM');
    expect(await errno(r.flush())).toBe('ok');
    expect(calls).toEqual(['local:flush']);
  });

  it('a route change drains: directDrained waits for the direct requests admitted before it, not for later ones', async () => {
    const calls: string[] = [];
    const gates: Array<() => void> = [];
    const host = {
      execLocal: async (_l: number, op: IoOp) => {
        calls.push(`local:${op.op}`);
        await new Promise<void>((res) => gates.push(res));
        return op.op === 'read' ? { data: Buffer.alloc(op.length) } : {};
      },
      forward: async () => ({}),
      toChassis: async (_l: number, op: IoOp) => {
        calls.push(`chassis:${op.op}`);
        return {};
      },
    };
    const r = new LunRouter(0, 1 << 20, 512, CAPS, false, host, 'owner');
    r.setRoute(null);
    const before = r.write(0, Buffer.alloc(512)); // direct, held in the cache by the gate
    await new Promise((res) => setImmediate(res));
    r.setRoute({ through: 'writes' });
    let drained = false;
    const drain = r.directDrained().then(() => (drained = true));
    await r.write(512, Buffer.alloc(512)); // after the change: to the chassis, not waited for
    const read = r.read(0, 512); // a direct read admitted after the change
    await new Promise((res) => setTimeout(res, 20));
    expect(calls).toEqual(['local:write', 'chassis:write', 'local:read']);
    expect(drained, 'drained while a write admitted before the change still runs').toBe(false);
    gates.shift()!(); // the old write ends
    await before;
    await drain;
    expect(drained).toBe(true);
    gates.shift()!();
    await read;
    await r.directDrained(); // nothing admitted before: at once
  });

  it('a change whose regions the chassis said are saved for the newest snapshot goes direct; a new route forgets them', async () => {
    const calls: string[] = [];
    let savedSeq: number | undefined = 7;
    const host = {
      execLocal: async (_l: number, op: IoOp) => {
        calls.push(`local:${op.op}@${op.offset}`);
        return {};
      },
      forward: async () => ({}),
      toChassis: async (_l: number, op: IoOp) => {
        calls.push(`chassis:${op.op}@${op.offset}`);
        return savedSeq === undefined ? {} : { savedSeq };
      },
    };
    const r = new LunRouter(0, 1 << 20, 512, CAPS, false, host, 'owner');
    const R = 65536;
    r.setRoute({ through: 'writes', saved: { seq: 7, regionSize: R } });
    await r.write(0, Buffer.alloc(512)); // region 0: the chassis copies, then says it is saved
    await r.write(512, Buffer.alloc(512)); // region 0 again: direct
    await r.write(R - 512, Buffer.alloc(1024)); // regions 0 and 1: region 1 unknown, to the chassis
    await r.trim(R, 512); // region 1 is known now: direct
    expect(calls).toEqual(['chassis:write@0', 'local:write@512', `chassis:write@${R - 512}`, `local:trim@${R}`]);
    calls.length = 0;
    // An answer about another snapshot teaches nothing.
    savedSeq = 6;
    await r.write(2 * R, Buffer.alloc(512));
    await r.write(2 * R, Buffer.alloc(512));
    expect(calls).toEqual([`chassis:write@${2 * R}`, `chassis:write@${2 * R}`]);
    calls.length = 0;
    // A cut: the route without `saved` (then a newer seq) forgets every region.
    r.setRoute({ through: 'writes' });
    await r.write(0, Buffer.alloc(512));
    r.setRoute({ through: 'writes', saved: { seq: 8, regionSize: R } });
    await r.write(0, Buffer.alloc(512));
    expect(calls).toEqual(['chassis:write@0', 'chassis:write@0']);
  });
});
