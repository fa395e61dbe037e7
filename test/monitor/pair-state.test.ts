// The classification of mirror and group views into the seed's pair states: every row of the
// mapping in src/monitor/pair-state.ts, and which row wins when several apply.
import { describe, expect, it } from 'vitest';
import { classifyGroup, classifyMirror, deletedReading } from '../../src/monitor/pair-state.js';
import type { GroupView } from '../../src/replication/group/control.js';
import { DEFAULT_GROUP_ATTRIBUTES, type GroupRecord } from '../../src/replication/group/types.js';
import type { ImageView, MirrorView } from '../../src/replication/mirror/types.js';
import { DEFAULT_ATTRIBUTES, DEFAULT_REGION_SIZE, MIRROR_DB_FORMAT, MIRROR_DB_VERSION, type MirrorDbRecord } from '../../src/replication/state/db.js';

const GiB = 1 << 30;

function primary(array = 'alpha'): ImageView {
  return { imageId: `${array}:0`, array, lun: 0, size: GiB, role: 'primary', state: null, epoch: 1, reachability: 'REACHABLE', fractured: false, fractureReason: null, recoveryPolicy: 'auto', syncRate: null, syncProgress: null, link: 'local', fractureLog: null, resync: null, recordGeneration: 1 };
}

function sec(array = 'bravo', over: Partial<ImageView> = {}): ImageView {
  return { ...primary(array), role: 'secondary', state: 'SYNCHRONIZED', epoch: 0, link: 'connected', fractureLog: { regions: 0, bytes: 0 }, ...over };
}

const running = (bytesDone: number, bytesTotal: number): ImageView['resync'] => ({ full: false, reason: 'fracture log', bytesDone, bytesTotal, rate: 0, eta: null, startedAt: '2024-01-01T00:00:00.000Z' });

function mirror(secs: ImageView[], over: Partial<Pick<MirrorDbRecord, 'state' | 'epoch' | 'name'>> & { splitBrain?: boolean; role?: 'primary' | 'secondary' } = {}): MirrorView {
  const images = [primary(), ...secs];
  const role = over.role ?? 'primary';
  const local = role === 'primary' ? images[0]! : (secs[0] ?? images[0]!);
  const record: MirrorDbRecord = { format: MIRROR_DB_FORMAT, version: MIRROR_DB_VERSION, ...DEFAULT_ATTRIBUTES, name: over.name ?? 'db', mirrorId: 'm1', generation: 1, state: over.state ?? 'ACTIVE', epoch: over.epoch ?? 1, regionSize: DEFAULT_REGION_SIZE, images };
  return { record, local: { imageId: local.imageId, role, lun: 0, lunName: 'disk0' }, images, writeIntentLog: null, splitBrain: over.splitBrain ?? false, protection: { enabled: true, state: 'primary', fallback: null } };
}

