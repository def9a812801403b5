/**
 * Which PostgreSQL failures mean "the database cannot take writes now" (pause and wait)
 * rather than "this batch is refused" (count it; dead-letter it in the end).
 * SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** Node socket errors: the server is not there. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** Conditions that pass without anyone changing the batch. */
const UNAVAILABLE_SQLSTATES = new Set([
  "57P01", // admin_shutdown: pg_ctl stop -m fast
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now: starting up or in recovery
  "57014", // query_canceled (statement_timeout, pg_cancel_backend)
  "25006", // read_only_sql_transaction: a replica promoted/demoted under us
  "3D000", // invalid_catalog_name: database dropped or not created yet
  "42P01", // undefined_table: schema missing (migrations not applied); pausing keeps the backlog
  "42703", // undefined_column: a hub newer than the schema
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);

/** SQLSTATE classes that are never the batch's fault. */
const UNAVAILABLE_CLASSES = [
  "08" /* connection exception */,
  "53" /* insufficient resources: disk full, too many connections */,
  "28" /* auth */,
  "58" /* system error (I/O) */,
];

/** Messages node-postgres uses for a connection that went away (these carry no code). */
const DRIVER_MESSAGES = new RegExp(
  [
    "connection terminated",
    "terminating connection",
    "connection timeout",
    "timeout exceeded when trying to connect",
    "not queryable",
    "server closed the connection",
    "client was closed",
    "cannot use a pool after calling end",
  ].join("|"),
  "i",
);

export function isPgUnavailable(err: unknown): boolean {
  if (!err || typeof err !== "object") return false;
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown };
  const code = typeof e.code === "string" ? e.code : undefined;
  if (code) {
    if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code)) return true;
    if (code.length === 5 && UNAVAILABLE_CLASSES.includes(code.slice(0, 2))) return true;
  }
  if (typeof e.message === "string" && DRIVER_MESSAGES.test(e.message)) return true;
  // Node wraps "connect to every resolved address failed" in an AggregateError.
  if (Array.isArray(e.errors) && e.errors.some(isPgUnavailable)) return true;
  return e.cause !== undefined && e.cause !== err && isPgUnavailable(e.cause);
}

/** Retried inside the same write before giving up: they clear in milliseconds. */
export function isPgRetryableNow(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === "40001" || code === "40P01";
}

/** A row with the same key is already there (unique_violation). */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "23505";
}
