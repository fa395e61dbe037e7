/**
 * The background copy of a clone: copies the regions not yet copied in order, at a set rate
 * (bytes per second, changeable while it runs), commits the copied map every few megabytes (a
 * crash loses at most that much progress, never data: an uncommitted region is copied again),
 * and reports progress at most once per CLONE_PROGRESS_MS. It ends when every region is copied
 * ('completed'), when stopped ('stopped'), or rejects on the first error.
 */
import type { CloneCopy } from './copy.js';
import { CLONE_PROGRESS_MS } from './types.js';

/** The copied map is committed after this much copying (or COMMIT_EVERY_MS). */
const COMMIT_EVERY_BYTES = 16 * 1024 * 1024;
const COMMIT_EVERY_MS = 500;

export interface CopyProgress {
  copiedBytes: number;
  totalBytes: number;
  /** What the copy moved since the last report, per second. */
  measuredBytesPerSec: number;
}

export class BackgroundCopier {
  private stopping = false;
  private running: Promise<'completed' | 'stopped'> | undefined;
  private wake: (() => void) | undefined;
  /** Pacing: bytes copied since `paceStart` (reset when the rate changes). */
  private paceStart = 0;
  private paceBytes = 0;
  /** The last measured throughput (bytes per second). */
  measuredBytesPerSec = 0;

  constructor(
    private readonly copy: CloneCopy,
    private rate: number,
    private readonly progress: (p: CopyProgress) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get rateBytesPerSec(): number {
    return this.rate;
  }

  get active(): boolean {
    return this.running !== undefined;
  }

  /** Changes the rate at once (a copy waiting for its turn recomputes). */
  setRate(rateBytesPerSec: number): void {
    this.rate = rateBytesPerSec;
    this.paceStart = this.now();
    this.paceBytes = 0;
    this.wake?.();
  }

  run(): Promise<'completed' | 'stopped'> {
    this.stopping = false;
    this.running ??= this.loop().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops after the region being copied; resolves once the loop has ended. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running?.catch(() => undefined);
  }

  private async loop(): Promise<'completed' | 'stopped'> {
    const map = this.copy.map;
    this.paceStart = this.now();
    this.paceBytes = 0;
    let sinceCommit = 0;
    let lastCommit = this.now();
    let lastReport = this.now();
    let reportBytes = 0;
    for (let region = 0; region < map.regionCount && !this.stopping; region++) {
      if (map.isCopied(region)) continue;
      const n = await this.copy.copyNext(region);
      sinceCommit += n;
      reportBytes += n;
      this.paceBytes += n;
      const now = this.now();
      if (sinceCommit >= COMMIT_EVERY_BYTES || now - lastCommit >= COMMIT_EVERY_MS) {
        await this.copy.commit();
        sinceCommit = 0;
        lastCommit = this.now();
      }
      if (now - lastReport >= CLONE_PROGRESS_MS) {
        this.measuredBytesPerSec = Math.round((reportBytes * 1000) / (now - lastReport));
        this.progress({ copiedBytes: map.copiedBytes, totalBytes: map.bitmap.lunSize, measuredBytesPerSec: this.measuredBytesPerSec });
        lastReport = now;
        reportBytes = 0;
      }
      await this.pace();
    }
    await this.copy.commit();
    if (this.stopping) return 'stopped';
    return map.complete ? 'completed' : this.loop();
  }

  /** Waits until the bytes copied since the pace started are due at the rate (or a stop or rate change). */
  private async pace(): Promise<void> {
    for (;;) {
      if (this.stopping) return;
      const due = this.paceStart + (this.paceBytes * 1000) / this.rate;
      const wait = due - this.now();
      if (wait <= 0) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.wake = undefined;
          resolve();
        }, Math.ceil(wait));
        this.wake = () => {
          clearTimeout(t);
          this.wake = undefined;
          resolve();
        };
      });
    }
  }
}
