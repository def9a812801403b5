import type { DecodedReading } from "@datalab/shared";
import type { FieldNote } from "./units";

/**
 * Why bytes could not become a frame, or a frame could not become readings.
 * These short labels travel with the raw bytes into the gateway's quarantine and label its
 * counters, so an operator sees "bad_checksum: 12" rather than a debug line.
 */
export type CodecErrorReason =
  /** Bytes outside any frame: before a start byte, or noise between frames. */
  | "garbage"
  | "bad_checksum"
  /** A length field that cannot be right (zero, or the frame layout does not add up). */
  | "bad_length"
  /** A declared frame length above the configured maximum. */
  | "frame_too_long"
  /** A text line above the configured maximum; the rest of the line is discarded. */
  | "line_too_long"
  /** The frame ended (new start byte, end of stream) before its declared length. */
  | "truncated_frame"
  | "not_json"
  /** Valid JSON, but not an object (an array, a number, a string). */
  | "not_object"
  /** A field is present but its value is unusable (not a number, out of range, bad name). */
  | "bad_field"
  /** A field the format needs is absent. */
  | "missing_field"
  /** The frame is fine but its application payload is not one we can read. */
  | "bad_payload"
  | "unknown_message_type"
  /** A message with nothing in it but whitespace. */
  | "empty"
  /** DataLab JSON: bytes that are not UTF-8 text. */
  | "not_utf8"
  /** DataLab JSON: valid JSON of a shape the format does not have (a number, no sensor id). */
  | "wrong_shape"
  | "bad_sensor_id"
  /** DataLab JSON: a value that is not a finite number (a numeric string, null as the value). */
  | "bad_value"
  | "bad_timestamp";

/** One thing the incremental parser found: a frame, or bytes it had to reject. */
export type ParseResult<F> = ParsedFrame<F> | ParseError;

export interface ParsedFrame<F> {
  readonly kind: "frame";
  readonly frame: F;
  /** The bytes as received (escaped, for XBee API mode 2), without line terminators. A copy. */
  readonly raw: Buffer;
}

export interface ParseError {
  readonly kind: "error";
  readonly reason: CodecErrorReason;
  readonly message: string;
  /** The rejected bytes, for quarantine. A copy, bounded by the parser's maximum length. */
  readonly raw: Buffer;
}

/** What a frame value object's `fromBuffer` returns: it never throws on bad input. */
export type FrameResult<F> =
  | { readonly ok: true; readonly frame: F }
  | { readonly ok: false; readonly reason: CodecErrorReason; readonly message: string };

/**
 * What `decode(frame)` returns.
 * - `readings`: the frame carried measurements (possibly several).
 * - `ignored`: a well-formed frame that is not a measurement and not a fault (a log line,
 *   a presentation, a modem status). `category` is a short label for counting them.
 * - `error`: the frame cannot be turned into readings; quarantine it with `reason`.
 */
export type DecodeResult =
  | {
      readonly kind: "readings";
      readonly readings: DecodedReading[];
      readonly notes?: readonly FieldNote[] | undefined;
    }
  | {
      readonly kind: "ignored";
      readonly category: string;
      readonly message: string;
      readonly notes?: readonly FieldNote[] | undefined;
    }
  | { readonly kind: "error"; readonly reason: CodecErrorReason; readonly message: string };

/** Parse and decode in one step, as `ProtocolCodec.push` returns it. */
export type CodecOutput<F> =
  | {
      readonly kind: "readings";
      readonly frame: F;
      readonly readings: DecodedReading[];
      readonly raw: Buffer;
      /** Numeric fields not stored with a known unit (see FieldOutcome), to be counted. */
      readonly notes?: readonly FieldNote[] | undefined;
    }
  | {
      readonly kind: "ignored";
      readonly frame: F;
      readonly category: string;
      readonly message: string;
      readonly raw: Buffer;
      readonly notes?: readonly FieldNote[] | undefined;
    }
  | {
      readonly kind: "error";
      /** `parse`: the bytes never made a frame. `decode`: a valid frame with unusable content. */
      readonly stage: "parse" | "decode";
      readonly reason: CodecErrorReason;
      readonly message: string;
      readonly raw: Buffer;
      readonly frame?: F;
    };

export function frameOk<F>(frame: F): FrameResult<F> {
  return { ok: true, frame };
}

export function frameError<F = never>(reason: CodecErrorReason, message: string): FrameResult<F> {
  return { ok: false, reason, message };
}

export function readingsResult(readings: DecodedReading[], notes?: readonly FieldNote[]): DecodeResult {
  return notes === undefined || notes.length === 0
    ? { kind: "readings", readings }
    : { kind: "readings", readings, notes };
}

export function ignoredResult(category: string, message: string, notes?: readonly FieldNote[]): DecodeResult {
  return notes === undefined || notes.length === 0
    ? { kind: "ignored", category, message }
    : { kind: "ignored", category, message, notes };
}

export function decodeError(reason: CodecErrorReason, message: string): DecodeResult {
  return { kind: "error", reason, message };
}

/** Joins a parse result with its decode result into one output for generic sources. */
export function toCodecOutput<F>(result: ParseResult<F>, decode: (frame: F) => DecodeResult): CodecOutput<F> {
  if (result.kind === "error") {
    return {
      kind: "error",
      stage: "parse",
      reason: result.reason,
      message: result.message,
      raw: result.raw,
    };
  }
  const { frame, raw } = result;
  const decoded = decode(frame);
  switch (decoded.kind) {
    case "readings":
      return decoded.notes
        ? { kind: "readings", frame, readings: decoded.readings, raw, notes: decoded.notes }
        : { kind: "readings", frame, readings: decoded.readings, raw };
    case "ignored":
      return decoded.notes
        ? { kind: "ignored", frame, category: decoded.category, message: decoded.message, raw, notes: decoded.notes }
        : { kind: "ignored", frame, category: decoded.category, message: decoded.message, raw };
    case "error":
      return {
        kind: "error",
        stage: "decode",
        reason: decoded.reason,
        message: decoded.message,
        raw,
        frame,
      };
  }
}
