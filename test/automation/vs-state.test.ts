// Volume-set states (issue 14): every row of src/automation/vs-table.ts driven through the pure
// volumeSetState from the views of both arrays, a sample of combinations that must be Unknown (or
// a forced swap), the wait verdicts and the state names.
import { describe, expect, it } from 'vitest';
import { VS_TABLE, parseVsState, volumeSetState, type Answer, type Condition, type GroupViews, type VsReading, type VsRow } from '../../src/automation/vs-state.js';
import { waitVerdict } from '../../src/automation/vs-wait.js';
import type { GroupView } from '../../src/replication/group/control.js';
import { DEFAULT_GROUP_ATTRIBUTES, type GroupMode, type GroupRecord } from '../../src/replication/group/types.js';
import type { ImageView, MirrorView } from '../../src/replication/mirror/types.js';
import { DEFAULT_ATTRIBUTES, DEFAULT_REGION_SIZE, MIRROR_DB_FORMAT, MIRROR_DB_VERSION, type MirrorDbRecord } from '../../src/replication/state/db.js';

const SITES: Record<string, string> = { alpha: 'east', bravo: 'west' };
const HOME = 'east';
const other = (a: string): string => (a === 'alpha' ? 'bravo' : 'alpha');

function img(array: string, over: Partial<ImageView> = {}): ImageView {
  return { imageId: `${array}:0`, array, lun: 0, size: 1 << 20, role: 'secondary', state: 'SYNCHRONIZED', epoch: 0, reachability: 'REACHABLE', fractured: false, fractureReason: null, recoveryPolicy: 'auto', syncRate: null, syncProgress: null, link: 'connected', fractureLog: null, resync: null, recordGeneration: 1, ...over };
}

interface MirrorOpts {
  primary?: string;
  sec?: Partial<ImageView> | null;
  state?: MirrorDbRecord['state'];
  epoch?: number;
  splitBrain?: boolean;
  name?: string;
}

/** A mirror's record with its primary on `primary`, and the view of it `on` an array (`role`: that array's). */
function mirrorView(on: string, o: MirrorOpts = {}, role?: 'primary' | 'secondary'): MirrorView {
  const p = o.primary ?? 'alpha';
  const images = [img(p, { role: 'primary', state: null, epoch: o.epoch ?? 1, link: 'local' }), ...(o.sec === null ? [] : [img(other(p), o.sec)])];
  const record: MirrorDbRecord = { format: MIRROR_DB_FORMAT, version: MIRROR_DB_VERSION, ...DEFAULT_ATTRIBUTES, name: o.name ?? 'm0', mirrorId: `${o.name ?? 'm0'}-id`, generation: 1, state: o.state ?? 'ACTIVE', epoch: o.epoch ?? 1, regionSize: DEFAULT_REGION_SIZE, images };
  const r = role ?? (on === p ? 'primary' : 'secondary');
  return { record, local: { imageId: `${on}:0`, role: r, lun: 0, lunName: 'disk0' }, images, writeIntentLog: null, splitBrain: o.splitBrain ?? false, protection: { enabled: true, state: 'primary', fallback: null } };
}

const answer = <V>(array: string, view: V): Answer<V> => ({ array, site: SITES[array]!, view });
const down = <V>(array: string): Answer<V> => ({ array, site: SITES[array]!, error: 'unreachable', message: 'connection refused' });
const missing = <V>(array: string): Answer<V> => ({ array, site: SITES[array]!, error: 'not-found', message: 'no such mirror' });

function mirrorState(o: MirrorOpts = {}): VsReading {
  return volumeSetState({ kind: 'mirror', name: 'm0', homeSite: HOME, answers: ['alpha', 'bravo'].map((a) => answer(a, mirrorView(a, o))) });
}

interface GroupOpts {
  primary?: string;
  mode?: GroupMode;
  record?: Partial<GroupRecord>;
  senders?: GroupView['senders'];
  incoherent?: string | null;
  member?: MirrorOpts;
}

