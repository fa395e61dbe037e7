/**
 * Region locks of a clone: a region not yet copied is copied (by the background copy, or by a
 * host write before it changes part of it) by one holder at a time. Several regions are taken in
 * ascending order, so two holders never wait on each other.
 */
export class RegionLocks {
  private readonly held = new Map<number, Promise<void>>();

  /** Takes every region of `regions` (ascending); the result releases them. */
  async lock(regions: readonly number[]): Promise<() => void> {
    const sorted = [...regions].sort((a, b) => a - b);
    const releases: Array<() => void> = [];
    for (const r of sorted) releases.push(await this.lockOne(r));
    return () => {
      for (const release of releases) release();
    };
  }

  private async lockOne(region: number): Promise<() => void> {
    for (;;) {
      const busy = this.held.get(region);
      if (!busy) break;
      await busy;
    }
    let done!: () => void;
    this.held.set(
      region,
      new Promise<void>((r) => (done = r)),
    );
    return () => {
      this.held.delete(region);
      done();
    };
  }
}
