/**
 * `sanbox group promote` and `sanbox group snapshot`: the verbs that make point-in-time copies of
 * a group primary or keep them (POST /v1/groups/:ref/promote, POST /v1/groups/:ref/snapshot).
 *
 * promote on a secondary array: a copy that is not one point in time (a member being
 * resynchronized) is refused (exit 1, error code `inconsistent`, naming the fallback snapshot and
 * its age) unless --force (the members as they are) or --from-snapshot (every member rolled back
 * to the group's resync-protection snapshot first). snapshot: every member LUN at one write
 * boundary, on the primary or a secondary (between two applied batches: the journal record it
 * holds through).
 */
import { isPlainName } from '../array/index.js';
import type { GroupView } from '../control/index.js';
import type { GroupSnapshotResult } from '../replication/group/index.js';
import { EXIT, printJson, usage } from './common.js';
import { promotionText } from './group-render.js';
import { call, done, locateGroup } from './group-verbs.js';
import type { TargetFlags } from './target.js';

/** A promote waits for the receiver's batch, and --from-snapshot for the rollback of every member. */
const PROMOTE_TIMEOUT_MS = 600_000;

const groupPath = (ref: string, verb: string) => `/v1/groups/${encodeURIComponent(ref)}/${verb}`;

export async function groupPromoteCommand(ref: string, f: TargetFlags & { force?: boolean; fromSnapshot?: boolean }): Promise<number> {
  if (f.force && f.fromSnapshot) throw usage('promote takes --force (the members as they are) or --from-snapshot (rolled back to the fallback snapshot first), not both');
  const t = await locateGroup(ref, f, 'secondary');
  const body = f.force ? { force: true } : f.fromSnapshot ? { fromSnapshot: true } : {};
  const v = await call(() => t.client.request<GroupView>('POST', groupPath(ref, 'promote'), body, { timeoutMs: PROMOTE_TIMEOUT_MS }));
  const how = f.force ? ' (forced)' : f.fromSnapshot ? ' (rolled back to the fallback snapshot)' : '';
  const head = `promoted group ${v.record.name}${t.array ? ` on ${t.array}` : ''}: every member is primary here${how}; the old primary resynchronizes from the fracture logs`;
  return done(f, v, [head, ...promotionText(v)].join('\n'), t.array);
}

export async function groupSnapshotCommand(ref: string, name: string, f: TargetFlags & { role?: string }): Promise<number> {
  if (!isPlainName(name)) throw usage(`snapshot name ${JSON.stringify(name)} is invalid: 1 to 64 characters from A-Z a-z 0-9 . _ - (not . or ..)`);
  const want = f.role === undefined ? 'primary' : f.role === 'primary' || f.role === 'secondary' ? f.role : undefined;
  if (!want) throw usage(`--side must be primary or secondary, not ${JSON.stringify(f.role)}`);
  const t = await locateGroup(ref, f, want);
  const r = await call(() => t.client.request<GroupSnapshotResult>('POST', groupPath(ref, 'snapshot'), { name }));
  if (f.json) printJson(r);
  else {
    const where = t.array ? ` on ${t.array}` : '';
    const at = r.groupSeq !== null ? `, between two applied batches: the group through journal record ${r.groupSeq}` : '';
    const lines = [`snapshot ${name} of group ${r.group}${where} (${r.role}): ${r.snapshots.length} member LUN${r.snapshots.length === 1 ? '' : 's'} at one write boundary, writes paused ${r.pauseMs.toFixed(2)} ms${at}`];
    for (const s of r.snapshots) lines.push(`  ${String((s as { export?: unknown }).export ?? `${s.lun}@${s.name}`)}  (LUN ${s.lun}, seq ${s.seq})`);
    process.stdout.write(lines.join('\n') + '\n');
  }
  return EXIT.OK;
}
