import type { Logger } from "@datalab/shared";

/**
 * At most one log line per key per interval, with the number of lines held back since. A
 * radio unplugged for a week retries every second: the journal gets one line a minute, not
 * 600,000. Keys are few (one per kind of problem per source), so the map stays small.
 */
export class ThrottledLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    this.#log("warn", key, fields, message);
  }

  error(key: string, fields: Record<string, unknown>, message: string): void {
    this.#log("error", key, fields, message);
  }

  /** Forget a key, so the next problem of that kind is logged at once (after a recovery). */
  reset(key: string): void {
    this.#last.delete(key);
  }

  #log(level: "warn" | "error", key: string, fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    const last = this.#last.get(key);
    if (last !== undefined && t - last.at < this.intervalMs) {
      last.suppressed += 1;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.logger[level]({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, message);
    this.#last.set(key, { at: t, suppressed: 0 });
  }
}