describe('classifyMirror', () => {
  const cases: Array<[string, MirrorView, string, string]> = [
    ['ATTENTION', mirror([sec()], { state: 'ATTENTION' }), 'error-suspended', 'attention'],
    ['split brain', mirror([sec()], { splitBrain: true }), 'error-suspended', 'split-brain'],
    ['no secondaries', mirror([]), 'deleted', 'no-secondaries'],
    ['fractured by a promote', mirror([sec('bravo', { fractured: true, fractureReason: 'promote' })]), 'error-suspended', 'promote-fracture'],
    ['UNSYNCHRONIZED, no resync', mirror([sec('bravo', { state: 'UNSYNCHRONIZED' })]), 'error-suspended', 'unsynchronized'],
    ['UNSYNCHRONIZED with a resync', mirror([sec('bravo', { state: 'UNSYNCHRONIZED', resync: running(1, 4) })]), 'resync', 'synchronizing'],
    ['SYNCHRONIZING', mirror([sec('bravo', { state: 'SYNCHRONIZING', syncProgress: { bytesDone: 37, bytesTotal: 100 } })]), 'resync', 'synchronizing'],
    ['fractured by the link', mirror([sec('bravo', { state: 'CONSISTENT', fractured: true, fractureReason: 'link' })]), 'suspended', 'fractured-link'],
    ['fractured by the operator', mirror([sec('bravo', { state: 'CONSISTENT', fractured: true, fractureReason: 'admin' })]), 'suspended', 'fractured-admin'],
    ['INACTIVE', mirror([sec()], { state: 'INACTIVE' }), 'suspended', 'inactive'],
    ['UNREACHABLE', mirror([sec('bravo', { reachability: 'UNREACHABLE' })]), 'suspended', 'unreachable'],
    ['link down', mirror([sec('bravo', { link: 'down' })]), 'suspended', 'unreachable'],
    ['link connecting', mirror([sec('bravo', { link: 'connecting' })]), 'suspended', 'unreachable'],
    ['SYNCHRONIZED', mirror([sec()]), 'connected', 'in-sync'],
    ['CONSISTENT', mirror([sec('bravo', { state: 'CONSISTENT' }), sec('charlie')]), 'connected', 'in-sync'],
  ];
  it.each(cases)('%s', (_name, view, pair, reason) => {
    const r = classifyMirror(view);
    expect([r.pair, r.reason]).toEqual([pair, reason]);
    expect(r.kind).toBe('mirror');
  });

  it('precedence: ATTENTION over split brain over everything else', () => {
    expect(classifyMirror(mirror([], { state: 'ATTENTION', splitBrain: true })).reason).toBe('attention');
    expect(classifyMirror(mirror([sec('bravo', { fractured: true, fractureReason: 'link' })], { splitBrain: true })).reason).toBe('split-brain');
    expect(classifyMirror(mirror([], { splitBrain: true })).reason).toBe('split-brain');
  });

  it('precedence: error-suspended images over a running resync over fractures', () => {
    const promoted = sec('bravo', { fractured: true, fractureReason: 'promote' });
    const syncing = sec('charlie', { state: 'SYNCHRONIZING', resync: running(1, 2) });
    const fractured = sec('delta', { state: 'CONSISTENT', fractured: true, fractureReason: 'link' });
    expect(classifyMirror(mirror([syncing, promoted])).reason).toBe('promote-fracture');
    expect(classifyMirror(mirror([syncing, sec('delta', { state: 'UNSYNCHRONIZED' })])).reason).toBe('unsynchronized');
    expect(classifyMirror(mirror([fractured, syncing])).reason).toBe('synchronizing');
  });

  it('precedence: INACTIVE (the operator\'s) over fractured over unreachable; an admin fracture among link fractures is the operator\'s', () => {
    const link = sec('bravo', { state: 'CONSISTENT', fractured: true, fractureReason: 'link', link: 'down' });
    const admin = sec('charlie', { state: 'CONSISTENT', fractured: true, fractureReason: 'admin' });
    expect(classifyMirror(mirror([link], { state: 'INACTIVE' })).reason).toBe('inactive');
    expect(classifyMirror(mirror([link])).reason).toBe('fractured-link');
    expect(classifyMirror(mirror([sec('bravo', { link: 'down' })], { state: 'INACTIVE' })).reason).toBe('inactive');
    const mixed = classifyMirror(mirror([link, admin]));
    expect([mixed.reason, mixed.byOperator]).toEqual(['fractured-admin', true]);
  });

  it('byOperator for an admin fracture and INACTIVE only', () => {
    expect(classifyMirror(mirror([sec('bravo', { fractured: true, fractureReason: 'admin' })])).byOperator).toBe(true);
    expect(classifyMirror(mirror([sec()], { state: 'INACTIVE' })).byOperator).toBe(true);
    expect(classifyMirror(mirror([sec('bravo', { fractured: true, fractureReason: 'link' })])).byOperator).toBe(false);
    expect(classifyMirror(mirror([sec('bravo', { link: 'down' })])).byOperator).toBe(false);
  });

  it('linkUp: every secondary connected', () => {
    const f = (link: ImageView['link']) => sec('charlie', { state: 'CONSISTENT', fractured: true, fractureReason: 'link', link });
    expect(classifyMirror(mirror([sec(), f('connected')])).linkUp).toBe(true);
    expect(classifyMirror(mirror([sec(), f('refused')])).linkUp).toBe(false);
    expect(classifyMirror(mirror([])).linkUp).toBe(false);
  });

  it('role, epoch, primary array, pvol, svol and detail', () => {
    const r = classifyMirror(mirror([sec('bravo', { state: 'CONSISTENT', fractured: true, fractureReason: 'link' }), sec('charlie', { state: 'SYNCHRONIZED', reachability: 'UNREACHABLE' })], { epoch: 3 }));
    expect(r).toMatchObject({ role: 'primary', epoch: 3, primaryArray: 'alpha', pvol: 'alpha:disk0 ACTIVE' });
    expect(r.svol).toBe('bravo:0 CONSISTENT fractured(link), charlie:0 SYNCHRONIZED unreachable');
    expect(r.detail.startsWith('ACTIVE; bravo:0 CONSISTENT fractured (link), charlie:0 SYNCHRONIZED unreachable')).toBe(true);
    expect(classifyMirror(mirror([sec()])).detail).toBe('ACTIVE; bravo:0 SYNCHRONIZED');
  });

  it('a running resync shows its percent', () => {
    const r = classifyMirror(mirror([sec('bravo', { state: 'SYNCHRONIZING', resync: running(37, 100) })]));
    expect(r.svol).toBe('bravo:0 SYNCHRONIZING 37%');
    expect(r.detail).toContain('37% (37/100 bytes)');
  });

  it('a secondary instance: linkUp false, links ignored, said in the detail', () => {
    const r = classifyMirror(mirror([sec('bravo', { link: 'local' })], { role: 'secondary' }));
    expect(r).toMatchObject({ pair: 'connected', role: 'secondary', linkUp: false, primaryArray: 'alpha', pvol: 'alpha:0 ACTIVE' });
    expect(r.detail).toContain('secondary');
    const other = sec('charlie', { link: 'down' });
    expect(classifyMirror(mirror([sec('bravo', { link: 'local' }), other], { role: 'secondary' })).pair).toBe('connected');
    const fractured = classifyMirror(mirror([sec('bravo', { link: 'local', fractured: true, fractureReason: 'link' })], { role: 'secondary' }));
    expect([fractured.pair, fractured.linkUp]).toEqual(['suspended', false]);
  });

  it('deleted readings carry no role', () => {
    expect(classifyMirror(mirror([])).role).toBeNull();
    expect(deletedReading('group')).toMatchObject({ kind: 'group', pair: 'deleted', reason: 'not-found', role: null, epoch: null, linkUp: false });
  });
});

