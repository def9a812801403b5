import type { Batch } from "./batch";
import { MAX_ABS_VALUE, MAX_RX_WINDOW_MS, type DecodedReading } from "./reading";

/**
 * Hand-written checks of the two shapes validated once per reading: the reading a gateway's
 * decoder produces, and the wire batch a hub receives. The zod schemas (reading.ts,
 * batch.ts) stay the contract and the source of every error message: these checks only
 * answer "certainly valid", never more leniently than zod (`shared/test/checks.test.ts`
 * holds them to that), and whatever they do not pass goes through zod, which either
 * explains the refusal or accepts it after all. They allocate nothing and return the object
 * they were given: zod copies every object it parses, which, at two objects per reading,
 * cost more than the checks themselves (garbage collection).
 */

/**
 * Control characters, and any surrogate at all: text holding a surrogate goes through zod,
 * which tells a pair from a lone one. One class, so each name is scanned once.
 */
const NOT_PLAIN = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff]/;
const MAX_EPOCH_MS = 7_258_118_400_000;

function isText(x: unknown, min: number, max: number): x is string {
  return typeof x === "string" && x.length >= min && x.length <= max && !NOT_PLAIN.test(x);
}

function isName(x: unknown, max: number): x is string {
  return isText(x, 1, max);
}

function isEpochMs(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0 && x <= MAX_EPOCH_MS;
}

function isSeq(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x > 0;
}

function isValue(x: unknown): x is number {
  return typeof x === "number" && x >= -MAX_ABS_VALUE && x <= MAX_ABS_VALUE;
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** True when zod's `MessageSource` certainly accepts `s`. */
export function isMessageSource(s: string): boolean {
  return isText(s, 0, 512);
}

/** True when zod's `DecodedReading` certainly accepts `r` as it is. */
export function isDecodedReading(r: unknown): r is DecodedReading {
  if (!isRecord(r)) return false;
  const { unit, ts } = r;
  return (
    isName(r.sensorId, 128) &&
    isName(r.metric, 64) &&
    isValue(r.value) &&
    (unit === undefined || isText(unit, 0, 32)) &&
    (ts === undefined || isEpochMs(ts))
  );
}

/** True when zod's `Batch` certainly accepts `b` as it is (format 2's messages already named). */
export function isWireBatch(b: unknown): b is Batch {
  if (!isRecord(b)) return false;
  if ((b.v !== 1 && b.v !== 2) || typeof b.gatewayId !== "string" || !isName(b.instance, 128)) return false;
  if (!isSeq(b.firstSeq) || !isSeq(b.lastSeq) || !isEpochMs(b.sentAt) || !Array.isArray(b.messages)) return false;
  for (const m of b.messages as unknown[]) {
    if (!isRecord(m)) return false;
    const { source, payload, encoding, readings } = m;
    if (!isText(source, 0, 512) || !isEpochMs(m.receivedAt) || typeof payload !== "string") return false;
    if ((encoding !== "utf8" && encoding !== "base64") || !Array.isArray(readings)) return false;
    for (const r of readings as unknown[]) {
      if (!isRecord(r)) return false;
      const unit = r.unit;
      if (!isSeq(r.seq) || !isName(r.sensorId, 128) || !isName(r.metric, 64) || !isValue(r.value) || !isEpochMs(r.ts))
        return false;
      if (unit !== null && !isText(unit, 0, 32)) return false;
      const w = r.rxWindow;
      if (w !== undefined && !(typeof w === "number" && Number.isSafeInteger(w) && w >= 0 && w <= MAX_RX_WINDOW_MS))
        return false;
    }
  }
  return true;
}
