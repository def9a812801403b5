import { DecodeError } from "@datalab/shared";

/**
 * Sensor clocks speak in seconds, milliseconds or ISO-8601. Numbers below 1e11 are taken as
 * seconds: as seconds 1e11 is the year 5138, as milliseconds it is 1973, so the split is safe
 * for any real clock. Anything else is refused rather than guessed.
 */
const ISO_8601 = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

export function parseTimestamp(v: unknown, key: string): number {
  if (typeof v === "number") {
    if (!Number.isFinite(v) || v < 0) throw new DecodeError("bad_timestamp", `"${key}" must be a non-negative number, got ${v}`);
    const ms = v < 1e11 ? v * 1000 : v;
    return checkRange(Math.round(ms), key, v);
  }
  if (typeof v === "string") {
    if (!ISO_8601.test(v)) {
      throw new DecodeError("bad_timestamp", `"${key}" is the string ${JSON.stringify(v.slice(0, 40))}; expected seconds, milliseconds or ISO-8601`);
    }
    const ms = Date.parse(v);
    if (Number.isNaN(ms)) throw new DecodeError("bad_timestamp", `"${key}" is not a valid date: ${JSON.stringify(v.slice(0, 40))}`);
    return checkRange(ms, key, v);
  }
  throw new DecodeError("bad_timestamp", `"${key}" must be a number or an ISO-8601 string, got ${typeName(v)}`);
}

function checkRange(ms: number, key: string, original: unknown): number {
  if (ms > 7_258_118_400_000) throw new DecodeError("bad_timestamp", `"${key}" ${String(original)} is after the year 2200`);
  return ms;
}

export function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `a ${typeof v}`;
}