type Sender = GroupView['senders'][number];

function group(over: Partial<GroupRecord> = {}, view: Partial<Omit<GroupView, 'record'>> = {}): GroupView {
  const record: GroupRecord = { format: 'sanbox.group', version: 1, ...DEFAULT_GROUP_ATTRIBUTES, groupId: 'g1', name: 'grp', members: ['m1'], epoch: 2, generation: 1, paused: false, bypass: { on: false, reason: null, since: null }, refresh: null, ...over };
  return { record, role: 'primary', members: [{ mirrorId: 'm1', name: 'db', lun: 0, secondaries: ['bravo'] }], senders: [sender()], receiver: null, metrics: null, incoherent: null, ...view };
}
const sender = (state = 'running', array = 'bravo'): Sender => ({ array, state, ackedThrough: 1234 });
const fracturedMember = (name = 'db') => mirror([sec('bravo', { state: 'CONSISTENT', fractured: true, fractureReason: 'link' })], { name });
const bypass = (reason: 'overflow' | 'operator' | null): Partial<GroupRecord> => ({ bypass: { on: true, reason, since: '2024-01-01T00:00:00.000Z' } });

describe('classifyGroup', () => {
  const cases: Array<[string, GroupView, MirrorView[], string, string]> = [
    ['deleted', group({ deleted: true }), [mirror([], { splitBrain: true })], 'deleted', 'group-deleted'],
    ['a member split', group(), [mirror([sec()], { name: 'db', splitBrain: true })], 'error-suspended', 'db:split-brain'],
    ['paused', group({ paused: true }), [], 'suspended', 'paused'],
    ['bypass by the operator', group(bypass('operator')), [], 'suspended', 'bypass-operator'],
    ['bypass, no reason', group(bypass(null)), [], 'suspended', 'bypass-operator'],
    ['bypass after overflow, members fractured', group(bypass('overflow')), [fracturedMember()], 'suspended', 'bypass-overflow'],
    ['bypass after overflow, resyncing', group(bypass('overflow')), [mirror([sec('bravo', { state: 'SYNCHRONIZING', resync: running(1, 2) })])], 'resync', 'bypass-resync'],
    ['refresh', group({ refresh: { running: true, bytesDone: 1, bytesTotal: 4 } }), [], 'resync', 'refresh'],
    ['a member resyncing', group(), [mirror([sec('bravo', { state: 'SYNCHRONIZING' })])], 'resync', 'member-resync'],
    ['a sender down', group({}, { senders: [sender(), sender('down', 'charlie')] }), [], 'suspended', 'sender-down'],
    ['a sender refused', group({}, { senders: [sender('refused')] }), [], 'suspended', 'sender-refused'],
    ['a member suspended', group(), [mirror([sec()], { name: 'a' }), fracturedMember('b')], 'suspended', 'b:fractured-link'],
    ['incoherent', group({}, { incoherent: 'something' }), [], 'resync', 'incoherent'],
    ['replicating', group(), [mirror([sec()])], 'connected', 'replicating'],
  ];
  it.each(cases)('%s', (_name, view, members, pair, reason) => {
    const r = classifyGroup(view, members);
    expect([r.pair, r.reason]).toEqual([pair, reason]);
    expect(r.kind).toBe('group');
  });

  it('precedence: a member error-suspended over paused, paused over bypass, bypass over refresh', () => {
    expect(classifyGroup(group({ paused: true }), [mirror([sec()], { state: 'ATTENTION' })]).reason).toBe('db:attention');
    expect(classifyGroup(group({ paused: true, ...bypass('operator') }), []).reason).toBe('paused');
    expect(classifyGroup(group({ ...bypass('overflow'), refresh: { running: true, bytesDone: 0, bytesTotal: 1 } }), []).reason).toBe('bypass-resync');
  });

  it('precedence: refresh and member resync over senders, senders over incoherent', () => {
    const down = { senders: [sender('down')], incoherent: 'x' };
    expect(classifyGroup(group({ refresh: { running: true, bytesDone: 0, bytesTotal: 1 } }, down), []).reason).toBe('refresh');
    expect(classifyGroup(group({}, down), [mirror([sec('bravo', { state: 'SYNCHRONIZING' })])]).reason).toBe('member-resync');
    expect(classifyGroup(group({}, down), []).reason).toBe('sender-down');
  });

  it('byOperator: pause and operator bypass, not overflow or a sender', () => {
    expect(classifyGroup(group({ paused: true }), []).byOperator).toBe(true);
    expect(classifyGroup(group(bypass('operator')), []).byOperator).toBe(true);
    expect(classifyGroup(group(bypass('overflow')), [fracturedMember()]).byOperator).toBe(false);
    expect(classifyGroup(group({}, { senders: [sender('down')] }), []).byOperator).toBe(false);
  });

  it('linkUp: every sender running; without senders every member; never on the secondary', () => {
    expect(classifyGroup(group(), []).linkUp).toBe(true);
    expect(classifyGroup(group({}, { senders: [sender(), sender('connecting', 'c')] }), []).linkUp).toBe(false);
    expect(classifyGroup(group({}, { senders: [] }), [mirror([sec()])]).linkUp).toBe(true);
    expect(classifyGroup(group({}, { senders: [] }), [mirror([sec('bravo', { link: 'down' })])]).linkUp).toBe(false);
    expect(classifyGroup(group({}, { senders: [] }), []).linkUp).toBe(false);
    expect(classifyGroup(group({}, { role: 'secondary', senders: [] }), []).linkUp).toBe(false);
  });

  it('role, epoch, primary array, pvol and svol', () => {
    const r = classifyGroup(group({ epoch: 5 }, { senders: [sender(), sender('down', 'charlie')] }), [mirror([sec()])]);
    expect(r).toMatchObject({ role: 'primary', epoch: 5, primaryArray: 'alpha', pvol: 'grp asynchronous replicating', svol: 'bravo running acked 1234, charlie down acked 1234' });
    expect(classifyGroup(group(), []).primaryArray).toBeNull();
    const s = classifyGroup(group({}, { role: 'secondary', senders: [], receiver: { nextExpected: 10, applied: 9, batches: 3 } }), []);
    expect([s.role, s.svol]).toEqual(['secondary', 'receiver next 10 applied 9']);
    expect(s.detail).toContain('secondary');
    expect(classifyGroup(group({ deleted: true }), []).role).toBeNull();
  });
});
