/**
 * What the consistency groups need of the mirror driver: the member
 * mirrors' images, fracture logs, resync and promotion. MirrorNode (src/replication/mirror)
 * implements GroupHost; it is declared here, in the lower layer, so that the mirror driver
 * imports the groups and never the other way round.
 */
import type { BlockDevice } from '../../block/index.js';
import type { MirrorHeartbeat } from '../state/index.js';
import type { SnapshotManager } from '../../snapshot/index.js';
import type { SenderRoute } from './sender.js';

/** The array's snapshots, as the groups and the resync protection use them. */
export type SnapshotPort = Pick<SnapshotManager, 'create' | 'delete' | 'list' | 'rollback' | 'setOf'>;

/** A byte range of a LUN. */
export interface Range {
  offset: number;
  length: number;
}

/** The snapshot that holds the last consistent point of members on a secondary array. */
export interface GroupFallback {
  snapshot: string;
  /** ISO time it was cut: when the resync began (the copy it keeps is at or before it) */
  created: string;
  ageSeconds: number;
  /** the last journal record applied when it was cut (a group's receiver here), else null */
  groupSeq: number | null;
  /** member mirror names it covers */
  members: string[];
  /** false: invalidated (a full snapshot store) or gone on some member */
  valid: boolean;
}

/**
 * Resync protection of the members' images on a secondary array (the mirror driver's,
 * src/replication/mirror/protection.ts): what group promote and the group's record changes use.
 */
export interface MemberProtection {
  /** The members' common fallback snapshot, or null. */
  fallback(mirrorIds: string[]): GroupFallback | null;
  /** The members whose image here a resync began to rewrite since the group last journaled. */
  resyncBegun(mirrorIds: string[]): string[];
  /** Waits for a fallback snapshot being cut for the members. */
  settled(mirrorIds: string[]): Promise<void>;
  /** Rolls every member back to the fallback; the regions each rollback rewrote. */
  rollBack(mirrorIds: string[]): Promise<Map<string, Range[]>>;
  /** The group's record changed here (bypass, refresh): protections may be released. */
  groupChanged(mirrorIds: string[]): void;
}

/** Reconnect backoff of the senders (the mirror driver's timers carry these). */
export interface GroupReconnectTimers {
  reconnectInitialMs: number;
  reconnectMaxMs: number;
}

export interface GroupHost {
  readonly array: string;
  readonly root: string;
  readonly sync: boolean;
  readonly timers: GroupReconnectTimers;
  /** Publishes an event on the array's stream (full type, e.g. `group.bypass`). */
  publish(type: string, details: Record<string, unknown>): void;
  /** The member mirror's local image: role, LUN device, secondary arrays, epoch. */
  member(mirrorId: string): MemberInfo | undefined;
  memberByName(ref: string): MemberInfo | undefined;
  /** The remote link to a secondary array (the mirror driver's peer configuration). */
  peerConfig(array: string): SenderRoute | undefined;
  /** Marks the range in every secondary's fracture log of the mirror and persists them. */
  markFractures(mirrorId: string, offset: number, length: number): Promise<void>;
  /** The same, in memory only (this tick); `persistFractures` writes them. */
  markFracturesNow(mirrorId: string, offset: number, length: number): void;
  persistFractures(mirrorId: string): Promise<void>;
  /** Reads `length` bytes of the mirror's secondary image on `array` (backfresh). */
  readSecondary(mirrorId: string, array: string, offset: number, length: number): Promise<Buffer>;
  /** Empties every fracture log of the mirror (primary and secondaries are identical). */
  clearFractures(mirrorId: string): Promise<void>;
  /** Starts a resync of every secondary of the mirror whose fracture log is not empty. */
  resyncDirty(mirrorId: string): Promise<void>;
  /** Waits until no host write of the mirror is in flight. */
  idle(mirrorId: string): Promise<void>;
  /** True when every secondary of the mirror is connected, unfractured, CONSISTENT or SYNCHRONIZED with an empty fracture log and no resync. */
  inSync(mirrorId: string): boolean;
  /**
   * `rolledBack`: the image was rolled back to its fallback snapshot first; these ranges changed.
   * `steppedDown`: stepDownOldPrimary succeeded for it (a plain promote does not ask again).
   */
  promoteMirror(mirrorId: string, force: boolean, rolledBack?: Range[], steppedDown?: boolean): Promise<void>;
  /**
   * A plain promote's first step for one member: its old primary is asked over the remote link to
   * step down (src/replication/mirror/admin.ts). Throws (code `unreachable`, `inconsistent`,
   * `state`) when it cannot be reached or knows this image is behind; nothing changed here then.
   */
  stepDownOldPrimary(mirrorId: string): Promise<void>;
  /** The array's snapshots (absent: the array keeps none, e.g. two SPs). */
  readonly snapshots?: SnapshotPort;
  /** Resync protection of secondary images (absent: none). */
  readonly protection?: MemberProtection;
}

export interface MemberInfo {
  mirrorId: string;
  name: string;
  role: 'primary' | 'secondary';
  lunId: number;
  size: number;
  device: BlockDevice;
  primaryArray: string;
  secondaryArrays: string[];
  epoch: number;
  /** this array's image of the mirror: its state in the record (null: the primary's) */
  localState: string | null;
  /** an installed heartbeat mirror (src/replication/state/heartbeat.ts): no group takes it */
  heartbeat?: MirrorHeartbeat;
}
