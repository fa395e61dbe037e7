// The one host-admission rule (src/block/admission.ts), driven directly over every role and op.
import { describe, it, expect } from 'vitest';
import { admitHostIo, BlockError, type HostRole, type IoOpKind } from '../../src/block/index.js';

const OPS: IoOpKind[] = ['read', 'write', 'flush', 'trim', 'zero', 'status', 'cache'];
const ROLES: Array<[string, HostRole | null]> = [
  ['none', null],
  ['primary', { role: 'primary', allowReads: false }],
  ['primary offline', { role: 'primary', allowReads: false, offline: true }],
  ['secondary', { role: 'secondary', allowReads: false }],
  ['secondary readable', { role: 'secondary', allowReads: true }],
  ['secondary readable offline', { role: 'secondary', allowReads: true, offline: true }],
];
// role -> op -> decision ('EPERM' = refused)
const EXPECTED: Record<string, Record<IoOpKind, string>> = {
  none: { read: 'direct', write: 'direct', flush: 'direct', trim: 'direct', zero: 'direct', status: 'direct', cache: 'direct' },
  primary: { read: 'direct', write: 'replicate', flush: 'replicate', trim: 'replicate', zero: 'replicate', status: 'direct', cache: 'direct' },
  'primary offline': { read: 'EPERM', write: 'EPERM', flush: 'replicate', trim: 'EPERM', zero: 'EPERM', status: 'EPERM', cache: 'EPERM' },
  secondary: { read: 'EPERM', write: 'EPERM', flush: 'direct', trim: 'EPERM', zero: 'EPERM', status: 'EPERM', cache: 'EPERM' },
  'secondary readable': { read: 'direct', write: 'EPERM', flush: 'direct', trim: 'EPERM', zero: 'EPERM', status: 'direct', cache: 'direct' },
  'secondary readable offline': { read: 'EPERM', write: 'EPERM', flush: 'direct', trim: 'EPERM', zero: 'EPERM', status: 'EPERM', cache: 'EPERM' },
};

function decide(role: HostRole | null, op: IoOpKind): string {
  try {
    return admitHostIo(role, op, 7);
  } catch (e) {
    expect(e).toBeInstanceOf(BlockError);
    expect((e as BlockError).message).toMatch(/LUN 7/);
    return (e as BlockError).errno;
  }
}

describe('admitHostIo', () => {
  for (const [name, role] of ROLES)
    it(`${name}: ${OPS.map((op) => `${op} ${EXPECTED[name]![op]}`).join(', ')}`, () => {
      for (const op of OPS) expect(decide(role, op), `${name} ${op}`).toBe(EXPECTED[name]![op]);
    });

  it('says why it refused', () => {
    expect(() => admitHostIo({ role: 'secondary', allowReads: false }, 'read', 'disk0')).toThrow(/secondary mirror image: host reads refused \(the mirror does not allow secondary reads\)/);
    expect(() => admitHostIo({ role: 'secondary', allowReads: true }, 'write', 'disk0')).toThrow(/secondary mirror image: host writes refused/);
    expect(() => admitHostIo({ role: 'primary', allowReads: false, offline: true }, 'write', 'disk0')).toThrow(/offline/);
  });
});
