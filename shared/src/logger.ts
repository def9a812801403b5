import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/**
 * Logs are JSON lines on stderr (journald and `kubectl logs` keep them; stdout stays free
 * for command output). Libraries take a logger from their caller and make a child of it.
 */
export function createLogger(
  name: string,
  level: LevelWithSilent = (process.env.DATALAB_LOG_LEVEL as LevelWithSilent) || "info",
): Logger {
  return pino(
    {
      name,
      level,
      base: { component: name },
      redact: { paths: ["password", "token", "*.password", "*.token", "pass", "*.pass"], censor: "(secret)" },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that writes nothing: for tests and embedding. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}

type ThrottledLevel = "info" | "warn" | "error";

/** Distinct keys remembered at most; keys may carry an error's text, so the map is bounded. */
const MAX_THROTTLE_KEYS = 256;

/**
 * At most one log line per key per interval, with the number of lines held back since. A
 * radio unplugged for a week retries every second: the journal gets one line a minute, not
 * 600,000. A key is one kind of problem of one part (a reason, or an error's text).
 */
export class ThrottledLog {
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  info(key: string, fields: Record<string, unknown>, message: string): void {
    this.#log("info", key, fields, message);
  }

  warn(key: string, fields: Record<string, unknown>, message: string): void {
    this.#log("warn", key, fields, message);
  }

  error(key: string, fields: Record<string, unknown>, message: string): void {
    this.#log("error", key, fields, message);
  }

  /** Forget a key (or every key), so the next problem of that kind is logged at once. */
  reset(key?: string): void {
    if (key === undefined) this.#last.clear();
    else this.#last.delete(key);
  }

  #log(level: ThrottledLevel, key: string, fields: Record<string, unknown>, message: string): void {
    const t = this.now();
    const last = this.#last.get(key);
    if (last !== undefined && t - last.at < this.intervalMs) {
      last.suppressed += 1;
      return;
    }
    const suppressed = last?.suppressed ?? 0;
    this.logger[level]({ ...fields, ...(suppressed > 0 ? { suppressed } : {}) }, message);
    this.#last.delete(key);
    if (this.#last.size >= MAX_THROTTLE_KEYS) this.#last.delete(this.#last.keys().next().value as string);
    this.#last.set(key, { at: t, suppressed: 0 });
  }
}
