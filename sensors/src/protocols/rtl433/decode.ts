import { MAX_ABS_VALUE, type DecodedReading } from "@datalab/shared/reading";
import { typeOf } from "../common/numbers";
import { decodeError, ignoredResult, readingsResult, type DecodeResult } from "../common/result";
import {
  canonicalizeUnits,
  NO_CONFIGURED_UNITS,
  splitUnitSuffix,
  type FieldNote,
  type UnitConfig,
} from "../common/units";
import {
  RTL433_FIELD_RULES,
  RTL433_IDENTITY_KEYS,
  RTL433_INDEXED_HUMIDITY,
  RTL433_INDEXED_TEMPERATURE,
  RTL433_LEGACY_BATTERY_KEY,
  RTL433_METADATA_KEYS,
} from "./constants";
import type { Rtl433Event } from "./frame";
import { rtl433SensorId } from "./sensor-id";
import { rtl433Timestamp, type Rtl433TimeOptions } from "./time";
import { metricNameProblem } from "../common/names";

export interface Rtl433DecodeOptions extends Rtl433TimeOptions {
  /** Units the operator configured for metrics whose key states none (e.g. Efergy's `current`). */
  readonly units?: UnitConfig;
}

/** key -> the rule it feeds, its rank among that rule's sources (0 = preferred) and its stated unit. */
const SOURCES = new Map<string, { readonly rule: number; readonly rank: number; readonly unit: string | undefined }>();
RTL433_FIELD_RULES.forEach((rule, ruleIndex) =>
  rule.sources.forEach((source, rank) => SOURCES.set(source.key, { rule: ruleIndex, rank, unit: source.unit })),
);

function addReading(
  readings: DecodedReading[],
  sensorId: string,
  ts: number | undefined,
  metric: string,
  value: number,
  unit: string | undefined,
): void {
  const reading: DecodedReading = { sensorId, metric, value };
  if (unit !== undefined) reading.unit = unit;
  if (ts !== undefined) reading.ts = ts;
  readings.push(reading);
}

function badField(key: string, raw: unknown): DecodeResult {
  return decodeError(
    "bad_field",
    `"${key}" is ${typeOf(raw)} ${JSON.stringify(raw)}, expected a finite number within ±${MAX_ABS_VALUE}`,
  );
}

/** The contract's value range (shared/src/reading.ts): a decoder never emits what the schema refuses. */
function isValue(raw: unknown): raw is number {
  return typeof raw === "number" && raw <= MAX_ABS_VALUE && raw >= -MAX_ABS_VALUE;
}

/**
 * rtl_433 event -> readings, every numeric field accounted for:
 * - a key with a rule (constants.ts) becomes that rule's metric; when an event carries several
 *   keys for one rule (`wind_avg_km_h` and `wind_avg_mi_h`) the preferred one is stored and the
 *   others are noted `superseded`;
 * - `temperature_<n>_C`, `humidity_<n>`: multi-probe channels;
 * - identity keys (`id`, `channel`) make the sensor id; receiver metadata (`rssi`, `snr`...) is
 *   noted `metadata`;
 * - any other numeric key is stored as its own metric, with the unit its suffix states
 *   (`storm_dist_km`) or, without one, an unknown unit (noted `unit_unknown`).
 * A rule's key with a non-numeric value fails the event as `bad_field` (a changed decoder
 * output should be seen). An event with no measurement (a doorbell press) is `ignored`,
 * category `no_metrics`. Units are made canonical before returning (Pa, m/s, Cel...).
 */
export function decodeRtl433(event: Rtl433Event, options: Rtl433DecodeOptions = {}): DecodeResult {
  const sensorId = rtl433SensorId(event);
  const ts = rtl433Timestamp(event.fields["time"], options);
  const fields = event.fields;
  const readings: DecodedReading[] = [];
  let notes: FieldNote[] | undefined;
  const chosen: Array<string | undefined> = [];
  const chosenRank: number[] = [];
  const others: string[] = [];
  for (const key in fields) {
    const raw = fields[key];
    if (raw === null || raw === undefined) continue;
    const source = SOURCES.get(key);
    if (source !== undefined) {
      const current = chosen[source.rule];
      if (current === undefined || source.rank < chosenRank[source.rule]!) {
        if (current !== undefined) (notes ??= []).push({ field: current, outcome: "superseded" });
        chosen[source.rule] = key;
        chosenRank[source.rule] = source.rank;
      } else {
        (notes ??= []).push({ field: key, outcome: "superseded" });
      }
      continue;
    }
    if (typeof raw !== "number" || RTL433_IDENTITY_KEYS.has(key)) continue;
    if (RTL433_METADATA_KEYS.has(key)) (notes ??= []).push({ field: key, outcome: "metadata" });
    else others.push(key);
  }
  for (let i = 0; i < RTL433_FIELD_RULES.length; i++) {
    const key = chosen[i];
    if (key === undefined) continue;
    const raw = fields[key];
    if (!isValue(raw)) return badField(key, raw);
    addReading(readings, sensorId, ts, RTL433_FIELD_RULES[i]!.metric, raw, SOURCES.get(key)!.unit);
  }

  if (fields["battery_ok"] === undefined) {
    const legacy = fields[RTL433_LEGACY_BATTERY_KEY];
    if (legacy === "OK") addReading(readings, sensorId, ts, "battery_ok", 1, undefined);
    else if (legacy === "LOW") addReading(readings, sensorId, ts, "battery_ok", 0, undefined);
  }

  for (const key of others) {
    const raw = fields[key] as number;
    if (!isValue(raw)) return badField(key, raw);
    // A key becomes a metric name: one the contract refuses must refuse the event here, by its frame.
    const nameProblem = metricNameProblem(key);
    if (nameProblem) return decodeError("bad_field", `${nameProblem}: ${JSON.stringify(key.slice(0, 80))}`);
    const temperature = key.startsWith("temperature_") ? RTL433_INDEXED_TEMPERATURE.exec(key) : null;
    if (temperature) {
      addReading(readings, sensorId, ts, `temperature_${temperature[1]}`, raw, temperature[2] === "F" ? "F" : "Cel");
      continue;
    }
    const humidity = key.startsWith("humidity_") ? RTL433_INDEXED_HUMIDITY.exec(key) : null;
    if (humidity) {
      addReading(readings, sensorId, ts, `humidity_${humidity[1]}`, raw, "%RH");
      continue;
    }
    const suffixed = splitUnitSuffix(key);
    if (suffixed !== undefined) {
      addReading(readings, sensorId, ts, suffixed.metric, raw, suffixed.unit);
    } else {
      addReading(readings, sensorId, ts, key, raw, undefined);
      (notes ??= []).push({ field: key, outcome: "unit_unknown" });
    }
  }

  if (readings.length === 0) {
    return ignoredResult("no_metrics", `${event.model} event carries no measurement`, notes);
  }
  return readingsResult(readings, canonicalizeUnits(readings, notes, options.units ?? NO_CONFIGURED_UNITS));
}