function groupViews(on: string, o: GroupOpts = {}): GroupViews {
  const p = o.primary ?? 'alpha';
  const record: GroupRecord = { format: 'sanbox.group', version: 1, ...DEFAULT_GROUP_ATTRIBUTES, mode: o.mode ?? 'asynchronous', groupId: 'g0-id', name: 'g0', members: ['m1-id'], epoch: 1, generation: 1, paused: false, bypass: { on: false, reason: null, since: null }, refresh: null, ...o.record };
  const isPrimary = on === p;
  const group: GroupView = {
    record,
    role: isPrimary ? 'primary' : 'secondary',
    members: [{ mirrorId: 'm1-id', name: 'm1', lun: 1, secondaries: [other(p)] }],
    senders: isPrimary ? (o.senders ?? [{ array: other(p), state: 'running', ackedThrough: 7 }]) : [],
    receiver: isPrimary ? null : { nextExpected: 8, applied: 7, batches: 3 },
    metrics: null,
    incoherent: o.incoherent ?? null,
  };
  return { group, members: isPrimary ? [mirrorView(on, { primary: p, name: 'm1', ...o.member })] : [] };
}

function groupState(o: GroupOpts = {}): VsReading {
  return volumeSetState({ kind: 'group', name: 'g0', homeSite: HOME, answers: ['alpha', 'bravo'].map((a) => answer(a, groupViews(a, o))) });
}

const fractured = (reason: 'link' | 'admin' | 'promote'): Partial<ImageView> => ({ state: reason === 'promote' ? 'UNSYNCHRONIZED' : 'CONSISTENT', fractured: true, fractureReason: reason });

/** Per condition: the member/mirror secondary that produces it (an image condition). */
const IMAGE: Partial<Record<Condition, Partial<ImageView>>> = {
  duplex: {},
  copying: { state: 'SYNCHRONIZING', syncProgress: { bytesDone: 1, bytesTotal: 4 } },
  suspended: fractured('link'),
  'promote-fractured': fractured('promote'),
  unsynchronized: { state: 'UNSYNCHRONIZED' },
};

/** Per async-group condition: the group that produces it. */
const ASYNC: Partial<Record<Condition, GroupOpts>> = {
  journaling: {},
  paused: { record: { paused: true } },
  bypass: { record: { bypass: { on: true, reason: 'operator', since: null } } },
  refresh: { record: { refresh: { running: true, bytesDone: 1, bytesTotal: 8 } } },
  'sender-down': { senders: [{ array: 'bravo', state: 'connecting', ackedThrough: 7 }] },
  suspended: { member: { sec: { link: 'down' } } },
  copying: { member: { sec: IMAGE.copying! } },
  'promote-fractured': { member: { sec: IMAGE['promote-fractured']! } },
  unsynchronized: { member: { sec: IMAGE.unsynchronized! } },
};

const byKey = (a: VsRow, b: VsRow): number => `${a.mode}/${a.production}/${a.condition}`.localeCompare(`${b.mode}/${b.production}/${b.condition}`);

const primaryAt = (row: VsRow): string => (row.production === 'home' ? 'alpha' : 'bravo');

function rowCases(row: VsRow): Array<[string, VsReading]> {
  const primary = primaryAt(row);
  const out: Array<[string, VsReading]> = [];
  if (row.mode === 'async') {
    const o = ASYNC[row.condition];
    if (!o) throw new Error(`no fixture for async ${row.condition}`);
    const senders = o.senders?.map((s) => ({ ...s, array: other(primary) }));
    out.push(['asynchronous group', groupState({ ...o, primary, ...(senders ? { senders } : {}), member: { ...o.member, primary } })]);
    out.push(['near-synchronous group', groupState({ ...o, mode: 'near-synchronous', primary, ...(senders ? { senders } : {}), member: { ...o.member, primary } })]);
    return out;
  }
  if (row.condition === 'bypass') return [['synchronous group', groupState({ mode: 'synchronous', primary, record: { bypass: { on: true, reason: 'operator', since: null } } })]];
  const sec = IMAGE[row.condition];
  if (!sec) throw new Error(`no fixture for sync ${row.condition}`);
  out.push(['mirror', mirrorState({ primary, sec, epoch: primary === 'alpha' ? 1 : 2 })]);
  out.push(['synchronous group', groupState({ mode: 'synchronous', primary, member: { primary, sec } })]);
  return out;
}

