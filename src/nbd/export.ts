import type { BlockDevice } from '../block/index.js';
import { LIMITS, TF } from './constants.js';

/** One named export: what a client reaches with NBD_OPT_GO / EXPORT_NAME. */
export interface NbdExport {
  name: string;
  description?: string;
  device: BlockDevice;
  /** Served read-only even if the device is writable. */
  readOnly?: boolean;
}

/** Where sessions find exports; looked up on every negotiation, so exports may come and go. */
export interface ExportCatalog {
  /** `''` names the default export (clients that send no name get it). */
  lookup(name: string): NbdExport | undefined;
  list(): NbdExport[];
}

export function isReadOnly(exp: NbdExport): boolean {
  return exp.readOnly === true || exp.device.readOnly;
}

/**
 * Transmission flags, true of this export on this connection. DF only means something with
 * structured replies. CAN_MULTI_CONN only where a flush on one connection covers writes made on
 * all of them, which the device states (one shared image handle).
 */
export function transmissionFlags(exp: NbdExport, structured: boolean): number {
  const caps = exp.device.capabilities;
  let f = TF.HAS_FLAGS | TF.SEND_FLUSH | TF.SEND_FUA | TF.SEND_CACHE;
  if (isReadOnly(exp)) f |= TF.READ_ONLY;
  else {
    if (caps.trim) f |= TF.SEND_TRIM;
    if (caps.writeZeroes) f |= TF.SEND_WRITE_ZEROES | TF.SEND_FAST_ZERO;
  }
  if (structured) f |= TF.SEND_DF;
  if (caps.coherentAcrossHandles) f |= TF.CAN_MULTI_CONN;
  return f;
}

export interface BlockSizes {
  minimum: number;
  preferred: number;
  maximum: number;
}

export function blockSizes(exp: NbdExport): BlockSizes {
  const minimum = exp.device.blockSize;
  return { minimum, preferred: Math.max(minimum, LIMITS.PREFERRED_BLOCK), maximum: LIMITS.MAX_PAYLOAD };
}
