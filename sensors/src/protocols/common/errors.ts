/**
 * Thrown only for programmer or configuration mistakes (an option out of range, an encoder
 * given a node id of 300). Bad *input bytes* never throw: they come back as error results.
 */
export class CodecConfigError extends Error {
  override name = "CodecConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** An encoder was asked to build a frame that the protocol cannot carry. */
export class EncodeError extends Error {
  override name = "EncodeError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Validates a positive integer option, naming it in the error. */
export function positiveIntOption(name: string, value: number | undefined, fallback: number): number {
  const v = value ?? fallback;
  if (!Number.isSafeInteger(v) || v <= 0) {
    throw new CodecConfigError(`${name} must be a positive integer, got ${String(value)}`);
  }
  return v;
}
