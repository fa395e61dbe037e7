/**
 * Progress of a run on stderr: a plain line for every step, fault and workload change; on a
 * terminal also a live status line (each workload's acknowledged writes, the fault in force),
 * redrawn in place once a second.
 */
export class Progress {
  private status = '';
  private readonly tty: boolean;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly startedAtMs: () => number,
    private readonly out: NodeJS.WriteStream | null = process.stderr,
  ) {
    this.tty = out?.isTTY === true;
  }

  line(text: string): void {
    if (!this.out) return;
    const t = ((Date.now() - this.startedAtMs()) / 1000).toFixed(1).padStart(6);
    this.out.write(`${this.tty ? '\r\x1b[K' : ''}[${t} s] ${text}\n${this.tty ? this.status : ''}`);
  }

  /** Live status (terminals only): `render` is called once a second. */
  live(render: () => string): void {
    if (!this.tty || !this.out) return;
    this.timer = setInterval(() => {
      this.status = render().slice(0, (this.out?.columns ?? 120) - 1);
      this.out?.write(`\r\x1b[K${this.status}`);
    }, 1000);
    this.timer.unref();
  }

  end(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.tty && this.out && this.status) this.out.write('\r\x1b[K');
    this.status = '';
  }
}