/** The table as docs/automation.md shows it, written out here (not read from the source). */
const DOCUMENTED: Array<[VsRow['mode'], VsRow['production'], Condition, VsRow['state']]> = [
  ['sync', 'home', 'duplex', 'InSync'],
  ['sync', 'home', 'copying', 'OutOfSync'],
  ['sync', 'home', 'suspended', 'SplitSite'],
  ['sync', 'home', 'promote-fractured', 'SplitSite'],
  ['sync', 'home', 'bypass', 'SplitSite'],
  ['sync', 'recovery', 'duplex', 'RecoverySite'],
  ['sync', 'recovery', 'copying', 'RecoverySite'],
  ['sync', 'recovery', 'suspended', 'RecoverySite'],
  ['sync', 'recovery', 'promote-fractured', 'RecoverySite'],
  ['sync', 'recovery', 'unsynchronized', 'RecoverySite'],
  ['sync', 'recovery', 'bypass', 'RecoverySite'],
  ['async', 'home', 'journaling', 'XDMode'],
  ['async', 'home', 'paused', 'XDModeOutOfSync'],
  ['async', 'home', 'bypass', 'XDModeOutOfSync'],
  ['async', 'home', 'sender-down', 'XDModeOutOfSync'],
  ['async', 'home', 'suspended', 'XDModeOutOfSync'],
  ['async', 'home', 'copying', 'OutOfSync'],
  ['async', 'home', 'refresh', 'OutOfSync'],
  ['async', 'recovery', 'journaling', 'RecoverySite'],
  ['async', 'recovery', 'paused', 'RecoverySite'],
  ['async', 'recovery', 'bypass', 'RecoverySite'],
  ['async', 'recovery', 'sender-down', 'RecoverySite'],
  ['async', 'recovery', 'suspended', 'RecoverySite'],
  ['async', 'recovery', 'copying', 'RecoverySite'],
  ['async', 'recovery', 'refresh', 'RecoverySite'],
  ['async', 'recovery', 'promote-fractured', 'RecoverySite'],
  ['async', 'recovery', 'unsynchronized', 'RecoverySite'],
];
const ROWS: VsRow[] = DOCUMENTED.map(([mode, production, condition, state]) => ({ mode, production, condition, state }));

describe('the volume-set table, row by row', () => {
  it('holds exactly the documented rows', () => {
    expect([...VS_TABLE].sort(byKey)).toEqual([...ROWS].sort(byKey));
  });
  for (const row of ROWS) {
    it(`${row.mode}, production ${row.production}, ${row.condition} -> ${row.state}`, () => {
      for (const [what, r] of rowCases(row)) {
        expect({ what, state: r.state, reason: r.reason }).toEqual({ what, state: row.state, reason: row.condition });
        expect(r.productionSite).toBe(SITES[primaryAt(row)]);
        expect(r.direction).toBe(row.production === 'home' ? 'east->west' : 'west->east');
      }
    });
  }
});

