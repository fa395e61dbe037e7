import { primaryOf, secondariesOf } from '../state/index.js';
import type { Entry } from './entry.js';
import type { MirrorRecords } from './records.js';
import { MirrorError, type HeartbeatParams } from './types.js';

/**
 * Installs or uninstalls a heartbeat mirror (the verb behind POST /v1/mirrors/REF/heartbeat; the
 * refusals while installed: src/replication/state/heartbeat.ts `requireNoHeartbeat`). On the
 * primary only. The flag is part of the mirror record: saved with it (two copies), pushed to the
 * secondaries (so a promote there is refused too), published as `mirror.heartbeat-installed` /
 * `mirror.heartbeat-uninstalled`. Installing needs a synchronous mirror with a secondary, outside
 * any consistency group (409 `heartbeat-refused`); installing again by the same agent, or
 * uninstalling a mirror that is not installed, changes nothing; installing one that another agent
 * installed is 409 `heartbeat-installed`.
 */
export function setHeartbeat(records: MirrorRecords, ref: string, p: HeartbeatParams, groupName: (mirrorId: string) => string | undefined): Promise<Entry> {
  const e = records.find(ref);
  return records.exclusive(e, async () => {
    if (!e.primary) throw new MirrorError('not-primary', `heartbeat installation goes to the primary of mirror ${e.db.name}: ${primaryOf(e.db).array} (this array holds a secondary image)`);
    const cur = e.db.heartbeat;
    if (!p.installed) {
      if (cur) await records.change(e, { op: 'heartbeat', heartbeat: null, by: p.by });
      return e;
    }
    if (cur) {
      if (cur.by === p.by) return e;
      throw new MirrorError('heartbeat-installed', `mirror ${e.db.name} is a heartbeat mirror installed by ${cur.by} already: uninstall it first`);
    }
    const refused = (why: string) => new MirrorError('heartbeat-refused', `mirror ${e.db.name} cannot be a heartbeat mirror: ${why}`);
    const g = groupName(e.id);
    if (g !== undefined) throw refused(`it is a member of consistency group ${g} (heartbeat mirrors stay out of data groups)`);
    if (e.db.writePolicy !== 'synchronous') throw refused(`its write policy is ${e.db.writePolicy}, not synchronous`);
    if (secondariesOf(e.db).length === 0) throw refused('it has no secondary image (add one first: the heartbeats go to it)');
    await records.change(e, { op: 'heartbeat', heartbeat: { installed: true, by: p.by, sinceMs: Date.now() }, by: p.by });
    return e;
  });
}
