import type { DecodedReading } from "@datalab/shared";
import { cleanFloat, typeOf } from "../common/numbers";
import { decodeError, ignoredResult, readingsResult, type DecodeResult } from "../common/result";
import {
  fahrenheitToCelsius,
  RTL433_FIELD_RULES,
  RTL433_INDEXED_HUMIDITY,
  RTL433_INDEXED_TEMPERATURE,
  RTL433_LEGACY_BATTERY_KEY,
} from "./constants";
import type { Rtl433Event } from "./frame";
import { rtl433SensorId } from "./sensor-id";
import { rtl433Timestamp, type Rtl433TimeOptions } from "./time";

export type Rtl433DecodeOptions = Rtl433TimeOptions;

/** key -> the rule it feeds and its rank among that rule's sources (0 = preferred). */
const SOURCES = new Map<string, { readonly rule: number; readonly rank: number; readonly convert?: (v: number) => number }>();
RTL433_FIELD_RULES.forEach((rule, ruleIndex) =>
  rule.sources.forEach((source, rank) => SOURCES.set(source.key, { rule: ruleIndex, rank, ...(source.convert ? { convert: source.convert } : {}) })),
);

function addReading(readings: DecodedReading[], sensorId: string, ts: number | undefined, metric: string, value: number, unit: string | undefined): void {
  const reading: DecodedReading = { sensorId, metric, value };
  if (unit !== undefined) reading.unit = unit;
  if (ts !== undefined) reading.ts = ts;
  readings.push(reading);
}

/**
 * rtl_433 event -> readings. Only keys with a rule in constants.ts become readings; a field
 * that has a rule but a non-numeric value fails the event as `bad_field` (a changed decoder
 * output should be seen, not silently dropped). An event with no measurement at all (a
 * doorbell press, a remote button) is `ignored` with category `no_metrics`.
 */
export function decodeRtl433(event: Rtl433Event, options: Rtl433DecodeOptions = {}): DecodeResult {
  const sensorId = rtl433SensorId(event);
  const ts = rtl433Timestamp(event.fields["time"], options);
  const fields = event.fields;
  const readings: DecodedReading[] = [];
  // One pass over the event's keys (not over every known key): the preferred source per rule.
  const chosen: Array<string | undefined> = [];
  const chosenRank: number[] = [];
  let indexed = false;
  for (const key in fields) {
    const source = SOURCES.get(key);
    if (source === undefined) {
      if (key.startsWith("temperature_") || key.startsWith("humidity_")) indexed = true;
      continue;
    }
    if (fields[key] === null || fields[key] === undefined) continue;
    if (chosen[source.rule] === undefined || source.rank < chosenRank[source.rule]!) {
      chosen[source.rule] = key;
      chosenRank[source.rule] = source.rank;
    }
  }
  for (let i = 0; i < RTL433_FIELD_RULES.length; i++) {
    const key = chosen[i];
    if (key === undefined) continue;
    const raw = fields[key];
    if (typeof raw !== "number" || !Number.isFinite(raw)) {
      return decodeError("bad_field", `"${key}" is ${typeOf(raw)} ${JSON.stringify(raw)}, expected a finite number`);
    }
    const rule = RTL433_FIELD_RULES[i]!;
    const convert = SOURCES.get(key)!.convert;
    addReading(readings, sensorId, ts, rule.metric, convert ? cleanFloat(convert(raw)) : raw, rule.unit);
  }

  if (fields["battery_ok"] === undefined) {
    const legacy = fields[RTL433_LEGACY_BATTERY_KEY];
    if (legacy === "OK") addReading(readings, sensorId, ts, "battery_ok", 1, undefined);
    else if (legacy === "LOW") addReading(readings, sensorId, ts, "battery_ok", 0, undefined);
  }

  if (indexed) {
    for (const key in fields) {
      const temperature = RTL433_INDEXED_TEMPERATURE.exec(key);
      const humidity = temperature ? null : RTL433_INDEXED_HUMIDITY.exec(key);
      if (!temperature && !humidity) continue;
      const raw = fields[key];
      if (typeof raw !== "number" || !Number.isFinite(raw)) {
        return decodeError("bad_field", `"${key}" is ${typeOf(raw)}, expected a finite number`);
      }
      if (temperature) {
        const celsius = temperature[2] === "F" ? cleanFloat(fahrenheitToCelsius(raw)) : raw;
        addReading(readings, sensorId, ts, `temperature_${temperature[1]}`, celsius, "Cel");
      } else if (humidity) {
        addReading(readings, sensorId, ts, `humidity_${humidity[1]}`, raw, "%RH");
      }
    }
  }

  if (readings.length === 0) {
    return ignoredResult("no_metrics", `${event.model} event carries no measurement this decoder knows`);
  }
  return readingsResult(readings);
}
