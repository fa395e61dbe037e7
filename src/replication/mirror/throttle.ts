/**
 * Token bucket for the synchronization rate (bytes per second). The rate can change while a
 * resync runs; a burst of at most one second's worth (and at least one chunk) is allowed, so a
 * long resync averages the configured rate.
 */
/** A throttled wait sleeps at most this long before it looks again (a stop, a rate change). */
const maxSleepMs = 200;

export class RateLimiter {
  private tokens: number;
  private last = performance.now();

  constructor(private rate: number) {
    if (!(rate > 0)) throw new RangeError(`rate must be positive, not ${rate}`);
    this.tokens = 0;
  }

  setRate(rate: number): void {
    if (!(rate > 0)) throw new RangeError(`rate must be positive, not ${rate}`);
    this.refill();
    this.rate = rate;
  }

  get bytesPerSecond(): number {
    return this.rate;
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  /** Waits until `bytes` may be sent; `stopped()` ends the wait early (returns false). */
  async take(bytes: number, stopped: () => boolean): Promise<boolean> {
    for (;;) {
      if (stopped()) return false;
      this.refill();
      // A chunk larger than the bucket may go once the bucket is full.
      if (this.tokens >= Math.min(bytes, this.rate)) {
        this.tokens -= bytes;
        return true;
      }
      const need = Math.min(bytes, this.rate) - this.tokens;
      const ms = Math.max(1, Math.min(maxSleepMs, (need / this.rate) * 1000));
      await new Promise((r) => setTimeout(r, ms));
    }
  }
}
