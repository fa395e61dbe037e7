// The resync-protection table of a secondary image (src/replication/mirror/protection-state.ts):
// what each event does in each state, what is illegal, and the state an image without a
// protection file starts in.
import { describe, expect, it } from 'vitest';
import {
  canProtectionTransition,
  IllegalProtectionTransitionError,
  initialProtectionState,
  PROTECTION_EVENTS,
  PROTECTION_STATES,
  PROTECTION_TRANSITIONS,
  protectionTransition,
  type ProtectionEvent,
  type ProtectionState,
} from '../../../src/replication/mirror/protection-state.js';

describe('the resync-protection table', () => {
  const cases: Array<[ProtectionState, ProtectionEvent, ProtectionState, 'take' | 'release' | null]> = [
    ['consistent', 'resync', 'protected', 'take'],
    ['consistent', 'resync-bare', 'unprotected', null],
    ['unknown', 'resync', 'unprotected', null], // a first synchronization: nothing to keep
    ['protected', 'resync', 'protected', null], // a resync that starts again keeps the first snapshot
    ['protected', 'resync-bare', 'protected', null],
    ['protected', 'in-sync', 'consistent', 'release'],
    ['protected', 'lost', 'unprotected', null],
    ['protected', 'demoted', 'consistent', 'release'],
    ['protected', 'promoted', 'primary', null], // the promote decides: rolled back (drop) or forced (kept)
    ['unprotected', 'in-sync', 'consistent', null],
    ['primary', 'demoted', 'consistent', null],
    ['unknown', 'in-sync', 'consistent', null],
  ];
  for (const [from, ev, to, action] of cases) it(`${from} --${ev}--> ${to}${action ? ` (${action})` : ''}`, () => expect(protectionTransition(from, ev)).toEqual({ to, action }));

  it('only a consistent image is ever snapshotted, and only a protected one released', () => {
    for (const s of PROTECTION_STATES)
      for (const e of PROTECTION_EVENTS) {
        const r = PROTECTION_TRANSITIONS[s][e];
        if (!r) continue;
        if (r.action === 'take') expect([s, e]).toEqual(['consistent', 'resync']);
        if (r.action === 'release') expect(s).toBe('protected');
        expect(PROTECTION_STATES).toContain(r.to);
      }
  });

  it('anything absent is illegal', () => {
    expect(canProtectionTransition('consistent', 'lost')).toBe(false);
    expect(canProtectionTransition('primary', 'resync')).toBe(false);
    expect(() => protectionTransition('primary', 'in-sync')).toThrow(IllegalProtectionTransitionError);
    // every state can be promoted and demoted (roles change whatever the data)
    for (const s of PROTECTION_STATES) expect(canProtectionTransition(s, 'promoted') && canProtectionTransition(s, 'demoted'), s).toBe(true);
  });

  it('an image without a protection file starts from its record', () => {
    const img = (role: 'primary' | 'secondary', state: string | null, fractured = false, fractureReason: string | null = null) => ({ role, state, fractured, fractureReason });
    expect(initialProtectionState(img('primary', null))).toBe('primary');
    expect(initialProtectionState(img('secondary', 'SYNCHRONIZED'))).toBe('consistent');
    expect(initialProtectionState(img('secondary', 'CONSISTENT', true, 'link'))).toBe('consistent');
    expect(initialProtectionState(img('secondary', 'UNSYNCHRONIZED', true, 'promote'))).toBe('consistent'); // a former primary
    expect(initialProtectionState(img('secondary', 'SYNCHRONIZING'))).toBe('unknown');
    expect(initialProtectionState(img('secondary', 'UNSYNCHRONIZED'))).toBe('unknown');
  });
});
