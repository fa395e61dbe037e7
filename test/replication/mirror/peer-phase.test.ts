import { describe, expect, it } from 'vitest';
import type { ImageState } from '../../../src/replication/state/index.js';
import {
  awaitsResync,
  inSync,
  linkUsable,
  PEER_PHASES,
  peerPhase,
  startsResync,
  takesHostWrites,
  takesHostWritesNow,
  type PeerFacts,
  type PeerImageFacts,
  type PeerLinkState,
  type PeerPhase,
} from '../../../src/replication/mirror/peer-phase.js';

const peer = (over: Partial<Omit<PeerFacts, 'dirty'>> & { dirty?: boolean } = {}): PeerFacts => {
  const dirty = over.dirty ?? false;
  return { link: 'connected', failed: false, resyncRunning: false, ...over, dirty: () => dirty };
};
const img = (state: ImageState, fractured = false): PeerImageFacts => ({ state, fractured });

describe('peerPhase: one case per phase', () => {
  const cases: Array<[string, PeerImageFacts, PeerFacts, PeerPhase]> = [
    ['link connecting', img('SYNCHRONIZED'), peer({ link: 'connecting', failed: true }), 'unreachable'],
    ['link down', img('SYNCHRONIZED'), peer({ link: 'down', failed: true }), 'unreachable'],
    ['link refused', img('CONSISTENT'), peer({ link: 'refused', failed: true }), 'unreachable'],
    ['link down, the link decides before failed', img('SYNCHRONIZED'), peer({ link: 'down' }), 'unreachable'],
    ['a remote write failed on a live link', img('SYNCHRONIZED'), peer({ failed: true }), 'failed'],
    ['failed wins over fractured', img('CONSISTENT', true), peer({ failed: true }), 'failed'],
    ['the record dropped the image', undefined, peer(), 'removed'],
    ['fractured', img('CONSISTENT', true), peer(), 'fractured'],
    ['fractured while a resync winds down', img('UNSYNCHRONIZED', true), peer({ resyncRunning: true }), 'fractured'],
    ['unsynchronized', img('UNSYNCHRONIZED'), peer({ dirty: true }), 'unsynchronized'],
    ['unsynchronized with a run still going', img('UNSYNCHRONIZED'), peer({ resyncRunning: true }), 'resync-ending'],
    ['resync announced, the secondary has not answered (it cuts its protection)', img('SYNCHRONIZING'), peer({ resyncRunning: true, resyncStarting: true, dirty: true }), 'resync-starting'],
    ['resync running', img('SYNCHRONIZING'), peer({ resyncRunning: true, dirty: true }), 'resyncing'],
    ['resync finishing (record caught up first)', img('CONSISTENT'), peer({ resyncRunning: true }), 'resyncing'],
    ['synchronizing, no run yet', img('SYNCHRONIZING'), peer({ dirty: true }), 'resync-pending'],
    ['consistent with fracture-log regions', img('CONSISTENT'), peer({ dirty: true }), 'dirty'],
    ['synchronized with fracture-log regions', img('SYNCHRONIZED'), peer({ dirty: true }), 'dirty'],
    ['consistent, empty log', img('CONSISTENT'), peer(), 'in-sync'],
    ['synchronized, empty log', img('SYNCHRONIZED'), peer(), 'in-sync'],
  ];
  for (const [what, i, p, phase] of cases) it(`${what} -> ${phase}`, () => expect(peerPhase(i, p)).toBe(phase));

  it('covers every phase', () => expect(new Set(cases.map((c) => c[3]))).toEqual(new Set(PEER_PHASES)));

  it('reads the fracture log only when nothing else decides', () => {
    let asked = 0;
    const counting = (over: Partial<PeerFacts>): PeerFacts => ({ ...peer(), ...over, dirty: () => (asked++, false) });
    peerPhase(img('SYNCHRONIZED'), counting({ link: 'down' }));
    peerPhase(img('SYNCHRONIZING'), counting({}));
    peerPhase(img('CONSISTENT', true), counting({}));
    expect(asked).toBe(0);
    peerPhase(img('CONSISTENT'), counting({}));
    expect(asked).toBe(1);
    expect(takesHostWritesNow(img('CONSISTENT'), counting({}))).toBe(true);
    expect(asked).toBe(1); // the per-write question never reads it
  });
});

