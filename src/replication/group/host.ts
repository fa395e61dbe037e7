/**
 * What the consistency groups need of the mirror driver: the member
 * mirrors' images, fracture logs, resync and promotion. MirrorNode (src/replication/mirror)
 * implements GroupHost; it is declared here, in the lower layer, so that the mirror driver
 * imports the groups and never the other way round.
 */
import type { BlockDevice } from '../../block/index.js';
import type { SenderRoute } from './sender.js';

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
  promoteMirror(mirrorId: string, force: boolean): Promise<void>;
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
}
