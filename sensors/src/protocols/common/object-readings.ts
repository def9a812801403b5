import type { DecodedReading } from "@datalab/shared";
import { metricNameProblem, sensorIdProblem } from "./names";
import { toEpochMillis, typeOf } from "./numbers";
import { decodeError, ignoredResult, readingsResult, type DecodeResult } from "./result";
import { genericUnit } from "./units";

/** Keys that name the sensor, in order of preference, in the minimal JSON form. */
export const SENSOR_KEYS = ["sensor", "id", "name"] as const;
/** Key of the optional timestamp: epoch seconds, epoch ms, or ISO 8601 with a zone. */
export const TS_KEY = "ts";

const RESERVED = new Set<string>([...SENSOR_KEYS, TS_KEY]);

export interface ObjectReadingsOptions {
  /** Sensor id to use; when absent it comes from the object's `sensor`, `id` or `name` key. */
  readonly sensorId?: string;
}

/**
 * The minimal JSON form: `{"sensor": "kitchen", "temperature": 21.5, "humidity": 40, "ts": 1700000000}`.
 * Every other key with a number value is a metric (booleans count as 1/0); strings, nulls,
 * arrays and nested objects are skipped, because devices mix labels in with values.
 * A metric's unit comes from its name when the name is a well-known one (`temperature` -> Cel).
 * The richer MQTT JSON decoding lives in the gateway; this one is deliberately small.
 */
export function objectToReadings(
  obj: Readonly<Record<string, unknown>>,
  options: ObjectReadingsOptions = {},
): DecodeResult {
  let sensorId = options.sensorId;
  if (sensorId === undefined) {
    const key = SENSOR_KEYS.find((k) => obj[k] !== undefined && obj[k] !== null);
    if (key === undefined) {
      return decodeError("missing_field", `no sensor id: expected one of ${SENSOR_KEYS.join(", ")}`);
    }
    const value = obj[key];
    if (typeof value !== "string" && typeof value !== "number") {
      return decodeError("bad_field", `"${key}" has type ${typeOf(value)}, expected a string or a number`);
    }
    sensorId = String(value);
  }
  const idProblem = sensorIdProblem(sensorId);
  if (idProblem) return decodeError("bad_field", idProblem);

  let ts: number | undefined;
  if (obj[TS_KEY] !== undefined && obj[TS_KEY] !== null) {
    const parsed = toEpochMillis(obj[TS_KEY]);
    if (!parsed.ok) return decodeError("bad_field", `"${TS_KEY}": ${parsed.message}`);
    ts = parsed.ts;
  }

  const readings: DecodedReading[] = [];
  for (const key of Object.keys(obj)) {
    // Skipped even when the caller supplies the sensor id: `"id": 3` names, it does not measure.
    if (RESERVED.has(key)) continue;
    const raw = obj[key];
    let value: number;
    if (typeof raw === "number") {
      if (!Number.isFinite(raw)) return decodeError("bad_field", `"${key}" is not a finite number`);
      value = raw;
    } else if (typeof raw === "boolean") {
      value = raw ? 1 : 0;
    } else {
      continue;
    }
    const nameProblem = metricNameProblem(key);
    if (nameProblem) return decodeError("bad_field", `${nameProblem}: ${JSON.stringify(key.slice(0, 80))}`);
    const reading: DecodedReading = { sensorId, metric: key, value };
    const unit = genericUnit(key);
    if (unit !== undefined) reading.unit = unit;
    if (ts !== undefined) reading.ts = ts;
    readings.push(reading);
  }
  if (readings.length === 0) return ignoredResult("no_metrics", `object for ${sensorId} has no numeric fields`);
  return readingsResult(readings);
}
