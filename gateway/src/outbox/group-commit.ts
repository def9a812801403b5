import type { Logger } from "@datalab/shared";
import type { AcceptedMessage, Outbox, QuarantinedMessage } from "./store";

export interface GroupCommitOptions {
  /** Commit at least this often while messages wait (ms). The worst-case loss window in time. */
  intervalMs: number;
  /** Commit as soon as this many readings wait. The worst-case loss window in count. */
  maxReadings: number;
  logger: Logger;
  onCommitted: (readings: number, quarantined: readonly QuarantinedMessage[]) => void;
  onError: (err: Error) => void;
}

/**
 * Group commit: messages wait in memory for at most `intervalMs` or `maxReadings`, then go to
 * SQLite in one transaction. One fsync per group instead of per message is what lets a Pi's
 * SD card keep up; the price is the window stated above, lost on a crash before the commit.
 */
export class GroupCommitter {
  private accepted: AcceptedMessage[] = [];
  private quarantined: QuarantinedMessage[] = [];
  private pendingReadings = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly outbox: Outbox,
    private readonly opts: GroupCommitOptions,
  ) {}

  accept(m: AcceptedMessage): void {
    this.accepted.push(m);
    this.pendingReadings += m.readings.length;
    if (this.pendingReadings >= this.opts.maxReadings) this.flush();
    else this.arm();
  }

  quarantine(q: QuarantinedMessage): void {
    this.quarantined.push(q);
    if (this.quarantined.length >= this.opts.maxReadings) this.flush();
    else this.arm();
  }

  get pending(): number {
    return this.pendingReadings + this.quarantined.length;
  }

  private arm(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush();
    }, this.opts.intervalMs);
  }

  /** Commit what waits now. Safe to call at any time (shutdown calls it). */
  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.accepted.length === 0 && this.quarantined.length === 0) return;
    const accepted = this.accepted;
    const quarantined = this.quarantined;
    this.accepted = [];
    this.quarantined = [];
    this.pendingReadings = 0;
    try {
      const n = this.outbox.commit(accepted, quarantined);
      this.opts.onCommitted(n, quarantined);
    } catch (err) {
      // A failed commit (disk full, I/O error) must not lose what waited: put it back in
      // front and retry on the next tick; the caller reports the error.
      this.accepted = accepted.concat(this.accepted);
      this.quarantined = quarantined.concat(this.quarantined);
      this.pendingReadings = this.accepted.reduce((s, m) => s + m.readings.length, 0);
      this.opts.onError(err as Error);
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, Math.max(this.opts.intervalMs, 1_000));
    }
  }

  close(): void {
    this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
