import type { Socket } from 'node:net';

/**
 * CMI batching: the frames written to one socket during one turn of the event loop leave in one
 * vectored write (the socket is corked at the first frame and uncorked once this turn's I/O
 * callbacks have run), so N mirror calls or replies made together cost one system call and one
 * wake-up of the peer instead of N. Order is kept: frames go out in the order written.
 */
export class FrameBatcher {
  private corked = false;

  constructor(private readonly socket: Socket) {}

  /** Queues `frame` for this turn's write (dropped if the socket is already gone). */
  write(frame: Buffer): void {
    const s = this.socket;
    if (s.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      s.cork();
      setImmediate(this.flush);
    }
    s.write(frame);
  }

  private readonly flush = (): void => {
    this.corked = false;
    if (!this.socket.destroyed) this.socket.uncork();
  };
}
