/**
 * A plain decimal number as sensors print it: `20.3`, `-9.4`, `1.5e3`, `102`.
 * `Number()` alone is too lenient for wire data: it reads "" and " " as 0, "0x10" as 16 and
 * "Infinity" as a value, each of which would store a reading nobody sent.
 */
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

export function parseDecimal(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DECIMAL.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

/** Same bounds as `EpochMillis` in shared/src/reading.ts: 1970 to 2200. */
export const MAX_EPOCH_MS = 7_258_118_400_000;

/**
 * Below this a numeric timestamp is taken as seconds, above it as milliseconds.
 * 1e11 s is the year 5138; 1e11 ms is March 1973. No real reading falls between the two
 * interpretations, so a device may send either without saying which.
 */
const SECONDS_MS_BOUNDARY = 1e11;

/** An ISO 8601 date-time with an explicit zone. Zone-less strings would be read as the gateway's local time. */
const ISO_WITH_ZONE = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/i;

export type TimestampResult = { ok: true; ts: number } | { ok: false; message: string };

/** Epoch seconds or milliseconds (number or numeric string), or ISO 8601 with a zone, to epoch ms. */
export function toEpochMillis(value: unknown): TimestampResult {
  let ms: number;
  if (typeof value === "number") {
    if (!Number.isFinite(value)) return { ok: false, message: "timestamp is not a finite number" };
    ms = Math.abs(value) < SECONDS_MS_BOUNDARY ? value * 1000 : value;
  } else if (typeof value === "string") {
    const numeric = parseDecimal(value);
    if (numeric !== undefined) return toEpochMillis(numeric);
    if (!ISO_WITH_ZONE.test(value.trim())) {
      return {
        ok: false,
        message: `timestamp ${JSON.stringify(value)} is neither epoch seconds/ms nor ISO 8601 with a zone`,
      };
    }
    ms = Date.parse(value.trim().replace(" ", "T"));
    if (Number.isNaN(ms)) return { ok: false, message: `timestamp ${JSON.stringify(value)} is not a valid date` };
  } else {
    return { ok: false, message: `timestamp has type ${typeOf(value)}, expected a number or a string` };
  }
  ms = Math.round(ms);
  if (ms < 0 || ms > MAX_EPOCH_MS) {
    return { ok: false, message: `timestamp ${String(value)} is outside 1970..2200` };
  }
  return { ok: true, ts: ms };
}

export function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Unit conversions leave binary noise (1016.1 hPa * 100 = 101610.00000000001 Pa, 68 °F ->
 * 20.000000000000004 °C). 12 significant digits are far beyond any sensor's resolution and
 * store and print cleanly.
 */
export function cleanFloat(value: number): number {
  return Number(value.toPrecision(12));
}
