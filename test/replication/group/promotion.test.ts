// What `group promote` says of the copy it makes primary, in a rolling disaster: the link is cut,
// the primary keeps acknowledging writes into its writelog, then dies; the secondary's report (view
// and group.promoted event) names the last record it applied and how long before the promote.
import { describe, it, expect, afterEach } from 'vitest';
import { promotionReport } from '../../../src/replication/group/promotion.js';
import { randomBytes } from 'node:crypto';
import { groupLab, until, type Lab } from '../../support/mirror-lab.js';

let lab: Lab | null = null;
afterEach(async () => {
  await lab?.close();
  lab = null;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('group promote reports the age of the copy', () => {
  it('after a rolling disaster: the last applied record and the seconds since, in the view, a later get and the event', async () => {
    lab = await groupLab();
    const d0 = lab.hostDevice('alpha', 'disk0');
    for (let i = 0; i < 20; i++) await d0.write(i * 4096, randomBytes(4096));
    await until(() => lab!.node('alpha').groups.get('g0').metrics!.entriesWaiting === 0, 10_000, 'drained');
    const applied = lab.node('bravo').groups.get('g0').receiver!.nextExpected - 1;
    expect(applied).toBe(20);
    lab.links['alpha-bravo']!.cutLink('both', { reset: true });
    // Acknowledged by the primary, never replicated: what the promoted copy lacks.
    for (let i = 0; i < 10; i++) await d0.write((100 + i) * 4096, randomBytes(4096));
    expect(lab.node('alpha').groups.get('g0').metrics!.entriesWaiting).toBe(10);
    await lab.stop('alpha');
    await sleep(300);
    const bravo = lab.node('bravo').groups;
    const v = await bravo.promote('g0', { force: true });
    const p = v.promotion!;
    expect(p).toMatchObject({ forced: true, appliedThrough: applied, consistent: true, inconsistentMembers: [] });
    expect(p.secondsSinceLastApply!).toBeGreaterThanOrEqual(0.3);
    expect(Date.parse(p.at) - Date.parse(p.lastAppliedAt!)).toBe(Math.round(p.secondsSinceLastApply! * 1000));
    // the last batch's request came in before its last record was applied, and nothing since
    expect(Date.parse(p.lastContactAt!)).toBeLessThanOrEqual(Date.parse(p.lastAppliedAt!));
    expect(Date.parse(p.at) - Date.parse(p.lastContactAt!)).toBeGreaterThanOrEqual(300);
    expect(bravo.get('g0').promotion).toEqual(p);
    const [ev, ...more] = lab.events('bravo', 'group.promoted');
    expect(more).toEqual([]);
    const { at: _at, ...facts } = p;
    expect(ev).toMatchObject({ name: 'g0', ...facts });
  });

  it('nothing applied since the receiver started: appliedThrough 0, the times and the age null (and no promotion before)', async () => {
    lab = await groupLab();
    expect(lab.node('bravo').groups.get('g0').promotion).toBeNull();
    expect(lab.node('alpha').groups.get('g0').promotion).toBeNull();
    await lab.stop('alpha');
    const v = await lab.node('bravo').groups.promote('g0', { force: true });
    expect(v.promotion).toMatchObject({ forced: true, appliedThrough: 0, lastAppliedAt: null, secondsSinceLastApply: null });
    // the sender said hello when the group started journaling
    expect(typeof v.promotion!.lastContactAt).toBe('string');
    expect(lab.events('bravo', 'group.promoted')[0]).toMatchObject({ appliedThrough: 0, lastAppliedAt: null, secondsSinceLastApply: null, forced: true });
  });
});

describe('promotionReport', () => {
  it('calls a copy consistent only when every member image was SYNCHRONIZED or CONSISTENT', () => {
    const obs = { appliedThrough: 7, lastAppliedAt: 1000, lastContactAt: 1000 };
    const ok = promotionReport(obs, true, [{ name: 'm1', state: 'CONSISTENT' }, { name: 'm2', state: 'SYNCHRONIZED' }], 2000);
    expect(ok).toMatchObject({ consistent: true, inconsistentMembers: [], secondsSinceLastApply: 1 });
    const mixed = promotionReport(obs, true, [{ name: 'm1', state: 'SYNCHRONIZING' }, { name: 'm2', state: 'CONSISTENT' }, { name: 'm3', state: null }], 2000);
    expect(mixed.consistent).toBe(false);
    expect(mixed.inconsistentMembers).toEqual([{ name: 'm1', state: 'SYNCHRONIZING' }, { name: 'm3', state: null }]);
  });
});
