import { fenceRefusal, type LunFence } from './admission.js';
import type { BlockDevice, WriteOptions, ZeroOptions } from './device.js';
import { LayerDevice } from './layer.js';

/**
 * The fence layer of a single-process array's LUN (composed in src/stack, topmost under the I/O
 * statistics): looks the LUN's fence up on every request (`POST /v1/luns/REF/fence` changes it
 * under open sessions) and refuses host writes, trims and zeroes while it is set (`fenceRefusal`,
 * the rule the SPs' routers follow too). Reads and flushes pass. The mirror driver's own I/O on
 * the LUN does not cross this layer.
 */
export class FenceLayer extends LayerDevice {
  constructor(
    lower: BlockDevice,
    readonly lunId: number,
    private readonly fenceOf: () => LunFence | undefined,
  ) {
    super(lower);
  }

  // Not async: a write let through costs a lookup, not a promise of this layer's own.
  override write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    const refused = fenceRefusal(this.fenceOf(), 'write', this.lunId);
    return refused ? Promise.reject(refused) : this.lower.write(offset, data, opts);
  }

  override trim(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    const refused = fenceRefusal(this.fenceOf(), 'trim', this.lunId);
    return refused ? Promise.reject(refused) : this.lower.trim(offset, length, opts);
  }

  override writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    const refused = fenceRefusal(this.fenceOf(), 'zero', this.lunId);
    return refused ? Promise.reject(refused) : this.lower.writeZeroes(offset, length, opts);
  }

  /** The device below belongs to the array; closing a session's view of it closes nothing. */
  override async close(): Promise<void> {}
}
