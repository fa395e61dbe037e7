// How `sanbox group status` prints a group (src/cli/group-render.ts), from views made by hand:
// the backlog against the writelog chain, and what a refresh that does not progress waits for.
import { describe, it, expect } from 'vitest';
import { groupText } from '../../src/cli/group-render.js';
import type { GroupView } from '../../src/replication/group/index.js';
import { groupView, metrics } from '../support/fake-groups.js';

const MiB = 1024 * 1024;
const line = (text: string, key: string) => text.split('\n').find((l) => l.startsWith(`  ${key.padEnd(10)} `));

describe('group status: the backlog against the writelog', () => {
  it('extensions in use count in the size as they do in the percentage', () => {
    const v = groupView('g0', { metrics: metrics({ writelogBytes: 67.7 * MiB, pctwl: 72, entriesWaiting: 9 }) }) as GroupView & { writelog: unknown };
    v.record.writelog = { capacity: 64 * MiB, extensions: 4, extensionCapacity: 32 * MiB, extendAtPercent: 90 };
    v.writelog = { capacity: 96 * MiB, extensionsInUse: 1, extensionsFree: 3 };
    expect(line(groupText(v), 'backlog')).toBe('  backlog    9 entries, 67.7 MiB (72.0% of the writelog: 64 MiB + 1 extension of 32 MiB = 96 MiB), oldest 0.3 s');
    v.writelog = { capacity: 128 * MiB, extensionsInUse: 2, extensionsFree: 2 };
    expect(line(groupText(v), 'backlog')).toContain('(72.0% of the writelog: 64 MiB + 2 extensions of 32 MiB = 128 MiB)');
  });

  it('no extension in use: the main segment alone, as before', () => {
    const v = groupView('g0') as GroupView & { writelog: unknown };
    v.writelog = { capacity: 256 * MiB, extensionsInUse: 0, extensionsFree: 0 };
    expect(line(groupText(v), 'backlog')).toBe('  backlog    3 entries, 12 KiB (0.0% of the writelog 256 MiB), oldest 0.3 s');
    // a view without the live writelog (an older array): the configured size
    expect(line(groupText(groupView('g0')), 'backlog')).toBe('  backlog    3 entries, 12 KiB (0.0% of the writelog 256 MiB), oldest 0.3 s');
  });
});

describe('group status: what a refresh waits for', () => {
  const refreshing = (over: Partial<GroupView> = {}, m: Parameters<typeof metrics>[0] = {}) => {
    const v = groupView('g0', { metrics: metrics({ senderSleepMs: 0, ...m }), ...over });
    v.record.refresh = { running: true, bytesDone: 0, bytesTotal: 1024 * MiB } as NonNullable<GroupView['record']['refresh']>;
    return v;
  };

  it('a throttle holds the sender: its sleep and the throttle that set it', () => {
    const v = refreshing({ throttledBy: { throttle: 0, measure: 'netkbps', op: 'gt', value: 200 } } as Partial<GroupView>, { senderSleepMs: 215 });
    const t = groupText(v);
    expect(line(t, 'refresh')).toBe('  refresh    running: 0 B of 1 GiB (0%)');
    expect(line(t, 'waiting')).toBe('  waiting    sender sleeping 215 ms per transmission (throttle #0: netkbps > 200)');
  });

  it('a sleep whose throttle is not known any more still says it is a throttle', () => {
    expect(line(groupText(refreshing({}, { senderSleepMs: 40 })), 'waiting')).toBe('  waiting    sender sleeping 40 ms per transmission (set by a throttle)');
  });

  it('link down, refused, paused, the writelog full', () => {
    const down = refreshing({ senders: [{ array: 'bravo', state: 'down', ackedThrough: 97, lastError: 'connection refused' }] });
    expect(line(groupText(down), 'waiting')).toBe('  waiting    link down to bravo (connection refused)');
    const refused = refreshing({ senders: [{ array: 'bravo', state: 'refused', ackedThrough: 97, lastError: 'auth: bad secret' }] });
    expect(line(groupText(refused), 'waiting')).toBe('  waiting    bravo refused the sender (auth: bad secret)');
    const paused = refreshing({ senders: [{ array: 'bravo', state: 'paused', ackedThrough: 97 }] });
    paused.record.paused = true;
    expect(line(groupText(paused), 'waiting')).toBe('  waiting    the group is paused (sanbox group resume g0)');
    const full = refreshing({}, { pctwl: 63.4, senderSleepMs: 215 });
    expect(line(groupText(full), 'waiting')).toBe('  waiting    sender sleeping 215 ms per transmission (set by a throttle); the writelog is 63.4% full: the refresh adds to it only below 50%');
  });

  it('nothing holds it: no waiting row; no refresh: no waiting row', () => {
    expect(line(groupText(refreshing()), 'waiting')).toBeUndefined();
    expect(line(groupText(groupView('g0', { metrics: metrics({ senderSleepMs: 215 }) })), 'waiting')).toBeUndefined();
  });
});
