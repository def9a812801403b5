/**
 * Named errors, so a caller can tell bad input from a server that is down from a bug.
 * Every class keeps the underlying error as `cause`.
 */
export class DataLabError extends Error {
  override name = "DataLabError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A configuration value is wrong. `problems` lists every problem found, each naming its key. */
export class ConfigError extends DataLabError {
  override name = "ConfigError";
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join("\n  - ")}`);
  }
}

/** Input that cannot become readings. `reason` is a short machine label used in metrics. */
export class DecodeError extends DataLabError {
  override name = "DecodeError";
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A batch on the wire that cannot be decoded or is not to be trusted. */
export class BatchError extends DataLabError {
  override name = "BatchError";
  constructor(
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Why the uplink could not deliver, as a label an operator (or an alert) can act on. */
export type UplinkErrorKind =
  | "authorization"
  | "permission"
  | "no_stream"
  | "tls"
  | "timeout"
  | "unreachable"
  | "other";

/**
 * The uplink (NATS) refused or failed a publish. `kind` is classified once, where the error
 * entered the uplink; everything after reads the field.
 */
export class UplinkError extends DataLabError {
  override name = "UplinkError";
  readonly kind: UplinkErrorKind;
  constructor(message: string, options?: { cause?: unknown; kind?: UplinkErrorKind }) {
    super(message, options);
    this.kind = options?.kind ?? "other";
  }
}

/** A sink (Postgres, MongoDB) failed to write. */
export class SinkError extends DataLabError {
  override name = "SinkError";
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
