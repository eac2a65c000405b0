/**
 * A one-line progress bar on stderr, redrawn at most 10 times a second, only
 * when stderr is a terminal: logs and pipes get the summary, not the frames.
 */
export class ProgressBar {
  private readonly enabled = Boolean(process.stderr.isTTY);
  private lastDraw = 0;
  private done = 0;
  private bytes = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
  ) {}

  tick(bytes = 0): void {
    this.done++;
    this.bytes += bytes;
    const now = Date.now();
    if (this.enabled && (now - this.lastDraw >= 100 || this.done === this.total)) {
      this.lastDraw = now;
      const width = 30;
      const filled = this.total ? Math.round((width * this.done) / this.total) : width;
      process.stderr.write(
        `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${this.total}  ${(this.bytes / 1e6).toFixed(1)} MB`,
      );
    }
  }

  /** A line of its own (a failure, say) without tearing the bar. */
  note(line: string): void {
    process.stderr.write(`${this.enabled ? '\r\x1b[K' : ''}${line}\n`);
  }

  end(): void {
    if (this.enabled) process.stderr.write('\n');
  }
}
