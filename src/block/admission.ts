import { BlockError } from './device.js';
import { modifiesData, type IoOpKind } from './io-op.js';

/** A LUN's part in a remote mirror, as host I/O sees it. */
export interface HostRole {
  role: 'primary' | 'secondary';
  /** A secondary serves host reads (never writes). */
  allowReads: boolean;
  /** No host reads or writes at all (its consistency group is being backfreshed). */
  offline?: boolean;
}

/**
 * Where a host request goes:
 * - `direct`: to the device below, unchanged (no mirror image; a primary's reads; a secondary's
 *   allowed reads; every flush that is not a primary's);
 * - `replicate`: through the mirror driver (a primary's writes, trims, zeroes and flushes).
 */
export type Admission = 'direct' | 'replicate';

/**
 * The one rule for host I/O on a LUN that may be a mirror image, used by the replication layer
 * of the single-process array (MirrorLayer) and by the SP's router (LunRouter):
 * - no role (not an image): everything is direct;
 * - flush is always admitted: it changes no data and makes only completed writes durable, so a
 *   host's fsync never fails because its LUN turned secondary or went offline; a primary's goes
 *   through the driver so that its secondaries are flushed too;
 * - offline: every other request is refused (EPERM);
 * - secondary: writes, trims and zeroes are refused, reads (and block status and cache hints)
 *   too unless the mirror allows secondary reads;
 * - primary: writes, trims and zeroes are replicated, reads are direct.
 */
export function admitHostIo(role: HostRole | null | undefined, op: IoOpKind, lun: number | string): Admission {
  if (!role) return 'direct';
  if (op === 'flush') return role.role === 'primary' ? 'replicate' : 'direct';
  if (role.offline) throw new BlockError('EPERM', `LUN ${lun} is offline to hosts: its consistency group is being backfreshed from a secondary`);
  const modifies = modifiesData(op);
  if (role.role === 'primary') return modifies ? 'replicate' : 'direct';
  if (modifies) throw new BlockError('EPERM', `LUN ${lun} is a secondary mirror image: host writes refused`);
  if (!role.allowReads) throw new BlockError('EPERM', `LUN ${lun} is a secondary mirror image: host reads refused (the mirror does not allow secondary reads)`);
  return 'direct';
}

/**
 * Whether a host opening the LUN is told it is read-only (NBD's READ_ONLY transmission flag):
 * a secondary image, whose every write, trim and zeroing `admitHostIo` refuses. The flag is
 * settled when the export is opened (NBD_OPT_GO / EXPORT_NAME) and holds for that session: a
 * promoted secondary is writable to the sessions opened after the promote. A LUN offline for a
 * backfresh is not advertised read-only: that lasts only as long as the backfresh.
 */
export function hostReadOnly(role: HostRole | null | undefined): boolean {
  return role?.role === 'secondary';
}

/** A LUN fenced against host writes (`POST /v1/luns/REF/fence`), as persisted in its LUN record. */
export interface LunFence {
  reason: string;
  /** Who fenced it (a heartbeat agent's id, an operator). */
  by: string;
  /** When (ms since the epoch). */
  sinceMs: number;
}

/**
 * The host-admission rule of a fenced LUN, on every array kind (the single-process array's
 * FenceLayer, ./fence.ts; the SP's LunRouter, from the route the chassis pushes): writes, trims
 * and zeroes are refused (EPERM); reads, block status, cache hints and flushes pass (a flush
 * changes no data). Only host I/O is fenced: the mirror driver's own writes (a secondary's
 * replication traffic, resync) do not cross this rule. Returns the refusal, or null: the caller
 * throws or rejects it, so a layer adds no promise of its own to a write it lets through.
 */
export function fenceRefusal(fence: Pick<LunFence, 'reason' | 'by'> | null | undefined, op: IoOpKind, lun: number | string): BlockError | null {
  if (!fence || !modifiesData(op)) return null;
  return new BlockError('EPERM', `LUN ${lun} is fenced: host writes refused: ${fence.reason} (fenced by ${fence.by})`);
}
