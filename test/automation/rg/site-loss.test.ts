import { describe, expect, it } from 'vitest';
import { siteLossDecision } from '../../../src/automation/rg/site-loss.js';

const base = { peerSilentMs: 9000, arraysSilentMs: 9000, declareLostAfterMs: 5000, alreadyDeclared: false };

describe('site loss decision', () => {
  it.each([
    [{}, true, 'silent'],
    [{ alreadyDeclared: true }, false, 'already-declared'],
    [{ peerSilentMs: 4999 }, false, 'peer-answers'],
    [{ arraysSilentMs: 1000 }, false, 'arrays-answer'],
    [{ peerSilentMs: 5000, arraysSilentMs: 5000 }, true, 'silent'],
  ])('%o -> declare %s (%s)', (over, declare, reason) => {
    const d = siteLossDecision({ ...base, ...over });
    expect(d).toMatchObject({ declare, reason });
    expect(d.detail.length).toBeGreaterThan(0);
  });
});
