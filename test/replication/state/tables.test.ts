import { describe, expect, it } from 'vitest';
import {
  ACTIVATION_POLICIES,
  IMAGE_EVENTS,
  IMAGE_STATES,
  IMAGE_TRANSITIONS,
  IllegalImageTransitionError,
  IllegalMirrorTransitionError,
  MIRROR_EVENTS,
  MIRROR_STATES,
  MIRROR_TRANSITIONS,
  canImageTransition,
  canMirrorTransition,
  imageTransition,
  mirrorTransition,
  promotable,
  type ImageEvent,
  type ImageState,
  type MirrorEvent,
  type MirrorState,
} from '../../../src/replication/state/index.js';

// The expected tables, written out from the source document (Figures 4 and 5, [0054]-[0071]).
const MIRROR_EXPECTED: Record<string, MirrorState> = {
  'automatic INACTIVE activate': 'ACTIVE',
  'automatic INACTIVE activate-unmet': 'ATTENTION',
  'automatic ACTIVE requirements-lost': 'ATTENTION',
  'automatic ACTIVE deactivate': 'INACTIVE',
  'automatic ATTENTION requirements-met': 'ACTIVE',
  'automatic ATTENTION deactivate': 'INACTIVE',
  'manual INACTIVE activate': 'ACTIVE',
  'manual INACTIVE activate-unmet': 'ATTENTION',
  'manual ACTIVE requirements-lost': 'ATTENTION',
  'manual ACTIVE deactivate': 'INACTIVE',
  'manual ATTENTION requirements-met': 'INACTIVE',
  'manual ATTENTION deactivate': 'INACTIVE',
};

const IMAGE_EXPECTED: Record<string, ImageState> = {
  'UNSYNCHRONIZED sync-start ACTIVE': 'SYNCHRONIZING',
  'UNSYNCHRONIZED mark-synchronized ACTIVE': 'SYNCHRONIZED',
  'SYNCHRONIZED primary-write ACTIVE': 'CONSISTENT',
  'CONSISTENT quiesced ACTIVE': 'SYNCHRONIZED',
  'CONSISTENT force-sync INACTIVE': 'SYNCHRONIZING',
  'CONSISTENT updates-lost ACTIVE': 'SYNCHRONIZING',
  'CONSISTENT history-lost ACTIVE': 'UNSYNCHRONIZED',
  ...Object.fromEntries(MIRROR_STATES.flatMap((m) => [[`SYNCHRONIZING sync-failed ${m}`, 'UNSYNCHRONIZED'], [`SYNCHRONIZING sync-done ${m}`, 'CONSISTENT']])),
};

describe('mirror state table', () => {
  for (const policy of ACTIVATION_POLICIES)
    for (const state of MIRROR_STATES)
      for (const event of MIRROR_EVENTS) {
        const key = `${policy} ${state} ${event}`;
        const want = MIRROR_EXPECTED[key];
        it(`${key} -> ${want ?? 'illegal'}`, () => {
          if (want) {
            expect(mirrorTransition(state, event as MirrorEvent, policy)).toBe(want);
            expect(canMirrorTransition(state, event as MirrorEvent, policy)).toBe(true);
          } else {
            expect(() => mirrorTransition(state, event as MirrorEvent, policy)).toThrow(IllegalMirrorTransitionError);
            expect(canMirrorTransition(state, event as MirrorEvent, policy)).toBe(false);
          }
        });
      }
  it('has no rows beyond the expected ones', () => {
    const n = ACTIVATION_POLICIES.reduce((s, p) => s + MIRROR_STATES.reduce((t, st) => t + Object.keys(MIRROR_TRANSITIONS[p][st]).length, 0), 0);
    expect(n).toBe(Object.keys(MIRROR_EXPECTED).length);
  });
});

describe('secondary image state table', () => {
  for (const state of IMAGE_STATES)
    for (const event of IMAGE_EVENTS)
      for (const m of MIRROR_STATES) {
        const key = `${state} ${event} ${m}`;
        const want = IMAGE_EXPECTED[key];
        it(`${key} -> ${want ?? 'illegal'}`, () => {
          if (want) {
            expect(imageTransition(state, event as ImageEvent, m)).toBe(want);
            expect(canImageTransition(state, event as ImageEvent, m)).toBe(true);
          } else {
            expect(() => imageTransition(state, event as ImageEvent, m)).toThrow(IllegalImageTransitionError);
            expect(canImageTransition(state, event as ImageEvent, m)).toBe(false);
          }
        });
      }
  it('has no rows beyond the expected ones', () => {
    const n = IMAGE_STATES.reduce((s, st) => s + Object.values(IMAGE_TRANSITIONS[st]).reduce((t, r) => t + r!.mirror.length, 0), 0);
    expect(n).toBe(Object.keys(IMAGE_EXPECTED).length);
  });
  it('promotion needs CONSISTENT or SYNCHRONIZED', () => {
    expect(IMAGE_STATES.filter(promotable)).toEqual(['CONSISTENT', 'SYNCHRONIZED']);
  });
});
