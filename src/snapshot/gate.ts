/**
 * The write boundary of a LUN: every change (write, trim, zero) enters and leaves it, and a
 * snapshot is taken while it is held: new changes wait, changes in flight finish, then the
 * snapshot is cut and the gate opens again. A group snapshot holds the gates of all its LUNs
 * at once, so every LUN is cut at the same boundary.
 */
export class WriteGate {
  private inFlight = 0;
  private holds = 0;
  private drained: (() => void) | undefined;
  private readonly waiting: Array<() => void> = [];

  get held(): boolean {
    return this.holds > 0;
  }

  /** Enters the gate: undefined when open (the common case costs no await), else a promise. */
  enter(): Promise<void> | undefined {
    if (this.holds === 0) {
      this.inFlight++;
      return undefined;
    }
    return new Promise((resolve) =>
      this.waiting.push(() => {
        this.inFlight++;
        resolve();
      }),
    );
  }

  leave(): void {
    if (this.inFlight <= 0) throw new Error('WriteGate.leave without enter');
    this.inFlight--;
    if (this.inFlight === 0 && this.drained) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }

  /** Closes the gate and resolves once no change is in flight. Holds nest. */
  async hold(): Promise<void> {
    this.holds++;
    if (this.inFlight === 0) return;
    await new Promise<void>((resolve) => {
      const before = this.drained;
      this.drained = () => {
        before?.();
        resolve();
      };
    });
  }

  release(): void {
    if (this.holds <= 0) throw new Error('WriteGate.release without hold');
    this.holds--;
    if (this.holds > 0) return;
    for (const go of this.waiting.splice(0)) go();
  }
}
