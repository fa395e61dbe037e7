/**
 * A snapshot export (`LUN@SNAP`) on an SP's NBD port: a read-only device whose reads and block
 * status the chassis answers from the LUN's snapshot (it holds the snapshot stores), over the
 * SP's channel to the chassis's data path.
 */
import { BlockError, OpDevice, type DeviceCapabilities, type IoOp, type IoResult } from '../../block/index.js';
import { CmiError } from '../cmi/index.js';
import { snapshotIo } from './cmi-handlers.js';
import type { SpCore } from './core.js';
import type { SnapshotExportSpec } from './protocol.js';

const CAPS: DeviceCapabilities = { trim: false, writeZeroes: false, fastZero: false, sparseStatus: true, coherentAcrossHandles: true };

class SnapshotExportDevice extends OpDevice {
  readonly readOnly = true;
  readonly capabilities = CAPS;
  readonly size: number;
  readonly blockSize: number;
  protected readonly label: string;

  constructor(
    private readonly core: SpCore,
    private readonly spec: SnapshotExportSpec,
  ) {
    super();
    this.size = spec.size;
    this.blockSize = spec.blockSize;
    this.label = `snapshot ${spec.name}`;
  }

  protected async runOp(op: IoOp): Promise<IoResult> {
    if (op.op === 'flush' || op.op === 'cache') return {};
    if (op.op !== 'read' && op.op !== 'status') throw new BlockError('EPERM', `${this.label} is read-only (clone it for a writable copy)`);
    try {
      return await snapshotIo(this.core, this.spec.name, op);
    } catch (e) {
      if (e instanceof CmiError) throw new BlockError((e.errno as BlockError['errno']) ?? 'EIO', e.message.replace(/^E[A-Z]+: /, ''));
      throw e;
    }
  }
}

/** The device of a snapshot export (one per lookup: NBD sessions hold their own). */
export function snapshotExportDevice(core: SpCore, spec: SnapshotExportSpec): OpDevice {
  return new SnapshotExportDevice(core, spec);
}