describe('the predicates over the phase', () => {
  const table: Record<PeerPhase, { writes: boolean; link: boolean; starts: boolean; awaits: boolean; inSync: boolean }> = {
    unreachable: { writes: false, link: false, starts: false, awaits: false, inSync: false },
    failed: { writes: false, link: false, starts: false, awaits: false, inSync: false },
    removed: { writes: false, link: true, starts: false, awaits: false, inSync: false },
    fractured: { writes: false, link: true, starts: false, awaits: false, inSync: false },
    unsynchronized: { writes: false, link: true, starts: false, awaits: true, inSync: false },
    'resync-ending': { writes: false, link: true, starts: false, awaits: false, inSync: false },
    'resync-starting': { writes: false, link: true, starts: false, awaits: false, inSync: false },
    resyncing: { writes: true, link: true, starts: false, awaits: false, inSync: false },
    'resync-pending': { writes: true, link: true, starts: true, awaits: false, inSync: false },
    dirty: { writes: true, link: true, starts: false, awaits: true, inSync: false },
    'in-sync': { writes: true, link: true, starts: false, awaits: false, inSync: true },
  };
  for (const phase of PEER_PHASES)
    it(phase, () => {
      const want = table[phase];
      expect({ writes: takesHostWrites(phase), link: linkUsable(phase), starts: startsResync(phase), awaits: awaitsResync(phase), inSync: inSync(phase) }).toEqual(want);
    });
});

/**
 * The rules the driver used before the phase existed, each as its site wrote it (src/replication/mirror/node.ts
 * before the split). Over every combination of the facts (with the record's and the driver's own
 * invariants: a SYNCHRONIZING image is not fractured, a peer whose link is down is failed), the
 * predicates over the phase give the same answer.
 */
describe('the phase reproduces the rules of every site', () => {
  const LINKS: PeerLinkState[] = ['connecting', 'connected', 'down', 'refused'];
  const STATES: ImageState[] = ['UNSYNCHRONIZED', 'SYNCHRONIZING', 'CONSISTENT', 'SYNCHRONIZED'];
  const bools = [false, true];
  type Combo = { link: PeerLinkState; failed: boolean; resync: boolean; dirty: boolean; img: { state: ImageState; fractured: boolean } | undefined };
  const combos: Combo[] = [];
  for (const link of LINKS)
    for (const failed of bools)
      for (const resync of bools)
        for (const dirty of bools)
          for (const i of [undefined, ...STATES.flatMap((state) => bools.map((fractured) => ({ state, fractured })))]) {
            if (i?.state === 'SYNCHRONIZING' && i.fractured) continue; // record invariant
            combos.push({ link, failed, resync, dirty, img: i });
          }
  const phase = (c: Combo) => peerPhase(c.img, { link: c.link, failed: c.failed, resyncRunning: c.resync, dirty: () => c.dirty });

  it('sendable (the write path; the range test and the socket are apart)', () => {
    for (const c of combos) {
      const old = !(c.failed || c.link !== 'connected') && !(!c.img || c.img.fractured || c.img.state === 'UNSYNCHRONIZED');
      expect(takesHostWrites(phase(c)), JSON.stringify(c)).toBe(old);
      expect(takesHostWritesNow(c.img, { link: c.link, failed: c.failed, resyncRunning: c.resync, dirty: () => c.dirty }), JSON.stringify(c)).toBe(old);
    }
  });

  it('inSync (a group asks whether its members are in sync)', () => {
    for (const c of combos) {
      if (!c.img) continue; // the group iterates the record's images
      const old = c.link === 'connected' && !c.failed && !c.img.fractured && (c.img.state === 'CONSISTENT' || c.img.state === 'SYNCHRONIZED') && !c.resync && !c.dirty;
      expect(inSync(phase(c)), JSON.stringify(c)).toBe(old);
    }
  });

  it('afterChange starts a resync', () => {
    for (const c of combos) {
      if (!c.img) continue;
      const old = c.img.state === 'SYNCHRONIZING' && !c.resync && !c.failed && c.link === 'connected';
      expect(startsResync(phase(c)), JSON.stringify(c)).toBe(old);
    }
  });

  it('the periodic resync check', () => {
    for (const c of combos) {
      const skipped = !c.img || c.resync || c.failed || c.link !== 'connected' || c.img.fractured || c.img.state === 'SYNCHRONIZING';
      const old = !skipped && c.dirty;
      expect(awaitsResync(phase(c)) && c.dirty, JSON.stringify(c)).toBe(old);
    }
  });

  it('flush, resync after a failed local write, a group resync (link connected and not failed)', () => {
    for (const c of combos) expect(linkUsable(phase(c)), JSON.stringify(c)).toBe(c.link === 'connected' && !c.failed);
  });

  it('the quiesce check (record CONSISTENT and REACHABLE), given that a peer whose link is down is failed', () => {
    for (const c of combos) {
      if (!c.img || c.img.state !== 'CONSISTENT') continue;
      if (c.link !== 'connected' && !c.failed) continue; // the driver's invariant
      const old = !(c.img.fractured || c.failed || c.resync) && !c.dirty;
      expect(inSync(phase(c)), JSON.stringify(c)).toBe(old);
    }
  });

  it('synchronize, activate, verify and resolve ask for a link that is up', () => {
    for (const c of combos) expect(phase(c) === 'unreachable', JSON.stringify(c)).toBe(c.link !== 'connected');
  });
});
