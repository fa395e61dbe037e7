/**
 * Which side of a group runs on this array follows the member mirrors' roles: every member
 * primary here opens the primary side (writelog, senders), none opens the receiver.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import type { GroupContext, GroupEntry } from './entry.js';
import { closePrimary, openPrimary } from './primary-side.js';
import { GroupReceiver } from './receiver.js';

/** Opens the primary side or the receiver, whichever the members' roles say. */
export async function settleRole(ctx: GroupContext, g: GroupEntry, why: string): Promise<void> {
  const infos = g.record.members.map((m) => ctx.host.member(m));
  if (infos.some((i) => !i)) {
    ctx.event('load-failed', { groupId: g.record.groupId, problem: 'a member mirror is not on this array' });
    return;
  }
  const primaries = infos.filter((i) => i!.role === 'primary').length;
  if (primaries === infos.length && !g.primary) {
    await g.receiver?.close();
    g.receiver = null;
    await openPrimary(ctx, g, why);
  } else if (primaries === 0 && !g.receiver) {
    if (g.primary) {
      // Demoted: the journal's records are in the divergence the new primary takes; a later
      // promotion must not replay them.
      await closePrimary(g, true);
      for (const f of await fsp.readdir(g.dir)) if (f.startsWith('writelog')) await fsp.rm(join(g.dir, f), { force: true });
    }
    // A secondary again: the last promote's report describes a primary side gone.
    g.promotion = null;
    g.receiver = await GroupReceiver.open(g.dir, g.record, (id) => receiverMember(ctx, id), { sync: ctx.host.sync });
    ctx.event('receiver-started', { groupId: g.record.groupId, name: g.record.name, nextExpected: g.receiver.nextExpected, why });
  }
}

function receiverMember(ctx: GroupContext, mirrorId: string) {
  const m = ctx.host.member(mirrorId);
  if (!m || m.role !== 'secondary') return undefined;
  return { mirrorId, device: m.device, size: m.size, primaryArray: m.primaryArray };
}