describe('what is not in the table is Unknown, with the reason', () => {
  const unmapped: Array<[string, VsReading, Condition]> = [
    ['a synchronous mirror at home, secondary UNSYNCHRONIZED, no copy', mirrorState({ sec: { state: 'UNSYNCHRONIZED' } }), 'unsynchronized'],
    ['a mirror ATTENTION', mirrorState({ state: 'ATTENTION' }), 'attention'],
    ['a mirror INACTIVE', mirrorState({ state: 'INACTIVE', sec: fractured('admin') }), 'inactive'],
    ['a mirror with no secondary', mirrorState({ sec: null }), 'no-secondaries'],
    ['an async group incoherent for no known reason', groupState({ incoherent: 'something' }), 'incoherent'],
    ['a deleted group', groupState({ record: { deleted: true } }), 'deleted'],
    ['an async group whose member is INACTIVE', groupState({ member: { state: 'INACTIVE' } }), 'inactive'],
  ];
  for (const [what, r, condition] of unmapped) {
    it(what, () => {
      expect(r.state).toBe('Unknown');
      expect(r.reason).toBe('unmapped');
      expect(r.condition).toBe(condition);
      expect(r.detail).toContain('not in the table');
    });
  }

  const m = (a: string, o: MirrorOpts = {}, role?: 'primary' | 'secondary') => answer(a, mirrorView(a, o, role));
  const mirrorOf = (answers: Answer<MirrorView>[]) => volumeSetState({ kind: 'mirror', name: 'm0', homeSite: HOME, answers });
  const cases: Array<[string, Answer<MirrorView>[], string, string]> = [
    ['on no array', [missing('alpha'), missing('bravo')], 'Unknown', 'not-found'],
    ['the secondary array does not answer', [m('alpha'), down('bravo')], 'Unknown', 'array-unreachable'],
    ['the home array does not answer, the recovery one is secondary', [down('alpha'), m('bravo')], 'Unknown', 'array-unreachable'],
    ['an array answers with an error', [m('alpha'), { array: 'bravo', site: 'west', error: 'error', message: 'HTTP 500' }], 'Unknown', 'array-error'],
    ['missing on one array only', [m('alpha'), missing('bravo')], 'Unknown', 'inconsistent-answers'],
    ['no array is primary', [m('alpha', {}, 'secondary'), m('bravo')], 'Unknown', 'no-primary'],
    ['both primary, the newer at home', [m('alpha', { epoch: 3 }), m('bravo', { primary: 'bravo', epoch: 2 })], 'Unknown', 'two-primaries'],
    ['the records name different primaries', [m('alpha'), m('bravo', { primary: 'bravo' }, 'secondary')], 'Unknown', 'inconsistent-answers'],
    ['split brain, production at home', [m('alpha', { splitBrain: true }), m('bravo')], 'Unknown', 'split-brain'],
    ['promoted at the recovery site, the home array does not answer', [down('alpha'), m('bravo', { primary: 'bravo', epoch: 2 })], 'RecoverySiteForceSwap', 'other-side-unreachable'],
    ['both primary, the newer at the recovery site', [m('alpha', { epoch: 1 }), m('bravo', { primary: 'bravo', epoch: 2, sec: fractured('promote') })], 'RecoverySiteForceSwap', 'two-primaries'],
    ['split brain, production at the recovery site', [m('alpha', { primary: 'bravo', epoch: 2 }), m('bravo', { primary: 'bravo', epoch: 2, splitBrain: true })], 'RecoverySiteForceSwap', 'split-brain'],
  ];
  for (const [what, answers, state, reason] of cases) {
    it(what, () => {
      const r = mirrorOf(answers);
      expect({ state: r.state, reason: r.reason }).toEqual({ state, reason });
      if (state === 'RecoverySiteForceSwap') expect(r.productionSite).toBe('west');
      else expect(r.condition).toBeNull();
    });
  }

  it('a group: the primary array does not answer -> Unknown; a member view on the primary comes with the members', () => {
    const r = volumeSetState({ kind: 'group', name: 'g0', homeSite: HOME, answers: [down('alpha'), answer('bravo', groupViews('bravo'))] });
    expect([r.state, r.reason]).toEqual(['Unknown', 'array-unreachable']);
    const ok = groupState();
    expect(ok.members).toEqual([{ name: 'm1', condition: 'duplex', detail: 'bravo:0 SYNCHRONIZED' }]);
  });
});

describe('wait verdicts and state names', () => {
  it('reached, waiting, never', () => {
    const r = mirrorState();
    expect(waitVerdict(r, 'InSync').outcome).toBe('reached');
    expect(waitVerdict(r, 'RecoverySite').outcome).toBe('waiting');
    expect(waitVerdict(r, 'XDMode')).toMatchObject({ outcome: 'never', reason: 'mirror-is-synchronous' });
    expect(waitVerdict(groupState(), 'InSync').outcome).toBe('waiting');
    const gone = volumeSetState({ kind: 'mirror', name: 'm0', homeSite: HOME, answers: [missing('alpha'), missing('bravo')] });
    expect(waitVerdict(gone, 'InSync')).toMatchObject({ outcome: 'never', reason: 'not-found' });
    const silent = volumeSetState({ kind: 'mirror', name: 'm0', homeSite: HOME, answers: [down('alpha'), down('bravo')] });
    expect(waitVerdict(silent, 'InSync').outcome).toBe('waiting');
  });

  it('parses state names loosely, refuses others', () => {
    expect(parseVsState('InSync')).toBe('InSync');
    expect(parseVsState('xd-mode-out-of-sync')).toBe('XDModeOutOfSync');
    expect(parseVsState('recovery_site_force_swap')).toBe('RecoverySiteForceSwap');
    expect(parseVsState('Synced')).toBeUndefined();
  });
});
