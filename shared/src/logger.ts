import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };

/**
 * Logs are JSON lines on stderr (journald and `kubectl logs` keep them; stdout stays free
 * for command output). Libraries take a logger from their caller and make a child of it.
 */
export function createLogger(name: string, level: LevelWithSilent = (process.env.DATALAB_LOG_LEVEL as LevelWithSilent) || "info"): Logger {
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
