/**
 * What the replication layer (./layer.ts) needs of the mirror driver: the LUN's role, and the
 * primary's write and flush paths. The driver (./data-path.ts) builds every remote request
 * from a HostModify; the layer never sees a link.
 */

/** A LUN's place in a mirror, looked up on every host request (a promote changes it under open sessions). */
export interface LunRole {
  role: 'primary' | 'secondary';
  allowReads: boolean;
  /** its consistency group is being backfreshed from a secondary */
  offline: boolean;
}

/** One host write, trim or zeroing of a primary image. */
export interface HostModify {
  offset: number;
  length: number;
  /** the payload of a write; null for trims and zeroes */
  data: Buffer | null;
  /** a trim (the secondaries may deallocate); false for writes and zeroes */
  trim: boolean;
  /** a write with FUA: the secondaries write it through too */
  fua: boolean;
}

export interface MirrorDataPath {
  /** undefined: the LUN is not an image of any mirror. */
  roleOf(lunId: number): LunRole | undefined;
  /** `local` does the change on the device below; the driver adds the write-intent log and the secondaries. */
  hostModify(lunId: number, op: HostModify, local: () => Promise<void>): Promise<void>;
  hostFlush(lunId: number, local: () => Promise<void>): Promise<void>;
}
