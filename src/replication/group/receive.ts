/**
 * The secondary array's side of the link: the group record pushed by the primary (a new group
 * joins, a newer record replaces the kept one, a deleted group goes), and the receiver's
 * hello and apply requests.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { RemoteLinkError, type ApplyArgs, type RequestContext } from '../../link/protocol/index.js';
import { newEntry, openStore, type GroupContext, type GroupEntry } from './entry.js';
import { assertGroupRecord } from './invariants.js';
import type { GroupReceiver } from './receiver.js';
import { parseGroupRecord } from './record.js';
import { settleRole } from './role.js';
import { adoptOps } from './state.js';
import type { GroupRecord } from './types.js';

type Reply = { result: { applied: boolean; generation: number } };

export function groupLinkHandlers(ctx: GroupContext) {
  return {
    'group-db': (args: { groupId: string; record: Record<string, unknown> }, _bin: Buffer, rc: RequestContext) => receiveRecord(ctx, args.groupId, args.record, rc),
    'group-hello': (args: { groupId: string; members: string[]; base?: number }, _bin: Buffer, rc: RequestContext) => receiverOf(ctx, args.groupId).hello(args, rc.session.peerArray),
    apply: (args: ApplyArgs, bin: Buffer, rc: RequestContext) => receiverOf(ctx, args.groupId).apply(args, bin, rc.session.peerArray),
  };
}

function receiverOf(ctx: GroupContext, groupId: string): GroupReceiver {
  const g = ctx.groups.get(groupId);
  if (!g?.receiver) throw new RemoteLinkError('wrong-mirror', `array ${ctx.host.array} has no receiver for group ${groupId}`);
  return g.receiver;
}

async function receiveRecord(ctx: GroupContext, groupId: string, raw: Record<string, unknown>, rc: RequestContext): Promise<Reply> {
  const peer = rc.session.peerArray;
  let rec: GroupRecord;
  try {
    rec = parseGroupRecord(raw);
  } catch (e) {
    throw new RemoteLinkError('bad-request', (e as Error).message);
  }
  if (rec.groupId !== groupId) throw new RemoteLinkError('bad-request', `record of group ${rec.groupId} sent as ${groupId}`);
  for (const m of rec.members) {
    const info = ctx.host.member(m);
    if (!info) throw new RemoteLinkError('wrong-mirror', `array ${ctx.host.array} holds no image of member ${m}`);
    if (info.primaryArray !== peer && info.role !== 'primary') throw new RemoteLinkError('stale-epoch', `${peer} is not the primary of ${m}`);
  }
  const cur = ctx.groups.get(groupId);
  if (!cur) return joinGroup(ctx, rec, peer);
  return ctx.exclusive(cur, () => replace(ctx, cur, rec, peer));
}

/** A group this array had no record of: kept, and its side opened. */
async function joinGroup(ctx: GroupContext, rec: GroupRecord, peer: string): Promise<Reply> {
  const dir = join(ctx.dirRoot, rec.groupId.replace(/[^A-Za-z0-9._-]/g, '_'));
  await fsp.mkdir(dir, { recursive: true });
  const store = openStore(dir, ctx.host);
  await store.load();
  await store.save(rec);
  const g = newEntry(rec, dir, store);
  ctx.groups.set(rec.groupId, g);
  await settleRole(ctx, g, `joined: record from ${peer}`);
  return { result: { applied: true, generation: rec.generation } };
}

/** A record of a group this array keeps: taken when newer (epoch first, then generation). */
async function replace(ctx: GroupContext, cur: GroupEntry, rec: GroupRecord, peer: string): Promise<Reply> {
  const newer = rec.epoch > cur.record.epoch || (rec.epoch === cur.record.epoch && rec.generation > cur.record.generation);
  if (!newer) return { result: { applied: false, generation: cur.record.generation } };
  if (rec.deleted) {
    await cur.receiver?.close();
    ctx.groups.delete(rec.groupId);
    await fsp.rm(cur.dir, { recursive: true, force: true });
    ctx.event('deleted', { groupId: rec.groupId, name: rec.name, why: `deleted on ${peer}` });
    return { result: { applied: true, generation: rec.generation } };
  }
  await cur.store.save(rec);
  // While this array enters bypass it keeps its own bypass until that is saved (./state.ts).
  if (cur.state.bypass === 'entering' || cur.state.bypass === 'resyncing') rec.bypass = cur.record.bypass;
  cur.record = rec;
  if (cur.receiver) cur.receiver.record = rec;
  assertGroupRecord(rec);
  ctx.apply(cur, ...adoptOps(rec));
  await settleRole(ctx, cur, `record from ${peer}`);
  // Journaling again (bypass off, no refresh): the members' resync protection may be released.
  ctx.host.protection?.groupChanged(rec.members);
  return { result: { applied: true, generation: rec.generation } };
}
