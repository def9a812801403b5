import type { Batch } from "./batch";
import type { DecodedReading } from "./reading";

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

const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
const MAX_EPOCH_MS = 7_258_118_400_000;

function isName(x: unknown, max: number): x is string {
  return typeof x === "string" && x.length >= 1 && x.length <= max && !CONTROL_CHARS.test(x);
}

function isEpochMs(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0 && x <= MAX_EPOCH_MS;
}

function isSeq(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x > 0;
}

function isFiniteNumber(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** True when zod's `DecodedReading` certainly accepts `r` as it is. */
export function isDecodedReading(r: unknown): r is DecodedReading {
  if (!isRecord(r)) return false;
  const { unit, ts } = r;
  return (
    isName(r.sensorId, 128) &&
    isName(r.metric, 64) &&
    isFiniteNumber(r.value) &&
    (unit === undefined || (typeof unit === "string" && unit.length <= 32)) &&
    (ts === undefined || isEpochMs(ts))
  );
}

/** True when zod's `Batch` (format version 1) certainly accepts `b` as it is. */
export function isWireBatch(b: unknown): b is Batch {
  if (!isRecord(b)) return false;
  if (b.v !== 1 || typeof b.gatewayId !== "string" || typeof b.instance !== "string") return false;
  if (!isSeq(b.firstSeq) || !isSeq(b.lastSeq) || !isEpochMs(b.sentAt) || !Array.isArray(b.messages)) return false;
  for (const m of b.messages as unknown[]) {
    if (!isRecord(m)) return false;
    const { source, payload, encoding, readings } = m;
    if (typeof source !== "string" || source.length > 512 || !isEpochMs(m.receivedAt) || typeof payload !== "string") return false;
    if ((encoding !== "utf8" && encoding !== "base64") || !Array.isArray(readings)) return false;
    for (const r of readings as unknown[]) {
      if (!isRecord(r)) return false;
      const unit = r.unit;
      if (!isSeq(r.seq) || !isName(r.sensorId, 128) || !isName(r.metric, 64) || !isFiniteNumber(r.value) || !isEpochMs(r.ts)) return false;
      if (unit !== null && (typeof unit !== "string" || unit.length > 32)) return false;
    }
  }
  return true;
}
