// The SP's LUN router with mirror roles (fake host): what goes to the chassis's mirror driver,
// what stays on the SP's own path, what is refused, and what waits.
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
    mirrored: async (_l: number, op: IoOp) => {
      calls.push(`chassis:${op.op}`);
      if (failing) throw new CmiError('peer-gone', 'chassis gone');
      return {};
    },
    powerFailing: () => host.powerDown,
  };
  const r = new LunRouter(0, 1 << 20, 512, CAPS, false, host, 'owner');
  return { r, calls, host, fail: (v: boolean) => (failing = v) };
}

const errno = (p: Promise<unknown>) => p.then(() => 'ok', (e: { errno?: string }) => e.errno ?? 'error');

describe('LunRouter with mirror roles', () => {
  it('no image: the SP serves alone; primary: writes, trims, zeroes, flushes go to the chassis, reads stay', async () => {
    const { r, calls } = router();
    await r.write(0, Buffer.alloc(512));
    expect(calls).toEqual(['local:write']);
    r.setMirror({ role: 'primary', allowReads: false });
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
    r.setMirror({ role: 'secondary', allowReads: false });
    expect(await errno(r.write(0, Buffer.alloc(512)))).toBe('EPERM');
    expect(await errno(r.writeZeroes(0, 512))).toBe('EPERM');
    expect(await errno(r.read(0, 512))).toBe('EPERM');
    r.setMirror({ role: 'secondary', allowReads: true });
    expect(await errno(r.read(0, 512))).toBe('ok');
    expect(await errno(r.trim(0, 512))).toBe('EPERM');
    r.setMirror({ role: 'primary', allowReads: false, offline: true });
    expect(await errno(r.read(0, 512))).toBe('EPERM');
    expect(await errno(r.write(0, Buffer.alloc(512)))).toBe('EPERM');
    expect(await errno(r.flush())).toBe('ok');
    expect(calls).toEqual(['local:read', 'chassis:flush']);
  });

  it('roles not known yet: host I/O waits for them; a power failure swallows chassis errors', async () => {
    const { r, calls, host, fail } = router();
    r.setMirror('pending');
    const w = r.write(0, Buffer.alloc(512));
    await new Promise((res) => setTimeout(res, 30));
    expect(calls).toEqual([]);
    r.setMirror({ role: 'primary', allowReads: false });
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
});
