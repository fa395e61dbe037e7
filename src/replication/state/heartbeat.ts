import type { MirrorDbRecord, MirrorHeartbeat } from './db.js';

/**
 * Heartbeat mirrors (issue 15, 004_2d1e4506b7ca5f30.txt): a small synchronous mirror a heartbeat
 * agent writes its messages to, which "should not be subject to a split command". While one is
 * installed (`heartbeat` in its record, kept on every member), every verb that would stop the
 * heartbeats reaching the secondary is refused by `requireNoHeartbeat`: the one precondition the
 * mirror verbs (src/replication/mirror/admin.ts) and the group verbs (a group's members) call.
 */
export type HeartbeatGuardedVerb = 'fracture' | 'remove-secondary' | 'deactivate' | 'destroy' | 'promote' | 'group-add';

const WHAT: Record<HeartbeatGuardedVerb, string> = {
  fracture: 'a fracture (split) would stop the heartbeats reaching its secondary',
  'remove-secondary': 'removing its secondary would stop the heartbeats reaching it',
  deactivate: 'deactivating it would stop the heartbeats (and it is the step before destroying it)',
  destroy: 'destroying it would stop the heartbeats',
  promote: 'a promote would turn the heartbeat path around under the agent',
  'group-add': 'heartbeat mirrors stay out of consistency groups (a group pause, mode change or promote would stop the heartbeats)',
};

/** The refusal of a verb on an installed heartbeat mirror: HTTP 409, code `heartbeat-installed`. */
export class HeartbeatInstalledError extends Error {
  readonly code = 'heartbeat-installed';
  constructor(message: string) {
    super(message);
    this.name = 'HeartbeatInstalledError';
  }
  get httpStatus(): number {
    return 409;
  }
}

/** Throws HeartbeatInstalledError when `db` is an installed heartbeat mirror (nothing changes). */
export function requireNoHeartbeat(db: Pick<MirrorDbRecord, 'name'> & { heartbeat?: MirrorHeartbeat }, verb: HeartbeatGuardedVerb): void {
  const h = db.heartbeat;
  if (!h) return;
  throw new HeartbeatInstalledError(
    `mirror ${db.name} is a heartbeat mirror installed by ${h.by} (since ${new Date(h.sinceMs).toISOString()}): ${WHAT[verb]}. ` +
      `Uninstall it first: "sanbox mirror heartbeat ${db.name} --uninstall" on its primary array (POST /v1/mirrors/${db.name}/heartbeat {"installed": false, "by"}), once agent ${h.by} is stopped.`,
  );
}
